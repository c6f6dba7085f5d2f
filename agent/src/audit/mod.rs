//! The tamper-evident audit trail: one JSON line per security event, each holding
//! the SHA-256 of the line before it, so removing, editing, inserting or moving a
//! record breaks the chain ([`verify`]). The head hash (of the last line) is logged
//! at exit; keep it elsewhere to also detect a truncated tail.
//!
//! Wiring, in the agent:
//!
//! ```no_run
//! use shroud_agent::audit::{Audit, AuditTarget};
//! let audit = Audit::open(&AuditTarget::File("/var/log/shroud/audit.jsonl".into()))
//!     .expect("audit log opens");
//! shroud_agent::events::install(audit.clone());
//! // … run …
//! let head = audit.finish(); // logs and returns the head hash
//! # let _ = head;
//! ```

pub mod anchor;
pub(crate) mod chain;
mod record;
mod sink;
pub mod verify;

pub use anchor::{head_message, HeadSigner, SignedHead};
pub use record::{Workload, GENESIS};
pub use sink::{Audit, AuditError, AuditTarget, Head};
pub use verify::{verify, Broken, ChainSignature, Summary, VerifyError};
