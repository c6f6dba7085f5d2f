//! `shroud config import`: a Vault/OpenBao Agent configuration (HCL) → the
//! equivalent shroud configuration. Each stanza is mapped, noted (kept as a
//! comment in the output when shroud does the same thing its own way), or
//! refused with its line and the reason (exit 64): shroud has no
//! equivalent, or deliberately does not do it (secrets in an environment,
//! serving the Vault API to the app, skipping TLS verification).

mod hcl;

use std::path::Path;

use self::hcl::{boolean, label, text, Entry, File, Line};
use super::raw::{RawConfig, RawTemplate};

/// Why a Vault Agent configuration cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not HCL.
    #[error("{origin}: not valid HCL: {message}")]
    Syntax {
        /// The file.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// A stanza or key has no equivalent in shroud (or is refused on purpose).
    #[error("{origin}: {line}: {stanza}: {reason}")]
    Refused {
        /// The file.
        origin: String,
        /// Where the stanza or key is.
        line: Line,
        /// e.g. `template.command` or `auto_auth.method "aws"`.
        stanza: String,
        /// Why.
        reason: String,
    },
}

/// The imported configuration: shroud's TOML and what was noted on the way.
#[derive(Debug)]
pub struct Imported {
    /// The configuration, ready to be validated.
    pub config: RawConfig,
    /// Stanzas shroud handles its own way, one line each (`line N: …`).
    pub notes: Vec<String>,
}

impl Imported {
    /// The configuration as TOML, the notes as comments above it.
    pub fn to_toml(&self, origin: &str) -> String {
        let mut out = format!("# imported from {origin} by `shroud config import`\n");
        for n in &self.notes {
            out.push_str(&format!("# note: {n}\n"));
        }
        out.push('\n');
        out.push_str(&toml::to_string(&self.config).unwrap_or_default());
        out
    }
}

/// Whether `path`/`text` is a Vault Agent configuration rather than TOML:
/// the `.hcl` extension, or text that is not TOML but is HCL with one of the
/// agent's stanzas.
pub fn is_vault_agent(path: &Path, text: &str) -> bool {
    if path.extension().is_some_and(|e| e == "hcl") {
        return true;
    }
    text.parse::<toml::Table>().is_err()
        && File::parse(text).is_ok_and(|(_, body)| {
            body.iter().any(|s| {
                s.as_block()
                    .is_some_and(|b| matches!(b.ident.as_str(), "auto_auth" | "template" | "vault"))
            })
        })
}

struct Ctx<'o> {
    origin: &'o str,
    notes: Vec<String>,
    cfg: RawConfig,
    /// Directory of the first template's destination, and its line.
    dir: Option<(String, Line)>,
    /// `perms` of the first template that set them.
    perms: Option<(String, Line)>,
    /// `template_config.static_secret_render_interval`.
    refresh: Option<String>,
}

impl Ctx<'_> {
    fn refuse(
        &self,
        line: Line,
        stanza: impl Into<String>,
        reason: impl Into<String>,
    ) -> ImportError {
        ImportError::Refused {
            origin: self.origin.to_string(),
            line,
            stanza: stanza.into(),
            reason: reason.into(),
        }
    }

    fn note(&mut self, line: Line, stanza: &str, what: &str) {
        self.notes.push(format!("{line}: {stanza}: {what}"));
    }

    fn string(
        &self,
        v: &Result<::hcl::Value, String>,
        line: Line,
        stanza: &str,
    ) -> Result<String, ImportError> {
        match v {
            Ok(v) => text(v).ok_or_else(|| self.refuse(line, stanza, "must be a string")),
            Err(e) => Err(self.refuse(line, stanza, format!("cannot be evaluated: {e}"))),
        }
    }

    fn flag(
        &self,
        v: &Result<::hcl::Value, String>,
        line: Line,
        stanza: &str,
    ) -> Result<bool, ImportError> {
        match v {
            Ok(v) => boolean(v).ok_or_else(|| self.refuse(line, stanza, "must be true or false")),
            Err(e) => Err(self.refuse(line, stanza, format!("cannot be evaluated: {e}"))),
        }
    }
}

const NO_API: &str = "shroud serves no Vault API with its own token: an application that calls Vault itself gets a `[[gateway]] kind = \"vault\"` (its paths on an allow list, every lease it makes revoked at exit; docs/gateway.md), declared in shroud.toml";

/// Imports the Vault Agent configuration `text` (from `origin`).
pub fn import(origin: &str, text: &str) -> Result<Imported, ImportError> {
    let (file, body) = File::parse(text).map_err(|message| ImportError::Syntax {
        origin: origin.to_string(),
        message: message.trim_end().replace('\n', " "),
    })?;
    let mut cx = Ctx {
        origin,
        notes: Vec::new(),
        cfg: RawConfig::default(),
        dir: None,
        perms: None,
        refresh: None,
    };
    let mut auth_seen = false;
    for e in file.entries(&body) {
        match e {
            Entry::Attr(name, v, line) => match name.as_str() {
                "exit_after_auth" => cx.note(line, &name, "shroud renders and then runs (`shroud run -- CMD`) or keeps renewing (`shroud agent`); there is no render-once mode"),
                "pid_file" | "log_level" | "log_format" | "log_file" | "log_rotate_bytes"
                | "log_rotate_duration" | "log_rotate_max_files" | "disable_mlock"
                | "disable_idle_connections" | "disable_keep_alives" => {
                    let _ = v;
                    cx.note(line, &name, "not carried over (shroud logs to stderr; SHROUD_LOG sets the level; memory is always locked when possible)")
                }
                _ => return Err(cx.refuse(line, name, "not a Vault Agent setting shroud knows")),
            },
            Entry::Block(b, line) => match b.ident.as_str() {
                "vault" => vault(&mut cx, &file, b)?,
                "auto_auth" => {
                    auto_auth(&mut cx, &file, b)?;
                    auth_seen = true;
                }
                "template" => template(&mut cx, &file, b, line)?,
                "template_config" => template_config(&mut cx, &file, b)?,
                "env_template" => return Err(cx.refuse(line, "env_template", "refused: shroud puts no secret in an environment variable (any process that can read /proc/<pid>/environ, a crash dump or a child inherits it); render a file with a [[template]] instead")),
                "exec" => {
                    for e in file.entries(&b.body) {
                        if let Entry::Block(inner, l) = e {
                            if inner.ident.as_str() == "env_template" {
                                return Err(cx.refuse(l, "exec.env_template", "refused: shroud puts no secret in an environment variable; render a file with a [[template]] and have the command read it"));
                            }
                        }
                    }
                    cx.note(line, "exec", "run the command with `shroud run --config shroud.toml -- COMMAND…` (its output is masked; restart_on_secret_changes is [lifecycle] on_rotate = \"restart\")");
                }
                "listener" | "cache" | "api_proxy" => {
                    return Err(cx.refuse(line, b.ident.as_str(), format!("refused: {NO_API}")))
                }
                "telemetry" => cx.note(line, "telemetry", "set [metrics] listen = \"HOST:PORT\" for shroud's Prometheus metrics"),
                other => return Err(cx.refuse(line, other, "not a Vault Agent stanza shroud knows")),
            },
        }
    }
    if !auth_seen {
        return Err(cx.refuse(
            Line(1),
            "auto_auth",
            "is required: shroud logs in itself (kubernetes, approle, jwt, cert or token_file)",
        ));
    }
    if cx.cfg.template.is_empty() {
        return Err(cx.refuse(
            Line(1),
            "template",
            "at least one template stanza is required: shroud's output is rendered files",
        ));
    }
    if let Some(r) = cx.refresh.take() {
        for t in &mut cx.cfg.template {
            t.refresh = Some(r.clone());
        }
    }
    cx.cfg.output.dir = cx.dir.take().map(|(d, _)| d);
    cx.cfg.output.mode = cx.perms.take().map(|(p, _)| p);
    Ok(Imported {
        config: cx.cfg,
        notes: cx.notes,
    })
}

fn vault(
    cx: &mut Ctx<'_>,
    file: &File<'_>,
    b: &::hcl::edit::structure::Block,
) -> Result<(), ImportError> {
    for e in file.entries(&b.body) {
        match e {
            Entry::Attr(name, v, line) => {
                let key = format!("vault.{name}");
                match name.as_str() {
                    "address" => cx.cfg.vault.address = Some(cx.string(&v, line, &key)?),
                    "ca_cert" => cx.cfg.vault.ca_cert = Some(cx.string(&v, line, &key)?),
                    "tls_server_name" => cx.cfg.vault.tls_server_name = Some(cx.string(&v, line, &key)?),
                    "namespace" => cx.cfg.vault.namespace = Some(cx.string(&v, line, &key)?),
                    "client_cert" => cx.cfg.auth.client_cert = Some(cx.string(&v, line, &key)?),
                    "client_key" => cx.cfg.auth.client_key = Some(cx.string(&v, line, &key)?),
                    "tls_skip_verify" => {
                        if cx.flag(&v, line, &key)? {
                            return Err(cx.refuse(line, key, "refused: shroud always verifies Vault's certificate (anyone on the path could read every secret); give the CA with ca_cert, or the name with tls_server_name"));
                        }
                    }
                    "ca_path" => return Err(cx.refuse(line, key, "shroud takes one PEM file of CA certificates: concatenate the directory's certificates and use ca_cert")),
                    _ => return Err(cx.refuse(line, key, "has no equivalent in shroud's [vault]")),
                }
            }
            Entry::Block(inner, line) if inner.ident.as_str() == "retry" => cx.note(
                line,
                "vault.retry",
                "shroud retries an unreachable Vault until [lifecycle] startup_timeout (default 30s), then fails",
            ),
            Entry::Block(inner, line) => {
                return Err(cx.refuse(line, format!("vault.{}", inner.ident.as_str()), "has no equivalent in shroud's [vault]"))
            }
        }
    }
    Ok(())
}

fn auto_auth(
    cx: &mut Ctx<'_>,
    file: &File<'_>,
    b: &::hcl::edit::structure::Block,
) -> Result<(), ImportError> {
    let mut method_seen = false;
    for e in file.entries(&b.body) {
        match e {
            Entry::Block(m, line) if m.ident.as_str() == "method" => {
                if method_seen {
                    return Err(cx.refuse(line, "auto_auth.method", "shroud logs in with one method; keep one"));
                }
                method_seen = true;
                method(cx, file, m, line)?;
            }
            Entry::Block(s, line) if s.ident.as_str() == "sink" => cx.note(
                line,
                "auto_auth.sink",
                "dropped: shroud keeps its Vault token in memory only and revokes it at exit; an application that read the token file must get its secrets from rendered files",
            ),
            Entry::Block(other, line) => {
                return Err(cx.refuse(line, format!("auto_auth.{}", other.ident.as_str()), "has no equivalent in shroud"))
            }
            Entry::Attr(name, _, line) => cx.note(line, &format!("auto_auth.{name}"), "not carried over (shroud logs in again whenever its token cannot be renewed)"),
        }
    }
    if !method_seen {
        return Err(cx.refuse(file.block_line(b), "auto_auth", "needs a method"));
    }
    Ok(())
}

fn method(
    cx: &mut Ctx<'_>,
    file: &File<'_>,
    m: &::hcl::edit::structure::Block,
    line: Line,
) -> Result<(), ImportError> {
    let mut kind = label(m);
    let mut config: Vec<(String, Result<::hcl::Value, String>, Line)> = Vec::new();
    for e in file.entries(&m.body) {
        match e {
            Entry::Attr(name, v, l) => match name.as_str() {
                "type" => kind = Some(cx.string(&v, l, "auto_auth.method.type")?),
                "mount_path" => {
                    let p = cx.string(&v, l, "auto_auth.method.mount_path")?;
                    let p = p.trim_matches('/');
                    cx.cfg.auth.mount = Some(p.strip_prefix("auth/").unwrap_or(p).to_string());
                }
                "namespace" => {
                    cx.cfg.vault.namespace = Some(cx.string(&v, l, "auto_auth.method.namespace")?)
                }
                "config" => match v {
                    Ok(::hcl::Value::Object(o)) => {
                        config.extend(o.into_iter().map(|(k, v)| (k, Ok(v), l)))
                    }
                    _ => return Err(cx.refuse(l, "auto_auth.method.config", "must be an object")),
                },
                "wrap_ttl" | "min_backoff" | "max_backoff" | "exit_on_err" => cx.note(
                    l,
                    &format!("auto_auth.method.{name}"),
                    "not carried over (shroud retries logins itself and never wraps its token)",
                ),
                _ => {
                    return Err(cx.refuse(
                        l,
                        format!("auto_auth.method.{name}"),
                        "has no equivalent in shroud's [auth]",
                    ))
                }
            },
            Entry::Block(c, l) if c.ident.as_str() == "config" => {
                for e in file.entries(&c.body) {
                    match e {
                        Entry::Attr(k, v, l2) => config.push((k, v, l2)),
                        Entry::Block(_, l2) => {
                            return Err(cx.refuse(
                                l2,
                                "auto_auth.method.config",
                                "nested blocks are not supported",
                            ))
                        }
                    }
                }
                let _ = l;
            }
            Entry::Block(c, l) => {
                return Err(cx.refuse(
                    l,
                    format!("auto_auth.method.{}", c.ident.as_str()),
                    "has no equivalent in shroud's [auth]",
                ))
            }
        }
    }
    let kind = kind.ok_or_else(|| {
        cx.refuse(
            line,
            "auto_auth.method",
            "needs a type (method \"kubernetes\" { … })",
        )
    })?;
    let method = match kind.as_str() {
        "kubernetes" => "kubernetes",
        "approle" => "approle",
        "jwt" => "jwt",
        "cert" => "cert",
        "token_file" => "token",
        other => {
            return Err(cx.refuse(
                line,
                format!("auto_auth.method \"{other}\""),
                "shroud logs in with kubernetes, approle, jwt, cert or token_file",
            ))
        }
    };
    cx.cfg.auth.method = Some(method.to_string());
    for (k, v, l) in config {
        let key = format!("auto_auth.method \"{kind}\" config.{k}");
        let val = match &v {
            Ok(v) => text(v),
            Err(_) => None,
        };
        let val = val.ok_or_else(|| cx.refuse(l, key.clone(), "must be a string"));
        let a = &mut cx.cfg.auth;
        match (method, k.as_str()) {
            ("kubernetes" | "jwt", "role") => a.role = Some(val?),
            ("kubernetes", "token_path") | ("jwt", "path") => a.jwt_path = Some(val?),
            ("approle", "role_id_file_path") => a.role_id_file = Some(val?),
            ("approle", "secret_id_file_path") => a.secret_id_file = Some(val?),
            ("approle", "remove_secret_id_file_after_reading") => {
                if val? != "false" {
                    cx.note(l, &key, "shroud does not delete the secret_id file (it reads it again at each login); remove it yourself once shroud is running if it must not stay");
                }
            }
            ("jwt", "remove_jwt_after_reading") | ("jwt", "remove_jwt_follows_symlinks") => cx
                .note(
                    l,
                    &key,
                    "shroud re-reads the JWT at each login and never deletes it",
                ),
            ("cert", "name") => a.name = Some(val?),
            ("cert", "client_cert") => a.client_cert = Some(val?),
            ("cert", "client_key") => a.client_key = Some(val?),
            ("cert", "ca_cert") => cx.cfg.vault.ca_cert = Some(val?),
            ("cert", "reload") => cx.note(
                l,
                &key,
                "shroud re-reads the certificate and key at each login",
            ),
            ("token", "token_file_path") => a.token_file = Some(val?),
            ("token", "remove_token_file_after_reading") => cx.note(
                l,
                &key,
                "shroud does not delete the token file; it revokes the token at exit",
            ),
            _ => {
                return Err(cx.refuse(
                    l,
                    key,
                    format!("has no equivalent in shroud's [auth] for method {method}"),
                ))
            }
        }
    }
    Ok(())
}

fn template(
    cx: &mut Ctx<'_>,
    file: &File<'_>,
    b: &::hcl::edit::structure::Block,
    line: Line,
) -> Result<(), ImportError> {
    let n = cx.cfg.template.len() + 1;
    let mut t = RawTemplate::default();
    let mut destination = None;
    for e in file.entries(&b.body) {
        match e {
            Entry::Attr(name, v, l) => {
                let key = format!("template #{n} {name}");
                match name.as_str() {
                    "contents" => t.contents = Some(cx.string(&v, l, &key)?),
                    "source" => t.source = Some(cx.string(&v, l, &key)?),
                    "destination" => destination = Some((cx.string(&v, l, &key)?, l)),
                    "left_delimiter" => t.left_delimiter = Some(cx.string(&v, l, &key)?),
                    "right_delimiter" => t.right_delimiter = Some(cx.string(&v, l, &key)?),
                    "error_on_missing_key" => t.error_on_missing_key = Some(cx.flag(&v, l, &key)?),
                    "perms" => {
                        let p = cx.string(&v, l, &key)?;
                        let p = format!("0{}", p.trim_start_matches("0o").trim_start_matches('0'));
                        match &cx.perms {
                            Some((q, _)) if *q != p => return Err(cx.refuse(l, key, format!("shroud writes every file with one mode ([output] mode); an earlier template has {q}, this one {p}"))),
                            _ => cx.perms = Some((p, l)),
                        }
                    }
                    "command" | "command_timeout" => return Err(cx.refuse(l, key, "shroud runs no command after rendering in its agent: in a sidecar, `shroud exec --on-change FILE=COMMAND` runs it beside the app when that file changes (or `--on-rotate`); with `shroud run -- CMD`, [lifecycle] on_rotate = \"signal:HUP\" (or \"restart\") tells the command about new files")),
                    "user" | "group" => return Err(cx.refuse(l, key, "set the owner of every rendered file with [output] uid and gid (numbers)")),
                    "create_dest_dirs" | "backup" | "sandbox_path" | "function_denylist" | "exec_timeout" => cx.note(l, &key, "not carried over (shroud creates its output directory; its templates have no file, plugin or writeToFile functions to deny)"),
                    _ => return Err(cx.refuse(l, key, "has no equivalent in shroud's [[template]]")),
                }
            }
            Entry::Block(inner, l) if inner.ident.as_str() == "wait" => cx.note(
                l,
                &format!("template #{n} wait"),
                "shroud renders as soon as a secret changes",
            ),
            Entry::Block(inner, l) => {
                return Err(cx.refuse(
                    l,
                    format!("template #{n} {}", inner.ident.as_str()),
                    "has no equivalent in shroud's [[template]]",
                ))
            }
        }
    }
    let (dest, dl) = destination
        .ok_or_else(|| cx.refuse(line, format!("template #{n}"), "needs a destination"))?;
    let dest_path = Path::new(&dest);
    let name = dest_path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .ok_or_else(|| cx.refuse(dl, format!("template #{n} destination"), "must name a file"))?;
    let dir = dest_path
        .parent()
        .map(|d| d.display().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| ".".into());
    match &cx.dir {
        Some((d, l)) if *d != dir => {
            return Err(cx.refuse(dl, format!("template #{n} destination"), format!("shroud renders every file into one directory ([output] dir): this one is in {dir}, the one on {l} in {d}")))
        }
        Some(_) => {}
        None => cx.dir = Some((dir, dl)),
    }
    t.name = Some(name);
    cx.cfg.template.push(t);
    Ok(())
}

fn template_config(
    cx: &mut Ctx<'_>,
    file: &File<'_>,
    b: &::hcl::edit::structure::Block,
) -> Result<(), ImportError> {
    for e in file.entries(&b.body) {
        match e {
            Entry::Attr(name, v, l) => {
                let key = format!("template_config.{name}");
                match name.as_str() {
                    "static_secret_render_interval" => cx.refresh = Some(cx.string(&v, l, &key)?),
                    "exit_on_retry_failure" => cx.note(l, &key, "shroud fails at start when Vault stays unreachable for [lifecycle] startup_timeout, and keeps the last files while it is unreachable later"),
                    "max_connections_per_host" => cx.note(l, &key, "not carried over (shroud makes one request at a time)"),
                    "lease_renewal_threshold" => {
                        let s = cx.string(&v, l, &key)?;
                        let f: f64 = s.parse().map_err(|_| cx.refuse(l, key.clone(), "must be a number"))?;
                        cx.cfg.lifecycle.renew_threshold = Some(f);
                    }
                    _ => return Err(cx.refuse(l, key, "has no equivalent in shroud")),
                }
            }
            Entry::Block(inner, l) => {
                return Err(cx.refuse(
                    l,
                    format!("template_config.{}", inner.ident.as_str()),
                    "has no equivalent in shroud",
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
