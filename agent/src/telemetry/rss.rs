//! Resident memory of this process, read from `/proc/self/statm` at scrape time.

/// Resident set size in bytes; None when `/proc` is not readable.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()?;
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_plausible_rss() {
        let rss = super::resident_bytes().expect("linux has /proc/self/statm");
        assert!(rss > 100 * 1024 && rss < 1 << 40, "{rss}");
    }
}
