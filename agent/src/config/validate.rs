//! Raw TOML values → typed [`Config`], one named key at a time.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::raw::{RawConfig, RawSecret};
use super::{
    AuthConfig, AuthMethod, Config, ConfigError, Format, LifecycleConfig, OnRotate, OutputConfig,
    Params, RedactConfig, SecretKind, SecretSpec, StateConfig, TemplateSource, VaultConfig,
};

/// Re-issue a certificate after two thirds of its validity.
const DEFAULT_REISSUE_AT: f64 = 2.0 / 3.0;

const DEFAULT_JWT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

struct Checker<'a> {
    origin: &'a str,
}

impl Checker<'_> {
    fn err(&self, key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    fn duration(&self, key: &str, v: Option<&str>, default: &str) -> Result<Duration, ConfigError> {
        let s = v.unwrap_or(default);
        humantime::parse_duration(s)
            .map_err(|e| self.err(key, format!("invalid duration `{s}`: {e}")))
    }

    fn required<'v>(&self, key: &str, v: &'v Option<String>) -> Result<&'v str, ConfigError> {
        match v.as_deref() {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(self.err(key, "is required")),
        }
    }
}

/// Validates a parsed file.
pub fn validate(origin: &str, mut raw: RawConfig) -> Result<Config, ConfigError> {
    let c = Checker { origin };
    super::injected::add_vault_agent_templates(origin, &mut raw)?;

    let address = c.required("[vault] address", &raw.vault.address)?;
    if !(address.starts_with("http://") || address.starts_with("https://")) {
        return Err(c.err(
            "[vault] address",
            format!("`{address}` must start with http:// or https://"),
        ));
    }
    let vault = VaultConfig {
        address: address.trim_end_matches('/').to_string(),
        ca_cert: raw.vault.ca_cert.map(PathBuf::from),
        tls_server_name: raw.vault.tls_server_name,
        namespace: raw.vault.namespace.filter(|s| !s.is_empty()),
        timeout: c.duration("[vault] timeout", raw.vault.timeout.as_deref(), "10s")?,
    };

    let method = match c.required("[auth] method", &raw.auth.method)? {
        "kubernetes" => AuthMethod::Kubernetes,
        "approle" => AuthMethod::AppRole,
        "jwt" => AuthMethod::Jwt,
        "token" => AuthMethod::Token,
        "cert" => AuthMethod::Cert,
        other => {
            return Err(c.err(
                "[auth] method",
                format!("`{other}` is not one of kubernetes, approle, jwt, token, cert"),
            ))
        }
    };
    let auth = AuthConfig {
        method,
        mount: raw
            .auth
            .mount
            .map(|m| m.trim_matches('/').to_string())
            .unwrap_or_else(|| method.name().to_string()),
        role: raw.auth.role.clone(),
        jwt_path: PathBuf::from(raw.auth.jwt_path.as_deref().unwrap_or(DEFAULT_JWT_PATH)),
        role_id_file: raw.auth.role_id_file.clone().map(PathBuf::from),
        secret_id_file: raw.auth.secret_id_file.clone().map(PathBuf::from),
        token_file: raw.auth.token_file.clone().map(PathBuf::from),
        client_cert: raw.auth.client_cert.clone().map(PathBuf::from),
        client_key: raw.auth.client_key.clone().map(PathBuf::from),
        cert_role: raw.auth.name.clone().filter(|n| !n.is_empty()),
    };
    match method {
        AuthMethod::Kubernetes | AuthMethod::Jwt => {
            c.required("[auth] role", &raw.auth.role)?;
        }
        AuthMethod::AppRole => {
            c.required("[auth] role_id_file", &raw.auth.role_id_file)?;
            c.required("[auth] secret_id_file", &raw.auth.secret_id_file)?;
        }
        AuthMethod::Token => {
            c.required("[auth] token_file", &raw.auth.token_file)?;
        }
        AuthMethod::Cert => {
            let cert = c.required("[auth] client_cert", &raw.auth.client_cert)?;
            let key = c.required("[auth] client_key", &raw.auth.client_key)?;
            if !address.starts_with("https://") {
                return Err(c.err(
                    "[vault] address",
                    "method = \"cert\" logs in with a TLS client certificate: use https://",
                ));
            }
            crate::pem::Identity::load(Path::new(cert), Path::new(key))
                .map_err(|e| c.err(format!("[auth] {}", e.key()), e.to_string()))?;
        }
    }

    let dir = c.required("[output] dir", &raw.output.dir)?;
    let mode_text = raw.output.mode.as_deref().unwrap_or("0400");
    let mode = u32::from_str_radix(mode_text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| {
            c.err(
                "[output] mode",
                format!("`{mode_text}` is not an octal permission like \"0400\""),
            )
        })?;
    let output = OutputConfig {
        dir: PathBuf::from(dir),
        require_tmpfs: raw.output.require_tmpfs.unwrap_or(true),
        uid: raw.output.uid,
        gid: raw.output.gid,
        mode,
    };

    let state = match raw.state {
        Some(st) => Some(state(&c, st, &output)?),
        None => None,
    };

    // None is fine for a configuration used only to reach Vault (verify,
    // scan --config, audit verify --config); `agent` and `run` refuse it
    // (commands::start_engine).
    let mut secrets = Vec::with_capacity(raw.secret.len());
    for (i, s) in raw.secret.into_iter().enumerate() {
        let spec = secret(&c, i + 1, s)?;
        if secrets.iter().any(|o: &SecretSpec| o.name == spec.name) {
            return Err(c.err(
                format!("[[secret]] #{} name", i + 1),
                format!("`{}` is used by another secret", spec.name),
            ));
        }
        secrets.push(spec);
    }
    for (i, t) in raw.template.into_iter().enumerate() {
        let spec = super::consul::template(origin, i + 1, t)?;
        if secrets.iter().any(|o: &SecretSpec| o.name == spec.name) {
            return Err(c.err(
                format!("[[template]] #{} name", i + 1),
                format!("`{}` is used by another secret or template", spec.name),
            ));
        }
        secrets.push(spec);
    }
    super::injected::check_prefixes(origin, raw.policy.as_ref(), &secrets)?;

    let redact = RedactConfig {
        mask: raw.redact.mask.unwrap_or_else(|| "[REDACTED]".to_string()),
        min_length: raw
            .redact
            .min_length
            .unwrap_or(shroud_redactor::DEFAULT_MIN_LENGTH),
        piece_length: raw
            .redact
            .piece_length
            .unwrap_or(shroud_redactor::DEFAULT_PIECE_LENGTH),
        retain: c.duration("[redact] retain", raw.redact.retain.as_deref(), "10m")?,
        strict: raw.redact.strict.unwrap_or(false),
        detect: raw
            .redact
            .detect
            .unwrap_or_else(|| crate::envmask::DEFAULT_DETECT.to_string()),
        env: match &raw.redact.env {
            None => crate::envmask::EnvPatterns::parse(crate::envmask::DEFAULT_PATTERNS),
            Some(list) => crate::envmask::EnvPatterns::parse(&list.join(",")),
        }
        .map_err(|e| c.err("[redact] env", e.to_string()))?,
    };
    if let Err(e) = shroud_redactor::detect::DetectorSet::parse(&redact.detect, b"[R]") {
        return Err(c.err("[redact] detect", e.to_string()));
    }
    if redact.min_length == 0 {
        return Err(c.err("[redact] min_length", "must be at least 1"));
    }
    if redact.piece_length < crate::cli::MIN_PIECE_LENGTH {
        return Err(c.err(
            "[redact] piece_length",
            format!("must be at least {}", crate::cli::MIN_PIECE_LENGTH),
        ));
    }

    let l = raw.lifecycle;
    let on_rotate_text = l.on_rotate.as_deref().unwrap_or("none");
    let on_rotate: OnRotate =
        on_rotate_text
            .parse()
            .map_err(|e: crate::exec::rotate::OnRotateError| {
                c.err("[lifecycle] on_rotate", e.to_string())
            })?;
    let renew_threshold = l.renew_threshold.unwrap_or(0.66);
    if !(renew_threshold > 0.0 && renew_threshold < 1.0) {
        return Err(c.err(
            "[lifecycle] renew_threshold",
            "must be a fraction between 0 and 1 (exclusive)",
        ));
    }
    let lifecycle = LifecycleConfig {
        revoke_on_exit: l.revoke_on_exit.unwrap_or(true),
        on_rotate,
        renew_threshold,
        exit_marker_timeout: c.duration(
            "[lifecycle] exit_marker_timeout",
            l.exit_marker_timeout.as_deref(),
            "30s",
        )?,
        handshake_timeout: c.duration(
            "[lifecycle] handshake_timeout",
            l.handshake_timeout.as_deref(),
            "5s",
        )?,
        startup_timeout: c.duration(
            "[lifecycle] startup_timeout",
            l.startup_timeout.as_deref(),
            "30s",
        )?,
        revoke_timeout: c.duration(
            "[lifecycle] revoke_timeout",
            l.revoke_timeout.as_deref(),
            "5s",
        )?,
        revoke_certificates: l.revoke_certificates.unwrap_or(true),
        retire_grace: retire_grace(&c, l.retire_grace.as_deref())?,
    };

    let gateways = super::gateway::gateways(origin, raw.gateway, &secrets, &vault)?;
    Ok(Config {
        origin: origin.to_string(),
        vault,
        auth,
        output,
        state,
        secrets,
        redact,
        lifecycle,
        metrics_listen: raw.metrics.listen,
        audit_signing: audit_signing(&c, &raw.audit)?,
        audit_path: raw.audit.path,
        gateways,
    })
}

/// The longest `[lifecycle] retire_grace`: a replaced credential alive for
/// longer than this is a second credential, not an overlap.
const MAX_RETIRE_GRACE: Duration = Duration::from_secs(3600);

fn retire_grace(c: &Checker<'_>, v: Option<&str>) -> Result<Duration, ConfigError> {
    let key = "[lifecycle] retire_grace";
    let grace = c.duration(key, v, "30s")?;
    if grace > MAX_RETIRE_GRACE {
        return Err(c.err(
            key,
            "must be at most 1h (a replaced credential kept longer is a second credential)",
        ));
    }
    Ok(grace)
}

fn state(
    c: &Checker<'_>,
    raw: super::raw::RawState,
    output: &OutputConfig,
) -> Result<StateConfig, ConfigError> {
    let dir = PathBuf::from(c.required("[state] dir", &raw.dir)?);
    if !dir.is_absolute() {
        return Err(c.err("[state] dir", "must be an absolute path"));
    }
    let (state_dir, out_dir) = (lexical(&dir), lexical(&output.dir));
    // The workload reads the output directory; the state holds the token.
    if state_dir.starts_with(&out_dir) || out_dir.starts_with(&state_dir) {
        return Err(c.err(
            "[state] dir",
            format!(
                "{} overlaps the [output] dir {}, which the workload can read; give the agent a directory of its own",
                dir.display(),
                output.dir.display()
            ),
        ));
    }
    Ok(StateConfig {
        dir,
        require_tmpfs: raw.require_tmpfs.unwrap_or(true),
    })
}

/// `path` with `.` and `..` resolved lexically (symlinks are the operator's own
/// business; the directories may not exist yet at validation time).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn audit_signing(
    c: &Checker<'_>,
    a: &super::raw::RawAudit,
) -> Result<Option<super::AuditSigning>, ConfigError> {
    let Some(key) = &a.sign_key else {
        for (set, key) in [
            (a.sign_every.is_some(), "[audit] sign_every"),
            (a.sign_interval.is_some(), "[audit] sign_interval"),
        ] {
            if set {
                return Err(c.err(key, "needs [audit] sign_key"));
            }
        }
        return Ok(None);
    };
    let key =
        crate::vault::transit::TransitKey::parse(key).map_err(|e| c.err("[audit] sign_key", e))?;
    match a.path.as_deref() {
        Some("stderr" | "-") => {
            return Err(c.err(
                "[audit] sign_key",
                "needs [audit] path to be a file: a chain on stderr restarts each run",
            ))
        }
        None => return Err(c.err("[audit] sign_key", "needs [audit] path")),
        Some(_) => {}
    }
    let every = a.sign_every.unwrap_or(100);
    if every == 0 {
        return Err(c.err("[audit] sign_every", "must be at least 1"));
    }
    let interval = c.duration("[audit] sign_interval", a.sign_interval.as_deref(), "60s")?;
    if interval.is_zero() {
        return Err(c.err("[audit] sign_interval", "must be longer than 0s"));
    }
    Ok(Some(super::AuditSigning {
        key,
        every,
        interval,
    }))
}

fn secret(c: &Checker<'_>, n: usize, s: RawSecret) -> Result<SecretSpec, ConfigError> {
    let name = c
        .required(&format!("[[secret]] #{n} name"), &s.name)?
        .to_string();
    let key = |k: &str| format!("[[secret]] #{n} ({name}) {k}");
    if !crate::contract::valid_name(&name) || name.starts_with('.') {
        return Err(c.err(
            key("name"),
            "must match [A-Za-z0-9._-]+ and not start with a dot",
        ));
    }
    let path = c
        .required(&key("path"), &s.path)?
        .trim_matches('/')
        .to_string();
    // Sent segment by segment (vault::path), so a dot segment cannot be expressed.
    if crate::vault::path::encode(&path).is_err() {
        return Err(c.err(key("path"), "must not have empty, `.` or `..` segments"));
    }
    let kind = match s.kind.as_deref().unwrap_or("generic") {
        "kv2" => SecretKind::Kv2,
        "dynamic" => SecretKind::Dynamic,
        "generic" => SecretKind::Generic,
        "pki" => SecretKind::Pki,
        other => {
            return Err(c.err(
                key("kind"),
                format!("`{other}` is not one of kv2, dynamic, generic, pki"),
            ))
        }
    };
    let params =
        Params::load(s.params, s.params_file).map_err(|e| c.err(key(&e.key), e.problem))?;
    let reissue_at = s.reissue_at.unwrap_or(DEFAULT_REISSUE_AT);
    if !(reissue_at > 0.0 && reissue_at < 1.0) {
        return Err(c.err(
            key("reissue_at"),
            "must be a fraction between 0 and 1 (exclusive)",
        ));
    }
    match kind {
        SecretKind::Kv2 if params.is_some() => {
            return Err(c.err(
                key("params"),
                "turns the read into a write; kv2 secrets are only read",
            ))
        }
        SecretKind::Pki => {
            check_pki(c, &key, &path, params.as_ref())?;
            let fixed = [
                ("field", s.field.is_some()),
                ("format", s.format.is_some()),
                ("template", s.template.is_some()),
                ("template_file", s.template_file.is_some()),
            ];
            if let Some((k, _)) = fixed.iter().find(|(_, set)| *set) {
                return Err(c.err(
                    key(k),
                    "a pki secret is written as a directory (tls.crt, tls.key, ca.crt); field, format and templates do not apply",
                ));
            }
        }
        _ if s.reissue_at.is_some() => {
            return Err(c.err(key("reissue_at"), "is only used with kind = \"pki\""))
        }
        _ => {}
    }
    let template_given = s.template.is_some() || s.template_file.is_some();
    let template = match (s.template, s.template_file) {
        (Some(_), Some(_)) => {
            return Err(c.err(key("template"), "give template or template_file, not both"))
        }
        (Some(text), None) => Some(TemplateSource {
            origin: "inline".to_string(),
            text,
        }),
        (None, Some(file)) => Some(TemplateSource {
            text: std::fs::read_to_string(&file)
                .map_err(|e| c.err(key("template_file"), format!("cannot read {file}: {e}")))?,
            origin: file,
        }),
        (None, None) => None,
    };
    let default_format = if template.is_some() {
        "template"
    } else if s.gateway_only == Some(true) {
        // Rendered in memory only (never written): any shape will do.
        "json"
    } else {
        "raw"
    };
    let format = match (s.format.as_deref().unwrap_or(default_format), template) {
        ("template", Some(t)) => {
            t.check(&name)
                .map_err(|e| c.err(key("template"), e.to_string()))?;
            Format::Template(t)
        }
        ("template", None) => {
            return Err(c.err(key("format"), "template needs template or template_file"))
        }
        (_, Some(_)) => {
            return Err(c.err(key("template"), "is only used with format = \"template\""))
        }
        ("raw", None) => Format::Raw,
        ("json", None) => Format::Json,
        ("env", None) => Format::Env,
        (other, None) => {
            return Err(c.err(
                key("format"),
                format!("`{other}` is not one of raw, json, env, template"),
            ))
        }
    };
    if s.field.is_some() && format != Format::Raw {
        return Err(c.err(
            key("field"),
            "writes one field raw; it cannot be combined with format",
        ));
    }
    let gateway_only = s.gateway_only.unwrap_or(false);
    if gateway_only {
        if kind != SecretKind::Dynamic {
            return Err(c.err(
                key("gateway_only"),
                "is for a dynamic secret a [[gateway]] logs in with",
            ));
        }
        if s.field.is_some() || s.format.is_some() || template_given {
            return Err(c.err(
                key("gateway_only"),
                "the secret is written to no file; field, format and templates do not apply",
            ));
        }
    }
    Ok(SecretSpec {
        refresh: c.duration(&key("refresh"), s.refresh.as_deref(), "5m")?,
        name,
        path,
        kind,
        field: s.field,
        format,
        params,
        reissue_at,
        gateway_only,
    })
}

/// `<mount>/issue/<role>` with a `common_name`, answered in PEM.
fn check_pki(
    c: &Checker<'_>,
    key: &dyn Fn(&str) -> String,
    path: &str,
    params: Option<&Params>,
) -> Result<(), ConfigError> {
    let segments: Vec<&str> = path.split('/').collect();
    let n = segments.len();
    if n < 3 || segments[n - 2] != "issue" || segments.iter().any(|s| s.is_empty()) {
        return Err(c.err(
            key("path"),
            format!("`{path}` is not a PKI issue path like \"pki/issue/<role>\""),
        ));
    }
    let Some(params) = params else {
        return Err(c.err(key("params"), "a pki secret needs params.common_name"));
    };
    if params
        .str("common_name")
        .is_none_or(|cn| cn.trim().is_empty())
    {
        return Err(c.err(
            key("params.common_name"),
            "is required (a string) for kind = \"pki\"",
        ));
    }
    if params.has("format") && params.str("format") != Some("pem") {
        return Err(c.err(
            key("params.format"),
            "shroud writes PEM files; leave it out or set \"pem\"",
        ));
    }
    Ok(())
}
