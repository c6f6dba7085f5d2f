//! `shroud scan [--secrets-dir D | --secret-file F… | --config F] PATH…`: the CI gate that
//! fails when files hold a known secret value or encoding.
//!
//! Archives and compressed streams are looked into ([`crate::archive`]); an
//! occurrence inside one is named `FILE!MEMBER[!MEMBER…]`. Entry names and the
//! files' paths are looked at too.
//!
//! Exit 0: clean. Exit 1: at least one occurrence (each printed as
//! `PATH:OFFSET: SECRET (ENCODING)`, or `PATH:name: …` when it is in the name;
//! never the value) or credential of a known format (`--detect`, default all:
//! `PATH:OFFSET: DETECTOR (detector)`). Exit 2: no occurrence,
//! but some files could not be read or hit an archive limit. Exit 64: bad
//! arguments or paths. The trees are walked by [`crate::tree`].
//!
//! With `--sign KEY --ledger L` (and `--config F`), a clean scan is followed by
//! signing each file's SHA-256 into the ledger ([`super::sign`]).

use std::fs::{self, File};
use std::io::{self, Read, Write as _};
use std::path::Path;
use std::sync::Arc;

use shroud_redactor::detect::DetectorSet;
use shroud_redactor::SecretSet;

use crate::archive::{Limits, Part, Stop, Walker};
use crate::cli::ScanArgs;
use crate::error::{usage, Exit};
use crate::live::LiveSet;
use crate::logging::{print_redacted, redact};
use crate::scanner::{scan_reader, Finding, CHUNK, DETECTED};
use crate::secrets_source::Sources;
use crate::tree::{walk, Visit};

pub fn run(args: ScanArgs) -> anyhow::Result<i32> {
    let r = &args.redaction;
    let sources = Sources {
        files: r.secret_files.clone(),
        dir: r.secrets_dir.clone(),
    };
    let detectors = DetectorSet::parse(
        args.detect
            .as_deref()
            .unwrap_or(crate::envmask::DEFAULT_DETECT),
        r.mask.as_bytes(),
    )
    .map_err(|e| usage(anyhow::anyhow!("--detect: {e}")))?;
    // The detectors alone only when asked for by name: a job that forgot its
    // values' source must not pass a gate that looked for formats only.
    if sources.is_empty()
        && args.config.is_none()
        && (args.detect.is_none() || detectors.is_empty())
    {
        return Err(usage(anyhow::anyhow!(
            "nothing to look for: give --secrets-dir, --secret-file or --config (or --detect LIST to look for well-known credential formats only)"
        ))
        .into());
    }
    let values = sources.read(r.min_length).map_err(usage)?;
    crate::report::warn_skipped(&values.skipped);
    // Errors about the paths are printed masked with the values known so far
    // (a path may hold one); Vault is only asked once the paths are known good.
    let (files_only, _) = values.build(r.lengths(), std::iter::empty());
    crate::logging::set_live(Arc::new(LiveSet::new(files_only)));
    for p in &args.paths {
        fs::metadata(p).map_err(|e| {
            usage(anyhow::Error::new(e).context(format!("cannot scan {}", p.display())))
        })?;
    }
    let signing = match (&args.sign, &args.ledger, &args.config) {
        (Some(key), Some(ledger), Some(config)) => {
            Some(super::sign::Signing::prepare(config, key, ledger)?)
        }
        _ => None,
    };
    let vault = match &args.config {
        Some(path) => super::scan_config::values(path)?,
        None => Default::default(),
    };
    let (set, loaded) = values.build(
        r.lengths(),
        vault.values.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
    );
    drop(vault);
    crate::report::warn_report(&loaded.report, r.min_length);
    crate::report::warn_weak(&values.weak, &loaded.report);
    // Values were asked for and none is usable (with detectors alone, none was).
    if set.is_empty() && !(sources.is_empty() && args.config.is_none()) {
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
        detectors: (!detectors.is_empty()).then_some(detectors),
        limits: args.limits.into(),
        digests: signing.as_ref().map(|_| Vec::new()),
        stdout: io::stdout().lock(),
        files: 0,
        bytes: 0,
        findings: 0,
        detected: 0,
        files_with_findings: 0,
        errors: 0,
        incomplete: 0,
    };
    for p in &args.paths {
        walk(p, &mut |visit| match visit {
            Visit::File(path) => scan.file(path),
            Visit::Error(path, e) => scan.error(path, &e),
        });
    }
    let summary = format!(
        "scanned {} files ({} bytes): {} occurrences of known secrets{} in {} files, {} unreadable, {} incomplete",
        scan.files,
        scan.bytes,
        scan.findings - scan.detected,
        if scan.detected > 0 {
            format!(" and {} detected credentials", scan.detected)
        } else {
            String::new()
        },
        scan.files_with_findings,
        scan.errors,
        scan.incomplete
    );
    scan.line(&summary);
    let _ = scan.stdout.flush();
    if scan.findings > 0 {
        return Err(Exit {
            code: 1,
            message: format!(
                "found {} occurrences of known secrets or detected credentials in {} files",
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
    let digests = scan.digests.take();
    drop(scan);
    if let (Some(signing), Some(digests)) = (signing, digests) {
        signing.sign_all(&digests)?;
    }
    Ok(0)
}

struct Scan<'a> {
    set: Arc<SecretSet>,
    /// The credential detectors, when any is selected.
    detectors: Option<DetectorSet>,
    limits: Limits,
    /// (path, SHA-256) of each file, when signing.
    digests: Option<Vec<(String, String)>>,
    stdout: io::StdoutLock<'a>,
    files: u64,
    bytes: u64,
    findings: u64,
    /// Of `findings`, those of a detector.
    detected: u64,
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

    fn file(&mut self, path: &Path) {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) => return self.error(path, &e),
        };
        self.files += 1;
        if let Some(digests) = &mut self.digests {
            use std::io::Seek as _;
            match crate::ledger::sha256_of(&mut f).and_then(|d| f.rewind().map(|_| d)) {
                Ok(d) => digests.push((path.display().to_string(), d)),
                Err(e) => return self.error(path, &e),
            }
        }
        let set = self.set.clone();
        let mut found: Vec<(String, Part, Finding)> = Vec::new();
        let mut bytes = 0u64;
        // The path a file ships under can hold a value too, like an entry's name.
        let shown = path.display().to_string();
        // Reading from a byte slice cannot fail.
        let _ = scan_reader(&set, None, shown.as_bytes(), CHUNK_MIN, |finding| {
            found.push((shown.clone(), Part::Name, finding))
        });
        let detectors = self.detectors.as_ref();
        let result = Walker::new(
            self.limits,
            |name: &str, part: Part, input: &mut dyn Read, size: Option<u64>| {
                // Names are only matched against the known values: a path is
                // not where a credential of a known format hides.
                let detect = detectors.filter(|_| part == Part::Content);
                let n = scan_reader(&set, detect, input, chunk_for(size), |finding| {
                    found.push((name.to_string(), part, finding))
                })?;
                if part == Part::Content {
                    bytes += n;
                }
                Ok(n)
            },
        )
        .file(&shown, f);
        self.bytes += bytes;
        if !found.is_empty() {
            self.files_with_findings += 1;
            self.findings += found.len() as u64;
            self.detected += found.iter().filter(|f| f.2.encoding == DETECTED).count() as u64;
        }
        for (name, part, f) in &found {
            let msg = match part {
                Part::Content => format!("{name}:{}: {} ({})", f.offset, f.secret, f.encoding),
                Part::Name => format!("{name}:name: {} ({})", f.secret, f.encoding),
            };
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

/// The smallest read buffer.
const CHUNK_MIN: usize = 4096;

/// Small files get a small buffer: a tree of many small files must not cost a
/// megabyte of zeroing each.
fn chunk_for(size: Option<u64>) -> usize {
    let size = size.unwrap_or(u64::MAX);
    usize::try_from(size.saturating_add(1))
        .unwrap_or(CHUNK)
        .clamp(CHUNK_MIN, CHUNK)
}
