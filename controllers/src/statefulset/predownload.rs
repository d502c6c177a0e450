//! The Advanced StatefulSet's image pre-download checks (`statefulset_predownload_image.go`,
//! `doPreDownload`) on top of the shared [`crate::predownload`] decision.

use graft_api::apps::common::PodUpdatePolicy;
use graft_api::apps::v1beta1::StatefulSet;
use graft_api::apps::v1beta1::statefulset::StatefulSetUpdateStrategyType;
use graft_api::intstr;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::identity::owner_reference;
use crate::inplace;
use crate::predownload::{self, Gate, NOT_IN_PLACE, PreDownload, Workload};

/// `doPreDownload` / `createImagePullJobsForInPlaceUpdate` of the set between its `current` and
/// `update` revisions; `owned_jobs` are the ImagePullJobs it controls.
pub(crate) fn decide(
    set: &StatefulSet,
    current: &ControllerRevision,
    update: &ControllerRevision,
    owned_jobs: &[String],
) -> PreDownload {
    let spec = set.spec.defaulted();
    let replicas = spec.replicas.unwrap_or(1);
    let status = set.status.clone().unwrap_or_default();
    let update_name = update.metadata.name.clone().unwrap_or_default();
    let w = Workload {
        meta: &set.metadata,
        owner: owner_reference(set),
        selector: &set.spec.selector,
        template: &set.spec.template,
        replicas,
        status_update_revision: status.update_revision.as_deref(),
        status_updated_ready: status.updated_ready_replicas,
    };
    predownload::decide(&w, current, update, owned_jobs, |current| {
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        let rolling = match (strategy.type_.unwrap_or_default(), strategy.rolling_update) {
            (StatefulSetUpdateStrategyType::RollingUpdate, Some(r))
                if r.pod_update_policy.unwrap_or_default() != PodUpdatePolicy::ReCreate =>
            {
                r
            }
            _ => return Gate::Ignore("update type is OnDelete or pod update policy is ReCreate"),
        };
        let partition = rolling.partition.unwrap_or(0);
        let one = IntOrString::String("1".into());
        let max_unavailable = intstr::scaled_value(
            rolling.max_unavailable.as_ref().unwrap_or(&one),
            replicas,
            false,
        )
        .unwrap_or(0);
        if let Some(g) = predownload::batch_gate(replicas, partition, max_unavailable) {
            return g;
        }
        let grace = rolling
            .in_place_update_strategy
            .as_ref()
            .and_then(|s| s.grace_period_seconds)
            .unwrap_or(0);
        match current {
            Some(current)
                if inplace::calculate(current, &set.spec.template, &update_name, grace).is_ok() =>
            {
                Gate::Go
            }
            _ => Gate::Ignore(NOT_IN_PLACE),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revision::{self, RevisionOwner};
    use graft_api::labels;
    use pretty_assertions::assert_eq;
    use serde_json::{Value, json};

    /// The set `web` at `image` (in place, Parallel, 5 replicas) with `rolling` merged into its
    /// rollingUpdate, its status at `status_update` with 2 updated ready pods.
    fn set(image: &str, rolling: Value, status_update: &str) -> StatefulSet {
        let mut r = json!({"podUpdatePolicy": "InPlaceIfPossible", "maxUnavailable": 1});
        for (k, v) in rolling.as_object().unwrap() {
            r[k] = v.clone();
        }
        serde_json::from_value(json!({
            "apiVersion": "apps.kruise.io/v1beta1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid",
                "annotations": {"apps.kruise.io/image-predownload-parallelism": "2"}},
            "spec": {
                "replicas": 5,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app": "web"}},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": r},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"readinessGates": [{"conditionType": "InPlaceUpdateReady"}],
                        "containers": [{"name": "app", "image": image},
                                       {"name": "side", "image": "side:1"}]}}
            },
            "status": {"updateRevision": status_update, "updatedReadyReplicas": 2}
        }))
        .unwrap()
    }

    fn revision_of(s: &StatefulSet, n: i64) -> ControllerRevision {
        let owner = RevisionOwner {
            api_version: "apps.kruise.io/v1beta1".into(),
            kind: "StatefulSet".into(),
            name: "web".into(),
            namespace: Some("ns".into()),
            uid: "set-uid".into(),
        };
        let data = revision::template_revision_data(&s.spec.template).unwrap();
        let labels = [("app".to_string(), "web".to_string())].into();
        revision::new_revision(&owner, &labels, &Default::default(), data, n, None)
    }

    fn name(r: &ControllerRevision) -> String {
        r.metadata.name.clone().unwrap()
    }

    #[test]
    fn jobs_for_the_changed_image_select_the_pods_not_updated() {
        let v1 = set("app:1", json!({}), "");
        let r1 = revision_of(&v1, 1);
        let v2 = set("app:2", json!({}), "");
        let r2 = revision_of(&v2, 2);
        let PreDownload::Create { revision, jobs } = decide(&v2, &r1, &r2, &[]) else {
            panic!("expected jobs: {:?}", decide(&v2, &r1, &r2, &[]));
        };
        assert_eq!(revision, name(&r2));
        assert_eq!(jobs.len(), 1, "only the app's image changed");
        let job = serde_json::to_value(&jobs[0]).unwrap();
        let hash = r2.metadata.labels.as_ref().unwrap()[labels::CONTROLLER_HASH].clone();
        assert_eq!(job["metadata"]["name"], json!(format!("{}-app", name(&r2))));
        assert_eq!(
            job["metadata"]["ownerReferences"][0]["kind"],
            json!("StatefulSet")
        );
        assert_eq!(
            job["metadata"]["ownerReferences"][0]["controller"],
            json!(true)
        );
        assert_eq!(job["spec"]["image"], json!("app:2"));
        assert_eq!(job["spec"]["parallelism"], json!(2));
        assert_eq!(
            job["spec"]["podSelector"],
            json!({"matchLabels": {"app": "web"}, "matchExpressions": [
                {"key": "controller-revision-hash", "operator": "NotIn",
                 "values": [name(&r2), hash]}]})
        );
        assert_eq!(
            job["spec"]["completionPolicy"],
            json!({"type": "Always", "ttlSecondsAfterFinished": 600})
        );
    }

    #[test]
    fn what_needs_no_jobs() {
        let v1 = set("app:1", json!({}), "");
        let r1 = revision_of(&v1, 1);
        let ignored = |s: &StatefulSet, reason: &str| {
            let r2 = revision_of(s, 2);
            assert_eq!(
                decide(s, &r1, &r2, &[]),
                PreDownload::Ignore {
                    revision: name(&r2),
                    reason: reason.into()
                },
                "{reason}"
            );
        };
        ignored(
            &set("app:2", json!({"podUpdatePolicy": "ReCreate"}), ""),
            "update type is OnDelete or pod update policy is ReCreate",
        );
        ignored(
            &set("app:2", json!({"maxUnavailable": "100%"}), ""),
            "all Pods update in one batch",
        );
        let mut few = set("app:2", json!({}), "");
        few.spec.replicas = Some(3);
        ignored(&few, "replicas less than or equal to the minimum threshold");
        let mut env = set("app:2", json!({}), "");
        if let Some(spec) = env.spec.template.spec.as_mut() {
            spec.containers[0].env = Some(vec![Default::default()]);
        }
        ignored(&env, NOT_IN_PLACE);

        // A partition makes even one batch worth pre-downloading.
        let r2 = revision_of(&set("app:2", json!({}), ""), 2);
        let partitioned = set(
            "app:2",
            json!({"maxUnavailable": "100%", "partition": 1}),
            "",
        );
        assert!(matches!(
            decide(&partitioned, &r1, &r2, &[]),
            PreDownload::Create { .. }
        ));
    }

    #[test]
    fn waits_for_min_updated_ready_and_cleans_up_once_converged() {
        let v1 = set("app:1", json!({}), "");
        let r1 = revision_of(&v1, 1);
        let mut v2 = set("app:2", json!({}), "");
        let r2 = revision_of(&v2, 2);
        v2.metadata.annotations = Some(
            [(
                labels::IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS.to_string(),
                "3".to_string(),
            )]
            .into(),
        );
        v2.status.as_mut().unwrap().update_revision = Some(name(&r2));
        assert_eq!(
            decide(&v2, &r1, &r2, &[]),
            PreDownload::None,
            "2 of 3 ready"
        );
        v2.status.as_mut().unwrap().updated_ready_replicas = 3;
        assert!(matches!(
            decide(&v2, &r1, &r2, &[]),
            PreDownload::Create { .. }
        ));

        let mut labelled = r2.clone();
        labelled
            .metadata
            .labels
            .get_or_insert_default()
            .insert(labels::IMAGE_PREDOWNLOAD_CREATED.into(), "true".into());
        assert_eq!(decide(&v2, &r1, &labelled, &[]), PreDownload::None);

        let jobs = vec!["web-abc-app".to_string()];
        assert_eq!(
            decide(&v2, &r2, &r2, &jobs),
            PreDownload::Delete { jobs: jobs.clone() }
        );
        assert_eq!(decide(&v2, &r2, &r2, &[]), PreDownload::None);
    }
}
