//! The dashboard's HTTP surface on fixture snapshots: every endpoint's status and JSON shape,
//! the bearer token, read-only routes, SSE, and escaping of hostile text from Git and the
//! cluster.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use graft_web::cache::FixedSource;
use graft_web::fixtures;
use http_body_util::BodyExt;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tower::ServiceExt;

const HOSTILE: &str = "</textarea><script>alert(1)</script>\"'><img src=x onerror=alert(2)>&amp;";
const SHA5: &str = "0000000000000000000000000000000000000005";
const SHA4: &str = "0000000000000000000000000000000000000004";

fn now() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().expect("time")
}

fn app_with(snap: graft_web::Snapshot, token: Option<&str>) -> Router {
    graft_web::router(
        Arc::new(FixedSource::new(snap)),
        token.map(str::to_string),
        None,
    )
}

fn app() -> Router {
    app_with(fixtures::scene(5, 3, "rolled out", now()), None)
}

async fn get(
    app: &Router,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::get(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

async fn json(app: &Router, uri: &str) -> Value {
    let (status, headers, body) = get(app, uri, &[]).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .starts_with("application/json"),
        "{uri} is JSON"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{uri}: {e}: {body}"))
}

#[tokio::test]
async fn overview_json_lists_gitsyncs_and_workloads_with_progress() {
    let v = json(&app(), "/api/overview").await;
    let gs = &v["gitsyncs"][0];
    assert_eq!(gs["namespace"], "team");
    assert_eq!(gs["name"], "app");
    assert_eq!(gs["href"], "/gitsyncs/team/app");
    assert_eq!(
        gs["url"], "https://***@git.example.com/team/app.git",
        "credentials never shown"
    );
    assert_eq!(gs["git_ref"], "branch main");
    assert_eq!(gs["head"]["sha"], SHA5);
    assert_eq!(gs["head"]["phase"], "RollingOut");
    assert_eq!(gs["health"]["label"], "rolling out …");
    let w = &v["workloads"][0];
    assert_eq!(
        (w["kind"].as_str(), w["name"].as_str()),
        (Some("CloneSet"), Some("web"))
    );
    assert_eq!(w["progress"]["updated"], 3);
    assert_eq!(w["progress"]["replicas"], 3);
    assert_eq!(w["progress"]["updated_pct"], 100);
    assert_eq!(w["status"]["label"], "Up to date");
    assert_eq!(w["href"], "/workloads/apps.kruise.io/CloneSet/team/web");
}

#[tokio::test]
async fn timeline_json_has_every_commit_newest_first_with_phases_and_failures() {
    let v = json(&app(), "/api/gitsyncs/team/app").await;
    let commits = v["commits"].as_array().expect("commits");
    assert_eq!(commits.len(), 5);
    assert_eq!(commits[0]["sha"], SHA5);
    let keys: Vec<&str> = commits[0]["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .filter_map(|p| p["key"].as_str())
        .collect();
    assert_eq!(keys, ["detected", "validated", "applying", "rollingOut"]);
    assert_eq!(commits[0]["phases"][3]["current"], true);
    assert_eq!(commits[0]["phases"][0]["duration"], "2.0s");
    let failed = commits
        .iter()
        .find(|c| c["phase"] == "Failed")
        .expect("a failed commit");
    assert_eq!(failed["reason"], "ValidationFailed");
    assert!(
        failed["status_message"]
            .as_str()
            .is_some_and(|m| m.contains("deploy/web.yaml, document 0, line 3")),
        "file and line of the failure: {failed}"
    );
}

#[tokio::test]
async fn a_new_phase_shows_without_code_changes() {
    // A phase entered that the timeline has no special case for still shows, in time order.
    let mut snap = fixtures::scene(1, 1, "x", now());
    let mut v = serde_json::to_value(&*snap.gitsyncs[0]).expect("json");
    let detected = v["status"]["history"][0]["phaseTimes"]["detected"].clone();
    v["status"]["history"][0]["phaseTimes"]["prePulling"] = detected;
    snap.gitsyncs[0] = Arc::new(serde_json::from_value(v).expect("gitsync"));
    let v = json(&app_with(snap, None), "/api/gitsyncs/team/app").await;
    let labels: Vec<&str> = v["commits"][0]["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .filter_map(|p| p["label"].as_str())
        .collect();
    assert_eq!(
        labels,
        [
            "detected",
            "pre-pulling",
            "validated",
            "applying",
            "rolling out"
        ]
    );
}

#[tokio::test]
async fn commit_json_has_workloads_in_place_counts_pre_pull_and_diff_note() {
    let v = json(&app(), &format!("/api/gitsyncs/team/app/commits/{SHA5}")).await;
    assert_eq!(v["commit"]["sha"], SHA5);
    assert_eq!(v["previous"], SHA4);
    let w = &v["workloads"][0];
    assert_eq!(w["name"], "web");
    assert_eq!(w["live"], true);
    assert_eq!(w["counts"]["in_place"], 3, "{w}");
    assert_eq!(w["counts"]["recreated"], 0);
    assert_eq!(w["pods"], 3);
    assert_eq!(w["update_revision"], "web-2");
    assert_eq!(w["paused"], false);
    let pp = &v["pre_pulls"][0];
    assert_eq!(pp["image"], "registry.example/app:v2");
    assert_eq!(pp["nodes"][0]["node"], "node-1");
    assert_eq!(pp["nodes"][0]["phase"], "Pulling");
    assert_eq!(pp["nodes"][0]["progress"], 40);
    // Without a Git cache the diff says why it is missing.
    assert!(
        v["diff"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("Git cache")),
        "{}",
        v["diff"]
    );
    // An older commit: its pods were updated by a later one, so none counts for it.
    let old = json(&app(), &format!("/api/gitsyncs/team/app/commits/{SHA4}")).await;
    assert_eq!(old["workloads"][0]["counts"]["in_place"], 0);
    assert!(old["pre_pulls"].as_array().is_some_and(Vec::is_empty));
}

#[tokio::test]
async fn workload_json_has_pods_and_events() {
    let v = json(&app(), "/api/workloads/apps.kruise.io/CloneSet/team/web").await;
    let pods = v["pods"].as_array().expect("pods");
    assert_eq!(pods.len(), 3);
    assert_eq!(pods[0]["name"], "web-0000");
    assert_eq!(pods[0]["node"], "node-1");
    assert_eq!(pods[0]["revision"], "web-2");
    assert_eq!(pods[0]["ready"], true);
    assert_eq!(pods[0]["restarts"], 1);
    assert_eq!(pods[0]["in_place"]["state"], "done");
    let reasons: Vec<&str> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(
        reasons.contains(&"SuccessfulUpdatePodInPlace") && reasons.contains(&"Pulled"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn unknown_objects_are_404_in_json_and_html() {
    let app = app();
    for uri in [
        "/api/gitsyncs/team/nope",
        "/api/gitsyncs/team/app/commits/ffff",
        "/api/workloads/apps/Deployment/team/web",
    ] {
        let (status, _, body) = get(&app, uri, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(body.contains("not found"), "{uri}: {body}");
    }
    let (status, _, body) = get(&app, "/gitsyncs/team/nope", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("GitSync team/nope"));
    let (status, _, _) = get(&app, "/no/such/page", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_page_renders_with_security_headers() {
    let app = app();
    for uri in [
        "/".to_string(),
        "/gitsyncs/team/app".into(),
        format!("/gitsyncs/team/app/commits/{SHA5}"),
        "/workloads/apps.kruise.io/CloneSet/team/web".into(),
    ] {
        let (status, headers, body) = get(&app, &uri, &[]).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(body.contains("<main id=\"main\">"), "{uri}");
        let csp = headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{uri}: {csp}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    let (_, headers, css) = get(&app, "/static/app.css", &[]).await;
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/css")
    );
    assert!(css.contains(".p100 { width: 100%; }"));
    let (_, _, js) = get(&app, "/static/app.js", &[]).await;
    assert!(js.contains("EventSource"));
}

#[tokio::test]
async fn only_get_is_served() {
    let app = app();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let res = app
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri("/api/overview")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
}

#[tokio::test]
async fn with_a_token_every_route_but_healthz_needs_it() {
    let app = app_with(fixtures::scene(2, 1, "x", now()), Some("s3cret-token"));
    for uri in [
        "/",
        "/api/overview",
        "/events",
        "/static/app.js",
        "/api/gitsyncs/team/app",
    ] {
        let (status, headers, _) = get(&app, uri, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(headers.contains_key(header::WWW_AUTHENTICATE));
        let (status, _, _) = get(&app, uri, &[("authorization", "Bearer wrong")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} with a wrong token");
    }
    let (status, _, _) = get(
        &app,
        "/api/overview",
        &[("authorization", "Bearer s3cret-token")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = get(&app, "/healthz", &[]).await;
    assert_eq!(status, StatusCode::OK);
    // A browser: ?token= once sets an HttpOnly cookie and redirects to the bare path.
    let (status, headers, _) = get(&app, "/gitsyncs/team/app?token=s3cret-token", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/gitsyncs/team/app");
    let cookie = headers[header::SET_COOKIE].to_str().expect("cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().expect("pair");
    let (status, _, _) = get(&app, "/gitsyncs/team/app", &[("cookie", pair)]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = get(&app, "/?token=wrong", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sse_says_hello_then_announces_each_change() {
    use futures::StreamExt;
    let source = Arc::new(FixedSource::new(fixtures::scene(1, 1, "x", now())));
    let app = graft_web::router(source.clone(), None, None);
    let res = app
        .oneshot(
            Request::get("/events")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    let mut body = res.into_body().into_data_stream();
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), body.next())
        .await
        .expect("an SSE frame within 5 s")
        .expect("stream open")
        .expect("frame");
    let first = String::from_utf8_lossy(&first).into_owned();
    assert!(first.contains("event: hello"), "{first}");
    source.set(fixtures::scene(2, 1, "x", now()));
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.next())
        .await
        .expect("the change within 5 s")
        .expect("stream open")
        .expect("frame");
    let frame = String::from_utf8_lossy(&frame).into_owned();
    assert!(
        frame.contains("event: change") && frame.contains("data: 1"),
        "{frame}"
    );
}

/// Hostile text everywhere text comes from Git or the cluster: commit messages, authors,
/// failure messages, object names, event messages. It must render as text.
fn hostile_scene() -> graft_web::Snapshot {
    let mut snap = fixtures::scene(3, 2, HOSTILE, now());
    let mut history = vec![fixtures::commit(
        SHA5,
        HOSTILE,
        "Failed",
        now() - SignedDuration::from_secs(100),
        0,
        HOSTILE,
    )];
    history[0]["author"] = Value::from(HOSTILE);
    history[0]["statusMessage"] = Value::from(HOSTILE);
    // The reason is a closed enum (`CommitReason`): hostile text cannot reach it any more.
    history[0]["reason"] = Value::from("ValidationFailed");
    snap.gitsyncs
        .push(fixtures::gitsync(HOSTILE, HOSTILE, history, false));
    snap.workloads
        .push(fixtures::cloneset(HOSTILE, HOSTILE, HOSTILE, 2, 1, HOSTILE));
    snap.pods.push(fixtures::pod(
        HOSTILE,
        HOSTILE,
        HOSTILE,
        HOSTILE,
        "2026-01-01T00:00:00Z",
        None,
    ));
    snap.events.push(fixtures::event(
        HOSTILE,
        "CloneSet",
        HOSTILE,
        HOSTILE,
        HOSTILE,
        "2026-03-01T11:00:00Z",
    ));
    snap
}

fn assert_escaped(uri: &str, body: &str) {
    for raw in [
        "<script>alert",
        "<img src=x",
        "</textarea>",
        "onerror=alert(2)>",
    ] {
        assert!(!body.contains(raw), "{uri} contains raw {raw:?}");
    }
    // askama writes numeric character references: `&#60;` is `<`, `&#38;` is `&`.
    assert!(
        body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{uri} shows the script tag as text"
    );
    assert!(body.contains("&#60;/textarea&#62;"), "{uri}");
    assert!(
        body.contains("&#34;&#39;&#62;"),
        "{uri}: quotes are escaped"
    );
    assert!(body.contains("&#38;amp;"), "{uri}: & is escaped");
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn hostile_commit_messages_and_object_names_render_as_text() {
    let app = app_with(hostile_scene(), None);
    let enc = encode(HOSTILE);
    let pages = [
        "/".to_string(),
        "/gitsyncs/team/app".to_string(),
        format!("/gitsyncs/{enc}/{enc}"),
        format!("/gitsyncs/{enc}/{enc}/commits/{SHA5}"),
        format!("/workloads/apps.kruise.io/CloneSet/{enc}/{enc}"),
        "/workloads/apps.kruise.io/CloneSet/team/web".to_string(),
    ];
    for uri in &pages {
        let (status, _, body) = get(&app, uri, &[]).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_escaped(uri, &body);
    }
    // Links to hostile names are percent-encoded, so they cannot break out of the attribute.
    let (_, _, body) = get(&app, "/", &[]).await;
    assert!(body.contains(&format!("href=\"/gitsyncs/{enc}/{enc}\"")));
    // The JSON API returns the text as data, unchanged, with a JSON content type.
    let v = json(&app, &format!("/api/gitsyncs/{enc}/{enc}")).await;
    assert_eq!(v["commits"][0]["message"], HOSTILE);
    // The 404 page echoes the requested name escaped too.
    let (status, _, body) = get(&app, &format!("/gitsyncs/team/{enc}"), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.contains("<script>alert") && body.contains("&#60;script&#62;"));
}

#[tokio::test]
async fn on_loopback_only_loopback_host_names_are_answered() {
    let app = graft_web::server::loopback_hosts_only(app());
    for host in [
        "127.0.0.1:8080",
        "localhost:8080",
        "[::1]:8080",
        "localhost",
    ] {
        let (status, _, _) = get(&app, "/api/overview", &[("host", host)]).await;
        assert_eq!(status, StatusCode::OK, "{host}");
    }
    for host in [
        "evil.example:8080",
        "127.0.0.1.evil.example",
        "localhost.evil",
        "",
    ] {
        let (status, _, _) = get(&app, "/api/overview", &[("host", host)]).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{host:?}");
    }
}
