use super::*;
use pretty_assertions::assert_eq;
use serde_json::json;

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1",
            "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}}}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap()
}

fn with(mut p: Pod, f: impl FnOnce(&mut Value)) -> Pod {
    let mut v = serde_json::to_value(&p).unwrap();
    f(&mut v);
    p = serde_json::from_value(v).unwrap();
    p
}

fn budget(v: Value) -> (PodUnavailableBudget, Value) {
    let mut base = json!({
        "apiVersion": "policy.kruise.io/v1alpha1", "kind": "PodUnavailableBudget",
        "metadata": {"name": "pub", "namespace": "ns"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1},
        "status": {"totalReplicas": 4, "desiredAvailable": 3, "currentAvailable": 4, "unavailableAllowed": 1}
    });
    merge(&mut base, v);
    (serde_json::from_value(base.clone()).unwrap(), base)
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn classify_update(old: &Pod, new: &Pod) -> Option<ProtectOperation> {
    classify(&Admission {
        verb: Verb::Update,
        sub_resource: None,
        old_pod: Some(old),
        new_pod: Some(new),
        dry_run: false,
        options: None,
        object: None,
    })
    .map(|c| c.operation)
}

fn bare(verb: Verb, sub: Option<&str>) -> Option<Classified> {
    classify(&Admission {
        verb,
        sub_resource: sub,
        old_pod: None,
        new_pod: None,
        dry_run: false,
        options: None,
        object: None,
    })
}

#[test]
fn classify_verbs_and_subresources() {
    let table = [
        (Verb::Delete, None, Some(ProtectOperation::Delete)),
        (Verb::Delete, Some("status"), None),
        (
            Verb::Create,
            Some("eviction"),
            Some(ProtectOperation::Evict),
        ),
        (Verb::Create, None, None),
        (Verb::Create, Some("binding"), None),
        (Verb::Other, None, None),
    ];
    for (verb, sub, want) in table {
        assert_eq!(
            bare(verb, sub).map(|c| c.operation),
            want,
            "{verb:?} {sub:?}"
        );
    }
}

#[test]
fn classify_dry_run_from_request_options_and_eviction() {
    let opts = json!({"dryRun": ["All"]});
    let a = Admission {
        verb: Verb::Delete,
        sub_resource: None,
        old_pod: None,
        new_pod: None,
        dry_run: false,
        options: Some(&opts),
        object: None,
    };
    assert_eq!(classify(&a).map(|c| c.dry_run), Some(true));
    let eviction = json!({"deleteOptions": {"dryRun": ["All"]}});
    let a = Admission {
        verb: Verb::Create,
        sub_resource: Some("eviction"),
        object: Some(&eviction),
        options: None,
        ..a
    };
    assert_eq!(classify(&a).map(|c| c.dry_run), Some(true));
    let a = Admission { object: None, ..a };
    assert_eq!(classify(&a).map(|c| c.dry_run), Some(false));
    let a = Admission { dry_run: true, ..a };
    assert_eq!(classify(&a).map(|c| c.dry_run), Some(true));
}

#[test]
fn classify_updates() {
    let old = pod("a");
    // Metadata-only change: not checked.
    let relabel = with(old.clone(), |v| v["metadata"]["labels"]["x"] = json!("y"));
    assert_eq!(classify_update(&old, &relabel), None);
    // Adding an unavailable label: UPDATE.
    let unavailable = with(old.clone(), |v| {
        v["metadata"]["labels"]["unavailable-pod.kruise.io/drain"] = json!("true")
    });
    assert_eq!(
        classify_update(&old, &unavailable),
        Some(ProtectOperation::Update)
    );
    // Removing it: not checked.
    assert_eq!(classify_update(&unavailable, &old), None);
    // Image change: UPDATE.
    let image = with(old.clone(), |v| {
        v["spec"]["containers"][0]["image"] = json!("nginx:2")
    });
    assert_eq!(
        classify_update(&old, &image),
        Some(ProtectOperation::Update)
    );
    // cpu change, same QoS, no restart policy: RESIZE.
    let cpu = with(old.clone(), |v| {
        v["spec"]["containers"][0]["resources"]["limits"]["cpu"] = json!("300m")
    });
    assert_eq!(classify_update(&old, &cpu), Some(ProtectOperation::Resize));
    // cpu change with RestartContainer: UPDATE.
    let restart =
        with(
            cpu.clone(),
            |v| {
                v["spec"]["containers"][0]["resizePolicy"] =
                    json!([{"resourceName": "cpu", "restartPolicy": "RestartContainer"}])
            },
        );
    let old_restart =
        with(
            old.clone(),
            |v| {
                v["spec"]["containers"][0]["resizePolicy"] =
                    json!([{"resourceName": "cpu", "restartPolicy": "RestartContainer"}])
            },
        );
    assert_eq!(
        classify_update(&old_restart, &restart),
        Some(ProtectOperation::Update)
    );
    // A non-resizable resource: UPDATE.
    let storage = with(old.clone(), |v| {
        v["spec"]["containers"][0]["resources"]["limits"]["ephemeral-storage"] = json!("1Gi")
    });
    assert_eq!(
        classify_update(&old, &storage),
        Some(ProtectOperation::Update)
    );
    // QoS change (Burstable → Guaranteed): UPDATE.
    let guaranteed = with(old.clone(), |v| {
        v["spec"]["containers"][0]["resources"] = json!({
            "requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
    });
    assert_eq!(
        classify_update(&old, &guaranteed),
        Some(ProtectOperation::Update)
    );
    // A static pod: UPDATE.
    let static_old = with(old.clone(), |v| {
        v["metadata"]["annotations"] = json!({"kubernetes.io/config.source": "file"})
    });
    let static_cpu = with(cpu.clone(), |v| {
        v["metadata"]["annotations"] = json!({"kubernetes.io/config.source": "file"})
    });
    assert_eq!(
        classify_update(&static_old, &static_cpu),
        Some(ProtectOperation::Update)
    );
}

#[test]
fn decide_table() {
    let (b, raw) = budget(json!({}));
    let ready = pod("a");
    let cases: Vec<(&str, PodUnavailableBudget, Value, Pod, ProtectOperation, Decision)> = vec![
        (
            "ready pod, allowed op",
            b.clone(),
            raw.clone(),
            ready.clone(),
            ProtectOperation::Evict,
            Decision::Spend,
        ),
        (
            "no-protect",
            b.clone(),
            raw.clone(),
            with(ready.clone(), |v| {
                v["metadata"]["annotations"] = json!({"pub.kruise.io/no-protect": "true"})
            }),
            ProtectOperation::Delete,
            Decision::Skip(Skip::NoProtect),
        ),
        (
            "not ready",
            b.clone(),
            raw.clone(),
            with(ready.clone(), |v| {
                v["status"]["conditions"][0]["status"] = json!("False")
            }),
            ProtectOperation::Delete,
            Decision::Skip(Skip::NotReady),
        ),
        (
            "pending",
            b.clone(),
            raw.clone(),
            with(ready.clone(), |v| v["status"]["phase"] = json!("Pending")),
            ProtectOperation::Delete,
            Decision::Skip(Skip::NotReady),
        ),
        (
            "unavailable label",
            b.clone(),
            raw.clone(),
            with(ready.clone(), |v| {
                v["metadata"]["labels"]["unavailable-pod.kruise.io/x"] = json!("1")
            }),
            ProtectOperation::Delete,
            Decision::Skip(Skip::NotReady),
        ),
        (
            "digest image not running",
            b.clone(),
            raw.clone(),
            with(ready.clone(), |v| {
                v["spec"]["containers"][0]["image"] = json!("nginx@sha256:abc");
                v["status"]["containerStatuses"] = json!([{"name": "c", "image": "nginx",
                    "imageID": "docker.io/library/nginx@sha256:old", "ready": true,
                    "restartCount": 0}]);
            }),
            ProtectOperation::Delete,
            Decision::Skip(Skip::Inconsistent),
        ),
        (
            "desiredAvailable 0",
            budget(json!({"status": {"desiredAvailable": 0}})).0,
            raw.clone(),
            ready.clone(),
            ProtectOperation::Delete,
            Decision::Skip(Skip::NothingDesired),
        ),
        (
            "operation not protected",
            budget(json!({"metadata": {"annotations": {"kruise.io/pub-protect-operations": "DELETE"}}})).0,
            raw.clone(),
            ready.clone(),
            ProtectOperation::Evict,
            Decision::Skip(Skip::NotProtected),
        ),
        (
            "already disrupted",
            budget(json!({"status": {"disruptedPods": {"a": "2026-01-01T00:00:00Z"}}})).0,
            raw.clone(),
            ready.clone(),
            ProtectOperation::Delete,
            Decision::Skip(Skip::AlreadyRecorded),
        ),
        (
            "already unavailable",
            budget(json!({"status": {"unavailablePods": {"a": "2026-01-01T00:00:00Z"}}})).0,
            raw.clone(),
            ready.clone(),
            ProtectOperation::Update,
            Decision::Skip(Skip::AlreadyRecorded),
        ),
        (
            "ignoredPodSelector (v1beta1, raw)",
            b.clone(),
            budget(json!({"spec": {"ignoredPodSelector": {"matchLabels": {"app": "web"}}}})).1,
            ready.clone(),
            ProtectOperation::Delete,
            Decision::Skip(Skip::Ignored),
        ),
        (
            "RESIZE protected by UPDATE",
            b.clone(),
            raw.clone(),
            ready.clone(),
            ProtectOperation::Resize,
            Decision::Spend,
        ),
        (
            "v1beta1 spec.protectOperations wins",
            b.clone(),
            budget(json!({"spec": {"protectOperations": ["EVICT"]}})).1,
            ready.clone(),
            ProtectOperation::Delete,
            Decision::Skip(Skip::NotProtected),
        ),
    ];
    for (what, b, raw, p, op, want) in cases {
        assert_eq!(decide(&b, Some(&raw), &p, op), want, "{what}");
    }
}

#[test]
fn check_and_decrement_spends_once_and_records() {
    let (b, _) = budget(json!({}));
    let mut s = b.status.clone().unwrap();
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    assert_eq!(
        check_and_decrement(&mut s, "pub", "a", ProtectOperation::Evict, now),
        Ok(())
    );
    assert_eq!(s.unavailable_allowed, 0);
    assert_eq!(
        s.disrupted_pods.as_ref().unwrap().get("a"),
        Some(&Time(now))
    );
    assert_eq!(
        check_and_decrement(&mut s, "pub", "b", ProtectOperation::Evict, now),
        Err("podunavailablebudget.policy.kruise.io \"pub\" is forbidden: pub unavailable allowed is negative".to_string())
    );
    let mut s = b.status.clone().unwrap();
    check_and_decrement(&mut s, "pub", "u", ProtectOperation::Update, now).unwrap();
    assert!(s.unavailable_pods.unwrap().contains_key("u"));
    let mut s = b.status.clone().unwrap();
    check_and_decrement(&mut s, "pub", "r", ProtectOperation::Resize, now).unwrap();
    assert!(s.disrupted_pods.unwrap().contains_key("r"));
}

#[test]
fn too_many_recorded_pods_refuse() {
    let (b, _) = budget(json!({}));
    let mut s = b.status.clone().unwrap();
    s.unavailable_allowed = 10_000;
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    s.disrupted_pods = Some(
        (0..=MAX_UNAVAILABLE_POD_SIZE)
            .map(|i| (format!("p{i}"), Time(now)))
            .collect(),
    );
    let err = check_and_decrement(&mut s, "pub", "x", ProtectOperation::Delete, now).unwrap_err();
    assert!(err.contains("map too big"), "{err}");
    // Exactly 2000 is still allowed (kruise compares with `>`).
    s.disrupted_pods
        .as_mut()
        .unwrap()
        .remove(&format!("p{MAX_UNAVAILABLE_POD_SIZE}"));
    assert_eq!(
        check_and_decrement(&mut s, "pub", "x", ProtectOperation::Delete, now),
        Ok(())
    );
}

#[test]
fn pub_for_pod_by_annotation_selector_and_target_ref() {
    let sel = budget(json!({"metadata": {"name": "b-sel"}})).0;
    let other = budget(json!({"metadata": {"name": "a-other"}, "spec": {"selector": {"matchLabels": {"app": "db"}}}})).0;
    let target = budget(json!({"metadata": {"name": "c-target"},
        "spec": {"selector": null, "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}}))
    .0;
    let elsewhere = budget(json!({"metadata": {"name": "0", "namespace": "other"}})).0;
    let pubs = vec![elsewhere, target, other, sel];
    let p = pod("a");
    let name = |b: Option<&PodUnavailableBudget>| b.and_then(|b| b.metadata.name.clone());
    assert_eq!(name(pub_for_pod(&pubs, &p, &vec![])), Some("b-sel".into()));
    let deployment: OwnerChain = vec![
        ("apps".into(), "ReplicaSet".into(), "web-1".into()),
        ("apps".into(), "Deployment".into(), "web".into()),
    ];
    let unlabelled = with(p.clone(), |v| v["metadata"]["labels"] = json!({}));
    assert_eq!(
        name(pub_for_pod(&pubs, &unlabelled, &deployment)),
        Some("c-target".into())
    );
    assert_eq!(name(pub_for_pod(&pubs, &unlabelled, &vec![])), None);
    let annotated = with(unlabelled, |v| {
        v["metadata"]["annotations"] = json!({"kruise.io/related-pub": "a-other"})
    });
    assert_eq!(
        name(pub_for_pod(&pubs, &annotated, &vec![])),
        Some("a-other".into())
    );
}
