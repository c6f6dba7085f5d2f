//! Which platform of a multi-platform image the pod will run: the pod's
//! `kubernetes.io/os` / `kubernetes.io/arch` node selector or required node
//! affinity, else the configured default (`linux/amd64`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::core::v1::PodSpec;

const ARCH_LABEL: &str = "kubernetes.io/arch";
const OS_LABEL: &str = "kubernetes.io/os";

/// An `os/arch[/variant]` platform.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    /// `linux`, `windows`, …
    pub os: String,
    /// `amd64`, `arm64`, …
    pub arch: String,
    /// `v7`, `v8`, … when it matters.
    pub variant: Option<String>,
}

impl FromStr for Platform {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(());
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// A platform from its parts.
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            arch: arch.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// Whether an index entry for `other` serves this platform (a wanted
    /// platform without a variant accepts any variant).
    pub fn accepts(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.arch == other.arch
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

/// The platforms the pod may be scheduled on, and whether the pod said so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// One or more platforms, sorted.
    pub platforms: Vec<Platform>,
    /// `true` when they come from the pod's node selector or affinity.
    pub from_pod: bool,
}

/// The platforms `spec` can run on; `default` where the pod does not constrain one.
pub fn wanted(spec: &PodSpec, default: &Platform) -> Wanted {
    let arches = constraint(spec, ARCH_LABEL);
    let oses = constraint(spec, OS_LABEL);
    let from_pod = arches.is_some() || oses.is_some();
    let (arches, variant) = match arches {
        Some(a) => (a, None),
        None => (
            BTreeSet::from([default.arch.clone()]),
            default.variant.as_deref(),
        ),
    };
    let oses = oses.unwrap_or_else(|| BTreeSet::from([default.os.clone()]));
    let platforms = oses
        .iter()
        .flat_map(|os| {
            arches
                .iter()
                .map(move |arch| Platform::new(os, arch, variant))
        })
        .collect();
    Wanted {
        platforms,
        from_pod,
    }
}

/// The values a label is constrained to: the node selector's, else the union
/// over the required node-selector terms when every term constrains it with `In`.
fn constraint(spec: &PodSpec, label: &str) -> Option<BTreeSet<String>> {
    if let Some(v) = spec.node_selector.as_ref().and_then(|s| s.get(label)) {
        return Some(BTreeSet::from([v.clone()]));
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    let mut union = BTreeSet::new();
    for term in terms {
        // Terms are ORed: one that leaves the label free leaves it free overall.
        let values = term
            .match_expressions
            .iter()
            .flatten()
            .find(|e| e.key == label && e.operator == "In")?
            .values
            .as_ref()?;
        union.extend(values.iter().cloned());
    }
    (!union.is_empty()).then_some(union)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).unwrap()
    }

    fn linux(arch: &str) -> Platform {
        Platform::new("linux", arch, None)
    }

    #[test]
    fn default_when_the_pod_does_not_say() {
        let w = wanted(
            &spec(serde_json::json!({"containers": []})),
            &linux("amd64"),
        );
        assert_eq!(w.platforms, vec![linux("amd64")]);
        assert!(!w.from_pod);
    }

    #[test]
    fn node_selector_and_affinity() {
        let w = wanted(
            &spec(
                serde_json::json!({"containers": [], "nodeSelector": {"kubernetes.io/arch": "arm64"}}),
            ),
            &linux("amd64"),
        );
        assert_eq!(w.platforms, vec![linux("arm64")]);
        assert!(w.from_pod);
        let term = |values: serde_json::Value| serde_json::json!({"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": values}]});
        let aff = |terms: Vec<serde_json::Value>| {
            spec(
                serde_json::json!({"containers": [], "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}),
            )
        };
        let w = wanted(
            &aff(vec![
                term(serde_json::json!(["arm64"])),
                term(serde_json::json!(["amd64"])),
            ]),
            &linux("amd64"),
        );
        assert_eq!(w.platforms, vec![linux("amd64"), linux("arm64")]);
        // A term without the label leaves the arch open: the default applies.
        let w = wanted(
            &aff(vec![
                term(serde_json::json!(["arm64"])),
                serde_json::json!({"matchExpressions": []}),
            ]),
            &linux("amd64"),
        );
        assert_eq!(w.platforms, vec![linux("amd64")]);
    }

    #[test]
    fn parse_and_accept() {
        let p: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert!(linux("arm").accepts(&p));
        assert!(!p.accepts(&linux("arm")));
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//".parse::<Platform>().is_err());
    }
}
