//! Templates and the whole agent configuration checked at admission, with the
//! agent's own code: a template that does not compile is a denial, not a pod
//! whose agent never starts.

use super::agent_config::{self, FileOwner};
use super::annotations::Injection;
use super::config::WebhookConfig;
use super::policy::Violation;

/// Rule name: a template or configuration the agent would reject.
pub const RULE_TEMPLATE: &str = "template";

/// Compiles every template as the agent will, then parses the configuration the
/// webhook would hand over with the agent's loader.
pub fn check(inj: &Injection, cfg: &WebhookConfig) -> Result<(), Violation> {
    for s in &inj.secrets {
        let Some(text) = &s.template else { continue };
        let source = crate::template::TemplateSource {
            origin: "inline".into(),
            text: text.clone(),
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
    // The owner does not change what the loader accepts.
    let owner = FileOwner {
        uid: cfg.agent.run_as_user,
        gid: cfg.agent.run_as_group,
        mode: 0o400,
    };
    let text = agent_config::render(inj, cfg, owner);
    crate::config::parse("SHROUD_CONFIG_TOML", &text, std::iter::empty())
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
