//! `shroud mask add`: register a value read from stdin with the enclosing
//! `shroud exec` / `shroud run` (through `SHROUD_MASK_SOCKET`).

use std::io::{Read as _, Write as _};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;

use anyhow::Context as _;
use zeroize::Zeroizing;

use crate::error::usage;
use crate::exec::mask_socket::{ENV, MAX_VALUE};

pub fn add() -> anyhow::Result<i32> {
    let Some(path) = std::env::var_os(ENV) else {
        return Err(usage(anyhow::anyhow!(
            "shroud mask add must run under `shroud exec` or `shroud run` ({ENV} is not set)"
        ))
        .into());
    };
    let mut value = Zeroizing::new(Vec::new());
    std::io::stdin()
        .take(MAX_VALUE as u64 + 2)
        .read_to_end(&mut value)
        .context("reading the value from stdin")?;
    let trimmed = value.strip_suffix(b"\n").unwrap_or(&value);
    let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(usage(anyhow::anyhow!("shroud mask add: stdin held no value")).into());
    }
    if trimmed.len() > MAX_VALUE {
        return Err(usage(anyhow::anyhow!(
            "shroud mask add: the value is longer than {MAX_VALUE} bytes"
        ))
        .into());
    }
    let mut stream = UnixStream::connect(&path)
        .with_context(|| format!("connecting to {ENV}={}", path.to_string_lossy()))
        .map_err(usage)?;
    // A supervisor that refuses the peer answers without reading the value,
    // so the write may fail (EPIPE) and the read end in ECONNRESET after the
    // answer: the answer, when there is one, says why.
    let sent = stream
        .write_all(trimmed)
        .and_then(|()| stream.shutdown(Shutdown::Write));
    let mut bytes = Vec::new();
    let read = stream.read_to_end(&mut bytes);
    let answer = String::from_utf8_lossy(&bytes).into_owned();
    if answer.is_empty() {
        sent.context("sending the value")?;
        read.context("reading the supervisor's answer")?;
    }
    match answer.trim_end().strip_prefix("error: ") {
        None if answer.trim_end() == "ok" => Ok(0),
        Some(problem) => Err(usage(anyhow::anyhow!("shroud mask add: {problem}")).into()),
        None => Err(anyhow::anyhow!(
            "shroud mask add: unexpected answer from the supervisor"
        )),
    }
}
