//! Pod Security Standards, level "restricted" (which includes "baseline"), as
//! Pod Security admission checks a pod: one function per check of
//! k8s.io/pod-security-admission/policy (`check_<id>.go`, latest version of
//! each), over `containers`, `initContainers` and `ephemeralContainers` as its
//! `visitContainers` does. For the webhook tests: no kube-apiserver runs here,
//! so a patched pod is checked with these.

use serde_json::Value;

/// The capabilities "baseline" lets a container add (check_capabilities_baseline.go).
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The volume types "restricted" allows (check_restrictedVolumes.go).
const RESTRICTED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Every check of level "restricted" that `pod` fails, as `check id: detail`.
/// Empty: Pod Security admission enforcing "restricted" admits the pod.
pub fn restricted_violations(pod: &Value) -> Vec<String> {
    let spec = &pod["spec"];
    let pod_sc = &spec["securityContext"];
    let containers = containers(spec);
    let mut out = Vec::new();
    let mut fail = |id: &str, detail: String| out.push(format!("{id}: {detail}"));

    // --- baseline ---
    for (name, c) in &containers {
        let sc = &c["securityContext"];
        // check_privileged.go: privileged must not be true.
        if sc["privileged"] == true {
            fail("privileged", format!("container `{name}` is privileged"));
        }
        // check_capabilities_baseline.go: only the baseline list may be added.
        for cap in strings(&sc["capabilities"]["add"]) {
            if !BASELINE_CAPABILITIES.contains(&cap.as_str()) {
                fail(
                    "capabilities_baseline",
                    format!("container `{name}` adds {cap}"),
                );
            }
        }
        // check_hostPorts.go: no host port.
        for p in c["ports"].as_array().into_iter().flatten() {
            if p["hostPort"].as_i64().is_some_and(|h| h != 0) {
                fail("hostPorts", format!("container `{name}` uses a hostPort"));
            }
        }
        // check_procMount.go: Default (or unset).
        if !matches!(sc["procMount"].as_str(), None | Some("Default")) {
            fail("procMount", format!("container `{name}` sets procMount"));
        }
        // check_seccompProfile_baseline.go: never Unconfined.
        if sc["seccompProfile"]["type"] == "Unconfined" {
            fail("seccompProfile_baseline", format!("container `{name}`"));
        }
    }
    // check_hostNamespaces.go.
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[field] == true {
            fail("hostNamespaces", format!("{field}=true"));
        }
    }
    // check_hostPathVolumes.go and, for restricted, check_restrictedVolumes.go.
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or("");
        let kinds: Vec<&String> = v
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "name")
            .collect();
        if kinds.iter().any(|k| *k == "hostPath") {
            fail("hostPathVolumes", format!("volume `{name}`"));
        }
        if kinds
            .iter()
            .any(|k| !RESTRICTED_VOLUMES.contains(&k.as_str()))
        {
            fail("restrictedVolumes", format!("volume `{name}` is {kinds:?}"));
        }
    }
    if pod_sc["seccompProfile"]["type"] == "Unconfined" {
        fail("seccompProfile_baseline", "the pod".into());
    }

    // --- restricted ---
    let pod_non_root = pod_sc["runAsNonRoot"].as_bool();
    if pod_non_root == Some(false) {
        fail("runAsNonRoot", "the pod sets runAsNonRoot=false".into());
    }
    // check_runAsUser.go: runAsUser must not be 0, pod or container.
    if pod_sc["runAsUser"] == 0 {
        fail("runAsUser", "the pod sets runAsUser=0".into());
    }
    let pod_seccomp = pod_sc["seccompProfile"]["type"].as_str();
    for (name, c) in &containers {
        let sc = &c["securityContext"];
        // check_allowPrivilegeEscalation.go: explicitly false.
        if sc["allowPrivilegeEscalation"] != false {
            fail(
                "allowPrivilegeEscalation",
                format!("container `{name}` must set allowPrivilegeEscalation=false"),
            );
        }
        // check_runAsNonRoot.go: true, or unset under a pod-level true.
        match sc["runAsNonRoot"].as_bool() {
            Some(true) => {}
            Some(false) => fail(
                "runAsNonRoot",
                format!("container `{name}` sets runAsNonRoot=false"),
            ),
            None if pod_non_root == Some(true) => {}
            None => fail(
                "runAsNonRoot",
                format!("pod or container `{name}` must set runAsNonRoot=true"),
            ),
        }
        if sc["runAsUser"] == 0 {
            fail("runAsUser", format!("container `{name}` sets runAsUser=0"));
        }
        // check_seccompProfile_restricted.go: RuntimeDefault or Localhost, on
        // the container or inherited from the pod.
        match sc["seccompProfile"]["type"].as_str().or(pod_seccomp) {
            Some("RuntimeDefault" | "Localhost") => {}
            other => fail(
                "seccompProfile_restricted",
                format!("container `{name}` has seccompProfile {other:?}"),
            ),
        }
        // check_capabilities_restricted.go: drop ALL, add NET_BIND_SERVICE only.
        if !strings(&sc["capabilities"]["drop"])
            .iter()
            .any(|d| d == "ALL")
        {
            fail(
                "capabilities_restricted",
                format!("container `{name}` must drop ALL"),
            );
        }
        for cap in strings(&sc["capabilities"]["add"]) {
            if cap != "NET_BIND_SERVICE" {
                fail(
                    "capabilities_restricted",
                    format!("container `{name}` must not add {cap}"),
                );
            }
        }
    }
    out
}

fn containers(spec: &Value) -> Vec<(String, &Value)> {
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| spec[*list].as_array().into_iter().flatten())
        .map(|c| (c["name"].as_str().unwrap_or("").to_string(), c))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_check_can_fail() {
        let good = json!({"spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "a", "securityContext": {"allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
            "volumes": [{"name": "v", "emptyDir": {}}]}});
        assert_eq!(restricted_violations(&good), Vec::<String>::new());
        let bad = json!({"spec": {
            "hostPID": true,
            "securityContext": {"runAsUser": 0},
            "initContainers": [{"name": "i", "securityContext": {"privileged": true,
                "capabilities": {"add": ["IPC_LOCK"]}, "seccompProfile": {"type": "Unconfined"}}}],
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}});
        let v = restricted_violations(&bad).join("\n");
        for id in [
            "privileged",
            "capabilities_baseline",
            "hostNamespaces",
            "hostPathVolumes",
            "restrictedVolumes",
            "seccompProfile_baseline",
            "runAsUser",
            "allowPrivilegeEscalation",
            "runAsNonRoot",
            "seccompProfile_restricted",
            "capabilities_restricted",
        ] {
            assert!(v.contains(&format!("{id}:")), "{id} not in\n{v}");
        }
    }
}
