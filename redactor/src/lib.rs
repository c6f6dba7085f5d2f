//! Streaming redaction of known secret values and their common encodings.
//!
//! Build a [`SecretSet`] from raw values with [`SecretSetBuilder`]; it derives every
//! encoding ([`Encoding`]) and indexes them. Each output stream gets a [`Redactor`],
//! which takes bytes as they arrive and writes out everything that can no longer be
//! part of a secret, holding back only a trailing proper prefix of some pattern.
//! The caller decides when the stream is idle and calls [`Redactor::flush`].
//!
//! The crate knows nothing of files, processes or Vault; [`values_file`] defines the
//! on-disk format the agent publishes its redaction set in.
// The one exception is a cache prefetch hint in the scan loop (index.rs).
#![deny(unsafe_code)]

mod armor;
pub mod detect;
mod encodings;
mod index;
mod ordinary;
mod patterns;
#[doc(hidden)]
pub mod producers;
pub mod quality;
pub mod reference;
mod runs;
mod set;
mod split;
mod stream;
mod units;
pub mod values_file;
mod views;

pub use encodings::Encoding;
pub use index::Match;
pub use runs::{Run, RunMerger};
pub use set::{
    BuildReport, Lengths, PatternInfo, SecretSet, SecretSetBuilder, DEFAULT_MIN_LENGTH,
    DEFAULT_PIECE_LENGTH,
};
pub use stream::{Piece, Redactor, Stats, DEFAULT_MASK};

/// A small deterministic generator for unit tests (xorshift64).
#[cfg(test)]
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
