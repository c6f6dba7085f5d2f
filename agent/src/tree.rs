//! Walking the trees named on a command line (`scan`, `verify`): every regular
//! file, in sorted order. Symlinks to directories inside a tree are not followed
//! (no loops; a symlinked directory named directly is); symlinks to files are
//! (they ship in artifacts); fifos, sockets, devices and dangling links are
//! skipped. Nothing else is: a file that is (a link to) a secret source is
//! walked too, since it ships the secret as much as a copy would.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What the walk found.
#[derive(Debug)]
pub enum Visit<'p> {
    /// A regular file (or a symlink to one).
    File(&'p Path),
    /// A path that could not be examined.
    Error(&'p Path, io::Error),
}

/// Walks `root` (named by the user), calling `visit` for each file and error.
pub fn walk(root: &Path, visit: &mut dyn FnMut(Visit<'_>)) {
    path(root, true, visit);
}

fn path(p: &Path, root: bool, visit: &mut dyn FnMut(Visit<'_>)) {
    let meta = if root {
        fs::metadata(p)
    } else {
        fs::symlink_metadata(p)
    };
    let meta = match meta {
        Ok(m) => m,
        Err(e) => return visit(Visit::Error(p, e)),
    };
    let ft = meta.file_type();
    if ft.is_dir() {
        dir(p, visit);
    } else if ft.is_symlink() {
        // Files behind symlinks ship in artifacts; directories would risk loops.
        match fs::metadata(p) {
            Ok(m) if m.is_file() => visit(Visit::File(p)),
            _ => {}
        }
    } else if ft.is_file() {
        visit(Visit::File(p));
    }
}

fn dir(d: &Path, visit: &mut dyn FnMut(Visit<'_>)) {
    let entries = match fs::read_dir(d) {
        Ok(e) => e,
        Err(e) => return visit(Visit::Error(d, e)),
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => paths.push(e.path()),
            Err(e) => return visit(Visit::Error(d, e)),
        }
    }
    paths.sort();
    for p in paths {
        path(&p, false, visit);
    }
}
