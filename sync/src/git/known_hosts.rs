//! OpenSSH `known_hosts` parsing and host key checking. graft never trusts an SSH host on first
//! use: a host missing from known_hosts, or presenting another key, is refused.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A parsed known_hosts file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    revoked: bool,
    hosts: Hosts,
    key_type: String,
    key: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Hosts {
    /// Comma-separated patterns; `!` negates, `*` and `?` are wildcards.
    Patterns(Vec<String>),
    /// `|1|salt|hash`: HMAC-SHA1 of the host name keyed with the salt.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

/// The outcome of checking a host key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// A known_hosts line for the host has this key.
    Trusted,
    /// No line names the host.
    UnknownHost,
    /// Lines name the host, with other keys (the key types they have are listed).
    Mismatch {
        /// Key types known for the host.
        known_types: Vec<String>,
    },
    /// The key is marked `@revoked`.
    Revoked,
}

impl KnownHosts {
    /// Parses known_hosts text. Comments, blank lines and `@cert-authority` lines (certificates
    /// are not supported) are skipped; a malformed line is an error naming its line number.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let mut first = fields.next().unwrap_or_default();
            let mut revoked = false;
            if first.starts_with('@') {
                match first {
                    "@revoked" => revoked = true,
                    "@cert-authority" => continue,
                    other => return Err(format!("line {}: unknown marker {other}", i + 1)),
                }
                first = fields.next().unwrap_or_default();
            }
            let (Some(key_type), Some(key_b64)) = (fields.next(), fields.next()) else {
                return Err(format!(
                    "line {}: expected `hosts key-type base64-key`",
                    i + 1
                ));
            };
            let key = B64
                .decode(key_b64)
                .map_err(|_| format!("line {}: the key is not valid base64", i + 1))?;
            let hosts = if let Some(rest) = first.strip_prefix("|1|") {
                let (salt, hash) = rest
                    .split_once('|')
                    .ok_or_else(|| format!("line {}: malformed hashed host", i + 1))?;
                Hosts::Hashed {
                    salt: B64
                        .decode(salt)
                        .map_err(|_| format!("line {}: malformed hashed host", i + 1))?,
                    hash: B64
                        .decode(hash)
                        .map_err(|_| format!("line {}: malformed hashed host", i + 1))?,
                }
            } else {
                Hosts::Patterns(first.split(',').map(str::to_ascii_lowercase).collect())
            };
            entries.push(Entry {
                revoked,
                hosts,
                key_type: key_type.to_string(),
                key,
            });
        }
        Ok(Self { entries })
    }

    /// True when no host is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks the key a server presented. `host` is the known_hosts name (`host` or
    /// `[host]:port`); `key` is the raw public key blob (SSH wire format).
    pub fn check(&self, host: &str, key: &[u8]) -> HostKeyCheck {
        self.check_with(host, |e| e.key == key)
    }

    /// Like [`KnownHosts::check`], for when only the SHA-256 of the presented key is known.
    pub fn check_sha256(&self, host: &str, key_sha256: &[u8; 32]) -> HostKeyCheck {
        self.check_with(host, |e| Sha256::digest(&e.key).as_slice() == key_sha256)
    }

    fn check_with(&self, host: &str, same_key: impl Fn(&Entry) -> bool) -> HostKeyCheck {
        let host = host.to_ascii_lowercase();
        let for_host: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.hosts.matches(&host))
            .collect();
        if for_host.iter().any(|e| e.revoked && same_key(e)) {
            return HostKeyCheck::Revoked;
        }
        let valid: Vec<&&Entry> = for_host.iter().filter(|e| !e.revoked).collect();
        if valid.is_empty() {
            return HostKeyCheck::UnknownHost;
        }
        if valid.iter().any(|e| same_key(e)) {
            return HostKeyCheck::Trusted;
        }
        let mut known_types: Vec<String> = valid.iter().map(|e| e.key_type.clone()).collect();
        known_types.sort();
        known_types.dedup();
        HostKeyCheck::Mismatch { known_types }
    }
}

impl Hosts {
    fn matches(&self, host: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(host.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let mut matched = false;
                for p in patterns {
                    if let Some(neg) = p.strip_prefix('!') {
                        if wildcard(neg, host) {
                            return false;
                        }
                    } else if wildcard(p, host) {
                        matched = true;
                    }
                }
                matched
            }
        }
    }
}

/// Glob with `*` (any run) and `?` (one character), as OpenSSH matches host patterns.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real key blobs (ed25519 wire format: string "ssh-ed25519" + 32-byte key).
    fn blob(fill: u8) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&11u32.to_be_bytes());
        b.extend_from_slice(b"ssh-ed25519");
        b.extend_from_slice(&32u32.to_be_bytes());
        b.extend_from_slice(&[fill; 32]);
        b
    }

    fn line(hosts: &str, fill: u8) -> String {
        format!("{hosts} ssh-ed25519 {}\n", B64.encode(blob(fill)))
    }

    fn hashed(host: &str, salt: &[u8]) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(salt).unwrap();
        mac.update(host.as_bytes());
        format!(
            "|1|{}|{}",
            B64.encode(salt),
            B64.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn host_key_table() {
        let text = [
            "# comment\n".to_string(),
            line("github.com,140.82.121.4", 1),
            line("[git.example]:2222", 2),
            line("*.corp.example,!evil.corp.example", 3),
            line(&hashed("hashed.example", b"0123456789abcdefghij"), 4),
            format!("@revoked {}", line("revoked.example", 5)),
            line("revoked.example", 6),
            format!("@cert-authority {}", line("*", 7)),
        ]
        .concat();
        let kh = KnownHosts::parse(&text).unwrap();
        let cases: Vec<(&str, u8, HostKeyCheck)> = vec![
            ("github.com", 1, HostKeyCheck::Trusted),
            ("GitHub.com", 1, HostKeyCheck::Trusted),
            ("140.82.121.4", 1, HostKeyCheck::Trusted),
            (
                "github.com",
                9,
                HostKeyCheck::Mismatch {
                    known_types: vec!["ssh-ed25519".into()],
                },
            ),
            ("[git.example]:2222", 2, HostKeyCheck::Trusted),
            // The same host on port 22 is another host for known_hosts.
            ("git.example", 2, HostKeyCheck::UnknownHost),
            ("a.corp.example", 3, HostKeyCheck::Trusted),
            ("evil.corp.example", 3, HostKeyCheck::UnknownHost),
            ("hashed.example", 4, HostKeyCheck::Trusted),
            ("other.example", 4, HostKeyCheck::UnknownHost),
            ("revoked.example", 5, HostKeyCheck::Revoked),
            ("revoked.example", 6, HostKeyCheck::Trusted),
            // @cert-authority lines never trust a plain key.
            ("anything.example", 7, HostKeyCheck::UnknownHost),
        ];
        for (host, fill, want) in cases {
            assert_eq!(kh.check(host, &blob(fill)), want, "{host} key {fill}");
        }
        let sha: [u8; 32] = Sha256::digest(blob(1)).into();
        assert_eq!(kh.check_sha256("github.com", &sha), HostKeyCheck::Trusted);
        assert_eq!(
            KnownHosts::default().check("github.com", &blob(1)),
            HostKeyCheck::UnknownHost
        );
    }

    #[test]
    fn malformed_lines_name_their_number() {
        let e = KnownHosts::parse("# ok\ngithub.com ssh-ed25519\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = KnownHosts::parse("github.com ssh-ed25519 !!!\n").unwrap_err();
        assert!(e.contains("base64"), "{e}");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*.example.com", "a.b.example.com"));
        assert!(wildcard("git?.example", "git1.example"));
        assert!(!wildcard("git?.example", "git.example"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*b", "ac"));
    }
}
