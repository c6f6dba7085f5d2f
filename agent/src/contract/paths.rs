//! The names inside a secrets directory. Relative to it, so they can be joined
//! onto the agent's output dir, exec's `--secrets-dir` or the webhook's mount.

/// The protocol's own files; everything else in the directory is a rendered secret.
pub const META_DIR: &str = ".shroud";
/// The redaction set the agent publishes.
pub const VALUES_FILE: &str = ".shroud/values";
/// One acknowledgement per live exec.
pub const ACKS_DIR: &str = ".shroud/acks";
/// The agent's readiness marker (startup probes, `exec --wait-ready`).
pub const READY_FILE: &str = ".shroud/ready";
/// The exit marker exec writes when the workload ends.
pub const EXITED_FILE: &str = ".shroud/exited";
