//! shroud: a secrets sidecar for ephemeral workloads.
//!
//! The binary's roles (`redact`, `exec`, `run`, `agent`, `scan`, `audit`,
//! `webhook`) are in [`commands`]; the pieces they share are the modules below.
//! See docs/ARCHITECTURE.md for the map.

pub mod addmask;
pub mod agent;
pub mod alloc;
pub mod archive;
pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub mod contract;
pub mod ctmpl;
pub mod derive;
pub mod envmask;
pub mod error;
pub mod events;
pub mod exec;
pub mod footprint;
pub mod gateway;
pub mod harden;
pub mod ledger;
pub mod live;
pub mod locked_arena;
pub mod logging;
pub mod pem;
pub mod pump;
pub mod report;
pub mod scanner;
pub mod secrets_source;
pub mod signals;
pub mod signing;
pub mod stages;
pub mod telemetry;
pub mod template;
pub mod tree;
pub mod vault;
pub mod webhook;
