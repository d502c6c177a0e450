//! Round-trip tests over the user-written manifests in `tests/fixtures/`: every fixture parses
//! with no unknown field, serializes back to exactly the same JSON value, parses again to an
//! equal object, and passes validation. A renamed field or a changed default fails here.

use std::path::{Path, PathBuf};

use graft_api::apps::v1alpha1::{
    CloneSet, ContainerRecreateRequest, ImagePullJob, NodeImage, SidecarSet,
};
use graft_api::apps::v1beta1::{AdvancedCronJob, BroadcastJob, StatefulSet};
use graft_api::graft::GitSync;
use graft_api::manifest::{self, Parsed};
use graft_api::policy::v1alpha1::PodUnavailableBudget;
use graft_api::{Error, FieldErrors};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn files(dir: &str, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(fixtures().join(dir))
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".yaml"))
        })
        .collect();
    out.sort();
    out
}

/// Parses, checks unknown fields, value-level and typed round trip; returns the object.
fn roundtrip<K>(path: &Path) -> K
where
    K: kube::Resource<DynamicType = ()>
        + DeserializeOwned
        + Serialize
        + PartialEq
        + std::fmt::Debug,
{
    let text = std::fs::read_to_string(path).expect("read fixture");
    let Parsed {
        value,
        unknown_fields,
    } = manifest::parse_resource::<K>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        unknown_fields.is_empty(),
        "{}: unknown fields {unknown_fields:?}",
        path.display()
    );

    let input = manifest::parse_value(&text).unwrap();
    let output = serde_json::to_value(&value).unwrap();
    pretty_assertions::assert_eq!(
        output,
        input,
        "{}: JSON changed in the round trip",
        path.display()
    );

    let yaml = manifest::to_yaml(&value).unwrap();
    let again = manifest::parse_resource::<K>(&yaml).unwrap();
    assert!(again.unknown_fields.is_empty());
    assert_eq!(
        again.value,
        value,
        "{}: YAML round trip changed the object",
        path.display()
    );
    value
}

fn check<K>(prefix: &str, dir: &str, validate: impl Fn(&K) -> FieldErrors)
where
    K: kube::Resource<DynamicType = ()>
        + DeserializeOwned
        + Serialize
        + PartialEq
        + std::fmt::Debug,
{
    let paths = files(dir, prefix);
    assert!(
        paths.len() >= 2,
        "need at least two {prefix} fixtures in {dir}, found {}",
        paths.len()
    );
    for p in paths {
        let obj = roundtrip::<K>(&p);
        let errs = validate(&obj);
        assert!(errs.is_empty(), "{}: {errs}", p.display());
    }
}

#[test]
fn cloneset_fixtures() {
    check::<CloneSet>("cloneset-", "kruise", |o| {
        let mut e = o.spec.validate();
        e.extend(o.spec.defaulted().validate());
        e
    });
}

#[test]
fn sidecarset_fixtures() {
    check::<SidecarSet>("sidecarset-", "kruise", |o| {
        let mut e = o.spec.validate();
        e.extend(o.spec.defaulted().validate());
        e
    });
}

#[test]
fn statefulset_fixtures() {
    check::<StatefulSet>("statefulset-", "kruise", |o| {
        let mut e = o.spec.validate();
        e.extend(o.spec.defaulted().validate());
        e
    });
}

#[test]
fn broadcastjob_fixtures() {
    check::<BroadcastJob>("broadcastjob-", "kruise", |o| o.spec.defaulted().validate());
}

#[test]
fn advancedcronjob_fixtures() {
    check::<AdvancedCronJob>("advancedcronjob-", "kruise", |o| {
        let mut defaulted = o.clone();
        defaulted.spec = o.spec.defaulted();
        let mut e = o.spec.validate();
        e.extend(defaulted.validate());
        e
    });
}

#[test]
fn imagepulljob_fixtures() {
    check::<ImagePullJob>("imagepulljob-", "kruise", |o| o.spec.defaulted().validate());
}

#[test]
fn nodeimage_fixtures() {
    check::<NodeImage>("nodeimage-", "kruise", |o| o.spec.defaulted().validate());
}

#[test]
fn containerrecreaterequest_fixtures() {
    check::<ContainerRecreateRequest>("containerrecreaterequest-", "kruise", |o| {
        o.spec.defaulted().validate()
    });
}

#[test]
fn podunavailablebudget_fixtures() {
    check::<PodUnavailableBudget>("podunavailablebudget-", "kruise", |o| o.spec.validate());
}

#[test]
fn gitsync_fixtures() {
    check::<GitSync>("gitsync-", "graft", |o| o.spec.defaulted().validate());
}

#[test]
fn every_fixture_belongs_to_a_kind() {
    let known = [
        "cloneset-",
        "sidecarset-",
        "statefulset-",
        "broadcastjob-",
        "advancedcronjob-",
        "imagepulljob-",
        "nodeimage-",
        "containerrecreaterequest-",
        "podunavailablebudget-",
    ];
    for p in files("kruise", "") {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            known.iter().any(|k| name.starts_with(k)),
            "{name} matches no kind"
        );
    }
}

#[test]
fn misspelled_fields_are_reported() {
    let text =
        std::fs::read_to_string(fixtures().join("invalid/cloneset-misspelled.yaml")).unwrap();
    let parsed = manifest::parse_resource::<CloneSet>(&text).unwrap();
    assert_eq!(
        parsed.unknown_fields,
        vec![
            "spec.scaleStrategy.podToDelete",
            "spec.template.spec.containers[0].imagePullPolice",
            "spec.updateStrategy.maxUnavailible",
        ]
    );
    let text =
        std::fs::read_to_string(fixtures().join("invalid/sidecarset-misspelled.yaml")).unwrap();
    let parsed = manifest::parse_resource::<SidecarSet>(&text).unwrap();
    assert_eq!(
        parsed.unknown_fields,
        vec!["spec.containers[0].podInjectPolicyy"]
    );
}

#[test]
fn wrong_kind_and_bad_values_name_the_field() {
    let text =
        std::fs::read_to_string(fixtures().join("kruise/sidecarset-two-sidecars.yaml")).unwrap();
    match manifest::parse_resource::<CloneSet>(&text) {
        Err(Error::Decode { path, .. }) => assert_eq!(path, "kind"),
        other => panic!("expected a kind error, got {other:?}"),
    }
    let bad = "apiVersion: apps.kruise.io/v1alpha1\nkind: CloneSet\nmetadata: {name: x}\nspec:\n  selector: {}\n  template: {}\n  updateStrategy:\n    type: Sometimes\n";
    match manifest::parse_resource::<CloneSet>(bad) {
        Err(Error::Decode { path, .. }) => assert_eq!(path, "spec.updateStrategy.type"),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn pinned_field_names_of_the_inplace_cloneset() {
    let cs = roundtrip::<CloneSet>(&fixtures().join("kruise/cloneset-inplace.yaml"));
    let v = serde_json::to_value(&cs).unwrap();
    let us = &v["spec"]["updateStrategy"];
    assert_eq!(us["type"], "InPlaceIfPossible");
    assert_eq!(us["partition"], "99%");
    assert_eq!(us["inPlaceUpdateStrategy"]["gracePeriodSeconds"], 10);
    assert_eq!(
        us["priorityStrategy"]["weightPriority"][0]["matchSelector"]["matchLabels"]["tier"],
        "canary"
    );
    assert_eq!(
        v["spec"]["lifecycle"]["preDelete"]["finalizersHandler"][0],
        "example.com/unregister"
    );
    assert_eq!(v["spec"]["lifecycle"]["preDelete"]["markPodNotReady"], true);
    assert_eq!(
        v["spec"]["lifecycle"]["inPlaceUpdate"]["labelsHandler"]["example.com/drained"],
        "true"
    );
    // `defaultMode: 0644` is read as 420, as kubectl does.
    assert_eq!(
        v["spec"]["template"]["spec"]["volumes"][0]["configMap"]["defaultMode"],
        420
    );
    let limits = cs.spec.update_limits().unwrap();
    assert_eq!(
        (limits.partition, limits.max_unavailable, limits.max_surge),
        (3, 1, 0)
    );

    let pvc = roundtrip::<CloneSet>(&fixtures().join("kruise/cloneset-recreate-pvc.yaml"));
    let v = serde_json::to_value(&pvc).unwrap();
    assert_eq!(v["spec"]["scaleStrategy"]["disablePVCReuse"], true);
    assert_eq!(v["spec"]["scaleStrategy"]["podsToDelete"][0], "cache-abcde");
    assert_eq!(v["spec"]["progressDeadlineSeconds"], 600);
}

#[test]
fn pinned_reserve_ordinals_of_the_statefulset() {
    let sts =
        roundtrip::<StatefulSet>(&fixtures().join("kruise/statefulset-reserve-ordinals.yaml"));
    assert_eq!(sts.spec.pod_ordinals().unwrap(), vec![0, 2, 5, 6, 7]);
    assert_eq!(
        sts.spec.max_unavailable().unwrap(),
        2,
        "40% of 5 rounds down to 2"
    );
}
