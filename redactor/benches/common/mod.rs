//! Helpers the benchmarks share: random secrets, the values file, medians,
//! the process's CPU time.

use std::path::Path;

use nix::sys::resource::{getrusage, UsageWho};
use rand::rngs::StdRng;
use rand::Rng;
use shroud_redactor::values_file::ValuesFile;
use zeroize::Zeroizing;

/// The bytes random secrets are made of.
pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub fn secrets(n: usize, rng: &mut StdRng) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let len = rng.gen_range(16..=32);
            (0..len)
                .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())])
                .collect()
        })
        .collect()
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

pub fn write_values(dir: &Path, values: &[Vec<u8>]) {
    std::fs::create_dir_all(dir.join(".shroud")).unwrap();
    let f = ValuesFile {
        generation: 1,
        retain: None,
        values: values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("s{i}"), Zeroizing::new(v.clone())))
            .collect(),
    };
    std::fs::write(dir.join(".shroud/values"), f.to_bytes().as_slice()).unwrap();
}

/// CPU seconds (user + system) this process has used: unlike wall time, hardly
/// moved by other processes on a shared machine.
pub fn self_cpu_secs() -> f64 {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 * 1e-6;
    t(u.user_time()) + t(u.system_time())
}
