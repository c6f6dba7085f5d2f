//! Gives back the binary's pages once start-up is over. The code that logs in,
//! parses the configuration and renders the first files runs once; its pages
//! stay mapped (and, under `mlockall`, locked) for the life of the process, and
//! every pod pays for them. The binary's read-only, never-written mappings hold
//! no secret: they are unlocked and unmapped here (`MADV_DONTNEED` on a private
//! file mapping without anonymous pages only drops the page-table entries; a
//! later access maps the same file bytes again), so they become page cache the
//! kernel may reclaim, and only what the steady state runs is mapped again.
//! Mappings with anonymous pages (relocated RELRO data, anything written) are
//! left alone: dropping those would lose their contents.

use std::fs;
use std::path::PathBuf;

/// The most malloc arenas: glibc gives each thread that allocates an arena of
/// its own (up to 8 per core), each a few hundred KiB once touched; the agent
/// and exec allocate little and rarely from more than one thread at a time.
const MALLOC_ARENAS: i32 = 2;

/// Caps glibc's malloc arenas at [`MALLOC_ARENAS`] (as `MALLOC_ARENA_MAX`
/// would, without an environment variable the command inherits). Call before
/// threads start; a no-op on other C libraries.
pub fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes a malloc tunable; M_ARENA_MAX takes a
    // positive count, and arenas already created are kept.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}

/// One mapping of the executable that may be released.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
}

/// Set (to anything) to keep the pages mapped: a way to measure what this
/// saves (`scripts/bench-pod`), or to rule it out.
pub const KEEP_ENV: &str = "SHROUD_KEEP_BINARY_PAGES";

/// Unlocks and unmaps the executable's read-only file pages; returns how many
/// bytes of mappings were released. Failures are ignored (the pages stay).
pub fn release_binary_pages() -> usize {
    if std::env::var_os(KEEP_ENV).is_some() {
        return 0;
    }
    let Ok(exe) = fs::read_link("/proc/self/exe") else {
        return 0;
    };
    let Ok(smaps) = fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut released = 0;
    for m in releasable(&smaps, &exe) {
        let len = m.end - m.start;
        let addr = m.start as *mut libc::c_void;
        // SAFETY: the range is a whole mapping of this process's executable,
        // read-only, private and without anonymous (written) pages, as
        // /proc/self/smaps listed it; munlock only changes whether its pages
        // may be reclaimed, and MADV_DONTNEED on such a mapping only drops
        // page-table entries: the next access maps the same bytes of the file
        // again. Nothing unmaps or writes the executable meanwhile.
        let ok = unsafe {
            libc::munlock(addr, len);
            libc::madvise(addr, len, libc::MADV_DONTNEED) == 0
        };
        if ok {
            released += len;
        }
    }
    released
}

/// The mappings of `exe` in `smaps` that are read-only (`r--p`, `r-xp`) and
/// hold no anonymous page.
fn releasable(smaps: &str, exe: &std::path::Path) -> Vec<Mapping> {
    let exe = PathBuf::from(exe);
    let mut out = Vec::new();
    let mut current: Option<Mapping> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            current = None;
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).map(PathBuf::from);
            let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) else {
                continue;
            };
            if path.as_ref() == Some(&exe) && (perms == "r--p" || perms == "r-xp") {
                current = Some(Mapping { start, end });
            }
        } else if first == "Anonymous:" {
            let anonymous = fields.next().and_then(|k| k.parse::<u64>().ok());
            if let (Some(0), Some(m)) = (anonymous, current.take()) {
                out.push(m);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5600aa000000-5600aa100000 r--p 00000000 fe:00 12 /pod/bin/shroud
Rss:                 400 kB
Anonymous:             0 kB
5600aa100000-5600aa900000 r-xp 00100000 fe:00 12 /pod/bin/shroud
Anonymous:             0 kB
5600aa900000-5600aa980000 r--p 00900000 fe:00 12 /pod/bin/shroud
Anonymous:           512 kB
5600aa980000-5600aa990000 rw-p 00980000 fe:00 12 /pod/bin/shroud
Anonymous:            64 kB
5600ab000000-5600ab100000 rw-p 00000000 00:00 0 [heap]
Anonymous:          1024 kB
7f0000000000-7f0000100000 r-xp 00000000 fe:00 40 /usr/lib/libc.so.6
Anonymous:             0 kB
";

    #[test]
    fn only_the_executables_unwritten_read_only_mappings_are_released() {
        let got = releasable(SMAPS, std::path::Path::new("/pod/bin/shroud"));
        assert_eq!(
            got,
            vec![
                Mapping {
                    start: 0x5600aa000000,
                    end: 0x5600aa100000
                },
                Mapping {
                    start: 0x5600aa100000,
                    end: 0x5600aa900000
                },
            ]
        );
    }

    #[test]
    fn released_pages_read_back_the_same() {
        // The code this test runs is in the released mappings: it keeps running.
        let before = fs::read("/proc/self/exe").map(|b| b.len()).unwrap_or(0);
        let n = release_binary_pages();
        assert!(n > 0 || cfg!(miri));
        assert_eq!(
            fs::read("/proc/self/exe").map(|b| b.len()).unwrap_or(0),
            before
        );
        assert_eq!(format!("{}", 6 * 7), "42");
    }
}
