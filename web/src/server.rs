//! The HTTP side: pages, JSON API, SSE, static assets, bearer-token check, security headers.
//! Everything is read-only: only GET routes exist.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use futures::Stream;
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::cache::{Cache, Source};
use crate::diff::{self, Diff, DiffSource};
use crate::view::{self, CommitDetail, Overview, Timeline, WorkloadDetail};

/// How `graft web` runs.
#[derive(Clone)]
pub struct Options {
    /// Where to listen (default 127.0.0.1:8080: local only).
    pub addr: SocketAddr,
    /// Bearer token every request must carry (header, or the cookie set by `?token=`).
    pub token: Option<String>,
    /// Show only this namespace (and watch only it).
    pub namespace: Option<String>,
    /// Where the manifest diffs of commits come from (none: the commit page says so).
    pub diffs: Option<Arc<dyn DiffSource>>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "(set)"))
            .field("namespace", &self.namespace)
            .field("diffs", &self.diffs.is_some())
            .finish()
    }
}

/// Name of the cookie that carries the token for browsers.
pub const TOKEN_COOKIE: &str = "graft_token";
/// Most diffs kept in memory (a commit's diff never changes).
const DIFF_CACHE: usize = 64;

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct AppState {
    source: Arc<dyn Source>,
    token: Option<String>,
    diff_source: Option<Arc<dyn DiffSource>>,
    diffs: Mutex<HashMap<String, Diff>>,
}

type Shared = Arc<AppState>;

/// The dashboard's routes over `source`, with commit diffs from `diffs`.
pub fn router(
    source: Arc<dyn Source>,
    token: Option<String>,
    diffs: Option<Arc<dyn DiffSource>>,
) -> Router {
    let state = Arc::new(AppState {
        source,
        token: token.filter(|t| !t.is_empty()),
        diff_source: diffs,
        diffs: Mutex::new(HashMap::new()),
    });
    let protected = Router::new()
        .route("/", get(overview_page))
        .route("/api/overview", get(overview_json))
        .route("/gitsyncs/{ns}/{name}", get(timeline_page))
        .route("/api/gitsyncs/{ns}/{name}", get(timeline_json))
        .route("/gitsyncs/{ns}/{name}/commits/{sha}", get(commit_page))
        .route("/api/gitsyncs/{ns}/{name}/commits/{sha}", get(commit_json))
        .route("/workloads/{group}/{kind}/{ns}/{name}", get(workload_page))
        .route(
            "/api/workloads/{group}/{kind}/{ns}/{name}",
            get(workload_json),
        )
        .route("/events", get(sse))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(protected)
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Watch the cluster and serve the dashboard until the process stops. On a loopback address,
/// requests must name a loopback host (see [`loopback_hosts_only`]).
pub async fn serve(client: kube::Client, opts: Options) -> std::io::Result<()> {
    let cache = Cache::start(client, opts.namespace.clone(), Duration::from_secs(15)).await;
    let mut app = router(Arc::new(cache), opts.token.clone(), opts.diffs.clone());
    if opts.addr.ip().is_loopback() {
        app = loopback_hosts_only(app);
    }
    let listener = tokio::net::TcpListener::bind(opts.addr).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        token = opts.token.is_some(),
        namespace = opts.namespace.as_deref().unwrap_or("(all)"),
        "dashboard listening"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

/// Refuses (421) requests whose `Host` is not `localhost`, `127.0.0.1` or `[::1]` (any port): a
/// web page on another site cannot then reach a dashboard bound to loopback through DNS
/// rebinding, token or not.
pub fn loopback_hosts_only(app: Router) -> Router {
    app.layer(middleware::from_fn(|req: Request, next: Next| async move {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let name = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or_default(),
            None => host.split(':').next().unwrap_or_default(),
        };
        if matches!(name, "localhost" | "127.0.0.1" | "::1") {
            next.run(req).await
        } else {
            (
                StatusCode::MISDIRECTED_REQUEST,
                "421: this dashboard answers only to localhost, 127.0.0.1 or [::1]\n",
            )
                .into_response()
        }
    }))
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

fn token_matches(given: &str, want: &str) -> bool {
    given.as_bytes().ct_eq(want.as_bytes()).into()
}

fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = v.strip_prefix("Bearer ")
    {
        return Some(t.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == TOKEN_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// With a token set: the request must carry it (`Authorization: Bearer`, or the cookie). A
/// browser opens `/?token=…` once: the token moves into an HttpOnly cookie and the address
/// loses it.
async fn auth(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let Some(want) = &st.token else {
        return next.run(req).await;
    };
    if presented_token(req.headers()).is_some_and(|t| token_matches(&t, want)) {
        return next.run(req).await;
    }
    let query_token = req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| v.to_string())
    });
    if let Some(t) = query_token
        && token_matches(&t, want)
    {
        let path = req.uri().path().to_string();
        let cookie = format!("{TOKEN_COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict");
        let mut res = (StatusCode::SEE_OTHER, "").into_response();
        if let (Ok(loc), Ok(c)) = (HeaderValue::from_str(&path), HeaderValue::from_str(&cookie)) {
            res.headers_mut().insert(header::LOCATION, loc);
            res.headers_mut().insert(header::SET_COOKIE, c);
        }
        return res;
    }
    let mut res = (
        StatusCode::UNAUTHORIZED,
        "401 unauthorized: send the dashboard's token (Authorization: Bearer <token>, or open /?token=<token> once)\n",
    )
        .into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"graft\""),
    );
    res
}

#[derive(Serialize)]
struct ApiError {
    error: String,
}

fn json_or_404<T: Serialize>(v: Option<T>, what: String) -> Response {
    match v {
        Some(v) => Json(v).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(ApiError {
                error: format!("{what} not found"),
            }),
        )
            .into_response(),
    }
}

fn html<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(s) => Html(s).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error\n").into_response()
        }
    }
}

fn page_404(what: String) -> Response {
    let mut r = html(&NotFoundPage {
        title: "Not found".into(),
        what,
    });
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

async fn not_found() -> Response {
    page_404("this page".into())
}

// ---- templates --------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage<'a> {
    title: String,
    v: &'a Overview,
}

#[derive(Template)]
#[template(path = "timeline.html")]
struct TimelinePage<'a> {
    title: String,
    v: &'a Timeline,
}

#[derive(Template)]
#[template(path = "commit.html")]
struct CommitPage<'a> {
    title: String,
    v: &'a CommitDetail,
}

#[derive(Template)]
#[template(path = "workload.html")]
struct WorkloadPage<'a> {
    title: String,
    v: &'a WorkloadDetail,
}

#[derive(Template)]
#[template(path = "notfound.html")]
struct NotFoundPage {
    title: String,
    what: String,
}

/// Renders the overview page of a snapshot (also used by the benchmark).
pub fn render_overview(v: &Overview) -> Result<String, askama::Error> {
    OverviewPage {
        title: "Overview".into(),
        v,
    }
    .render()
}

/// Renders the timeline page (also used by the benchmark).
pub fn render_timeline(v: &Timeline) -> Result<String, askama::Error> {
    TimelinePage {
        title: format!("{}/{}", v.gitsync.namespace, v.gitsync.name),
        v,
    }
    .render()
}

// ---- handlers ---------------------------------------------------------------------------------

async fn overview_page(State(st): State<Shared>) -> Response {
    let v = view::overview(&st.source.snapshot());
    html(&OverviewPage {
        title: "Overview".into(),
        v: &v,
    })
}

async fn overview_json(State(st): State<Shared>) -> Response {
    Json(view::overview(&st.source.snapshot())).into_response()
}

async fn timeline_page(
    State(st): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    match view::timeline(&st.source.snapshot(), &ns, &name) {
        Some(v) => html(&TimelinePage {
            title: format!("{ns}/{name}"),
            v: &v,
        }),
        None => page_404(format!("GitSync {ns}/{name}")),
    }
}

async fn timeline_json(
    State(st): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    json_or_404(
        view::timeline(&st.source.snapshot(), &ns, &name),
        format!("GitSync {ns}/{name}"),
    )
}

async fn commit_detail(st: &Shared, ns: &str, name: &str, sha: &str) -> Option<CommitDetail> {
    let snap = st.source.snapshot();
    let mut d = view::commit_detail(&snap, ns, name, sha)?;
    let gs = view::find_gitsync(&snap, ns, name)?;
    let key = format!("{ns}/{name}/{sha}/{}", d.previous.as_deref().unwrap_or(""));
    let cached = st.diffs.lock().ok().and_then(|m| m.get(&key).cloned());
    d.diff = Some(match cached {
        Some(diff) => diff,
        None => {
            let diff = match &st.diff_source {
                None => Diff {
                    note: Some("no diff: the dashboard was started without a Git cache".into()),
                    ..Default::default()
                },
                Some(source) => {
                    diff::of_commit(source.as_ref(), gs, d.previous.as_deref(), sha).await
                }
            };
            // Only a diff that was computed is final; "no cache yet" may change.
            let computed = !diff.objects.is_empty() || diff.unchanged > 0;
            if computed && let Ok(mut m) = st.diffs.lock() {
                if m.len() >= DIFF_CACHE {
                    m.clear();
                }
                m.insert(key, diff.clone());
            }
            diff
        }
    });
    Some(d)
}

async fn commit_page(
    State(st): State<Shared>,
    Path((ns, name, sha)): Path<(String, String, String)>,
) -> Response {
    match commit_detail(&st, &ns, &name, &sha).await {
        Some(v) => html(&CommitPage {
            title: format!("{} · {ns}/{name}", crate::format::short_sha(&sha)),
            v: &v,
        }),
        None => page_404(format!("commit {sha} of GitSync {ns}/{name}")),
    }
}

async fn commit_json(
    State(st): State<Shared>,
    Path((ns, name, sha)): Path<(String, String, String)>,
) -> Response {
    json_or_404(
        commit_detail(&st, &ns, &name, &sha).await,
        format!("commit {sha} of GitSync {ns}/{name}"),
    )
}

async fn workload_page(
    State(st): State<Shared>,
    Path((group, kind, ns, name)): Path<(String, String, String, String)>,
) -> Response {
    match view::workload_detail(&st.source.snapshot(), &group, &kind, &ns, &name) {
        Some(v) => html(&WorkloadPage {
            title: format!("{kind} {ns}/{name}"),
            v: &v,
        }),
        None => page_404(format!("{kind} {ns}/{name}")),
    }
}

async fn workload_json(
    State(st): State<Shared>,
    Path((group, kind, ns, name)): Path<(String, String, String, String)>,
) -> Response {
    json_or_404(
        view::workload_detail(&st.source.snapshot(), &group, &kind, &ns, &name),
        format!("{group}/{kind} {ns}/{name}"),
    )
}

/// Server-sent events: `event: change` with the change counter whenever a watched object
/// changes. Changes that arrive while a client is slow are coalesced into one event.
async fn sse(State(st): State<Shared>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = st.source.changes();
    let first = *rx.borrow();
    let hello = futures::stream::once(async move {
        Ok(Event::default().event("hello").data(first.to_string()))
    });
    let changes = futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        let v = *rx.borrow_and_update();
        Some((Ok(Event::default().event("change").data(v.to_string())), rx))
    });
    use futures::StreamExt;
    Sse::new(hello.chain(changes)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn css() -> Response {
    static_asset(CSS, "text/css; charset=utf-8")
}

async fn js() -> Response {
    static_asset(JS, "text/javascript; charset=utf-8")
}

fn static_asset(body: &'static str, ctype: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
