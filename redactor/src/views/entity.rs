//! The view through HTML/XML character references: named (`&amp; &lt; &gt;
//! &quot; &apos;` and the other common ones), decimal (`&#34;`, `&#039;`) and
//! hex (`&#x9;`, `&#X27;`), each ending in `;` (Go `html/template` and
//! `encoding/xml`, Jinja2/MarkupSafe, PHP `htmlspecialchars`). A reference
//! without its `;`, or naming no character, is kept.

use super::{Out, Step, View};

/// The longest reference read: `&#x0010FFFF;`.
const MAX_REF: usize = 12;

/// The view.
pub(crate) const VIEW: View = View {
    name: "entity",
    triggers: b"&",
    max_seq: MAX_REF,
    hold_open: true,
    step,
    accept: super::any,
    window: None,
    after: None,
};

/// Named references and the character each stands for.
const NAMED: &[(&[u8], char)] = &[
    (b"amp", '&'),
    (b"lt", '<'),
    (b"gt", '>'),
    (b"quot", '"'),
    (b"apos", '\''),
    (b"nbsp", '\u{a0}'),
    (b"Tab", '\t'),
    (b"NewLine", '\n'),
    (b"excl", '!'),
    (b"num", '#'),
    (b"dollar", '$'),
    (b"percnt", '%'),
    (b"lpar", '('),
    (b"rpar", ')'),
    (b"ast", '*'),
    (b"plus", '+'),
    (b"comma", ','),
    (b"period", '.'),
    (b"sol", '/'),
    (b"colon", ':'),
    (b"semi", ';'),
    (b"equals", '='),
    (b"quest", '?'),
    (b"commat", '@'),
    (b"lsqb", '['),
    (b"bsol", '\\'),
    (b"rsqb", ']'),
    (b"Hat", '^'),
    (b"lowbar", '_'),
    (b"grave", '`'),
    (b"lcub", '{'),
    (b"verbar", '|'),
    (b"rcub", '}'),
    (b"copy", '\u{a9}'),
    (b"reg", '\u{ae}'),
];

fn step(src: &[u8], at: usize) -> Step {
    let s = &src[at..];
    let Some(semi) = s.iter().take(MAX_REF).position(|&b| b == b';') else {
        let open = s.len() < MAX_REF
            && s[1..]
                .iter()
                .enumerate()
                .all(|(k, &b)| b.is_ascii_alphanumeric() || (k == 0 && b == b'#'));
        return if open { Step::Open } else { Step::Literal };
    };
    let name = &s[1..semi];
    let c = match name {
        [b'#', b'x' | b'X', digits @ ..] => number(digits, 16),
        [b'#', digits @ ..] => number(digits, 10),
        _ => NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, c)| c as u32),
    };
    match c.and_then(Out::char) {
        Some(out) => Step::Seq { len: semi + 1, out },
        None => Step::Literal,
    }
}

fn number(digits: &[u8], radix: u32) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u32, |v, &b| {
        let d = (b as char).to_digit(radix)?;
        v.checked_mul(radix)?.checked_add(d)
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{text, view};
    use super::*;

    /// Go 1.19 `html/template` `<input value="{{.}}">{{.}}` for v = `a'b"c&d<e+f`.
    #[test]
    fn go_html_template() {
        let out = b"<input value=\"a&#39;b&#34;c&amp;d&lt;e&#43;f\">a&#39;b&#34;c&amp;d&lt;e&#43;f";
        assert_eq!(
            text(&VIEW, out),
            "<input value=\"a'b\"c&d<e+f\">a'b\"c&d<e+f"
        );
    }

    /// PHP 8.2 `htmlspecialchars` (ENT_QUOTES since 8.1) and XML's hex form.
    #[test]
    fn php_and_hex() {
        let out = b"a&#039;b&quot;c&amp;d&lt;e&gt;f&#x9;g&#X27;h&apos;";
        assert_eq!(text(&VIEW, out), "a'b\"c&d<e>f\tg'h'");
    }

    #[test]
    fn prose_and_open_references() {
        assert_eq!(text(&VIEW, b"Tom & Jerry; R&D;"), "Tom & Jerry; R&D;");
        assert_eq!(text(&VIEW, b"&bogus; &#xZZ; &#;"), "&bogus; &#xZZ; &#;");
        assert_eq!(view(&VIEW, b"ab&am"), (b"ab".to_vec(), Some(2)));
        assert_eq!(view(&VIEW, b"ab&#3"), (b"ab".to_vec(), Some(2)));
    }
}
