//! Looking inside artifacts: compressed streams (gzip, bzip2, xz, zstd), tar and
//! zip archives (jar, war, wheel, apk, nupkg are zips), nested to a bounded depth.
//! Formats are recognised by their magic bytes, never by name, so a container
//! image saved with `docker save` or an OCI image layout is walked layer by layer
//! without knowing what it is: each layer blob is a (compressed) tar.
//!
//! [`Walker`] opens one file and hands every leaf (a member that is not itself an
//! archive) to a callback as a stream, named with `!` between the levels
//! (`dist/app.tar.gz!lib/app.jar!META-INF/settings.json`), and every entry's
//! stored name too ([`Part::Name`]). Archive bombs are
//! bounded by [`Limits`]; hitting one ends the file's walk with [`Stop::Limit`].

mod embedded;
mod format;
mod limits;
mod members;
mod packages;
mod pushback;
mod spool;
mod walk;
mod zip;

pub use format::{detect, Format, SNIFF_LEN};
pub use limits::{LimitHit, Limits};
pub use walk::{Part, Stop, Walker};
