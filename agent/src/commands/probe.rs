//! `shroud probe ready --dir D`: exit 0 once the agent has rendered everything.

use std::path::Path;

use crate::error::Exit;

pub fn ready(dir: &Path) -> anyhow::Result<i32> {
    let marker = dir.join(crate::secrets_source::META_DIR).join("ready");
    if marker.exists() {
        Ok(0)
    } else {
        Err(Exit {
            code: 1,
            message: format!("not ready: {} does not exist yet", marker.display()),
        }
        .into())
    }
}
