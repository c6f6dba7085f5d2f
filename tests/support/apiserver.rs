//! What the API server does to a pod around admission webhooks, for the webhook
//! tests (no kube-apiserver is installable on these machines):
//!
//! - it applies the core/v1 defaults before the mutating webhooks see the pod,
//!   and again to the result of each mutating webhook's patch, before the next
//!   webhook, the validating webhooks and Pod Security admission see it
//!   (k8s.io/apiserver admission/plugin/webhook/mutating/dispatcher.go runs the
//!   object defaulter after applying a patch);
//! - [`defaulted`] mirrors `SetDefaults_PodSpec`, `SetDefaults_Pod`,
//!   `SetDefaults_Container` (and ephemeral containers), `SetDefaults_Probe`,
//!   `SetDefaults_HTTPGetAction`, `SetDefaults_Volume` and the volume sources'
//!   `defaultMode` of kubernetes/pkg/apis/core/v1/defaults.go, plus the
//!   declarative `protocol: TCP` of container ports. Resource rounding and
//!   feature-gated pod-level resources are left out (no test pod uses them).

use serde_json::{json, Map, Value};

/// `pod` as the API server stores it: every default it applies filled in.
pub fn defaulted(pod: &Value) -> Value {
    let mut pod = pod.clone();
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return pod;
    };
    // SetDefaults_PodSpec.
    set(spec, "dnsPolicy", json!("ClusterFirst"));
    set(spec, "restartPolicy", json!("Always"));
    set(spec, "securityContext", json!({}));
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set(spec, "schedulerName", json!("default-scheduler"));
    // SetDefaults_Pod.
    set(spec, "enableServiceLinks", json!(true));
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in objects(spec, list) {
            container(c, list != "ephemeralContainers");
        }
    }
    for v in objects(spec, "volumes") {
        volume(v);
    }
    pod
}

/// The objects in the array at `obj[key]`, if any.
fn objects<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    obj.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn set(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj.insert(key.to_string(), value);
    }
}

fn container(c: &mut Map<String, Value>, requests_from_limits: bool) {
    // SetDefaults_Container: Always for `:latest` (or no tag), else IfNotPresent.
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    let last = image.rsplit('/').next().unwrap_or("");
    let untagged_or_latest =
        !image.contains('@') && last.split_once(':').is_none_or(|(_, tag)| tag == "latest");
    let policy = if untagged_or_latest {
        "Always"
    } else {
        "IfNotPresent"
    };
    set(c, "imagePullPolicy", json!(policy));
    set(c, "terminationMessagePath", json!("/dev/termination-log"));
    set(c, "terminationMessagePolicy", json!("File"));
    // SetDefaults_Pod: requests default to limits (regular and init containers).
    if requests_from_limits {
        if let Some(limits) = c
            .get("resources")
            .and_then(|r| r.get("limits"))
            .and_then(Value::as_object)
            .cloned()
        {
            let resources = c
                .get_mut("resources")
                .and_then(Value::as_object_mut)
                .expect("limits are under resources");
            let requests = resources
                .entry("requests")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("requests is a map");
            for (k, v) in limits {
                requests.entry(k).or_insert(v);
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            set(p, "timeoutSeconds", json!(1));
            set(p, "periodSeconds", json!(10));
            set(p, "successThreshold", json!(1));
            set(p, "failureThreshold", json!(3));
            if let Some(h) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                set(h, "path", json!("/"));
                set(h, "scheme", json!("HTTP"));
            }
        }
    }
    for port in objects(c, "ports") {
        set(port, "protocol", json!("TCP"));
    }
}

fn volume(v: &mut Map<String, Value>) {
    const SOURCES: [&str; 4] = ["secret", "configMap", "downwardAPI", "projected"];
    let has_source = v.keys().any(|k| k != "name");
    if !has_source {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in SOURCES {
        if let Some(s) = v.get_mut(source).and_then(Value::as_object_mut) {
            // 0644 for every one of them (SecretVolumeSourceDefaultMode & co).
            set(s, "defaultMode", json!(0o644));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_what_the_api_server_fills() {
        let pod = json!({"spec": {
            "containers": [{"name": "a", "image": "nginx", "ports": [{"containerPort": 80}],
                            "resources": {"limits": {"cpu": "1"}},
                            "readinessProbe": {"httpGet": {"port": 80}}},
                           {"name": "b", "image": "reg:5000/app:1.2", "imagePullPolicy": "Never"}],
            "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}]}});
        let d = defaulted(&pod);
        let a = &d["spec"]["containers"][0];
        assert_eq!(a["imagePullPolicy"], "Always");
        assert_eq!(a["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(a["ports"][0]["protocol"], "TCP");
        assert_eq!(a["resources"]["requests"]["cpu"], "1");
        assert_eq!(a["readinessProbe"]["periodSeconds"], 10);
        assert_eq!(a["readinessProbe"]["httpGet"]["path"], "/");
        assert_eq!(d["spec"]["containers"][1]["imagePullPolicy"], "Never");
        assert_eq!(d["spec"]["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(d["spec"]["volumes"][1]["secret"]["defaultMode"], 420);
        assert_eq!(d["spec"]["securityContext"], json!({}));
        assert_eq!(d["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(defaulted(&d), d, "defaulting twice changes nothing");
    }
}
