//! Publishing a new redaction set before new values reach the workload (see
//! "Rotation handshake" in docs/ARCHITECTURE.md): write `.shroud/values` with the
//! next generation, swap the in-process [`LiveSet`] (run mode), then wait until
//! every exec's `.shroud/acks/<id>` reports that generation.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shroud_redactor::SecretSetBuilder;
use zeroize::Zeroizing;

use super::files::{FilesError, Output};
use crate::contract::{
    lagging_acks, read_regular, remove_planted, valid_name, Links, ValuesFile, VALUES_FILE,
};
use crate::live::LiveSet;

/// The most registered values an agent keeps (a runaway registration loop
/// must not grow the set without bound).
pub const MAX_REGISTERED: usize = 4096;

/// A value that was replaced and stays masked until `until`.
struct Retired {
    until: Instant,
    name: String,
    value: Zeroizing<Vec<u8>>,
}

/// Generations, retired values and the in-process set.
pub struct Publisher {
    generation: u64,
    retired: Vec<Retired>,
    retain: Duration,
    lengths: shroud_redactor::Lengths,
    timeout: Duration,
    live: Option<Arc<LiveSet>>,
    /// Values the pod's execs registered at run time (`.shroud/registered-*`),
    /// in every generation for the rest of the agent's run (and its
    /// successor's, with `[state]`): a minted token outlives the step that
    /// registered it.
    registered: Vec<(String, Zeroizing<Vec<u8>>)>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("generation", &self.generation)
            .field("retired", &self.retired.len())
            .finish_non_exhaustive()
    }
}

/// A redaction-set entry name: `[A-Za-z0-9._-]+`.
pub fn entry_name(secret: &str, field: &str) -> String {
    let raw = format!("{secret}.{field}");
    if valid_name(&raw) {
        return raw;
    }
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Publisher {
    /// A publisher; `live` is the set shared with in-process streams (run mode).
    pub fn new(
        retain: Duration,
        lengths: shroud_redactor::Lengths,
        timeout: Duration,
        live: Option<Arc<LiveSet>>,
    ) -> Self {
        Publisher {
            generation: 0,
            retired: Vec::new(),
            retain,
            lengths,
            timeout,
            live,
            registered: Vec::new(),
        }
    }

    /// Adds the execs' registered values not kept yet; true when any was added
    /// (the set should then be republished and the state saved). At most
    /// [`MAX_REGISTERED`] are kept: past that the oldest leave the set.
    pub fn add_registered(&mut self, values: Vec<(String, Zeroizing<Vec<u8>>)>) -> bool {
        let mut added = false;
        for (name, value) in values {
            if value.is_empty() || self.registered.iter().any(|(_, v)| *v == value) {
                continue;
            }
            self.registered.push((name, value));
            added = true;
        }
        let over = self.registered.len().saturating_sub(MAX_REGISTERED);
        if over > 0 {
            tracing::warn!(
                dropped = over,
                "more than {MAX_REGISTERED} registered values; the oldest leave the redaction set"
            );
            self.registered.drain(..over);
        }
        added
    }

    /// The registered values kept (for the state).
    pub fn registered(&self) -> &[(String, Zeroizing<Vec<u8>>)] {
        &self.registered
    }

    /// Keeps `values` masked for the retention window.
    pub fn retire(&mut self, values: Vec<(String, Zeroizing<Vec<u8>>)>) {
        let until = Instant::now() + self.retain;
        for (name, value) in values {
            self.retired.push(Retired {
                until,
                name: format!("{name}.retired"),
                value,
            });
        }
    }

    /// When the next retired value leaves the set.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.retired.iter().map(|r| r.until).min()
    }

    /// Drops retired values past their window; true when any was dropped (the
    /// set should then be republished so the values leave memory everywhere).
    pub fn prune(&mut self, now: Instant) -> bool {
        let before = self.retired.len();
        self.retired.retain(|r| r.until > now);
        self.retired.len() != before
    }

    /// Writes generation N+1 with `current`, the retired values and `retiring`
    /// (values about to be replaced, masked as retired ones) and swaps the
    /// in-process set. Returns N+1. On failure nothing changes here: the
    /// generation stays N and `retiring` is not kept (the caller retires the
    /// values with [`Publisher::retire`] once the replacement is in place).
    pub fn publish(
        &mut self,
        out: &mut Output,
        current: Vec<(String, Zeroizing<Vec<u8>>)>,
        retiring: &[(String, Zeroizing<Vec<u8>>)],
    ) -> Result<u64, FilesError> {
        self.prune(Instant::now());
        let generation = self.generation + 1;
        let mut file = ValuesFile {
            generation,
            retain: Some(self.retain),
            values: current,
        };
        for r in &self.retired {
            file.values.push((r.name.clone(), r.value.clone()));
        }
        for (name, value) in retiring {
            file.values.push((format!("{name}.retired"), value.clone()));
        }
        file.values.extend(self.registered.iter().cloned());
        out.write(Path::new(VALUES_FILE), &file.to_bytes())?;
        self.generation = generation;
        self.swap_live(&file);
        Ok(self.generation)
    }

    fn swap_live(&self, file: &ValuesFile) {
        if let Some(live) = &self.live {
            let mut builder = SecretSetBuilder::new().lengths(self.lengths);
            file.add_to(&mut builder);
            let base = file.values.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
            live.store_based(builder.build().0, self.lengths, base);
        }
    }

    /// The generation last published.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Goes on from `generation` (a restarted agent's saved one) if that is newer.
    pub fn continue_from(&mut self, generation: u64) {
        self.generation = self.generation.max(generation);
    }

    /// Takes over the `.shroud/values` a previous agent left (a restart): its
    /// generation, so the next publication is newer than anything an exec has
    /// acknowledged, and its values as retired ones, masked for a full window
    /// from now. `adopting`: the previous agent's current values are still
    /// current (they are published again by the caller), so only its retired
    /// ones are taken; otherwise every value is retired.
    pub fn take_over(&mut self, out: &Output, adopting: bool) {
        let bytes = match read_regular(&out.dir().join(VALUES_FILE), Links::Refuse) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return,
            Err(e) if e.is_not_regular() => {
                // Planted: it would also stand in the way of the new file.
                tracing::warn!(error = %e, "removing what stands in place of .shroud/values; starting a new redaction set");
                remove_planted(&out.dir().join(VALUES_FILE));
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the previous agent's .shroud/values is unreadable; starting a new redaction set");
                return;
            }
        };
        let Ok(file) = ValuesFile::parse(&bytes) else {
            tracing::warn!(
                "the previous agent's .shroud/values is unreadable; starting a new redaction set"
            );
            return;
        };
        self.generation = self.generation.max(file.generation);
        let until = Instant::now() + self.retain;
        for (name, value) in file.values {
            let retired = name.ends_with(".retired");
            if adopting && !retired {
                continue;
            }
            self.retired.push(Retired {
                until,
                name: if retired {
                    name
                } else {
                    format!("{name}.retired")
                },
                value,
            });
        }
    }

    /// Loads `current` plus the retired values into the in-process set without
    /// a new generation: an adopting agent whose files are all in place.
    pub fn restore_live(&self, current: Vec<(String, Zeroizing<Vec<u8>>)>) {
        let mut file = ValuesFile {
            generation: self.generation,
            retain: Some(self.retain),
            values: current,
        };
        for r in &self.retired {
            file.values.push((r.name.clone(), r.value.clone()));
        }
        file.values.extend(self.registered.iter().cloned());
        self.swap_live(&file);
    }

    /// Waits until every live exec's ack file reports at least `generation`, or
    /// the timeout. Returns the ids that did not acknowledge in time.
    pub fn wait_acks(&self, out: &Output, generation: u64) -> Vec<String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let lagging = lagging_acks(out.dir(), generation);
            if lagging.is_empty() || Instant::now() >= deadline {
                return lagging;
            }
            // Acks are plain files written by other processes, possibly in other
            // containers; polling a tmpfs directory every few ms is cheap and
            // needs no inotify instance per publication.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutputConfig;
    use crate::contract::{live_acks, remove_stale_acks, Ack, ACKS_DIR};

    fn output(dir: &Path) -> Output {
        Output::open(&OutputConfig {
            dir: dir.to_path_buf(),
            require_tmpfs: false,
            uid: None,
            gid: None,
            mode: 0o400,
        })
        .unwrap()
    }

    /// An exec's ack as exec writes it (locked), and its id.
    fn exec_ack(dir: &Path, generation: u64) -> (Ack, String) {
        let mut ack = Ack::new(dir);
        ack.write(generation).unwrap();
        let id = ack
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        (ack, id)
    }

    #[test]
    fn registered_values_stay_after_their_file_is_gone_and_are_bounded() {
        let mut p = Publisher::new(
            Duration::from_secs(60),
            shroud_redactor::Lengths::default(),
            Duration::from_millis(200),
            None,
        );
        let v = |s: &str| {
            (
                "mask-add.registered".to_string(),
                Zeroizing::new(s.as_bytes().to_vec()),
            )
        };
        assert!(p.add_registered(vec![v("minted-one")]));
        // The exec ended: its file is gone, the value stays.
        assert!(!p.add_registered(Vec::new()));
        assert!(!p.add_registered(vec![v("minted-one")]));
        assert!(p.add_registered(vec![v("minted-one"), v("minted-two")]));
        assert_eq!(p.registered().len(), 2);
        let many = (0..MAX_REGISTERED)
            .map(|i| v(&format!("value-{i}")))
            .collect();
        assert!(p.add_registered(many));
        assert_eq!(p.registered().len(), MAX_REGISTERED);
        assert_eq!(
            p.registered()[0].1.as_slice(),
            b"value-0",
            "the oldest left"
        );
    }

    #[test]
    fn publish_waits_for_acks_and_keeps_retired() {
        let d = tempfile::tempdir().unwrap();
        let mut out = output(d.path());
        let live = Arc::new(LiveSet::new(shroud_redactor::SecretSet::empty()));
        let mut p = Publisher::new(
            Duration::from_secs(60),
            shroud_redactor::Lengths {
                min: 4,
                ..Default::default()
            },
            Duration::from_millis(200),
            Some(live.clone()),
        );
        let g = p
            .publish(
                &mut out,
                vec![(
                    "db.password".into(),
                    Zeroizing::new(b"first-value".to_vec()),
                )],
                &[],
            )
            .unwrap();
        assert_eq!(g, 1);
        assert!(p.wait_acks(&out, g).is_empty(), "no acks: no wait");
        let (mut exec1, exec1_id) = exec_ack(d.path(), 1);
        p.retire(vec![(
            "db.password".into(),
            Zeroizing::new(b"first-value".to_vec()),
        )]);
        let g = p
            .publish(
                &mut out,
                vec![(
                    "db.password".into(),
                    Zeroizing::new(b"second-value".to_vec()),
                )],
                &[],
            )
            .unwrap();
        let t = Instant::now();
        assert_eq!(p.wait_acks(&out, g), vec![exec1_id]);
        assert!(t.elapsed() >= Duration::from_millis(200));
        exec1.write(2).unwrap();
        assert!(p.wait_acks(&out, g).is_empty());
        let vf = ValuesFile::parse(&std::fs::read(out.dir().join(VALUES_FILE)).unwrap()).unwrap();
        assert_eq!(vf.generation, 2);
        assert_eq!(vf.values.len(), 2);
        assert_eq!(live.swaps(), 2);
        assert_eq!(
            live.load()
                .find_matches(b"x first-value second-value")
                .len(),
            2
        );
    }

    #[test]
    fn an_ack_left_by_a_killed_exec_is_not_waited_for() {
        let d = tempfile::tempdir().unwrap();
        let mut out = output(d.path());
        let timeout = Duration::from_millis(300);
        let mut p = Publisher::new(
            Duration::from_secs(60),
            shroud_redactor::Lengths {
                min: 4,
                ..Default::default()
            },
            timeout,
            None,
        );
        let value = || vec![("s.v".to_string(), Zeroizing::new(b"a-value".to_vec()))];
        let g = p.publish(&mut out, value(), &[]).unwrap();
        // A live exec (its ack locked, as exec writes it) and the unlocked file a
        // SIGKILLed one left behind, both at generation 1.
        let (mut live, live_id) = exec_ack(d.path(), g);
        std::fs::write(
            out.dir().join(ACKS_DIR).join("0123456789abcdef"),
            format!("{g}\n"),
        )
        .unwrap();
        assert_eq!(
            live_acks(out.dir())
                .into_iter()
                .map(|(id, _)| id)
                .collect::<Vec<_>>(),
            vec![live_id.clone()]
        );
        // The live one is waited for, the dead one is not.
        let g = p.publish(&mut out, value(), &[]).unwrap();
        let t = Instant::now();
        assert_eq!(p.wait_acks(&out, g), vec![live_id]);
        assert!(t.elapsed() >= timeout);
        live.write(g).unwrap();
        let g2 = p.publish(&mut out, value(), &[]).unwrap();
        live.write(g2).unwrap();
        let t = Instant::now();
        assert!(p.wait_acks(&out, g2).is_empty());
        assert!(t.elapsed() < timeout, "{:?}", t.elapsed());
        remove_stale_acks(out.dir());
        assert!(!out.dir().join(ACKS_DIR).join("0123456789abcdef").exists());
        assert!(live.path().exists());
    }

    #[test]
    fn a_restarted_agent_takes_over_generation_and_retired_values() {
        let d = tempfile::tempdir().unwrap();
        let mut out = output(d.path());
        let mut first = Publisher::new(
            Duration::from_secs(60),
            shroud_redactor::Lengths {
                min: 4,
                ..Default::default()
            },
            Duration::ZERO,
            None,
        );
        first.retire(vec![(
            "db.pw".into(),
            Zeroizing::new(b"old-value".to_vec()),
        )]);
        first
            .publish(
                &mut out,
                vec![("db.pw".into(), Zeroizing::new(b"cur-value".to_vec()))],
                &[],
            )
            .unwrap();
        first
            .publish(
                &mut out,
                vec![("db.pw".into(), Zeroizing::new(b"cur-value".to_vec()))],
                &[],
            )
            .unwrap();
        let live = Arc::new(LiveSet::new(shroud_redactor::SecretSet::empty()));
        let adopting = || {
            Publisher::new(
                Duration::from_secs(60),
                shroud_redactor::Lengths {
                    min: 4,
                    ..Default::default()
                },
                Duration::ZERO,
                Some(live.clone()),
            )
        };
        // Adopting: the generation goes on, only retired values are taken.
        let mut p = adopting();
        p.take_over(&out, true);
        assert_eq!(p.generation(), 2);
        assert_eq!(p.retired.len(), 1);
        p.restore_live(vec![(
            "db.pw".into(),
            Zeroizing::new(b"cur-value".to_vec()),
        )]);
        assert_eq!(live.load().find_matches(b"old-value cur-value").len(), 2);
        // Starting fresh: every value of the predecessor stays masked, retired.
        let mut p = adopting();
        p.take_over(&out, false);
        assert_eq!(p.retired.len(), 2);
        assert!(p.retired.iter().all(|r| r.name.ends_with(".retired")));
        assert_eq!(p.publish(&mut out, Vec::new(), &[]).unwrap(), 3);
    }

    #[test]
    fn entry_names_are_valid() {
        assert_eq!(entry_name("db", "pass word"), "db.pass_word");
        assert!(valid_name(&entry_name("db", "ключ")));
    }
}
