//! `shroud probe ready --dir D`: exit 0 once the agent has rendered everything.

use std::path::Path;

use crate::contract::{self, READY_FILE};
use crate::error::Exit;

pub fn ready(dir: &Path) -> anyhow::Result<i32> {
    if contract::is_ready(dir) {
        Ok(0)
    } else {
        Err(Exit {
            code: 1,
            message: format!(
                "not ready: {} does not exist yet",
                dir.join(READY_FILE).display()
            ),
        }
        .into())
    }
}
