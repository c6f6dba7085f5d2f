//! Templates and the whole agent configuration checked at admission, with the
//! agent's own code: a template that does not compile is a denial, not a pod
//! whose agent never starts. The verdict depends only on the agent's
//! configuration (which holds every template and secret name) and the
//! annotations that name the templates, so it is remembered by exactly those
//! ([`Memo`]): replicas of one pod template pay for the check once.

use std::sync::LazyLock;

use super::agent_config::{self, FileOwner};
use super::annotations::{ConsulSpec, ConsulText, Injection};
use super::config::WebhookConfig;
use super::memo::Memo;
use super::policy::Violation;

/// Rule name: a template or configuration the agent would reject.
pub const RULE_TEMPLATE: &str = "template";

/// Verdicts remembered: distinct pod templates checked recently.
const REMEMBERED: usize = 512;

static CHECKED: LazyLock<Memo<Result<(), Violation>>> =
    LazyLock::new(|| Memo::new(REMEMBERED, agent_config::MAX_MEMO_KEY));

/// Compiles every template as the agent will, then parses the configuration the
/// webhook would hand over with the agent's loader. What lives in the pod's
/// ConfigMap (its config.hcl, template files) cannot be read here: the agent
/// checks it at start.
pub fn check(inj: &Injection, cfg: &WebhookConfig, namespace: &str) -> Result<(), Violation> {
    // The owner does not change what the loader accepts.
    let owner = FileOwner {
        uid: cfg.agent.run_as_user,
        gid: cfg.agent.run_as_group,
        mode: 0o400,
    };
    let readable;
    let inj = if inj.config_map.is_some() {
        let mut copy = inj.clone();
        copy.config_map = None;
        copy.templates
            .retain(|t| matches!(t.text, ConsulText::Inline(_)));
        readable = copy;
        &readable
    } else {
        inj
    };
    let raw = agent_config::build(inj, cfg, owner, namespace);
    let mut key = agent_config::memo_key(&raw);
    for s in inj.secrets.iter().filter(|s| s.template.is_some()) {
        key.push('\0');
        key.push_str(&s.path_annotation);
    }
    for t in &inj.templates {
        key.push('\0');
        key.push_str(&t.annotation);
    }
    CHECKED.get_or(key, || check_uncached(inj, &agent_config::to_toml(&raw)))
}

fn check_uncached(inj: &Injection, text: &str) -> Result<(), Violation> {
    for t in &inj.templates {
        consul_calls(t).map_err(|reason| Violation {
            rule: RULE_TEMPLATE,
            field: format!("metadata.annotations[\"{}\"]", t.annotation),
            reason,
        })?;
    }
    for s in &inj.secrets {
        let Some(template) = &s.template else {
            continue;
        };
        let source = crate::template::TemplateSource {
            origin: "inline".into(),
            text: template.clone(),
        };
        if let Err(e) = source.check(&s.name) {
            return Err(Violation {
                rule: RULE_TEMPLATE,
                field: format!(
                    "metadata.annotations[\"{}\"]",
                    template_annotation(&s.path_annotation)
                ),
                reason: e.to_string(),
            });
        }
    }
    crate::config::parse("SHROUD_CONFIG_TOML", text, std::iter::empty())
        .map(|_| ())
        .map_err(|e| Violation {
            rule: RULE_TEMPLATE,
            field: rejected_annotation(inj, &e).map_or_else(
                || "metadata.annotations".into(),
                |a| format!("metadata.annotations[\"{a}\"]"),
            ),
            reason: format!("the agent would reject the configuration made from them: {e}"),
        })
}

/// The annotation behind a key the agent rejected, where one is known: a
/// gateway's, or a secret's `-gateway-only`.
fn rejected_annotation(inj: &Injection, e: &crate::config::ConfigError) -> Option<String> {
    let crate::config::ConfigError::Invalid { key, .. } = e else {
        return None;
    };
    if let Some(a) = super::gateways::annotation_of(key) {
        return Some(a);
    }
    let name = key
        .strip_prefix("[[secret]] (")?
        .strip_suffix(") gateway_only")?;
    inj.secrets
        .iter()
        .find(|s| s.name == name)
        .map(|s| format!("{}-gateway-only", s.path_annotation))
}

/// The Vault requests a compatibility pod's Consul template makes, found by
/// parsing it with the agent's own engine and walking its tree: every `secret`
/// and `pkiCert` call, inside any `with`, `range`, `if`, `define` or pipeline.
/// `Ok(None)` for a template file, which only the agent can read. A call whose
/// path is built at run time (a variable, `printf`, `env`…) is an error: the
/// agent could not fetch it before rendering, and no policy can check it.
pub fn consul_calls(t: &ConsulSpec) -> Result<Option<Vec<crate::ctmpl::SecretCall>>, String> {
    let ConsulText::Inline(text) = &t.text else {
        return Ok(None);
    };
    let defaults = crate::ctmpl::Options::default();
    let options = crate::ctmpl::Options {
        left: t.left.clone().unwrap_or(defaults.left),
        right: t.right.clone().unwrap_or(defaults.right),
        missing_key_error: t.error_on_missing_key,
    };
    let template =
        crate::ctmpl::Template::parse(text, &options).map_err(|e| format!("template {e}"))?;
    let calls = template.calls().map_err(|e| format!("template {e}"))?;
    if calls.is_empty() {
        return Err("the template calls neither secret nor pkiCert: nothing to fetch".into());
    }
    Ok(Some(calls))
}

/// The annotation holding a secret's template, from the one holding its path.
fn template_annotation(path_annotation: &str) -> String {
    match path_annotation.split_once("agent-inject-secret-") {
        Some((prefix, name)) => format!("{prefix}agent-inject-template-{name}"),
        None => format!("{path_annotation}-template"),
    }
}
