//! Push webhooks: verify the signature (or token) of a request, then read which repository
//! and ref were pushed. Pure: the HTTP server hands in the headers and the body, and syncs the
//! GitSyncs whose URL and ref [`Push::matches`] — a request that fails verification does
//! nothing (answer 401).
//!
//! | provider | header | check |
//! |---|---|---|
//! | GitHub | `X-Hub-Signature-256: sha256=<hex>` | HMAC-SHA256 of the body |
//! | GitLab | `X-Gitlab-Token: <secret>` | the secret itself |
//! | Gitea | `X-Gitea-Signature: <hex>` | HMAC-SHA256 of the body |
//! | Forgejo | `X-Forgejo-Signature: <hex>` | HMAC-SHA256 of the body |
//! | generic | `X-Graft-Signature: sha256=<hex>` | HMAC-SHA256 of the body |
//!
//! Every comparison is constant-time.

mod payload;
pub mod receiver;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use payload::same_repository;

use crate::Error;
use crate::git::Reference;

/// Largest body accepted (GitHub caps deliveries at 25 MB).
pub const MAX_PAYLOAD_BYTES: usize = 25 * 1024 * 1024;

/// Header of graft's generic signed webhook.
pub const GENERIC_SIGNATURE_HEADER: &str = "X-Graft-Signature";

/// Who sent a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// GitHub (and servers speaking its format).
    GitHub,
    /// GitLab.
    GitLab,
    /// Gitea.
    Gitea,
    /// Forgejo.
    Forgejo,
    /// graft's generic form.
    Generic,
}

impl Provider {
    /// Lower-case name, for errors, metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
            Self::Gitea => "gitea",
            Self::Forgejo => "forgejo",
            Self::Generic => "generic",
        }
    }

    /// The provider a request comes from, by its headers (Forgejo and Gitea also send
    /// GitHub-style headers, so their own are looked at first).
    pub fn detect(headers: &[(&str, &str)]) -> Option<Self> {
        let has = |name: &str| header(headers, name).is_some();
        if has("X-Forgejo-Signature") || has("X-Forgejo-Event") {
            Some(Self::Forgejo)
        } else if has("X-Gitea-Signature") || has("X-Gitea-Event") {
            Some(Self::Gitea)
        } else if has("X-Gitlab-Token") || has("X-Gitlab-Event") {
            Some(Self::GitLab)
        } else if has("X-Hub-Signature-256") || has("X-GitHub-Event") {
            Some(Self::GitHub)
        } else if has(GENERIC_SIGNATURE_HEADER) {
            Some(Self::Generic)
        } else {
            None
        }
    }
}

/// A verified push: the repository (under every URL the payload gives for it) and the ref.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Push {
    /// URLs of the pushed repository (clone, SSH and web URLs).
    pub repository_urls: Vec<String>,
    /// The pushed ref (`refs/heads/main`, `refs/tags/v1`), when given.
    pub git_ref: Option<String>,
    /// The new tip, when given.
    pub commit: Option<String>,
}

impl Push {
    /// True when the push concerns a GitSync following `reference` of `url`: the repository is
    /// the same (whatever the URL form) and the pushed ref is the followed branch or tag. A
    /// push without a ref, or a GitSync on the default branch or an exact commit, always
    /// matches (the sync's own ls-remote then decides cheaply).
    pub fn matches(&self, url: &str, reference: &Reference) -> bool {
        if !self.repository_urls.iter().any(|u| same_repository(u, url)) {
            return false;
        }
        let Some(pushed) = &self.git_ref else {
            return true;
        };
        let want = match reference {
            Reference::Branch(b) if b.starts_with("refs/") => b.clone(),
            Reference::Branch(b) => format!("refs/heads/{b}"),
            Reference::Tag(t) if t.starts_with("refs/") => t.clone(),
            Reference::Tag(t) => format!("refs/tags/{t}"),
            Reference::DefaultBranch | Reference::Commit(_) => return true,
        };
        *pushed == want
    }
}

/// What a verified webhook asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A push (branch or tag).
    Push(Push),
    /// A ping sent when the webhook is set up; answer 200 and do nothing.
    Ping,
    /// Another event type (named); answer 200 and do nothing.
    Other(String),
}

/// Verifies a webhook request with `secret` and reads its event. `headers` are
/// (name, value) pairs with names in any case.
pub fn verify(
    headers: &[(&str, &str)],
    body: &[u8],
    secret: &[u8],
) -> Result<(Provider, Event), Error> {
    let provider = Provider::detect(headers).ok_or(Error::WebhookSignature {
        provider: "unknown",
        reason: "no signature or token header of a known provider".into(),
    })?;
    let sig_err = |reason: &str| Error::WebhookSignature {
        provider: provider.name(),
        reason: reason.to_string(),
    };
    if secret.is_empty() {
        return Err(sig_err(
            "no webhook secret is configured; unsigned requests are refused",
        ));
    }
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(Error::WebhookPayload {
            provider: provider.name(),
            reason: format!("the body is larger than {MAX_PAYLOAD_BYTES} bytes"),
        });
    }
    match provider {
        Provider::GitHub => {
            let h = header(headers, "X-Hub-Signature-256")
                .ok_or_else(|| sig_err("X-Hub-Signature-256 is missing"))?;
            check_hmac(
                h.strip_prefix("sha256=")
                    .ok_or_else(|| sig_err("X-Hub-Signature-256 must start with sha256="))?,
                body,
                secret,
            )
            .map_err(|r| sig_err(&r))?;
        }
        Provider::Gitea | Provider::Forgejo => {
            let name = if provider == Provider::Gitea {
                "X-Gitea-Signature"
            } else {
                "X-Forgejo-Signature"
            };
            let h = header(headers, name).ok_or_else(|| sig_err(&format!("{name} is missing")))?;
            check_hmac(h, body, secret).map_err(|r| sig_err(&r))?;
        }
        Provider::Generic => {
            let h = header(headers, GENERIC_SIGNATURE_HEADER)
                .ok_or_else(|| sig_err("X-Graft-Signature is missing"))?;
            check_hmac(
                h.strip_prefix("sha256=")
                    .ok_or_else(|| sig_err("X-Graft-Signature must start with sha256="))?,
                body,
                secret,
            )
            .map_err(|r| sig_err(&r))?;
        }
        Provider::GitLab => {
            let token = header(headers, "X-Gitlab-Token")
                .ok_or_else(|| sig_err("X-Gitlab-Token is missing"))?;
            if !token_matches(token.as_bytes(), secret) {
                return Err(sig_err("X-Gitlab-Token does not match"));
            }
        }
    }
    let event =
        payload::event(provider, headers, body).map_err(|reason| Error::WebhookPayload {
            provider: provider.name(),
            reason,
        })?;
    Ok((provider, event))
}

/// The hex HMAC-SHA256 signature of `body` with `secret` (for clients and tests).
pub fn sign(body: &[u8], secret: &[u8]) -> String {
    let mut mac = new_mac(secret);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn new_mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!())
}

/// Compares a hex signature with the HMAC of the body in constant time.
fn check_hmac(hex_sig: &str, body: &[u8], secret: &[u8]) -> Result<(), String> {
    let sig =
        hex::decode(hex_sig.trim()).map_err(|_| "the signature is not hexadecimal".to_string())?;
    let mut mac = new_mac(secret);
    mac.update(body);
    mac.verify_slice(&sig)
        .map_err(|_| "the signature does not match the body".to_string())
}

/// Constant-time token comparison; hashing first hides the length of the secret too.
fn token_matches(token: &[u8], secret: &[u8]) -> bool {
    Sha256::digest(token).ct_eq(&Sha256::digest(secret)).into()
}

/// The first header named `name` (case-insensitive).
pub(crate) fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

#[cfg(test)]
mod tests;
