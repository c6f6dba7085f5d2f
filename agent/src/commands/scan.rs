//! `shroud scan [--secrets-dir D | --secret-file F… | --config F] PATH…`: the CI gate that
//! fails when files hold a known secret value or encoding.
//!
//! Archives and compressed streams are looked into ([`crate::archive`]); an
//! occurrence inside one is named `FILE!MEMBER[!MEMBER…]`.
//!
//! Exit 0: clean. Exit 1: at least one occurrence (each printed as
//! `PATH:OFFSET: SECRET (ENCODING)`, never the value). Exit 2: no occurrence,
//! but some files could not be read or hit an archive limit. Exit 64: bad
//! arguments or paths.
//! Symlinks to directories inside the tree are not followed (no loops); symlinks
//! to files are scanned; fifos, sockets and devices are skipped.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shroud_redactor::SecretSet;

use crate::archive::{Limits, Stop, Walker};
use crate::cli::ScanArgs;
use crate::error::{usage, Exit};
use crate::live::LiveSet;
use crate::logging::{print_redacted, redact};
use crate::scanner::{scan_reader, Finding, CHUNK};
use crate::secrets_source::Sources;

pub fn run(args: ScanArgs) -> anyhow::Result<i32> {
    let r = &args.redaction;
    let sources = Sources {
        files: r.secret_files.clone(),
        dir: r.secrets_dir.clone(),
    };
    if sources.is_empty() && args.config.is_none() {
        return Err(usage(anyhow::anyhow!(
            "nothing to look for: give --secrets-dir, --secret-file or --config"
        ))
        .into());
    }
    let values = sources.read().map_err(usage)?;
    // Errors about the paths are printed masked with the values known so far
    // (a path may hold one); Vault is only asked once the paths are known good.
    let (files_only, _) = values.build(r.min_length, std::iter::empty());
    crate::logging::set_live(Arc::new(LiveSet::new(files_only)));
    for p in &args.paths {
        fs::metadata(p).map_err(|e| {
            usage(anyhow::Error::new(e).context(format!("cannot scan {}", p.display())))
        })?;
    }
    let vault = match &args.config {
        Some(path) => super::scan_config::values(path)?,
        None => Default::default(),
    };
    let (set, loaded) = values.build(
        r.min_length,
        vault.values.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
    );
    drop(vault);
    crate::report::warn_report(&loaded.report, r.min_length);
    if set.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "no secret value to look for: every value is empty or shorter than --min-length {}",
            r.min_length
        ))
        .into());
    }
    let live = Arc::new(LiveSet::new(set));
    crate::logging::set_live(live.clone());

    let mut scan = Scan {
        set: live.load(),
        sources: source_ids(&sources),
        limits: args.limits.into(),
        stdout: io::stdout().lock(),
        files: 0,
        bytes: 0,
        findings: 0,
        files_with_findings: 0,
        errors: 0,
        incomplete: 0,
    };
    for p in &args.paths {
        scan.path(p, true);
    }
    let summary = format!(
        "scanned {} files ({} bytes): {} occurrences of known secrets in {} files, {} unreadable, {} incomplete",
        scan.files, scan.bytes, scan.findings, scan.files_with_findings, scan.errors, scan.incomplete
    );
    scan.line(&summary);
    let _ = scan.stdout.flush();
    if scan.findings > 0 {
        return Err(Exit {
            code: 1,
            message: format!(
                "found {} occurrences of known secrets in {} files",
                scan.findings, scan.files_with_findings
            ),
        }
        .into());
    }
    if scan.errors > 0 || scan.incomplete > 0 {
        return Err(Exit {
            code: 2,
            message: format!(
                "{} files could not be read and {} hit an archive limit; the scan is incomplete",
                scan.errors, scan.incomplete
            ),
        }
        .into());
    }
    Ok(0)
}

/// (device, inode) of the secret sources, so the values' own files are not
/// reported as leaks.
fn source_ids(sources: &Sources) -> HashSet<(u64, u64)> {
    let mut ids = HashSet::new();
    let mut add = |p: &Path| {
        if let Ok(m) = fs::metadata(p) {
            ids.insert((m.dev(), m.ino()));
        }
    };
    for f in &sources.files {
        add(f);
    }
    if let Some(dir) = &sources.dir {
        add(dir);
    }
    ids
}

struct Scan<'a> {
    set: Arc<SecretSet>,
    sources: HashSet<(u64, u64)>,
    limits: Limits,
    stdout: io::StdoutLock<'a>,
    files: u64,
    bytes: u64,
    findings: u64,
    files_with_findings: u64,
    errors: u64,
    incomplete: u64,
}

impl Scan<'_> {
    /// One line of output; a path that happens to hold a value is masked too.
    fn line(&mut self, text: &str) {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(b'\n');
        let _ = self.stdout.write_all(&redact(&bytes));
    }

    fn error(&mut self, path: &Path, e: &io::Error) {
        self.errors += 1;
        let _ = self.stdout.flush();
        print_redacted(&format!(
            "shroud: scan: cannot read {}: {e}",
            path.display()
        ));
    }

    /// `root` paths were named by the user: a symlink to a directory is followed.
    fn path(&mut self, path: &Path, root: bool) {
        let meta = if root {
            fs::metadata(path)
        } else {
            fs::symlink_metadata(path)
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) => return self.error(path, &e),
        };
        if self.sources.contains(&(meta.dev(), meta.ino())) {
            return;
        }
        let ft = meta.file_type();
        if ft.is_dir() {
            self.dir(path);
        } else if ft.is_symlink() {
            // Files behind symlinks ship in artifacts; directories would risk loops.
            match fs::metadata(path) {
                Ok(m) if m.is_file() && !self.sources.contains(&(m.dev(), m.ino())) => {
                    self.file(path)
                }
                _ => {}
            }
        } else if ft.is_file() {
            self.file(path);
        }
    }

    fn dir(&mut self, dir: &Path) {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => return self.error(dir, &e),
        };
        let mut paths: Vec<PathBuf> = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => paths.push(e.path()),
                Err(e) => return self.error(dir, &e),
            }
        }
        paths.sort();
        for p in paths {
            self.path(&p, false);
        }
    }

    fn file(&mut self, path: &Path) {
        let f = match File::open(path) {
            Ok(f) => f,
            Err(e) => return self.error(path, &e),
        };
        self.files += 1;
        let set = self.set.clone();
        let mut found: Vec<(String, Finding)> = Vec::new();
        let mut bytes = 0u64;
        let result = Walker::new(
            self.limits,
            |name: &str, input: &mut dyn Read, size: Option<u64>| {
                let n = scan_reader(&set, input, chunk_for(size), |finding| {
                    found.push((name.to_string(), finding))
                })?;
                bytes += n;
                Ok(n)
            },
        )
        .file(&path.display().to_string(), f);
        self.bytes += bytes;
        if !found.is_empty() {
            self.files_with_findings += 1;
            self.findings += found.len() as u64;
        }
        for (name, f) in &found {
            let msg = format!("{name}:{}: {} ({})", f.offset, f.secret, f.encoding);
            self.line(&msg);
        }
        match result {
            Ok(()) => {}
            Err(stop @ Stop::Limit { .. }) => {
                self.incomplete += 1;
                let _ = self.stdout.flush();
                print_redacted(&format!("shroud: scan: {stop}"));
            }
            Err(stop) => {
                self.errors += 1;
                let _ = self.stdout.flush();
                print_redacted(&format!("shroud: scan: cannot read {stop}"));
            }
        }
    }
}

/// Small files get a small buffer: a tree of many small files must not cost a
/// megabyte of zeroing each.
fn chunk_for(size: Option<u64>) -> usize {
    let size = size.unwrap_or(u64::MAX);
    usize::try_from(size.saturating_add(1))
        .unwrap_or(CHUNK)
        .clamp(4096, CHUNK)
}
