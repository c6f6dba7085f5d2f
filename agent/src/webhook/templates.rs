//! Templates and the whole agent configuration checked at admission, with the
//! agent's own code: a template that does not compile is a denial, not a pod
//! whose agent never starts. The verdict depends only on the agent's
//! configuration (which holds every template and secret name) and the
//! annotations that name the templates, so it is remembered by exactly those
//! ([`Memo`]): replicas of one pod template pay for the check once.

use std::sync::LazyLock;

use super::agent_config::{self, FileOwner};
use super::annotations::Injection;
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
/// webhook would hand over with the agent's loader.
pub fn check(inj: &Injection, cfg: &WebhookConfig) -> Result<(), Violation> {
    // The owner does not change what the loader accepts.
    let owner = FileOwner {
        uid: cfg.agent.run_as_user,
        gid: cfg.agent.run_as_group,
        mode: 0o400,
    };
    let raw = agent_config::build(inj, cfg, owner);
    let mut key = agent_config::memo_key(&raw);
    for s in inj.secrets.iter().filter(|s| s.template.is_some()) {
        key.push('\0');
        key.push_str(&s.path_annotation);
    }
    CHECKED.get_or(key, || check_uncached(inj, &agent_config::to_toml(&raw)))
}

fn check_uncached(inj: &Injection, text: &str) -> Result<(), Violation> {
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
            field: "metadata.annotations".into(),
            reason: format!("the agent would reject the configuration made from them: {e}"),
        })
}

/// The annotation holding a secret's template, from the one holding its path.
fn template_annotation(path_annotation: &str) -> String {
    match path_annotation.split_once("agent-inject-secret-") {
        Some((prefix, name)) => format!("{prefix}agent-inject-template-{name}"),
        None => format!("{path_annotation}-template"),
    }
}
