//! Repository URLs: which transport, which host, and how to show them without credentials.

use std::fmt;

use crate::Error;

/// How a repository is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `file://` URL.
    File,
    /// A plain local path (`/srv/git/repo`, `./repo`).
    Local,
    /// `git://` (the git daemon protocol, unauthenticated).
    Git,
    /// `http://`.
    Http,
    /// `https://`.
    Https,
    /// `ssh://` or the scp-like `user@host:path`.
    Ssh,
}

/// A parsed repository URL. The password (or token) found in the URL is taken out: libgit2 is
/// given [`RepoUrl::for_libgit2`] and the password travels as a credential, so it can appear
/// neither in libgit2's messages nor in ours.
#[derive(Clone, PartialEq, Eq)]
pub struct RepoUrl {
    transport: Transport,
    for_libgit2: String,
    redacted: String,
    host: Option<String>,
    port: Option<u16>,
    username: Option<String>,
    password: Option<String>,
}

impl fmt::Debug for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RepoUrl").field(&self.redacted).finish()
    }
}

impl fmt::Display for RepoUrl {
    /// The URL without credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl RepoUrl {
    /// Parses `https://`, `http://`, `ssh://`, `git://`, `file://`, scp-like `user@host:path`
    /// and local paths.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(invalid(raw, "the URL is empty"));
        }
        if let Some((scheme, _)) = raw.split_once("://") {
            let transport = match scheme.to_ascii_lowercase().as_str() {
                "file" => Transport::File,
                "git" => Transport::Git,
                "http" => Transport::Http,
                "https" => Transport::Https,
                "ssh" | "git+ssh" | "ssh+git" => Transport::Ssh,
                other => {
                    return Err(invalid(
                        raw,
                        &format!(
                            "unsupported scheme {other:?} (use https, http, ssh, git or file)"
                        ),
                    ));
                }
            };
            return Self::parse_hierarchical(raw, transport);
        }
        if let Some((user_host, path)) = scp_like(raw) {
            let (username, host) = match user_host.rsplit_once('@') {
                Some((u, h)) => (Some(u.to_string()), h),
                None => (None, user_host),
            };
            if host.is_empty() || path.is_empty() {
                return Err(invalid(raw, "expected user@host:path"));
            }
            return Ok(Self {
                transport: Transport::Ssh,
                for_libgit2: raw.to_string(),
                redacted: raw.to_string(),
                host: Some(host.to_string()),
                port: None,
                username,
                password: None,
            });
        }
        Ok(Self {
            transport: Transport::Local,
            for_libgit2: raw.to_string(),
            redacted: raw.to_string(),
            host: None,
            port: None,
            username: None,
            password: None,
        })
    }

    fn parse_hierarchical(raw: &str, transport: Transport) -> Result<Self, Error> {
        // Never echo a URL that failed to parse: it may hold a password.
        let url = url::Url::parse(raw).map_err(|e| Error::InvalidUrl {
            url: strip_userinfo(raw),
            reason: e.to_string(),
        })?;
        let username = Some(url.username())
            .filter(|u| !u.is_empty())
            .map(percent_decode);
        let password = url.password().map(percent_decode);
        let host = url.host_str().map(str::to_string);
        if matches!(
            transport,
            Transport::Git | Transport::Http | Transport::Https | Transport::Ssh
        ) && host.as_deref().is_none_or(str::is_empty)
        {
            return Err(invalid(&strip_userinfo(raw), "the URL has no host"));
        }
        let mut clean = url.clone();
        // Cannot fail for URLs with a host; file:// URLs carry no credentials anyway.
        let _ = clean.set_password(None);
        let for_libgit2 = match transport {
            // A token in the user part is a secret too; it goes to the credential callback.
            Transport::Http | Transport::Https => {
                let _ = clean.set_username("");
                clean.to_string()
            }
            _ => clean.to_string(),
        };
        let redacted = match transport {
            Transport::Http | Transport::Https if username.is_some() || password.is_some() => {
                let mut r = url.clone();
                let _ = r.set_password(None);
                let _ = r.set_username("***");
                r.to_string()
            }
            _ => {
                let mut r = url.clone();
                if password.is_some() {
                    let _ = r.set_password(Some("***"));
                }
                r.to_string()
            }
        };
        Ok(Self {
            transport,
            for_libgit2,
            redacted,
            host,
            port: url.port(),
            username,
            password,
        })
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The URL handed to libgit2: without password, and without user for http(s).
    pub fn for_libgit2(&self) -> &str {
        &self.for_libgit2
    }

    /// The URL as it may be shown in logs, status and errors.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// Host name, for remote transports.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The port given in the URL, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The user name given in the URL, if any.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The password (or token) given in the URL, if any. Never show it.
    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The name known_hosts uses for the host: `host`, or `[host]:port` when the port is not 22.
    pub fn known_hosts_name(&self) -> Option<String> {
        let host = self.host.as_deref()?;
        Some(match self.port {
            Some(p) if p != 22 => format!("[{host}]:{p}"),
            _ => host.to_string(),
        })
    }
}

/// `user@host:path` (no scheme, a colon before any slash, and not a Windows drive letter).
fn scp_like(raw: &str) -> Option<(&str, &str)> {
    let colon = raw.find(':')?;
    if raw[..colon].contains('/') || colon < 2 {
        return None;
    }
    Some((&raw[..colon], &raw[colon + 1..]))
}

fn invalid(url: &str, reason: &str) -> Error {
    Error::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

/// Removes anything between `://` and the last `@` of the authority, for URLs that did not parse.
fn strip_userinfo(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => raw.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces every occurrence of the secrets (ignoring ones shorter than 4 bytes, which would
/// mangle ordinary words) and of the raw URL by `***` and the redacted URL.
pub(crate) fn scrub(message: &str, url: &RepoUrl, secrets: &[&str]) -> String {
    let mut m = message.to_string();
    for s in secrets.iter().chain(url.password.as_deref().iter()) {
        if s.len() >= 4 {
            m = m.replace(s, "***");
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_and_hosts() {
        let cases = [
            (
                "https://github.com/o/r.git",
                Transport::Https,
                Some("github.com"),
                None,
            ),
            (
                "http://127.0.0.1:8080/r.git",
                Transport::Http,
                Some("127.0.0.1"),
                Some(8080),
            ),
            (
                "ssh://git@example.com:2222/o/r.git",
                Transport::Ssh,
                Some("example.com"),
                Some(2222),
            ),
            (
                "git@github.com:o/r.git",
                Transport::Ssh,
                Some("github.com"),
                None,
            ),
            (
                "git://127.0.0.1/r.git",
                Transport::Git,
                Some("127.0.0.1"),
                None,
            ),
            ("file:///srv/git/r.git", Transport::File, None, None),
            ("/srv/git/r.git", Transport::Local, None, None),
            ("./repo", Transport::Local, None, None),
        ];
        for (raw, t, host, port) in cases {
            let u = RepoUrl::parse(raw).unwrap();
            assert_eq!(u.transport(), t, "{raw}");
            assert_eq!(u.host(), host, "{raw}");
            assert_eq!(u.port(), port, "{raw}");
        }
        let u = RepoUrl::parse("ssh://git@example.com:2222/o/r.git").unwrap();
        assert_eq!(u.known_hosts_name().as_deref(), Some("[example.com]:2222"));
        assert_eq!(u.username(), Some("git"));
        let u = RepoUrl::parse("git@github.com:o/r.git").unwrap();
        assert_eq!(u.known_hosts_name().as_deref(), Some("github.com"));
        assert!(RepoUrl::parse("ftp://x/r").is_err());
        assert!(RepoUrl::parse("").is_err());
        assert!(RepoUrl::parse("https://").is_err());
    }

    #[test]
    fn credentials_never_show() {
        let u = RepoUrl::parse("https://alice:s3cr%40t@git.example/o/r.git").unwrap();
        assert_eq!(u.username(), Some("alice"));
        assert_eq!(u.password(), Some("s3cr@t"));
        assert_eq!(u.for_libgit2(), "https://git.example/o/r.git");
        assert_eq!(u.redacted(), "https://***@git.example/o/r.git");
        assert!(!format!("{u:?} {u}").contains("s3cr"));

        let u = RepoUrl::parse("https://ghp_tokentoken@github.com/o/r").unwrap();
        assert!(!format!("{u:?} {u} {}", u.for_libgit2()).contains("ghp_"));

        let e = RepoUrl::parse("https://bob:hunter22@[bad/r").unwrap_err();
        assert!(!e.to_string().contains("hunter22"), "{e}");

        let u = RepoUrl::parse("https://bob:hunter22@git.example/r").unwrap();
        let m = scrub(
            "auth failed for bob:hunter22 and xyz",
            &u,
            &["xyz", "tok-1234"],
        );
        assert_eq!(m, "auth failed for bob:*** and xyz");
    }
}
