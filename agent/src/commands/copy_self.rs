//! `shroud copy-self DEST`: copies this binary to DEST, mode 0755, atomically (a
//! `contract::Staged` temporary file in DEST's directory renamed over DEST). The init container of a
//! `FROM scratch` image has no `cp`, so shroud copies itself.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::contract::Staged;
use crate::error::usage;

/// Where the running binary is.
const SELF_EXE: &str = "/proc/self/exe";

/// Runs the command.
pub fn run(dest: PathBuf) -> anyhow::Result<i32> {
    if dest.is_dir() {
        return Err(usage(anyhow::anyhow!(
            "copy-self: {} is a directory; give the destination file, e.g. {}/shroud",
            dest.display(),
            dest.display()
        ))
        .into());
    }
    copy_self(Path::new(SELF_EXE), &dest)?;
    Ok(0)
}

/// Copies `src` to `dest` with mode 0755 through a temporary file and a rename.
pub fn copy_self(src: &Path, dest: &Path) -> anyhow::Result<()> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    dest.file_name()
        .with_context(|| format!("copy-self: {} has no file name", dest.display()))?;
    let mut tmp = None;
    let result = (|| -> io::Result<()> {
        let mut input = File::open(src)?;
        let staged = Staged::create(dest, 0o700)?;
        tmp = Some(staged.tmp().to_path_buf());
        let mut out = staged.file();
        io::copy(&mut input, &mut out)?;
        // The umask must not decide the mode: set it explicitly.
        out.set_permissions(fs::Permissions::from_mode(0o755))?;
        out.sync_all()?;
        staged.commit()?;
        File::open(&dir)?.sync_all()
    })();
    if let (Err(_), Some(tmp)) = (&result, &tmp) {
        let _ = fs::remove_file(tmp);
    }
    result.with_context(|| format!("copy-self: copying {} to {}", src.display(), dest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_atomically_with_mode_0755() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::write(&src, b"#!/bin/true\nbinary").unwrap();
        let dest = dir.path().join("bin").join("shroud");
        fs::create_dir(dir.path().join("bin")).unwrap();
        fs::write(&dest, b"old").unwrap();
        copy_self(&src, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"#!/bin/true\nbinary");
        assert_eq!(
            fs::metadata(&dest).unwrap().permissions().mode() & 0o7777,
            0o755
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("bin")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn missing_directory_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let e = copy_self(&dir.path().join("src"), &dir.path().join("nope/shroud")).unwrap_err();
        assert!(format!("{e:#}").contains("nope/shroud"), "{e:#}");
    }
}
