//! Dashboard benchmark (printed, never asserted; `bench/web.sh`, part of `make bench`):
//!
//! 1. page render time (HTML and JSON, through the router) with 200 commits and 1,000 pods,
//!    against a baseline of 1 commit and 10 pods in the same run;
//! 2. SSE delivery latency from a change of the watched objects to 50 connected clients,
//!    against 1 client;
//! 3. server memory per connected SSE client (clients in a child process, so only the
//!    server's side is counted).
//!
//! Runs on fixture snapshots served over real loopback TCP; no cluster needed. The time from
//! the API server to the dashboard's watch is the API server's and is not part of these figures.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use graft_web::Snapshot;
use graft_web::cache::FixedSource;
use graft_web::fixtures;
use http_body_util::BodyExt;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

/// `namespaces` GitSyncs, each with `commits` commits and a CloneSet of `pods` pods.
fn world(namespaces: usize, commits: usize, pods: usize, now: Timestamp) -> Snapshot {
    let mut snap = Snapshot::empty(now);
    for n in 0..namespaces {
        let s = fixtures::scene(commits, pods, "bench", now);
        let ns = format!("team-{n}");
        let rename = |v: Value| -> Value {
            let t = serde_json::to_string(&v)
                .unwrap_or_default()
                .replace("\"team\"", &format!("\"{ns}\""))
                .replace("\"team.app\"", &format!("\"{ns}.app\""));
            serde_json::from_str(&t).unwrap_or(v)
        };
        for g in s.gitsyncs {
            let v = rename(serde_json::to_value(&*g).unwrap_or_default());
            snap.gitsyncs
                .push(Arc::new(serde_json::from_value(v).expect("gitsync")));
        }
        for w in s.workloads {
            let v = rename(serde_json::to_value(&*w.object).unwrap_or_default());
            snap.workloads.push(graft_web::snapshot::LiveWorkload {
                kind: w.kind,
                object: Arc::new(serde_json::from_value(v).expect("workload")),
            });
        }
        for p in s.pods {
            let v = rename(serde_json::to_value(&*p).unwrap_or_default());
            snap.pods
                .push(Arc::new(serde_json::from_value(v).expect("pod")));
        }
        for e in s.events {
            let v = rename(serde_json::to_value(&*e).unwrap_or_default());
            snap.events
                .push(Arc::new(serde_json::from_value(v).expect("event")));
        }
    }
    snap
}

async fn render(app: &axum::Router, uri: &str) -> usize {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    assert!(res.status().is_success(), "{uri}: {}", res.status());
    res.into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .len()
}

/// Median time of `iters` renders of `uri`, and the page size.
async fn time_page(app: &axum::Router, uri: &str, iters: usize) -> (Duration, usize) {
    let mut times = Vec::with_capacity(iters);
    let mut size = 0;
    for _ in 0..iters {
        let t = Instant::now();
        size = render(app, uri).await;
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], size)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn pages() {
    let now = Timestamp::now();
    let sha = format!("{:040x}", 200);
    let pages = |sha: &str| {
        [
            ("overview", "/".to_string()),
            ("overview JSON", "/api/overview".to_string()),
            ("timeline", "/gitsyncs/team-0/app".to_string()),
            ("timeline JSON", "/api/gitsyncs/team-0/app".to_string()),
            ("commit", format!("/gitsyncs/team-0/app/commits/{sha}")),
            (
                "workload",
                "/workloads/apps.kruise.io/CloneSet/team-0/web".to_string(),
            ),
        ]
    };
    // 200 commits in one GitSync's history (10x the history the controller keeps) and 1,000
    // pods: one GitSync of 200 commits with 1,000 pods.
    let big = graft_web::router(
        Arc::new(FixedSource::new(world(1, 200, 1000, now))),
        None,
        None,
    );
    let small = graft_web::router(Arc::new(FixedSource::new(world(1, 1, 10, now))), None, None);
    println!("page render (median of 30, HTML/JSON through the router, no network)");
    println!(
        "  {:<15} {:>22} {:>22} {:>8}",
        "page", "200 commits/1000 pods", "baseline 1/10", "ratio"
    );
    for ((name, uri), (_, small_uri)) in pages(&sha).into_iter().zip(pages(&format!("{:040x}", 1)))
    {
        let (b, bsize) = time_page(&big, &uri, 30).await;
        let (s, _) = time_page(&small, &small_uri, 30).await;
        println!(
            "  {:<15} {:>11.2} ms {:>6} KiB {:>13.3} ms {:>7.1}x",
            name,
            ms(b),
            bsize / 1024,
            ms(s),
            ms(b) / ms(s).max(1e-6)
        );
    }
}

async fn serve(source: Arc<FixedSource>) -> std::net::SocketAddr {
    let app = graft_web::router(source, None, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// An SSE client: connects, waits for `hello`, then reports each `change` on `tx`.
async fn sse_client(
    addr: std::net::SocketAddr,
    ready: tokio::sync::mpsc::Sender<()>,
    tx: tokio::sync::mpsc::UnboundedSender<Instant>,
) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /events HTTP/1.1\r\nHost: bench\r\n\r\n")
        .await
        .expect("request");
    let mut buf = vec![0u8; 4096];
    let mut hello = false;
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        if !hello && text.contains("event: hello") {
            hello = true;
            let _ = ready.send(()).await;
        }
        for _ in 0..text.matches("event: change").count() {
            let _ = tx.send(Instant::now());
        }
    }
}

/// Latencies (p50, p99, max) from a change to its delivery, over `rounds` changes to `clients`.
async fn sse_latency(clients: usize, rounds: usize) -> (Duration, Duration, Duration) {
    let now = Timestamp::now();
    let snaps = [world(1, 20, 100, now), world(1, 21, 100, now)];
    let source = Arc::new(FixedSource::new(snaps[0].clone()));
    let addr = serve(source.clone()).await;
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(clients);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..clients {
        tokio::spawn(sse_client(addr, ready_tx.clone(), tx.clone()));
    }
    for _ in 0..clients {
        ready_rx.recv().await.expect("client ready");
    }
    let mut lat = Vec::new();
    for r in 0..rounds {
        let t0 = Instant::now();
        source.set(snaps[r % 2].clone());
        for _ in 0..clients {
            let at = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("delivery within 10 s")
                .expect("delivery");
            lat.push(at.duration_since(t0));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lat.sort();
    (
        lat[lat.len() / 2],
        lat[(lat.len() * 99 / 100).min(lat.len() - 1)],
        lat[lat.len() - 1],
    )
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Child mode: open `n` SSE connections to `addr`, print `connected`, hold them until stdin
/// closes.
async fn clients_mode(addr: std::net::SocketAddr, n: usize) {
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(n);
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..n {
        tokio::spawn(sse_client(addr, ready_tx.clone(), tx.clone()));
    }
    for _ in 0..n {
        ready_rx.recv().await.expect("client ready");
    }
    println!("connected");
    let _ = std::io::stdout().flush();
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
}

async fn memory(clients: usize) -> (u64, u64) {
    let now = Timestamp::now();
    let source = Arc::new(FixedSource::new(world(1, 20, 100, now)));
    let addr = serve(source.clone()).await;
    // Warm up the server's allocator and runtime with one connection.
    let _ = sse_latency_once(addr).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib();
    let exe = std::env::current_exe().expect("exe");
    let mut child = std::process::Command::new(exe)
        .args(["clients", &addr.to_string(), &clients.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("client process");
    let out = child.stdout.take().expect("stdout");
    tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    })
    .await
    .expect("child ready");
    // One change delivered to every client, so each stream has run once.
    source.set(world(1, 21, 100, now));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib();
    drop(child.stdin.take());
    let _ = child.wait();
    (before, after)
}

async fn sse_latency_once(addr: std::net::SocketAddr) -> bool {
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(1);
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let h = tokio::spawn(sse_client(addr, ready_tx, tx));
    let ok = ready_rx.recv().await.is_some();
    h.abort();
    ok
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("clients") {
        let addr = args[2].parse().expect("addr");
        let n = args[3].parse().expect("n");
        clients_mode(addr, n).await;
        return;
    }
    let _ = SignedDuration::ZERO;
    pages().await;

    println!();
    println!("SSE delivery latency, change of the watched objects -> event read by every client");
    println!("(20 changes; loopback TCP)");
    let (b50, b99, bmax) = sse_latency(1, 20).await;
    let (p50, p99, max) = sse_latency(50, 20).await;
    println!(
        "  {:<12} {:>10} {:>10} {:>10}",
        "clients", "p50", "p99", "max"
    );
    println!(
        "  {:<12} {:>7.3} ms {:>7.3} ms {:>7.3} ms",
        "1 (baseline)",
        ms(b50),
        ms(b99),
        ms(bmax)
    );
    println!(
        "  {:<12} {:>7.3} ms {:>7.3} ms {:>7.3} ms   (p50 {:.1}x the baseline)",
        "50",
        ms(p50),
        ms(p99),
        ms(max),
        ms(p50) / ms(b50).max(1e-6)
    );

    println!();
    let n = 500;
    let (before, after) = memory(n).await;
    println!("server memory per connected SSE client ({n} clients in a child process)");
    println!(
        "  RSS {before} KiB idle -> {after} KiB with {n} clients: {:.1} KiB per client ({:.2}% of the idle server each)",
        after.saturating_sub(before) as f64 / n as f64,
        after.saturating_sub(before) as f64 / n as f64 / before.max(1) as f64 * 100.0
    );
}
