//! The view through quote doubling: `''` read as `'` and `""` as `"` (YAML
//! single-quoted scalars, SQL string literals, CSV fields). Read left to right,
//! so `''''` is `''`.

use super::{Out, Step, View};

/// The view.
pub(crate) const VIEW: View = View {
    name: "doubled",
    triggers: b"'\"",
    max_seq: 2,
    hold_open: true,
    step,
    accept: super::any,
    window: None,
    after: None,
};

fn step(src: &[u8], at: usize) -> Step {
    let q = src[at];
    match src.get(at + 1) {
        None => Step::Open,
        Some(&b) if b == q => Step::Seq {
            len: 2,
            out: Out::byte(q),
        },
        Some(_) => Step::Literal,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{text, view};
    use super::*;

    /// Ruby 3.1 Psych `{"password" => v}.to_yaml` for v = `ab'c: d`.
    #[test]
    fn yaml_single_quoted() {
        assert_eq!(
            text(&VIEW, b"password: 'ab''c: d'\n"),
            "password: 'ab'c: d'\n"
        );
    }

    /// sqlite3 `quote()` and Python `csv.writer`.
    #[test]
    fn sql_and_csv() {
        assert_eq!(
            text(&VIEW, b"insert into t values ('a''b\"c');"),
            "insert into t values ('a'b\"c');"
        );
        assert_eq!(text(&VIEW, b"user,\"a\"\"b,c\"\r\n"), "user,\"a\"b,c\"\r\n");
        assert_eq!(text(&VIEW, b"''''"), "''");
        assert_eq!(view(&VIEW, b"ab'"), (b"ab".to_vec(), Some(2)));
    }
}
