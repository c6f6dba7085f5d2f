//! Imports of Vault Agent configurations shaped like the examples in the Vault
//! and OpenBao documentation (rewritten here), and one file with every
//! stanza shroud can take; each import must pass shroud's own validation.

use super::*;

fn imported(hcl: &str) -> (Imported, crate::config::Config) {
    let imp = import("agent.hcl", hcl).unwrap_or_else(|e| panic!("{e}"));
    let toml = imp.to_toml("agent.hcl");
    let cfg = crate::config::parse("imported", &toml, std::iter::empty())
        .unwrap_or_else(|e| panic!("{e}\n{toml}"));
    (imp, cfg)
}

fn refused(hcl: &str) -> String {
    import("agent.hcl", hcl).unwrap_err().to_string()
}

/// What the vault-k8s injector writes for an annotated pod.
const INJECTOR: &str = r#"
exit_after_auth = false
pid_file = "/home/vault/.pid"
vault {
  address = "http://vault.vault.svc:8200"
}
auto_auth {
  method "kubernetes" {
    mount_path = "auth/kubernetes"
    config = {
      role = "web"
      token_path = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    }
  }
  sink "file" {
    config = {
      path = "/home/vault/.vault-token"
    }
  }
}
template {
  destination = "/vault/secrets/db"
  contents = "{{ with secret \"database/creds/web\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}"
  left_delimiter = "{{"
  right_delimiter = "}}"
}
"#;

#[test]
fn the_injector_config_imports() {
    let (imp, cfg) = imported(INJECTOR);
    assert_eq!(cfg.auth.method, crate::config::AuthMethod::Kubernetes);
    assert_eq!(cfg.auth.role.as_deref(), Some("web"));
    assert_eq!(cfg.auth.mount, "kubernetes");
    assert_eq!(cfg.output.dir, std::path::PathBuf::from("/vault/secrets"));
    assert_eq!(cfg.secrets[0].name, "db");
    assert_eq!(cfg.secrets[0].path, "database/creds/web");
    let notes = imp.notes.join("\n");
    assert!(
        notes.contains("line 15: auto_auth.sink: dropped"),
        "{notes}"
    );
    assert!(
        notes.contains("line 2: exit_after_auth") && notes.contains("line 3: pid_file"),
        "{notes}"
    );
}

/// The AppRole quick start: `method { type = … }`, a file sink, a template.
const APPROLE: &str = r#"
vault {
  address = "http://127.0.0.1:8200"
  retry {
    num_retries = 5
  }
}
auto_auth {
  method {
    type = "approle"
    config = {
      role_id_file_path = "/etc/app/role-id"
      secret_id_file_path = "/etc/app/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }
  sink {
    type = "file"
    config = {
      path = "/tmp/agent-token"
    }
  }
}
template {
  contents = <<EOT
{{- with secret "secret/data/customers/acme" }}
Organization: {{ .Data.data.organization }}
ID: {{ .Data.data.customer_id }}
Contact: {{ .Data.data.contact_email }}
{{- end }}
EOT
  destination = "/run/app/customer.txt"
  perms = "0640"
  error_on_missing_key = true
}
"#;

#[test]
fn the_approle_quick_start_imports() {
    let (_, cfg) = imported(APPROLE);
    assert_eq!(cfg.auth.method, crate::config::AuthMethod::AppRole);
    assert_eq!(cfg.output.mode, 0o640);
    match &cfg.secrets[0].format {
        crate::config::Format::Consul(t) => {
            assert!(t.options.missing_key_error);
            assert!(
                t.source.text.starts_with("{{- with secret"),
                "{:?}",
                t.source.text
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Every stanza and key shroud takes, once.
const EVERYTHING: &str = r#"
pid_file = "/run/agent.pid"
exit_after_auth = true
log_level = "info"
vault {
  address = "https://vault.example.test:8200"
  ca_cert = "/etc/vault/ca.pem"
  tls_server_name = "vault.example.test"
  namespace = "team-a"
  tls_skip_verify = false
  retry {
    num_retries = 3
  }
}
auto_auth {
  method "jwt" {
    mount_path = "auth/ci-jwt"
    wrap_ttl = "30s"
    config = {
      role = "deploy"
      path = "/run/ci/id-token"
      remove_jwt_after_reading = false
    }
  }
  sink "file" {
    config = {
      path = "/run/agent-token"
    }
  }
}
template_config {
  static_secret_render_interval = "2m"
  exit_on_retry_failure = true
  lease_renewal_threshold = 0.5
}
template {
  destination = "/run/secrets/app.env"
  contents = "{{ with secret \"secret/data/app\" }}{{ range $k, $v := .Data.data }}{{ $k }}={{ $v }}\n{{ end }}{{ end }}"
  perms = "0600"
  create_dest_dirs = true
  wait {
    min = "2s"
  }
}
template {
  destination = "/run/secrets/tls.pem"
  contents = "[[ with pkiCert \"pki/issue/web\" \"common_name=app.example.test\" ]][[ .Cert ]][[ .Key ]][[ end ]]"
  left_delimiter = "[["
  right_delimiter = "]]"
  perms = "0600"
}
exec {
  command = ["/usr/bin/app", "--serve"]
  restart_on_secret_changes = "always"
}
telemetry {
  prometheus_retention_time = "30s"
}
"#;

#[test]
fn every_stanza_shroud_takes_imports() {
    let (imp, cfg) = imported(EVERYTHING);
    assert_eq!(cfg.vault.namespace.as_deref(), Some("team-a"));
    assert_eq!(
        cfg.vault.tls_server_name.as_deref(),
        Some("vault.example.test")
    );
    assert_eq!(cfg.auth.method, crate::config::AuthMethod::Jwt);
    assert_eq!(cfg.auth.mount, "ci-jwt");
    assert_eq!(
        cfg.auth.jwt_path,
        std::path::PathBuf::from("/run/ci/id-token")
    );
    assert_eq!(cfg.lifecycle.renew_threshold, 0.5);
    assert_eq!(cfg.output.mode, 0o600);
    assert_eq!(cfg.secrets.len(), 2);
    assert!(cfg
        .secrets
        .iter()
        .all(|s| s.refresh == std::time::Duration::from_secs(120)));
    let toml = imp.to_toml("agent.hcl");
    for n in [
        "vault.retry",
        "auto_auth.sink",
        "exec",
        "telemetry",
        "template #1 wait",
        "pid_file",
    ] {
        assert!(toml.contains(&format!(": {n}")), "{n} not noted:\n{toml}");
    }
}

#[test]
fn what_has_no_equivalent_is_refused_with_its_line() {
    let base = "auto_auth {\n  method \"token_file\" {\n    config = {\n      token_file_path = \"/t\"\n    }\n  }\n}\ntemplate {\n  destination = \"/run/s/a\"\n  contents = \"{{ with secret \\\"secret/data/a\\\" }}{{ .Data }}{{ end }}\"\n}\n";
    assert!(import("a.hcl", base).is_ok());
    for (extra, want) in [
        ("exec {\n  command = [\"env\"]\n  env_template \"DB_PASS\" {\n    contents = \"x\"\n  }\n}\n", "line 14: exec.env_template: refused: shroud puts no secret in an environment"),
        ("env_template \"X\" {\n  contents = \"x\"\n}\n", "line 12: env_template: refused"),
        ("vault {\n  tls_skip_verify = true\n}\n", "line 13: vault.tls_skip_verify: refused"),
        ("listener \"tcp\" {\n  address = \"127.0.0.1:8100\"\n}\n", "line 12: listener: refused: shroud serves no Vault API with its own token"),
        ("cache {\n}\n", "line 12: cache: refused"),
        ("api_proxy {\n  use_auto_auth_token = true\n}\n", "line 12: api_proxy: refused"),
        ("template {\n  destination = \"/other/b\"\n  contents = \"x\"\n}\n", "line 13: template #2 destination: shroud renders every file into one directory"),
        ("template {\n  destination = \"/run/s/b\"\n  contents = \"x\"\n  command = \"pkill -HUP app\"\n}\n", "line 15: template #2 command: shroud runs no command"),
        ("frobnicate = 1\n", "line 12: frobnicate"),
    ] {
        let e = refused(&format!("{base}{extra}"));
        assert!(e.contains(want), "{extra}\n{e}");
    }
    let aws = base.replace("\"token_file\"", "\"aws\"");
    assert!(
        refused(&aws).contains("line 2: auto_auth.method \"aws\""),
        "{}",
        refused(&aws)
    );
    assert!(refused("vault {").contains("not valid HCL"));
}

/// What `bao agent generate-config -type=env-template` writes: a token file
/// login (with `config` as a block), env templates and a supervised command.
/// Refused at the first env_template: shroud puts no secret in an environment.
const GENERATED_ENV: &str = r#"
auto_auth {
  method {
    type = "token_file"
    config {
      token_file_path = "/home/dev/.vault-token"
    }
  }
}
template_config {
  static_secret_render_interval = "5m"
  exit_on_retry_failure         = true
}
vault {
  address = "http://localhost:8200"
}
env_template "APP_USER" {
  contents             = "{{ with secret \"secret/data/app\" }}{{ .Data.data.user }}{{ end }}"
  error_on_missing_key = true
}
exec {
  command                   = ["./app"]
  restart_on_secret_changes = "always"
  restart_stop_signal       = "SIGTERM"
}
"#;

#[test]
fn generated_env_template_configs_are_refused_with_the_reason() {
    let e = refused(GENERATED_ENV);
    assert!(
        e.contains("agent.hcl: line 17: env_template: refused: shroud puts no secret in an environment variable"),
        "{e}"
    );
    // The same login and a file template instead import and validate.
    let fixed = GENERATED_ENV.split("env_template").next().unwrap().to_string()
        + "template {\n  destination = \"/run/app/user\"\n  contents = \"{{ with secret \\\"secret/data/app\\\" }}{{ .Data.data.user }}{{ end }}\"\n}\n";
    let (_, cfg) = imported(&fixed);
    assert_eq!(cfg.auth.method, crate::config::AuthMethod::Token);
    assert_eq!(
        cfg.auth.token_file,
        Some(std::path::PathBuf::from("/home/dev/.vault-token"))
    );
}

/// A token-sink-only configuration (the packaged sample of distributions):
/// nothing to render, so nothing shroud could do for it.
#[test]
fn a_sink_only_config_is_refused() {
    let e = refused("vault {\n  address = \"https://bao.example.org:8200\"\n  tls_skip_verify = false\n}\nauto_auth {\n  method {\n    type = \"token_file\"\n    config = {\n      token_file_path = \"/var/lib/openbao/.vault-token\"\n    }\n  }\n  sink \"file\" {\n    config = {\n      path = \"/var/lib/openbao/agent-token\"\n    }\n  }\n}\n");
    assert!(
        e.contains("template: at least one template stanza is required"),
        "{e}"
    );
}
