//! The one publication sequence (docs/ARCHITECTURE.md, "Rotation handshake"):
//! stage the new files under temporary names, publish the redaction set with
//! the new values as generation N+1, wait until every live exec acknowledges
//! N+1 (bounded), then rename the files into place. A workload can therefore
//! never read a value its exec does not mask yet.

use tracing::warn;
use zeroize::Zeroizing;

use super::files::{FilesError, Output};
use super::handshake::Publisher;
use super::render::Rendered;

/// Publishes `values` (every current value, new ones included; the publisher
/// adds the retired ones and `retiring`, the values being replaced), then puts
/// `files` (name in the output directory, what it rendered to: a file, or a
/// directory swapped in whole) in place once the execs have the values. Returns
/// the generation published. Nothing here makes a value current: on an error
/// the caller keeps the previous values (the rotation transaction, docs/agent.md).
pub fn publish(
    out: &mut Output,
    publisher: &mut Publisher,
    values: Vec<(String, Zeroizing<Vec<u8>>)>,
    retiring: &[(String, Zeroizing<Vec<u8>>)],
    files: &[(&str, &Rendered)],
) -> Result<u64, FilesError> {
    let generation = publisher.publish(out, values, retiring)?;
    let mut staged = Vec::with_capacity(files.len());
    for (name, rendered) in files {
        staged.push(out.stage_rendered(name, rendered)?);
    }
    let lagging = publisher.wait_acks(out, generation);
    if !lagging.is_empty() {
        warn!(
            generation,
            execs = ?lagging,
            "exec did not acknowledge the new redaction set in time; publishing anyway"
        );
    }
    for f in staged {
        out.commit_output(f)?;
    }
    Ok(generation)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::OutputConfig;
    use crate::contract::{lagging_acks, Ack, ValuesFile, VALUES_FILE};

    #[test]
    fn files_appear_only_after_every_exec_has_the_values() {
        let d = tempfile::tempdir().unwrap();
        let mut out = Output::open(&OutputConfig {
            dir: d.path().to_path_buf(),
            require_tmpfs: false,
            uid: None,
            gid: None,
            mode: 0o400,
        })
        .unwrap();
        let mut publisher = Publisher::new(
            Duration::from_secs(60),
            shroud_redactor::Lengths {
                min: 4,
                ..Default::default()
            },
            Duration::from_secs(20),
            None,
        );
        let mut ack = Ack::new(d.path());
        ack.write(0).unwrap();
        let dir = d.path().to_path_buf();
        // The exec: waits for generation 1, checks the file is not there yet,
        // then acknowledges.
        let exec = std::thread::spawn(move || {
            let generation = loop {
                if let Ok(bytes) = std::fs::read(dir.join(VALUES_FILE)) {
                    break ValuesFile::parse(&bytes).unwrap().generation;
                }
                std::thread::sleep(Duration::from_millis(2));
            };
            let early = dir.join("db").exists();
            ack.write(generation).unwrap();
            (generation, early, ack)
        });
        let g = publish(
            &mut out,
            &mut publisher,
            vec![("db.password".into(), Zeroizing::new(b"new-value".to_vec()))],
            &[],
            &[("db", &Rendered::File(Zeroizing::new(b"new-value".to_vec())))],
        )
        .unwrap();
        assert!(
            lagging_acks(d.path(), g).is_empty(),
            "publish returned before the exec acknowledged"
        );
        let (acked, early, _ack) = exec.join().unwrap();
        assert_eq!((g, acked), (1, 1));
        assert!(!early, "the file was in place before the exec acknowledged");
        assert_eq!(std::fs::read(d.path().join("db")).unwrap(), b"new-value");
    }
}
