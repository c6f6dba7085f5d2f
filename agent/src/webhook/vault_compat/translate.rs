//! The Consul Template → minijinja translation of the injector's templates.

/// Translates the common Consul Template form into minijinja over the secret's
/// data: `with secret "<path>"` / `end` blocks vanish, `.Data.data.X` and `.Data.X`
/// become `X`, trim markers (`{{-`, `-}}`) keep their meaning.
pub fn translate_template(src: &str, path: &str) -> Result<String, String> {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        push_literal(&mut out, &rest[..open], trim_next);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "unclosed `{{` in template".to_string())?;
        let mut action = &after[..close];
        rest = &after[close + 2..];
        let trim_left = action.starts_with('-');
        if trim_left {
            action = &action[1..];
            let kept = out.trim_end().len();
            out.truncate(kept);
        }
        trim_next = action.ends_with('-');
        if trim_next {
            action = &action[..action.len() - 1];
        }
        let action = action.trim();
        if let Some(arg) = action.strip_prefix("with secret ") {
            let quoted = arg.trim();
            let inner = quoted
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .ok_or_else(|| {
                    format!(
                        "cannot translate `{{{{ {action} }}}}`: expected with secret \"<path>\""
                    )
                })?;
            if inner != path {
                return Err(format!(
                    "template reads `{inner}` but the secret annotation's path is `{path}`; shroud renders one secret per file"
                ));
            }
        } else if action == "end" {
        } else if let Some(field) = action
            .strip_prefix(".Data.data.")
            .or_else(|| action.strip_prefix(".Data."))
        {
            if field.is_empty()
                || !field
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                || field.as_bytes()[0].is_ascii_digit()
            {
                return Err(format!(
                    "cannot translate `{{{{ {action} }}}}`: field names must be identifiers"
                ));
            }
            out.push_str("{{ ");
            out.push_str(field);
            out.push_str(" }}");
        } else {
            return Err(format!(
                "cannot translate `{{{{ {action} }}}}`: only `with secret`, `end` and `.Data.data.<field>` / `.Data.<field>` are supported; use shroud.dev/ annotations with a minijinja template instead"
            ));
        }
    }
    push_literal(&mut out, rest, trim_next);
    Ok(out)
}

fn push_literal(out: &mut String, text: &str, trim_start: bool) {
    out.push_str(if trim_start { text.trim_start() } else { text });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_the_common_form() {
        let t = "{{- with secret \"database/creds/app\" -}}\npostgres://{{ .Data.username }}:{{ .Data.password }}@db/app\n{{- end }}\n";
        assert_eq!(
            translate_template(t, "database/creds/app").unwrap(),
            "postgres://{{ username }}:{{ password }}@db/app\n"
        );
        let t = "{{ with secret \"secret/data/a\" }}key={{ .Data.data.key }}{{ end }}";
        assert_eq!(
            translate_template(t, "secret/data/a").unwrap(),
            "key={{ key }}"
        );
    }

    #[test]
    fn refuses_what_it_cannot_translate() {
        for t in [
            "{{ with secret \"other\" }}{{ end }}",
            "{{ range $k, $v := .Data }}{{ end }}",
            "{{ .Data.data.a-b }}",
            "{{ .Data",
        ] {
            assert!(translate_template(t, "secret/data/a").is_err(), "{t}");
        }
    }
}
