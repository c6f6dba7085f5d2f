//! Every annotation of the Vault Agent Injector (vault-k8s,
//! `agent-inject/agent/annotations.go`) and of the OpenBao injector (openbao-k8s,
//! the same names under `openbao.org/`), and what shroud does with each. A key
//! that is in neither list is denied: a typo must not start a pod that silently
//! lacks what it asked for. docs/migrate.md has this table in prose.

/// What shroud does with one annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Handling {
    /// Read by the parser with the injector's meaning (mod.rs).
    Honoured,
    /// It only tunes the Vault/OpenBao Agent process (its logging, retries,
    /// connections, cache), which shroud replaces: accepted with a warning.
    AgentTuning,
    /// Cannot be honoured: denied with this reason.
    Refused(&'static str),
    /// Denied with this reason unless its value is `false` (what it enables
    /// cannot be honoured; not enabling it is what shroud does anyway).
    RefusedIfTrue(&'static str),
}

use Handling::*;

const TOKEN: &str = "shroud never hands its Vault token to the application; give the application what it needs as secrets (or a gateway)";
const TLS_FILES: &str = "shroud mounts no Kubernetes Secret into its agent: the webhook's `[vault] ca_cert` and `tls_server_name` configure TLS to Vault for every pod";
const PATCHES: &str = "the agent's and init container's specs are fixed by the webhook's configuration, so its guardrails cannot be patched away";
const SHARE_PID: &str = "a shared process namespace lets every container read the others' memory and files through /proc; shroud's guardrails deny it";

/// Pod-wide annotations, by the name after the prefix.
pub(super) const POD: &[(&str, Handling)] = &[
    ("agent-inject", Honoured),
    ("agent-inject-status", Honoured),
    ("role", Honoured),
    ("auth-path", Honoured),
    ("auth-type", Honoured),
    ("namespace", Honoured),
    ("service", Honoured),
    ("tls-server-name", Honoured),
    ("secret-volume-path", Honoured),
    ("preserve-secret-case", Honoured),
    ("agent-inject-containers", Honoured),
    ("agent-inject-default-template", Honoured),
    ("agent-pre-populate", Honoured),
    ("agent-pre-populate-only", Honoured),
    ("agent-init-first", Honoured),
    ("agent-run-as-user", Honoured),
    ("agent-run-as-group", Honoured),
    ("agent-run-as-same-user", Honoured),
    ("agent-limits-cpu", Honoured),
    ("agent-limits-mem", Honoured),
    ("agent-limits-ephemeral", Honoured),
    ("agent-requests-cpu", Honoured),
    ("agent-requests-mem", Honoured),
    ("agent-requests-ephemeral", Honoured),
    ("agent-revoke-on-shutdown", Honoured),
    ("agent-inject-token", RefusedIfTrue(TOKEN)),
    (
        "tls-skip-verify",
        RefusedIfTrue("shroud always verifies Vault's certificate"),
    ),
    ("tls-secret", Refused(TLS_FILES)),
    ("ca-cert", Refused(TLS_FILES)),
    ("ca-key", Refused(TLS_FILES)),
    ("client-cert", Refused(TLS_FILES)),
    ("client-key", Refused(TLS_FILES)),
    (
        "agent-image",
        Refused("the webhook's configuration chooses shroud's image"),
    ),
    ("agent-configmap", Honoured),
    (
        "agent-extra-secret",
        Refused("shroud mounts no other Kubernetes Secret into its agent"),
    ),
    ("agent-share-process-namespace", RefusedIfTrue(SHARE_PID)),
    ("agent-json-patch", Refused(PATCHES)),
    ("agent-init-json-patch", Refused(PATCHES)),
    (
        "agent-copy-volume-mounts",
        Refused("the agent mounts only shroud's volumes and the service-account token"),
    ),
    (
        "agent-service-account-token-volume-name",
        Refused(
            "the agent uses the token the app containers mount, or the webhook's `[auth] jwt_path`",
        ),
    ),
    (
        "agent-request-namespace",
        Refused(
            "requests go to the namespace of `namespace` (or the webhook's `[vault] namespace`)",
        ),
    ),
    (
        "proxy-address",
        Refused("shroud's agent connects to Vault directly"),
    ),
    (
        "agent-cache-enable",
        RefusedIfTrue(
            "shroud runs no Vault API cache or listener for the app (a Vault gateway is planned)",
        ),
    ),
    ("agent-cache-use-auto-auth-token", AgentTuning),
    ("agent-cache-listener-port", AgentTuning),
    ("agent-cache-exit-on-err", AgentTuning),
    ("agent-set-security-context", AgentTuning),
    ("agent-revoke-grace", AgentTuning),
    ("agent-enable-quit", AgentTuning),
    ("agent-auto-auth-exit-on-err", AgentTuning),
    ("agent-disable-idle-connections", AgentTuning),
    ("agent-disable-keep-alives", AgentTuning),
    ("auth-min-backoff", AgentTuning),
    ("auth-max-backoff", AgentTuning),
    ("client-max-retries", AgentTuning),
    ("client-timeout", AgentTuning),
    ("go-max-procs", AgentTuning),
    ("log-level", AgentTuning),
    ("log-format", AgentTuning),
    ("template-config-exit-on-retry-failure", AgentTuning),
    ("template-max-connections-per-host", AgentTuning),
    ("template-lease-renewal-threshold", AgentTuning),
    ("template-static-secret-render-interval", AgentTuning),
    ("agent-telemetry", AgentTuning),
];

/// Annotations that end in `-<name>`: per secret, or one key of a map.
pub(super) const PER_NAME: &[(&str, Handling)] = &[
    ("agent-inject-secret", Honoured),
    ("agent-inject-template", Honoured),
    ("agent-inject-file", Honoured),
    ("agent-inject-perms", Honoured),
    ("secret-volume-path", Honoured),
    ("preserve-secret-case", Honoured),
    ("agent-inject-template-file", Honoured),
    ("agent-inject-command", Honoured),
    ("agent-template-left-delim", Honoured),
    ("agent-template-right-delim", Honoured),
    ("error-on-missing-key", Honoured),
    (
        "auth-config",
        Refused("the webhook's `[auth]` configures the login for every pod"),
    ),
    ("agent-telemetry", AgentTuning),
];

/// How `rest` (the key after the prefix) is handled, and the name it carries for
/// per-name annotations. `None`: not an annotation of the injector.
pub(super) fn classify(rest: &str) -> Option<(&'static str, Option<&str>, Handling)> {
    if let Some((base, h)) = POD.iter().find(|(b, _)| *b == rest) {
        return Some((base, None, *h));
    }
    // The longest base first: `agent-inject-template-file-x` is not a template
    // named `file-x`.
    PER_NAME
        .iter()
        .filter_map(|(b, h)| {
            let name = rest.strip_prefix(b)?.strip_prefix('-')?;
            (!name.is_empty()).then_some((*b, Some(name), *h))
        })
        .max_by_key(|(b, _, _)| b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_base_wins_and_unknown_keys_are_none() {
        assert_eq!(
            classify("agent-inject-template-file-db").map(|(b, n, _)| (b, n)),
            Some(("agent-inject-template-file", Some("db")))
        );
        assert_eq!(
            classify("agent-inject-template-db").map(|(b, n, _)| (b, n)),
            Some(("agent-inject-template", Some("db")))
        );
        assert_eq!(
            classify("secret-volume-path").map(|(b, n, _)| (b, n)),
            Some(("secret-volume-path", None))
        );
        assert!(classify("agent-inject-secrets-db").is_none());
        assert!(classify("agent-inject-secret-").is_none());
        assert!(classify("agent-limits-gpu").is_none());
    }

    #[test]
    fn every_name_of_the_injectors_is_listed() {
        // vault-k8s agent-inject/agent/annotations.go (December 2026): every
        // constant; openbao-k8s has the same set under openbao.org/ less one.
        for k in [
            "agent-auto-auth-exit-on-err",
            "agent-cache-enable",
            "agent-cache-exit-on-err",
            "agent-cache-listener-port",
            "agent-cache-use-auto-auth-token",
            "agent-configmap",
            "agent-copy-volume-mounts",
            "agent-disable-idle-connections",
            "agent-disable-keep-alives",
            "agent-enable-quit",
            "agent-extra-secret",
            "agent-image",
            "agent-init-first",
            "agent-init-json-patch",
            "agent-inject",
            "agent-inject-command-x",
            "agent-inject-containers",
            "agent-inject-default-template",
            "agent-inject-file-x",
            "agent-inject-perms-x",
            "agent-inject-secret-x",
            "agent-inject-status",
            "agent-inject-template-x",
            "agent-inject-template-file-x",
            "agent-inject-token",
            "agent-json-patch",
            "agent-limits-cpu",
            "agent-limits-ephemeral",
            "agent-limits-mem",
            "agent-pre-populate",
            "agent-pre-populate-only",
            "agent-request-namespace",
            "agent-requests-cpu",
            "agent-requests-ephemeral",
            "agent-requests-mem",
            "agent-revoke-grace",
            "agent-revoke-on-shutdown",
            "agent-run-as-group",
            "agent-run-as-same-user",
            "agent-run-as-user",
            "agent-service-account-token-volume-name",
            "agent-set-security-context",
            "agent-share-process-namespace",
            "agent-telemetry-x",
            "agent-template-left-delim-x",
            "agent-template-right-delim-x",
            "auth-config-x",
            "auth-max-backoff",
            "auth-min-backoff",
            "auth-path",
            "auth-type",
            "ca-cert",
            "ca-key",
            "client-cert",
            "client-key",
            "client-max-retries",
            "client-timeout",
            "error-on-missing-key-x",
            "go-max-procs",
            "log-format",
            "log-level",
            "namespace",
            "preserve-secret-case",
            "proxy-address",
            "role",
            "secret-volume-path",
            "secret-volume-path-x",
            "service",
            "template-config-exit-on-retry-failure",
            "template-lease-renewal-threshold",
            "template-max-connections-per-host",
            "template-static-secret-render-interval",
            "tls-secret",
            "tls-server-name",
            "tls-skip-verify",
        ] {
            assert!(classify(k).is_some(), "{k}");
        }
    }
}
