//! Checking an audit log's hash chain (`shroud audit verify`).

use std::io::{self, BufRead};

use super::record::{sha256_hex, unseal, GENESIS};

/// An intact log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// How many records.
    pub records: u64,
    /// SHA-256 of the last line ([`GENESIS`] for an empty log): compare with the
    /// head logged at exit to detect a removed tail.
    pub head: String,
    /// The `chain_signature` records, in order (their heads already checked
    /// against the chain; their signatures are for Vault to check).
    pub signatures: Vec<ChainSignature>,
    /// Records after the last chain signature (every record when there is
    /// none): no signature covers them.
    pub unsigned_tail: u64,
}

/// A `chain_signature` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSignature {
    /// Its 1-based line.
    pub line: u64,
    /// Records covered (the first `records` lines).
    pub records: u64,
    /// Hash of line `records` (the head signed).
    pub head: String,
    /// Written at exit.
    pub is_final: bool,
    /// `MOUNT/NAME`.
    pub key: String,
    /// `vault:vN:…`.
    pub signature: String,
}

/// The first record that breaks the chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct Broken {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// Why verification failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log could not be read.
    #[error("cannot read the audit log")]
    Read(#[source] io::Error),
    /// The chain is broken.
    #[error(transparent)]
    Broken(#[from] Broken),
}

/// Reads every line of `input` and checks, in order for each: complete (newline
/// terminated), a JSON object, its `hash` matches its content, its `seq` is its
/// position, and its `prev` is the hash of the line before.
pub fn verify(mut input: impl BufRead) -> Result<Summary, VerifyError> {
    let mut prev = GENESIS.to_string();
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    let mut signatures = Vec::new();
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(VerifyError::Read)?;
        if n == 0 {
            let signed = signatures.last().map_or(0, |s: &ChainSignature| s.line);
            return Ok(Summary {
                records: line_no,
                head: prev,
                signatures,
                unsigned_tail: line_no - signed,
            });
        }
        line_no += 1;
        let broken = |reason: String| {
            Err(VerifyError::Broken(Broken {
                line: line_no,
                reason,
            }))
        };
        let Some(line) = buf.strip_suffix(b"\n") else {
            return broken("incomplete record: no newline at the end of the file".into());
        };
        let Ok(text) = std::str::from_utf8(line) else {
            return broken("not UTF-8 text".into());
        };
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            Ok(_) => return broken("not a JSON object".into()),
            Err(e) => return broken(format!("not JSON ({e})")),
        };
        let Some((body, hash)) = unseal(text) else {
            return broken("the record does not end with its \"hash\" member".into());
        };
        if sha256_hex(body.as_bytes()) != hash {
            return broken("the record's content does not match its hash: it was edited".into());
        }
        let want = line_no - 1;
        match value.get("seq").and_then(|s| s.as_u64()) {
            Some(seq) if seq == want => {}
            Some(seq) => {
                return broken(format!(
                    "seq is {seq}, expected {want}: a record was removed, inserted or moved here"
                ))
            }
            None => return broken("no \"seq\" member".into()),
        }
        match value.get("prev").and_then(|p| p.as_str()) {
            Some(p) if p == prev => {}
            Some(_) if line_no == 1 => {
                return broken("prev is not the genesis hash: the log does not start at its first record".into())
            }
            Some(_) => {
                return broken(format!(
                    "prev does not match the hash of line {}: that line was rewritten, or a record was removed, inserted or moved",
                    line_no - 1
                ))
            }
            None => return broken("no \"prev\" member".into()),
        }
        if value.get("event").and_then(|e| e.as_str()) == Some("chain_signature") {
            match chain_signature(&value, line_no, &prev) {
                Ok(sig) => signatures.push(sig),
                Err(reason) => return broken(reason),
            }
        }
        prev = sha256_hex(line);
    }
}

/// Reads a `chain_signature` record and checks that it covers exactly the
/// records before it: `records` is its own position and `head` the hash of
/// the line it follows (`prev`). The signed message holds both, so a
/// signature copied to any other place in any chain names a position that is
/// not its own, and changing them breaks the signature.
fn chain_signature(v: &serde_json::Value, line: u64, prev: &str) -> Result<ChainSignature, String> {
    let text = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("chain signature without \"{k}\""))
    };
    let records = v
        .get("records")
        .and_then(|x| x.as_u64())
        .ok_or("chain signature without \"records\"")?;
    let head = text("head")?;
    let before = line - 1;
    if records != before {
        return Err(format!(
            "the chain signature covers {records} records but follows {before}: a signature covers exactly the records before it, so this one was copied or moved here"
        ));
    }
    if head != prev {
        return Err(format!(
            "the chain signature's head is not the hash of line {records}: the records it covers were changed"
        ));
    }
    Ok(ChainSignature {
        line,
        records,
        head,
        is_final: v.get("final").and_then(|x| x.as_bool()).unwrap_or(false),
        key: text("key")?,
        signature: text("signature")?,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::audit::record::{seal, Record, Workload};

    fn log(n: u64) -> Vec<String> {
        let w = Workload::default();
        let mut prev = GENESIS.to_string();
        (0..n)
            .map(|seq| {
                let mut r = Record::base("fetch", &w);
                r.seq = seq;
                r.time = format!("2026-01-01T00:00:{seq:02}.000Z");
                r.prev = &prev;
                let line = seal(&r);
                prev = sha256_hex(line.as_bytes());
                line
            })
            .collect()
    }

    fn check(lines: &[String]) -> Result<Summary, Broken> {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        match verify(Cursor::new(text)) {
            Ok(s) => Ok(s),
            Err(VerifyError::Broken(b)) => Err(b),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn intact_log_reports_count_and_head() {
        let lines = log(4);
        let s = check(&lines).unwrap();
        assert_eq!(s.records, 4);
        assert_eq!(s.head, sha256_hex(lines[3].as_bytes()));
        assert_eq!(check(&[]).unwrap().head, GENESIS);
    }

    #[test]
    fn each_kind_of_tampering_is_caught_at_its_line() {
        let lines = log(5);
        let mut edited = lines.clone();
        edited[2] = edited[2].replace("\"ok\"", "\"error\"");
        let b = check(&edited).unwrap_err();
        assert_eq!(b.line, 3);
        assert!(b.reason.contains("edited"), "{}", b.reason);

        let mut deleted = lines.clone();
        deleted.remove(2);
        let b = check(&deleted).unwrap_err();
        assert_eq!(b.line, 3);
        assert!(b.reason.contains("seq is 3, expected 2"), "{}", b.reason);

        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        assert_eq!(check(&swapped).unwrap_err().line, 2);

        let mut inserted = lines.clone();
        inserted.insert(3, lines[0].clone());
        assert_eq!(check(&inserted).unwrap_err().line, 4);

        let mut first_gone = lines.clone();
        first_gone.remove(0);
        assert_eq!(check(&first_gone).unwrap_err().line, 1);

        // A careful forger re-seals the edited record: the next record's prev breaks.
        let mut resealed = lines.clone();
        let w = Workload::default();
        let mut r = Record::base("fetch", &w);
        r.seq = 2;
        r.time = "2026-01-01T00:00:02.000Z".into();
        r.outcome = "error";
        let prev = sha256_hex(lines[1].as_bytes());
        r.prev = &prev;
        resealed[2] = seal(&r);
        let b = check(&resealed).unwrap_err();
        assert_eq!(b.line, 4);
        assert!(b.reason.contains("hash of line 3"), "{}", b.reason);
    }

    /// A signature record over the `n` lines of `lines`, appended to them.
    fn sign(lines: &mut Vec<String>, is_final: bool) {
        let w = Workload::default();
        let head = lines
            .last()
            .map_or(GENESIS.to_string(), |l| sha256_hex(l.as_bytes()));
        let mut r = Record::base("chain_signature", &w);
        r.seq = lines.len() as u64;
        r.records = Some(lines.len() as u64);
        r.head = Some(head.clone());
        r.is_final = Some(is_final);
        r.key = Some("transit/audit".into());
        r.signature = Some("vault:v1:x".into());
        r.prev = &head;
        lines.push(seal(&r));
    }

    /// Re-seals `v` at position `seq` after `prev_line`, as a forger would.
    fn reseal_at(line: &str, seq: usize, prev_line: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("hash");
        o.insert("seq".into(), (seq as u64).into());
        o.insert("prev".into(), sha256_hex(prev_line.as_bytes()).into());
        let body = serde_json::to_string(&v).unwrap();
        let hash = sha256_hex(body.as_bytes());
        format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1])
    }

    #[test]
    fn a_signature_binds_its_position_and_the_unsigned_tail_is_counted() {
        let mut lines = log(3);
        sign(&mut lines, false);
        let more = log(6);
        lines.extend(more[4..].iter().map(|l| l.to_string()));
        for i in 4..6 {
            lines[i] = reseal_at(&lines[i], i, &lines[i - 1].clone());
        }
        sign(&mut lines, true);
        let s = check(&lines).unwrap();
        assert_eq!(s.signatures.len(), 2);
        assert_eq!(s.unsigned_tail, 0);
        assert_eq!(s.signatures[1].records, 6);

        // Records appended after the final signature and the chain re-sealed:
        // they are counted as unsigned.
        let mut tail = lines.clone();
        tail.push(reseal_at(&more[0], 7, &lines[6]));
        tail.push(reseal_at(&more[1], 8, &tail[7].clone()));
        let s = check(&tail).unwrap();
        assert_eq!(s.unsigned_tail, 2);
        assert_eq!(check(&log(2)).unwrap().unsigned_tail, 2);

        // ... and a copy of the final signature, only seq/prev changed, after them.
        let copied = reseal_at(&lines[6], 9, &tail[8]);
        tail.push(copied);
        let b = check(&tail).unwrap_err();
        assert_eq!(b.line, 10);
        assert!(
            b.reason.contains("covers 6 records but follows 9"),
            "{}",
            b.reason
        );

        // The copy with records and head moved along too: the head is the right
        // one now, so the signed message changed and Vault refuses it; the
        // chain check alone accepts it.
        let mut v: serde_json::Value = serde_json::from_str(tail.last().unwrap()).unwrap();
        v["records"] = 9.into();
        v["head"] = sha256_hex(tail[8].as_bytes()).into();
        let n = tail.len();
        tail[n - 1] = reseal_at(&v.to_string(), 9, &tail[8].clone());
        assert!(check(&tail).is_ok());
    }

    #[test]
    fn truncated_last_line_and_garbage_are_caught() {
        let lines = log(2);
        let text = format!("{}\n{}", lines[0], &lines[1][..10]);
        match verify(Cursor::new(text)) {
            Err(VerifyError::Broken(b)) => {
                assert_eq!(b.line, 2);
                assert!(b.reason.contains("incomplete"));
            }
            other => panic!("{other:?}"),
        }
        let b = check(&["not json".to_string()]).unwrap_err();
        assert!(b.reason.starts_with("not JSON"), "{}", b.reason);
    }
}
