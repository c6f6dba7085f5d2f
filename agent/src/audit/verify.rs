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
    // Every line's hash, for checking the head a signature names.
    let mut hashes: Vec<[u8; 32]> = Vec::new();
    let mut signatures = Vec::new();
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(VerifyError::Read)?;
        if n == 0 {
            return Ok(Summary {
                records: line_no,
                head: prev,
                signatures,
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
            match chain_signature(&value, line_no, &hashes) {
                Ok(sig) => signatures.push(sig),
                Err(reason) => return broken(reason),
            }
        }
        prev = sha256_hex(line);
        let mut raw = [0u8; 32];
        if hex::decode_to_slice(&prev, &mut raw).is_ok() {
            hashes.push(raw);
        }
    }
}

/// Reads a `chain_signature` record and checks that the head it names is the
/// hash of line `records`.
fn chain_signature(
    v: &serde_json::Value,
    line: u64,
    hashes: &[[u8; 32]],
) -> Result<ChainSignature, String> {
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
    let want = match records {
        0 => GENESIS.to_string(),
        n if n < line => hex::encode(hashes[n as usize - 1]),
        n => {
            return Err(format!(
                "chain signature covers {n} records, more than precede it"
            ))
        }
    };
    if head != want {
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
