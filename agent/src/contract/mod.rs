//! The shared secrets directory: the protocol between the agent (which renders
//! secrets into it) and every `shroud exec` (which masks them and supervises the
//! workload). Both sides, the webhook and the probe use these names and rules and
//! no others; docs/ARCHITECTURE.md ("The shared secrets directory") is the prose.
//!
//! ```text
//! <dir>/<name>               rendered secret outputs (the agent's)
//! <dir>/.shroud/values       the redaction set, generation N (the agent's; [`ValuesFile`])
//! <dir>/.shroud/acks/<id>    one per live exec: the generation it has loaded, flock-held
//! <dir>/.shroud/ready        the first full render is done (the agent's)
//! <dir>/.shroud/exited       the workload ended: its exit code (exec's)
//! <dir>/.shroud/registered-<id>  values exec <id> registered at run time (exec's; [`registered`])
//! ```
//!
//! Every file here is written to a temporary dot-name in the same directory
//! ([`atomic`]) and renamed, so a reader never sees a partial file; readers skip
//! dot-files. Other uids can write here: every file is read through [`open`]
//! (never blocking, never a FIFO, device, directory or link).

pub mod ack;
pub mod atomic;
pub mod markers;
pub mod open;
pub mod paths;
pub mod registered;

pub use ack::{ack_is_stale, lagging_acks, live_acks, remove_stale_acks, Ack};
pub use atomic::{write_atomically, Staged};
pub use markers::{clear_markers, has_exited, is_ready, write_exit_marker};
pub use open::{open_regular, read_regular, remove_planted, Links, OpenError};
pub use paths::{ACKS_DIR, EXITED_FILE, META_DIR, READY_FILE, VALUES_FILE};
/// The values-file format. It lives in the redactor crate, whose benchmarks
/// load it too; this is its home for everything else.
pub use shroud_redactor::values_file::{valid_name, ValuesFile, ValuesFileError};
