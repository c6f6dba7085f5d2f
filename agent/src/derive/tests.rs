use super::*;

const TOKEN: &str = "tK9vQ2xW7pLm4RzB8nYc";
const PASSWORD: &str = "Zq3&x'Lp9\"wV2$mN";

fn names(value: &str) -> Vec<(String, String)> {
    derive("s", value.as_bytes(), 8)
        .into_iter()
        .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

fn has(got: &[(String, String)], name: &str, value: &str) {
    assert!(
        got.iter().any(|(n, v)| n == name && v == value),
        "{name} missing from {:?}",
        got.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
}

#[test]
fn json_leaves_by_path_without_weak_or_short_ones() {
    let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let doc = serde_json::json!({
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "3f9a1c0e7b2d4a6f8e1c3b5d7f9a0c2e4b6d8f1a",
        "private_key": key,
        "token_uri": "https://oauth2.googleapis.com/token",
        "nested": {"list": [TOKEN, 12345678901234567u64]},
    })
    .to_string();
    let got = names(&doc);
    has(
        &got,
        "s#private_key_id",
        "3f9a1c0e7b2d4a6f8e1c3b5d7f9a0c2e4b6d8f1a",
    );
    has(&got, "s#private_key", &key);
    has(&got, "s#nested.list.0", TOKEN);
    assert!(
        got.iter()
            .any(|(n, v)| n == "s#private_key#sec1"
                && v.starts_with("-----BEGIN EC PRIVATE KEY-----"))
    );
    assert!(got.iter().any(|(n, _)| n == "s#private_key#sec1.der"));
    for absent in ["s#type", "s#project_id", "s#token_uri", "s#nested.list.1"] {
        assert!(
            !got.iter().any(|(n, _)| n == absent),
            "{absent} should be left out"
        );
    }
}

#[test]
fn dockerconfigjson_auth_is_decoded_into_user_and_password() {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("robot$ci:{PASSWORD}"));
    let doc = format!(
        r#"{{"auths":{{"registry.example:5000":{{"auth":"{auth}","email":"ci@example.com"}}}}}}"#
    );
    let got = names(&doc);
    has(&got, "s#auths.registry.example:5000.auth", &auth);
    has(
        &got,
        "s#auths.registry.example:5000.auth.password",
        PASSWORD,
    );
    has(
        &got,
        "s#auths.registry.example:5000.auth.decoded",
        &format!("robot$ci:{PASSWORD}"),
    );
}

#[test]
fn kubeconfig_gives_user_credentials_not_clusters() {
    use base64::Engine as _;
    let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let key_data = base64::engine::general_purpose::STANDARD.encode(&key);
    let doc = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://10.1.2.3:6443\n    certificate-authority-data: TUlJQ0V6Q0NBZnVnQXdJQkFnSUJBREFOQmdr\ncontexts:\n- name: ctx\n  context: {{cluster: prod, user: ci}}\nusers:\n- name: ci\n  user:\n    token: {TOKEN}\n    client-key-data: {key_data}\n"
    );
    let got = names(&doc);
    has(&got, "s#users.ci.token", TOKEN);
    has(&got, "s#users.ci.client-key-data", &key_data);
    has(&got, "s#users.ci.client-key-data.decoded", &key);
    assert!(got
        .iter()
        .any(|(n, _)| n == "s#users.ci.client-key-data.decoded#sec1"));
    assert!(!got
        .iter()
        .any(|(n, _)| n.contains("clusters") || n.contains("server")));
}

#[test]
fn dotenv_and_yaml_values() {
    let env = format!(
        "# app\nexport API_TOKEN={TOKEN}\nDB_PASSWORD='{}'\n",
        PASSWORD.replace('\'', "'\\''")
    );
    let got = names(&env);
    has(&got, "s#API_TOKEN", TOKEN);
    has(&got, "s#DB_PASSWORD", PASSWORD);
    let yaml = format!(
        "db:\n  password: '{}'\n  hosts: [a, b]\n",
        PASSWORD.replace('\'', "''")
    );
    has(&names(&yaml), "s#db.password", PASSWORD);
}

#[test]
fn plain_values_and_hostile_documents_contribute_nothing() {
    for v in [
        TOKEN,
        PASSWORD,
        "postgres://u:p@h/db",
        "key: short",
        "[1, 2, 3]",
        "{}",
        "",
    ] {
        assert!(names(v).is_empty(), "{v}");
    }
    // Aliases are not expanded ("billion laughs").
    let mut laughs = String::from("a: &a [\"lolololololol\"]\n");
    for i in 0..30 {
        laughs.push_str(&format!(
            "b{i}: &b{i} [*{}, *{}]\n",
            if i == 0 {
                "a".into()
            } else {
                format!("b{}", i - 1)
            },
            if i == 0 {
                "a".into()
            } else {
                format!("b{}", i - 1)
            }
        ));
    }
    assert!(derive("s", laughs.as_bytes(), 8).len() <= 2);
    let deep = "[".repeat(10_000);
    assert!(derive("s", deep.as_bytes(), 8).is_empty());
    let deep_yaml = "- ".repeat(10_000) + "x";
    let _ = derive("s", deep_yaml.as_bytes(), 8);
}
