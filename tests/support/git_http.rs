//! A real smart-HTTP Git server for the tests: `git http-backend` (the CGI program Git ships)
//! behind a small HTTP/1.1 front that asks for basic authentication, like a Git host does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Serves the bare repositories under `root` at `http://127.0.0.1:<port>/<name>.git` to
/// clients that authenticate as `user`/`password`; stops when dropped.
pub struct GitHttpServer {
    /// The address it listens on.
    pub host: String,
    /// The port it listens on.
    pub port: u16,
    /// The directory of bare repositories.
    pub root: PathBuf,
    stop: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

impl GitHttpServer {
    /// Starts serving `root` on 127.0.0.1 in a background thread.
    pub fn start(root: &Path, user: &str, password: &str) -> GitHttpServer {
        Self::start_on("127.0.0.1", root, user, password)
    }

    /// Starts serving `root` on `host` (e.g. the node address pods reach) in a background thread.
    pub fn start_on(host: &str, root: &Path, user: &str, password: &str) -> GitHttpServer {
        let listener = TcpListener::bind((host, 0)).expect("bind the git HTTP server");
        let port = listener.local_addr().expect("local addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let expected = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
        let (root_dir, stop_flag, refused_count) =
            (root.to_path_buf(), stop.clone(), refused.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop_flag.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, expected, refused) =
                    (root_dir.clone(), expected.clone(), refused_count.clone());
                std::thread::spawn(move || {
                    if let Err(e) = serve(conn, &root, &expected, &refused) {
                        eprintln!("git http server: {e}");
                    }
                });
            }
        });
        GitHttpServer {
            host: host.to_string(),
            port,
            root: root.to_path_buf(),
            stop,
            refused,
        }
    }

    /// The URL of the bare repository `<name>.git`.
    pub fn url(&self, name: &str) -> String {
        self.url_of(&format!("{name}.git"))
    }

    /// The URL of the repository at `path` under the root (bare, or a work tree's directory).
    pub fn url_of(&self, path: &str) -> String {
        format!("http://{}:{}/{path}", self.host, self.port)
    }

    /// How many requests were answered 401 (missing or wrong credentials).
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect((self.host.as_str(), self.port));
    }
}

/// One request, one response, then the connection closes.
fn serve(
    conn: TcpStream,
    root: &Path,
    expected_auth: &str,
    refused: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    }
    let mut out = conn;
    if header("authorization").as_deref() != Some(expected_auth) {
        refused.fetch_add(1, Ordering::Relaxed);
        return out.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cgi = Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        // The test's repositories belong to whoever runs the test.
        .env("GIT_CONFIG_PARAMETERS", "'safe.directory'='*'")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("GIT_PROTOCOL", header("git-protocol").unwrap_or_default())
        .env("REMOTE_USER", "test")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    cgi.stdin.take().expect("stdin").write_all(&body)?;
    let output = cgi.wait_with_output()?;
    let text = output.stdout;
    let split = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| text.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (head, payload) = match split {
        Some((i, n)) => (
            String::from_utf8_lossy(&text[..i]).to_string(),
            &text[i + n..],
        ),
        None => (String::new(), &text[..]),
    };
    let mut status = "200 OK".to_string();
    let mut response_headers = String::new();
    for h in head.lines() {
        match h.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_string(),
            Some(_) => {
                response_headers.push_str(h.trim_end());
                response_headers.push_str("\r\n");
            }
            None => {}
        }
    }
    out.write_all(
        format!(
            "HTTP/1.1 {status}\r\n{response_headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
            payload.len()
        )
        .as_bytes(),
    )?;
    out.write_all(payload)
}

/// Standard base64 with padding (for the expected `Authorization` header).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
