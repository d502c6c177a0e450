//! Manifest diffs through a [`DiffSource`], the way the binary wires the sync's: the source hands
//! over rendered objects (Secret values included), the dashboard hides the values, diffs the
//! lines and serves them on the commit page. The Git side (reading the sync's cache, fetching on
//! a standby) is tested in `graft_sync::diff`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::future::BoxFuture;
use graft_api::graft::gitsync::{GitSync, GitSyncSpec};
use graft_web::cache::FixedSource;
use graft_web::diff::{CommitManifests, DiffSource, RenderedObject, of_commit};
use graft_web::fixtures;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const SHA5: &str = "0000000000000000000000000000000000000005";
const SHA4: &str = "0000000000000000000000000000000000000004";

fn configmap(mode: &str) -> RenderedObject {
    RenderedObject {
        id: "/ConfigMap team/settings".into(),
        file: "deploy/cm.yaml".into(),
        object: json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "settings", "namespace": "team"},
                       "data": {"mode": mode}}),
    }
}

fn secret() -> RenderedObject {
    RenderedObject {
        id: "/Secret team/s".into(),
        file: "deploy/secret.yaml".into(),
        object: json!({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "s", "namespace": "team"},
                       "stringData": {"password": "hunter2"}}),
    }
}

/// A commit: its parent and its objects.
type Commit = (Option<&'static str>, Vec<RenderedObject>);

/// A repository of two commits, `SHA4` (a ConfigMap) and `SHA5` (the ConfigMap changed, a
/// Secret added), as the sync would render them; `None` answers like a cache without them.
struct Commits {
    by_sha: Option<BTreeMap<&'static str, Commit>>,
}

impl Commits {
    fn two() -> Self {
        let mut by_sha = BTreeMap::new();
        by_sha.insert(SHA4, (None, vec![configmap("blue")]));
        by_sha.insert(SHA5, (Some(SHA4), vec![configmap("green"), secret()]));
        Commits {
            by_sha: Some(by_sha),
        }
    }
}

impl DiffSource for Commits {
    fn manifests<'a>(
        &'a self,
        _gitsync: &'a GitSync,
        from: Option<&'a str>,
        to: &'a str,
    ) -> BoxFuture<'a, Result<CommitManifests, String>> {
        Box::pin(async move {
            let by_sha = self.by_sha.as_ref().ok_or_else(|| {
                "no diff: the Git cache /nowhere has no copy of this repository".to_string()
            })?;
            let (parent, new) = by_sha.get(to).cloned().ok_or("unknown commit")?;
            let from = from.or(parent).map(str::to_string);
            let old = from
                .as_deref()
                .and_then(|f| by_sha.get(f))
                .map(|(_, o)| o.clone())
                .unwrap_or_default();
            Ok(CommitManifests {
                from,
                old,
                new,
                note: None,
            })
        })
    }
}

fn gitsync() -> GitSync {
    GitSync::new("app", GitSyncSpec::default())
}

#[tokio::test]
async fn diffs_two_commits_from_the_source_and_says_when_it_has_none() {
    // The source has no copy: its reason is the note.
    let none = Commits { by_sha: None };
    let d = of_commit(&none, &gitsync(), Some(SHA4), SHA5).await;
    assert!(
        d.note
            .as_deref()
            .is_some_and(|n| n.contains("no copy of this repository")),
        "{d:?}"
    );
    assert!(d.objects.is_empty());

    let source = Commits::two();
    let d = of_commit(&source, &gitsync(), Some(SHA4), SHA5).await;
    assert_eq!(d.note, None, "{d:?}");
    assert_eq!(d.from.as_deref(), Some(SHA4));
    let changes: Vec<(&str, &str)> = d
        .objects
        .iter()
        .map(|o| (o.change.as_str(), o.id.as_str()))
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        changes
            .iter()
            .any(|(c, id)| *c == "changed" && id.contains("ConfigMap"))
    );
    assert!(
        changes
            .iter()
            .any(|(c, id)| *c == "added" && id.contains("Secret"))
    );
    let text = serde_json::to_string(&d).expect("json");
    assert!(
        !text.contains("hunter2"),
        "Secret values never leave: {text}"
    );
    assert!(text.contains("(hidden)"));

    // Without a previous commit in the history, the source's choice (the first parent) is used.
    let d = of_commit(&source, &gitsync(), None, SHA5).await;
    assert_eq!(d.from.as_deref(), Some(SHA4));
    assert_eq!(d.objects.len(), 2);
    // The first commit has no parent: everything is added.
    let d = of_commit(&source, &gitsync(), None, SHA4).await;
    assert_eq!(d.from, None);
    assert_eq!(
        d.objects
            .iter()
            .map(|o| o.change.as_str())
            .collect::<Vec<_>>(),
        ["added"]
    );
}

#[tokio::test]
async fn the_commit_page_shows_the_diff_of_the_source() {
    let now = "2026-03-01T12:00:00Z".parse().expect("time");
    let app = graft_web::router(
        Arc::new(FixedSource::new(fixtures::scene(5, 3, "rolled out", now))),
        None,
        Some(Arc::new(Commits::two())),
    );
    let res = app
        .oneshot(
            Request::get(format!("/api/gitsyncs/team/app/commits/{SHA5}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.expect("body").to_bytes();
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["previous"], SHA4);
    assert_eq!(v["diff"]["from"], SHA4);
    assert_eq!(
        v["diff"]["objects"].as_array().map(Vec::len),
        Some(2),
        "{v}"
    );
    assert!(!v.to_string().contains("hunter2"));
}
