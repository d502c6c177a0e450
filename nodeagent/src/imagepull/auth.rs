//! Registry credentials from pull secrets (`kubernetes.io/dockerconfigjson` or `.dockercfg`), turned
//! into CRI `AuthConfig`s for the registry of one image.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::cri::proto::AuthConfig;

/// A pull secret that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("pull secret {secret}: {reason}")]
pub struct AuthError {
    /// `namespace/name` of the secret.
    pub secret: String,
    /// What is wrong with it.
    pub reason: String,
}

#[derive(Deserialize)]
struct DockerConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize, Default)]
struct DockerAuth {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
}

/// The registry host of an image reference (`docker.io` for Docker Hub short names).
pub fn registry_host(reference: &str) -> String {
    crate::cri::normalize_reference(reference)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Registry host of a `.dockerconfigjson` key, which may be a URL (`https://index.docker.io/v1/`).
fn key_host(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

/// The credentials in one secret's data that apply to `host`. `data` maps the secret's keys
/// (`.dockerconfigjson` or `.dockercfg`) to their decoded bytes.
pub fn credentials_for(
    secret: &str,
    data: &BTreeMap<String, Vec<u8>>,
    host: &str,
) -> Result<Vec<AuthConfig>, AuthError> {
    let err = |reason: String| AuthError {
        secret: secret.to_string(),
        reason,
    };
    let auths = if let Some(bytes) = data.get(".dockerconfigjson") {
        serde_json::from_slice::<DockerConfigJson>(bytes)
            .map_err(|e| err(format!(".dockerconfigjson is not valid: {e}")))?
            .auths
    } else if let Some(bytes) = data.get(".dockercfg") {
        serde_json::from_slice::<BTreeMap<String, DockerAuth>>(bytes)
            .map_err(|e| err(format!(".dockercfg is not valid: {e}")))?
    } else {
        return Err(err(
            "has neither .dockerconfigjson nor .dockercfg".to_string()
        ));
    };
    let mut out = Vec::new();
    for (key, a) in auths {
        if key_host(&key) != host {
            continue;
        }
        let (username, password) = if a.username.is_empty() && !a.auth.is_empty() {
            decode_auth(&a.auth)
                .ok_or_else(|| err(format!("auth for {key} is not base64 user:password")))?
        } else {
            (a.username, a.password)
        };
        // No server_address: the host already matched, and containerd would parse a bare
        // `host:port` as a URL and refuse it.
        out.push(AuthConfig {
            username,
            password,
            ..Default::default()
        });
    }
    Ok(out)
}

fn decode_auth(auth: &str) -> Option<(String, String)> {
    let bytes = base64_decode(auth)?;
    let text = String::from_utf8(bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.trim().bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> BTreeMap<String, Vec<u8>> {
        [(".dockerconfigjson".to_string(), json.as_bytes().to_vec())].into()
    }

    #[test]
    fn picks_the_credentials_of_the_image_registry() {
        let d = data(
            r#"{"auths":{"127.0.0.1:5101":{"username":"u","password":"p"},
                "https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="}}}"#,
        );
        let local = credentials_for("ns/s", &d, &registry_host("127.0.0.1:5101/a/b:v1")).unwrap();
        assert_eq!(
            (local[0].username.as_str(), local[0].password.as_str()),
            ("u", "p")
        );
        let hub = credentials_for("ns/s", &d, &registry_host("busybox:1")).unwrap();
        assert_eq!(
            (hub[0].username.as_str(), hub[0].password.as_str()),
            ("hub", "secret")
        );
        assert!(credentials_for("ns/s", &d, "quay.io").unwrap().is_empty());
    }

    #[test]
    fn a_broken_secret_is_named_in_the_error() {
        let err = credentials_for("ns/s", &data("{"), "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ns/s") && err.contains(".dockerconfigjson"),
            "{err}"
        );
        let err = credentials_for("ns/s", &BTreeMap::new(), "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("neither"), "{err}");
    }
}
