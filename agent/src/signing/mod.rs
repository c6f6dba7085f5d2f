//! Signing with a Vault/OpenBao transit key: a [`Session`] logs in with the
//! configuration's `[auth]`, signs and verifies, and revokes its token when
//! closed. Used by `shroud scan --sign`, `shroud verify`, the audit trail's
//! signed chain head and `shroud audit verify --config`.

mod head;
mod session;

pub use head::HeadSession;
pub use session::{Session, SignError};
