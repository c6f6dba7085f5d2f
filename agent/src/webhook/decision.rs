//! Which annotation family asks for what: `shroud.dev/` ([`annotations`]) or,
//! when enabled, the Vault or OpenBao Agent Injector's ([`vault_compat`]), never both. Both
//! parsers share the injection model in [`annotations`]; this module is the only
//! one that knows both, so neither depends on the other's parsing.

use std::collections::BTreeMap;

use super::annotations::{
    self, apply_common, parse_shroud, shroud_keys, AnnotationError, Injection, INJECT, INJECTED,
    STATUS,
};
use super::vault_compat;

/// What the annotations ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No injection requested.
    NotRequested,
    /// Already injected (a reinvocation): change nothing.
    AlreadyInjected,
    /// Inject.
    Inject(Box<Injection>),
}

/// Parses a pod's annotations. `vault_on_allowed` enables the Vault Agent Injector
/// annotations.
pub fn parse(
    annotations: &BTreeMap<String, String>,
    vault_on_allowed: bool,
) -> Result<Decision, AnnotationError> {
    let ours = shroud_keys(annotations)?;
    if let Some(status) = ours.get("status") {
        if *status == INJECTED {
            return Ok(Decision::AlreadyInjected);
        }
        return Err(AnnotationError::invalid(
            STATUS,
            "is set by the webhook; the only value is `injected`",
        ));
    }
    let shroud_on = match ours.get(INJECT).copied() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(AnnotationError::invalid(
                annotations::key(INJECT),
                "must be \"true\" or \"false\"",
            ))
        }
    };
    let family = if vault_on_allowed {
        vault_compat::requested(annotations)?
    } else {
        None
    };
    if vault_on_allowed && vault_compat::already_injected(annotations) {
        return Ok(Decision::AlreadyInjected);
    }
    match (shroud_on, family) {
        (false, None) => Ok(Decision::NotRequested),
        (true, Some(f)) => Err(AnnotationError::invalid(
            annotations::key(INJECT),
            format!(
                "both shroud.dev/inject and {}agent-inject are set: keep one",
                f.prefix()
            ),
        )),
        (true, None) => parse_shroud(&ours).map(|i| Decision::Inject(Box::new(i))),
        (false, Some(f)) => {
            if let Some(k) = ours
                .keys()
                .find(|k| k.starts_with(super::gateways::GATEWAY))
            {
                return Err(AnnotationError::invalid(
                    annotations::key(k),
                    format!(
                        "gateways are declared with shroud.dev/inject, not {}agent-inject",
                        f.prefix()
                    ),
                ));
            }
            let mut inj = vault_compat::parse(annotations, f)?;
            apply_common(&ours, &mut inj)?;
            Ok(Decision::Inject(Box::new(inj)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gateways come with `shroud.dev/inject`; on a Vault Agent pod the
    /// annotation is denied by name rather than silently ignored.
    #[test]
    fn a_gateway_on_a_vault_agent_pod_is_denied_by_name() {
        let annotations: BTreeMap<String, String> = [
            ("vault.hashicorp.com/agent-inject", "true"),
            ("vault.hashicorp.com/role", "web"),
            ("vault.hashicorp.com/agent-inject-secret-db", "database/creds/web"),
            (
                "shroud.dev/gateway-pg",
                r#"kind = "postgres", secret = "db", listen = "127.0.0.1:5432", upstream = "db:5432""#,
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let e = parse(&annotations, true).unwrap_err();
        assert!(
            matches!(&e, AnnotationError::Invalid { key, .. } if key == "shroud.dev/gateway-pg"),
            "{e}"
        );
    }
}
