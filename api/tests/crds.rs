//! The committed CRDs under `deploy/crds/` must equal what the types generate.
//! Regenerate with `make crds` (or `GRAFT_UPDATE_CRDS=1 cargo test -p graft-api --test crds`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use graft_api::crds;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

fn crd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds")
}

#[test]
fn committed_crds_match_generated() {
    let dir = crd_dir();
    let update = std::env::var_os("GRAFT_UPDATE_CRDS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    let mut expected = BTreeSet::new();
    for crd in crds::all() {
        let name = crds::file_name(&crd);
        let yaml = crds::to_yaml(&crd).expect("CRD serializes");
        let path = dir.join(&name);
        expected.insert(name.clone());
        if update {
            std::fs::create_dir_all(&dir).expect("create deploy/crds");
            std::fs::write(&path, &yaml).expect("write CRD");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(on_disk) if on_disk == yaml => {}
            _ => stale.push(name),
        }
    }
    let extra: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".yaml") && !expected.contains(n))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "deploy/crds is out of date (stale: {stale:?}, not generated: {extra:?}).\n\
         Regenerate with `make crds` (or `GRAFT_UPDATE_CRDS=1 cargo test -p graft-api --test crds`) and commit the result."
    );
}

#[test]
fn crds_are_small_and_read_back() {
    for crd in crds::all() {
        let yaml = crds::to_yaml(&crd).unwrap();
        assert!(
            yaml.len() < 64 * 1024,
            "{} is {} bytes; keep pod templates opaque",
            crd.metadata.name.unwrap_or_default(),
            yaml.len()
        );
        let back: CustomResourceDefinition =
            graft_api::manifest::parse_strict(&yaml).unwrap().value;
        assert_eq!(back, crd);
    }
}

#[test]
fn crd_identity_is_pinned() {
    // (name, kind, scope, short names, version, scale subresource)
    type Want = (
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
        &'static str,
        bool,
    );
    let want: &[Want] = &[
        (
            "clonesets.apps.kruise.io",
            "CloneSet",
            "Namespaced",
            &["clone"],
            "v1alpha1",
            true,
        ),
        (
            "sidecarsets.apps.kruise.io",
            "SidecarSet",
            "Cluster",
            &[],
            "v1beta1",
            false,
        ),
        (
            "statefulsets.apps.kruise.io",
            "StatefulSet",
            "Namespaced",
            &["sts", "asts"],
            "v1beta1",
            true,
        ),
        (
            "broadcastjobs.apps.kruise.io",
            "BroadcastJob",
            "Namespaced",
            &["bcj"],
            "v1beta1",
            false,
        ),
        (
            "advancedcronjobs.apps.kruise.io",
            "AdvancedCronJob",
            "Namespaced",
            &["acj"],
            "v1beta1",
            false,
        ),
        (
            "imagepulljobs.apps.kruise.io",
            "ImagePullJob",
            "Namespaced",
            &[],
            "v1alpha1",
            false,
        ),
        (
            "nodeimages.apps.kruise.io",
            "NodeImage",
            "Cluster",
            &[],
            "v1alpha1",
            false,
        ),
        (
            "containerrecreaterequests.apps.kruise.io",
            "ContainerRecreateRequest",
            "Namespaced",
            &["crr"],
            "v1alpha1",
            false,
        ),
        (
            "podunavailablebudgets.policy.kruise.io",
            "PodUnavailableBudget",
            "Namespaced",
            &["pub"],
            "v1alpha1",
            false,
        ),
        (
            "gitsyncs.graft.dev",
            "GitSync",
            "Namespaced",
            &["gs"],
            "v1alpha1",
            false,
        ),
    ];
    let all = crds::all();
    assert_eq!(all.len(), want.len());
    for (crd, (name, kind, scope, short, version, scale)) in all.iter().zip(want) {
        assert_eq!(crd.metadata.name.as_deref(), Some(*name));
        assert_eq!(crd.spec.names.kind, *kind);
        assert_eq!(crd.spec.scope, *scope);
        assert_eq!(
            crd.spec.names.short_names.clone().unwrap_or_default(),
            short.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        );
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, *version);
        assert!(v.served && v.storage);
        let sub = v.subresources.as_ref().expect("subresources");
        assert!(sub.status.is_some(), "{name} has the status subresource");
        match &sub.scale {
            Some(s) => {
                assert!(*scale, "{name} must not have scale");
                assert_eq!(s.spec_replicas_path, ".spec.replicas");
                assert_eq!(s.status_replicas_path, ".status.replicas");
                assert_eq!(
                    s.label_selector_path.as_deref(),
                    Some(".status.labelSelector")
                );
            }
            None => assert!(!*scale, "{name} needs the scale subresource"),
        }
    }
}

#[test]
fn schema_defaults_are_pinned() {
    let all = crds::all();
    let schema = |kind: &str| {
        let crd = all.iter().find(|c| c.spec.names.kind == kind).unwrap();
        serde_json::to_value(&crd.spec.versions[0].schema).unwrap()["openAPIV3Schema"]["properties"]
            ["spec"]
            .clone()
    };
    let cs = schema("CloneSet");
    let us = &cs["properties"]["updateStrategy"];
    assert_eq!(cs["properties"]["replicas"]["default"], 1);
    assert_eq!(cs["properties"]["revisionHistoryLimit"]["default"], 10);
    assert_eq!(us["default"], serde_json::json!({}));
    assert_eq!(us["properties"]["type"]["default"], "ReCreate");
    assert_eq!(us["properties"]["maxUnavailable"]["default"], "20%");
    assert_eq!(us["properties"]["maxSurge"]["default"], 0);
    assert_eq!(us["properties"]["partition"]["default"], 0);
    assert_eq!(
        cs["properties"]["template"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
    let ss = schema("SidecarSet");
    assert_eq!(
        ss["properties"]["updateStrategy"]["properties"]["maxUnavailable"]["default"],
        1
    );
    assert_eq!(
        ss["properties"]["containers"]["items"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
    let sts = schema("StatefulSet");
    assert_eq!(
        sts["properties"]["podManagementPolicy"]["default"],
        "OrderedReady"
    );
    let ru = &sts["properties"]["updateStrategy"]["properties"]["rollingUpdate"]["properties"];
    assert_eq!(ru["maxUnavailable"]["default"], 1);
    assert_eq!(ru["podUpdatePolicy"]["default"], "ReCreate");
    let ipj = schema("ImagePullJob");
    // OpenKruise's defaulting (`SetDefaultsImagePullJob`) writes no parallelism: unset means 1.
    assert_eq!(
        ipj["properties"]["parallelism"]["default"],
        serde_json::Value::Null
    );
    assert_eq!(
        ipj["properties"]["pullPolicy"]["properties"]["timeoutSeconds"]["default"],
        600
    );
    assert_eq!(
        ipj["properties"]["pullPolicy"]["properties"]["backoffLimit"]["default"],
        3
    );
    assert_eq!(
        ipj["properties"]["imagePullPolicy"]["default"],
        "IfNotPresent"
    );
    let bcj = schema("BroadcastJob");
    assert_eq!(
        bcj["properties"]["failurePolicy"]["properties"]["type"]["default"],
        "FailFast"
    );
    assert_eq!(
        bcj["properties"]["completionPolicy"]["properties"]["type"]["default"],
        "Always"
    );
    let crr = schema("ContainerRecreateRequest");
    assert_eq!(
        crr["properties"]["strategy"]["properties"]["failurePolicy"]["default"],
        "Fail"
    );
    let gs = schema("GitSync");
    assert_eq!(gs["properties"]["interval"]["default"], "1m");
    assert_eq!(
        gs["properties"]["prePull"]["properties"]["mode"]["default"],
        "BeforeRollout"
    );
}
