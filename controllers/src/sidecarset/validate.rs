//! The SidecarSet checks that need the other SidecarSets of the cluster, which CEL cannot express
//! (`validateSidecarConflict` in kruise's validating webhook). The admission server calls
//! [`validate_against`] with every stored SidecarSet.

use std::collections::BTreeMap;

use graft_api::apps::v1beta1::sidecarset::{PatchPolicy, SidecarSet};
use k8s_openapi::api::core::v1::Volume;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Refuses `set` when it collides with another SidecarSet whose selector and namespace selector
/// overlap its own: an init container or container of the same name, a same-named volume that
/// differs, or a patched annotation both write when one of them overwrites. The base of a canary
/// SidecarSet and `set` itself (by name) are not compared. Messages are kruise's.
pub fn validate_against(set: &SidecarSet, others: &[SidecarSet]) -> Result<(), Vec<String>> {
    let name = set.metadata.name.as_deref().unwrap_or_default();
    let base = set.canary_base();
    let mut init_in_others: BTreeMap<&str, &str> = BTreeMap::new();
    let mut containers_in_others: BTreeMap<&str, &str> = BTreeMap::new();
    let mut volumes_in_others: BTreeMap<&str, (&str, &Volume)> = BTreeMap::new();
    let mut annotations_in_others: BTreeMap<&str, (&str, PatchPolicy)> = BTreeMap::new();
    for other in others {
        let other_name = other.metadata.name.as_deref().unwrap_or_default();
        if other_name == name || base == Some(other_name) {
            continue;
        }
        if !namespaces_overlap(set, other)
            || !selectors_overlap_opt(set.spec.selector.as_ref(), other.spec.selector.as_ref())
        {
            continue;
        }
        for c in other.spec.init_containers() {
            init_in_others.insert(c.name(), other_name);
        }
        for c in other.spec.containers() {
            containers_in_others.insert(c.name(), other_name);
        }
        for v in other.spec.volumes() {
            volumes_in_others.insert(v.name.as_str(), (other_name, v));
        }
        for p in other.spec.patch_pod_metadata.iter().flatten() {
            let policy = p.patch_policy.unwrap_or_default();
            if policy == PatchPolicy::Retain {
                continue;
            }
            for k in p.annotations.iter().flat_map(|a| a.keys()) {
                annotations_in_others.insert(k.as_str(), (other_name, policy));
            }
        }
    }
    let mut errs = Vec::new();
    for (list, seen) in [
        (set.spec.init_containers(), &init_in_others),
        (set.spec.containers(), &containers_in_others),
    ] {
        for c in list {
            if let Some(other) = seen.get(c.name()) {
                errs.push(format!(
                    "spec.containers: Invalid value: {:?}: container {} already exist in {other}",
                    c.name(),
                    c.name()
                ));
            }
        }
    }
    for v in set.spec.volumes() {
        if let Some((other, theirs)) = volumes_in_others.get(v.name.as_str())
            && *theirs != v
        {
            errs.push(format!(
                "spec.volumes: Invalid value: {:?}: volume {} is in conflict with sidecarset {other}",
                v.name, v.name
            ));
        }
    }
    for p in set.spec.patch_pod_metadata.iter().flatten() {
        let policy = p.patch_policy.unwrap_or_default();
        if policy == PatchPolicy::Retain {
            continue;
        }
        for k in p.annotations.iter().flat_map(|a| a.keys()) {
            if let Some((other, their_policy)) = annotations_in_others.get(k.as_str())
                && (policy == PatchPolicy::Overwrite || *their_policy == PatchPolicy::Overwrite)
            {
                errs.push(format!(
                    "spec.patchPodMetadata: Invalid value: {k:?}: annotation {k} is in conflict with sidecarset {other}"
                ));
            }
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// kruise's `validateSidecarSetCanaryAnnotations` for a canary SidecarSet
/// (`apps.kruise.io/sidecarset-canary: "true"` with `apps.kruise.io/sidecarset-base`): the base
/// is another SidecarSet among `others` that is not a canary itself, it does not change on update
/// (`older`), and the canary's `updateStrategy.type` is `NotUpdate` (a canary only injects).
pub fn validate_canary(
    set: &SidecarSet,
    older: Option<&SidecarSet>,
    others: &[SidecarSet],
) -> Result<(), Vec<String>> {
    use graft_api::apps::v1beta1::sidecarset::SidecarSetUpdateStrategyType;
    let Some(base) = set.canary_base() else {
        return Ok(());
    };
    let name = set.metadata.name.as_deref().unwrap_or_default();
    let invalid = |detail: String| format!("metadata: Invalid value: annotations: {detail}");
    let mut errs = Vec::new();
    if base == name {
        errs.push(invalid("base sidecarSet cannot be itself".into()));
    }
    if let Some(older) = older {
        let before = older
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(graft_api::labels::SIDECARSET_BASE));
        if before.map(String::as_str) != Some(base) {
            errs.push(invalid(format!(
                "annotations[{}] is immutable",
                graft_api::labels::SIDECARSET_BASE
            )));
        }
    }
    match others
        .iter()
        .find(|o| o.metadata.name.as_deref() == Some(base))
    {
        None => errs.push(invalid(format!(
            "fetch base sidecarSet[{base}] failed: sidecarsets.apps.kruise.io \"{base}\" not found"
        ))),
        Some(b) if b.canary_base().is_some() => {
            errs.push(invalid("base sidecarSet cannot be canary".into()));
        }
        Some(_) => {}
    }
    let strategy = set
        .spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_)
        .unwrap_or_default();
    if strategy != SidecarSetUpdateStrategyType::NotUpdate {
        errs.push(invalid(
            "RollingUpdate is not supported for canary sidecarSet".into(),
        ));
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// kruise's `isSidecarSetNamespaceOverlapping`: no namespace selector on either side overlaps.
fn namespaces_overlap(a: &SidecarSet, b: &SidecarSet) -> bool {
    match (&a.spec.namespace_selector, &b.spec.namespace_selector) {
        (Some(x), Some(y)) => selectors_overlap(x, y),
        _ => true,
    }
}

fn selectors_overlap_opt(a: Option<&LabelSelector>, b: Option<&LabelSelector>) -> bool {
    let empty = LabelSelector::default();
    selectors_overlap(a.unwrap_or(&empty), b.unwrap_or(&empty))
}

/// kruise's `IsSelectorOverlapping`: two selectors overlap unless one key rules out the other.
pub fn selectors_overlap(a: &LabelSelector, b: &LabelSelector) -> bool {
    !(disjoint(a, b) || disjoint(b, a))
}

fn disjoint(a: &LabelSelector, b: &LabelSelector) -> bool {
    const ALL: &str = "ALL";
    let mut values: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in a.match_labels.iter().flatten() {
        values.insert(k, vec![v]);
    }
    for r in a.match_expressions.iter().flatten() {
        match r.operator.as_str() {
            "In" => values
                .entry(&r.key)
                .or_default()
                .extend(r.values.iter().flatten().map(String::as_str)),
            "Exists" => {
                values.insert(&r.key, vec![ALL]);
            }
            _ => {}
        }
    }
    for (k, v) in b.match_labels.iter().flatten() {
        if let Some(vs) = values.get(k.as_str())
            && !vs.contains(&ALL)
            && !vs.contains(&v.as_str())
        {
            return true;
        }
    }
    for r in b.match_expressions.iter().flatten() {
        let have = values.get(r.key.as_str());
        let theirs: Vec<&str> = r.values.iter().flatten().map(String::as_str).collect();
        match r.operator.as_str() {
            "In" => {
                if let Some(vs) = have
                    && !vs.contains(&ALL)
                    && !vs.iter().any(|v| theirs.contains(v))
                {
                    return true;
                }
            }
            "NotIn" => {
                if let Some(vs) = have
                    && vs.iter().all(|v| theirs.contains(v))
                {
                    return true;
                }
            }
            "Exists" if have.is_none() => return true,
            "DoesNotExist" if have.is_some() => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(v: serde_json::Value) -> SidecarSet {
        serde_json::from_value(v).unwrap()
    }

    fn sel(v: serde_json::Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn selector_overlap_table() {
        for (a, b, want) in [
            (
                json!({"matchLabels": {"a": "b"}}),
                json!({"matchLabels": {"a": "c"}}),
                false,
            ),
            (
                json!({"matchLabels": {"a": "b"}}),
                json!({"matchLabels": {"c": "d"}}),
                true,
            ),
            (
                json!({"matchLabels": {"a": "b", "c": "d"}}),
                json!({"matchLabels": {"a": "x", "c": "d"}}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b", "c"]}]}),
                json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["b", "c", "d"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b", "c"]}]}),
                json!({"matchLabels": {"a": "c"}}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists"}]}),
                json!({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}),
                false,
            ),
            (
                json!({"matchLabels": {"a": "b"}}),
                json!({"matchExpressions": [{"key": "x", "operator": "Exists"}]}),
                false,
            ),
        ] {
            assert_eq!(
                selectors_overlap(&sel(a.clone()), &sel(b.clone())),
                want,
                "{a} vs {b}"
            );
        }
    }

    fn ss(name: &str, spec: serde_json::Value) -> SidecarSet {
        set(
            json!({"apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet", "metadata": {"name": name}, "spec": spec}),
        )
    }

    #[test]
    fn collisions_between_overlapping_sidecarsets() {
        let mine = ss(
            "mine",
            json!({
                "selector": {"matchLabels": {"app": "web"}},
                "containers": [{"name": "log", "image": "a"}],
                "initContainers": [{"name": "init", "image": "a"}],
                "volumes": [{"name": "v", "emptyDir": {}}, {"name": "same", "emptyDir": {}}],
                "patchPodMetadata": [{"annotations": {"k": "1"}, "patchPolicy": "Overwrite"}, {"annotations": {"m": "{}"}, "patchPolicy": "MergePatchJson"}]
            }),
        );
        let other = ss(
            "other",
            json!({
                "selector": {"matchLabels": {"tier": "x"}},
                "containers": [{"name": "log", "image": "b"}],
                "initContainers": [{"name": "init", "image": "b"}],
                "volumes": [{"name": "v", "hostPath": {"path": "/x"}}, {"name": "same", "emptyDir": {}}],
                "patchPodMetadata": [{"annotations": {"k": "2", "m": "{}"}, "patchPolicy": "MergePatchJson"}]
            }),
        );
        let errs = validate_against(&mine, std::slice::from_ref(&other)).unwrap_err();
        assert_eq!(
            errs,
            vec![
                "spec.containers: Invalid value: \"init\": container init already exist in other".to_string(),
                "spec.containers: Invalid value: \"log\": container log already exist in other".to_string(),
                "spec.volumes: Invalid value: \"v\": volume v is in conflict with sidecarset other".to_string(),
                "spec.patchPodMetadata: Invalid value: \"k\": annotation k is in conflict with sidecarset other".to_string(),
            ]
        );
        // itself (an update) and non-overlapping SidecarSets are not compared
        assert!(validate_against(&mine, std::slice::from_ref(&mine)).is_ok());
        let elsewhere = ss(
            "elsewhere",
            json!({"selector": {"matchLabels": {"app": "db"}}, "containers": [{"name": "log", "image": "b"}]}),
        );
        assert!(validate_against(&mine, &[elsewhere]).is_ok());
        let other_ns = ss(
            "other-ns",
            json!({"selector": {"matchLabels": {"tier": "x"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "b"}},
            "containers": [{"name": "log", "image": "b"}]}),
        );
        let mut mine_ns = mine.clone();
        mine_ns.spec.namespace_selector = Some(sel(
            json!({"matchLabels": {"kubernetes.io/metadata.name": "a"}}),
        ));
        assert!(validate_against(&mine_ns, std::slice::from_ref(&other_ns)).is_ok());
        // one side without a namespace selector overlaps every namespace
        assert!(validate_against(&mine, &[other_ns]).is_err());
        // a canary is not compared with its base
        let mut canary = mine.clone();
        canary.metadata.name = Some("mine-canary".into());
        canary.metadata.annotations = Some(BTreeMap::from([
            (
                "apps.kruise.io/sidecarset-canary".to_string(),
                "true".to_string(),
            ),
            (
                "apps.kruise.io/sidecarset-base".to_string(),
                "mine".to_string(),
            ),
        ]));
        assert!(validate_against(&canary, std::slice::from_ref(&mine)).is_ok());
        assert!(validate_against(&canary, &[mine.clone(), other]).is_err());
    }
}
