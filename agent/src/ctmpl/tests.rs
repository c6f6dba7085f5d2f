//! Template behaviour checked against what Go's text/template and
//! consul-template print for the same input (expected strings from their
//! documented and source behaviour).

use super::*;
use std::time::{Duration, UNIX_EPOCH};

fn kv2() -> Value {
    let data: serde_json::Value = serde_json::json!({
        "data": {"username": "app", "password": "p<&>w", "port": 5432, "hosts": "a, b,c", "nil": null},
        "metadata": {"version": 3, "created_time": "2026-01-01T00:00:00Z"}
    });
    Value::secret("req", "", 0, false, data.as_object().unwrap(), &[])
}

fn render_opts(t: &str, opts: &Options) -> Result<String, String> {
    let tpl = Template::parse(t, opts).map_err(|e| e.to_string())?;
    let v = kv2();
    tpl.render(
        &|c: &SecretCall| (c.path == "secret/data/app").then(|| v.clone()),
        Context {
            getenv: &|k| (k == "HOME").then(|| "/home/app".to_string()),
            now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        },
    )
    .map_err(|e| e.to_string())
}

fn render(t: &str) -> String {
    render_opts(t, &Options::default()).unwrap()
}

#[test]
fn secret_fields_and_with() {
    assert_eq!(
        render("{{ with secret \"secret/data/app\" }}{{ .Data.data.username }}:{{ .Data.data.password }}{{ end }}\n"),
        "app:p<&>w\n"
    );
    assert_eq!(
        render("{{ with secret \"secret/data/app\" }}{{ .Data.metadata.version }} {{ .LeaseID }}|{{ .LeaseDuration }} {{ .Renewable }}{{ end }}"),
        "3 |0 false"
    );
}

#[test]
fn missing_keys() {
    let t =
        "{{ with secret \"secret/data/app\" }}{{ .Data.data.nope }}|{{ .Data.data.nil }}{{ end }}";
    assert_eq!(render(t), "<no value>|<no value>");
    let e = render_opts(
        t,
        &Options {
            missing_key_error: true,
            ..Options::default()
        },
    )
    .unwrap_err();
    assert!(e.contains("map has no entry for key \"nope\""), "{e}");
    let e = render_opts(
        "{{ with secret \"secret/data/app\" }}{{ .Data.data.nope.deeper }}{{ end }}",
        &Options::default(),
    )
    .unwrap_err();
    assert!(
        e.contains("nil pointer evaluating interface {}.deeper"),
        "{e}"
    );
}

#[test]
fn range_sorted_and_vars() {
    assert_eq!(
        render("{{ range $k, $v := (secret \"secret/data/app\").Data.data }}{{ $k }}={{ $v }};{{ end }}"),
        "hosts=a, b,c;nil=<no value>;password=p<&>w;port=5432;username=app;"
    );
    assert_eq!(
        render("{{ $s := secret \"secret/data/app\" }}{{ range $i, $h := split \",\" $s.Data.data.hosts }}{{ $i }}:{{ trimSpace $h }} {{ end }}"),
        "0:a 1:b 2:c "
    );
    assert_eq!(
        render("{{ range $x := split \",\" \"\" }}x{{ else }}empty{{ end }}"),
        "empty"
    );
    assert_eq!(render("{{ range $i, $e := split \",\" \"a,b,c\" }}{{ if eq $e \"b\" }}{{ continue }}{{ end }}{{ $e }}{{ end }}"), "ac");
}

#[test]
fn trim_delims_and_conditionals() {
    assert_eq!(
        render("a\n  {{- if true -}}\n  b\n{{- else -}} c {{- end }}\n"),
        "ab\n"
    );
    assert_eq!(
        render_opts(
            "[[ with secret \"secret/data/app\" ]][[ .Data.data.username ]][[ end ]] {{ x }}",
            &Options {
                left: "[[".into(),
                right: "]]".into(),
                missing_key_error: false,
            }
        )
        .unwrap(),
        "app {{ x }}"
    );
    assert_eq!(
        render("{{ if eq 1 2 }}a{{ else if lt 1 2 }}b{{ else }}c{{ end }}"),
        "b"
    );
    assert_eq!(
        render("{{ and 1 0 2 }} {{ or 0 \"\" \"x\" }} {{ not 0 }} {{ len \"héllo\" }}"),
        "0 x true 6"
    );
}

#[test]
fn functions() {
    let r = |t: &str| {
        render(&format!(
            "{{{{ with secret \"secret/data/app\" }}}}{t}{{{{ end }}}}"
        ))
    };
    assert_eq!(r("{{ .Data.data.password | base64Encode }}"), "cDwmPnc=");
    assert_eq!(r("{{ \"cDwmPnc=\" | base64Decode }}"), "p<&>w");
    assert_eq!(
        r("{{ .Data.data | toJSON }}"),
        r#"{"hosts":"a, b,c","nil":null,"password":"p\u003c\u0026\u003ew","port":5432,"username":"app"}"#
    );
    assert!(r("{{ .Data.data | toUnescapedJSON }}").contains("p<&>w"));
    assert_eq!(r("{{ printf \"%s:%d:%v:%q\" .Data.data.username 7 .Data.data.port .Data.data.username }}"), "app:7:5432:\"app\"");
    assert_eq!(r("{{ index .Data.data \"username\" | toUpper }}"), "APP");
    assert_eq!(
        r("{{ .Data.data.hosts | split \",\" | join \";\" }}"),
        "a; b;c"
    );
    assert_eq!(
        r("{{ .Data.data.username | replaceAll \"p\" \"P\" }}"),
        "aPP"
    );
    assert_eq!(
        r("{{ if .Data.data.hosts | contains \"b,\" }}yes{{ end }}"),
        "yes"
    );
    assert_eq!(r("{{ env \"HOME\" }}|{{ env \"NOPE\" }}"), "/home/app|");
    assert_eq!(
        r("{{ timestamp }} {{ timestamp \"unix\" }}"),
        "2023-11-14T22:13:20Z 1700000000"
    );
    assert_eq!(
        r("{{ .Data.metadata }}"),
        "map[created_time:2026-01-01T00:00:00Z version:3]"
    );
    assert_eq!(r("{{ sprig_default \"x\" .Data.data.nope }}"), "x");
    assert_eq!(
        r("{{ .Data.data | toYAML }}"),
        "hosts: a, b,c\nnil: null\npassword: p<&>w\nport: 5432\nusername: app"
    );
    assert_eq!(
        r("{{ .Data.data.username | printf \"%s-%s\" \"x\" }}"),
        "x-app"
    );
}

#[test]
fn errors_name_lines() {
    let e = Template::parse("a\n{{ nofunc 1 }}", &Options::default()).unwrap_err();
    assert_eq!(e.to_string(), "line 2: function \"nofunc\" not defined");
    assert!(Template::parse("{{ if true }}", &Options::default()).is_err());
    // Go pairs `else if` with if and `else with` with with only.
    assert!(Template::parse("{{ with 1 }}{{ else if 2 }}{{ end }}", &Options::default()).is_err());
    let e = render_opts("\n\n{{ 1 | 2 }}", &Options::default()).unwrap_err();
    assert!(e.starts_with("line 3:"), "{e}");
}

#[test]
fn calls_are_found_statically() {
    let t = Template::parse(
        "{{ with secret \"a\" }}{{ end }}{{ (secret \"a\").Data }}\n{{ pkiCert \"pki/issue/r\" \"common_name=x.test\" \" ttl = 1h \" }}",
        &Options::default(),
    )
    .unwrap();
    let calls = t.calls().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].func, SecretFunc::PkiCert);
    assert_eq!(calls[1].params.get("ttl").map(String::as_str), Some("1h"));
    for bad in [
        "{{ $p := \"a\" }}\n{{ secret $p }}",
        "\n{{ \"a\" | secret }}",
        "\n{{ secret (printf \"a\") }}",
    ] {
        let e = Template::parse(bad, &Options::default())
            .unwrap()
            .calls()
            .unwrap_err();
        assert_eq!(e.line, 2, "{bad}: {e}");
    }
}

#[test]
fn errors_never_hold_a_value() {
    for t in [
        "{{ range .Data.data.password }}{{ end }}",
        "{{ parseInt .Data.data.password }}",
        "{{ parseBool .Data.data.password }}",
        "{{ add .Data.data.password 1 }}",
        "{{ .Data.data.password | base64Decode }}",
        "{{ .Data.data.password.field }}",
    ] {
        let e = render_opts(
            &format!("{{{{ with secret \"secret/data/app\" }}}}{t}{{{{ end }}}}"),
            &Options::default(),
        )
        .unwrap_err();
        assert!(!e.contains("p<&>w"), "{t}: {e}");
    }
}
