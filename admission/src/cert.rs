//! The serving certificate: a self-signed CA and a certificate it signs for the names the API
//! server uses, kept in a Secret in graft's namespace (no cert-manager).
//!
//! Every replica and every restart uses the Secret's certificate; the first one to find it
//! missing, short of a needed name, or with less than [`RENEW_BEFORE_DAYS`] days left makes a new
//! one (valid [`VALID_DAYS`] days). The previous CA stays in the Secret (`ca-previous.crt`) and in
//! the webhook configuration's `caBundle` until it expires, so a replica that still serves the
//! old certificate is trusted until it reads the new one.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::error::Error;

/// Days a new certificate is valid.
pub const VALID_DAYS: i64 = 365;
/// A certificate with fewer days left is replaced.
pub const RENEW_BEFORE_DAYS: i64 = 30;
/// Secret key of the CA certificate (PEM).
pub const KEY_CA: &str = "ca.crt";
/// Secret key of the previous CA certificate, kept until it expires (PEM).
pub const KEY_PREVIOUS_CA: &str = "ca-previous.crt";
/// Secret key of the serving certificate (PEM).
pub const KEY_CERT: &str = "tls.crt";
/// Secret key of the serving key (PKCS#8 PEM).
pub const KEY_KEY: &str = "tls.key";
/// Annotation: when the serving certificate expires (RFC 3339).
pub const ANNOTATION_NOT_AFTER: &str = "graft.dev/admission-not-after";
/// Annotation: when the previous CA expires (RFC 3339).
pub const ANNOTATION_PREVIOUS_NOT_AFTER: &str = "graft.dev/admission-previous-not-after";
/// Annotation: the names the serving certificate carries, comma-separated.
pub const ANNOTATION_NAMES: &str = "graft.dev/admission-names";

/// A CA and a serving certificate with its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// The serving certificate (PEM).
    pub cert_pem: String,
    /// The serving key (PKCS#8 PEM).
    pub key_pem: String,
    /// The names (DNS or IP) the serving certificate carries, sorted.
    pub names: Vec<String>,
    /// When the serving certificate and the CA expire.
    pub not_after: Timestamp,
    /// The CA before the last rotation and when it expires, while it is valid.
    pub previous_ca: Option<(String, Timestamp)>,
}

impl Bundle {
    /// The webhook configuration's `caBundle`: the CA, and the previous one while it is valid.
    pub fn ca_bundle(&self) -> String {
        let mut out = self.ca_pem.clone();
        if let Some((prev, _)) = &self.previous_ca {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(prev);
        }
        out
    }
}

/// Whether a stored certificate can be kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep serving it.
    Keep,
    /// Make a new one, for this reason.
    Renew(String),
}

/// Decide whether `stored` serves `names` long enough from `now`.
pub fn decide(stored: Option<&Bundle>, names: &[String], now: Timestamp) -> Decision {
    let Some(b) = stored else {
        return Decision::Renew("no certificate stored".into());
    };
    if let Some(missing) = names.iter().find(|n| !b.names.contains(n)) {
        return Decision::Renew(format!("the certificate does not name {missing}"));
    }
    let left = b.not_after.duration_since(now);
    if left < SignedDuration::from_hours(24 * RENEW_BEFORE_DAYS) {
        return Decision::Renew(format!(
            "the certificate expires at {} (less than {RENEW_BEFORE_DAYS} days left)",
            b.not_after
        ));
    }
    Decision::Keep
}

/// A new CA and serving certificate for `names`, valid from an hour ago (clock skew) for
/// [`VALID_DAYS`] days. `previous` is the CA being replaced, kept while it is valid.
pub fn generate(
    names: &[String],
    now: Timestamp,
    previous: Option<&Bundle>,
) -> Result<Bundle, Error> {
    let err = |what: &str, e: rcgen::Error| Error::Certificate(format!("{what}: {e}"));
    let not_before = to_offset(now - SignedDuration::from_hours(1))?;
    let not_after_ts = now + SignedDuration::from_hours(24 * VALID_DAYS);
    let not_after = to_offset(not_after_ts)?;

    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "graft admission CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_key = KeyPair::generate().map_err(|e| err("CA key", e))?;
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(|e| err("CA certificate", e))?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(names.to_vec()).map_err(|e| err("names", e))?;
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name.push(
        DnType::CommonName,
        names.first().map_or("graft-admission", String::as_str),
    );
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let leaf_key = KeyPair::generate().map_err(|e| err("serving key", e))?;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| err("serving certificate", e))?;

    let mut sorted = names.to_vec();
    sorted.sort();
    sorted.dedup();
    Ok(Bundle {
        ca_pem: ca_cert.pem(),
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
        names: sorted,
        not_after: not_after_ts,
        previous_ca: previous
            .filter(|p| p.not_after > now)
            .map(|p| (p.ca_pem.clone(), p.not_after)),
    })
}

fn to_offset(t: Timestamp) -> Result<time::OffsetDateTime, Error> {
    time::OffsetDateTime::from_unix_timestamp(t.as_second())
        .map_err(|e| Error::Certificate(format!("time {t}: {e}")))
}

/// Reads a bundle from the Secret; `None` when a key or annotation is missing or unreadable.
pub fn from_secret(secret: &Secret, now: Timestamp) -> Option<Bundle> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .filter(|s| !s.is_empty())
    };
    let annotations = secret.metadata.annotations.as_ref()?;
    let not_after: Timestamp = annotations.get(ANNOTATION_NOT_AFTER)?.parse().ok()?;
    let mut names: Vec<String> = annotations
        .get(ANNOTATION_NAMES)?
        .split(',')
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    names.sort();
    let previous_ca = match (
        text(KEY_PREVIOUS_CA),
        annotations
            .get(ANNOTATION_PREVIOUS_NOT_AFTER)
            .and_then(|t| t.parse::<Timestamp>().ok()),
    ) {
        (Some(pem), Some(until)) if until > now => Some((pem, until)),
        _ => None,
    };
    Some(Bundle {
        ca_pem: text(KEY_CA)?,
        cert_pem: text(KEY_CERT)?,
        key_pem: text(KEY_KEY)?,
        names,
        not_after,
        previous_ca,
    })
}

/// The Secret holding `bundle` (type `kubernetes.io/tls`).
pub fn to_secret(bundle: &Bundle, namespace: &str, name: &str) -> Secret {
    let mut data = BTreeMap::from([
        (
            KEY_CA.to_string(),
            ByteString(bundle.ca_pem.clone().into_bytes()),
        ),
        (
            KEY_CERT.to_string(),
            ByteString(bundle.cert_pem.clone().into_bytes()),
        ),
        (
            KEY_KEY.to_string(),
            ByteString(bundle.key_pem.clone().into_bytes()),
        ),
    ]);
    let mut annotations = BTreeMap::from([
        (
            ANNOTATION_NOT_AFTER.to_string(),
            bundle.not_after.to_string(),
        ),
        (ANNOTATION_NAMES.to_string(), bundle.names.join(",")),
    ]);
    if let Some((pem, until)) = &bundle.previous_ca {
        data.insert(
            KEY_PREVIOUS_CA.to_string(),
            ByteString(pem.clone().into_bytes()),
        );
        annotations.insert(ANNOTATION_PREVIOUS_NOT_AFTER.to_string(), until.to_string());
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "graft".to_string(),
            )])),
            annotations: Some(annotations),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".to_string()),
        data: Some(data),
        ..Default::default()
    }
}

/// The certificate Secret of one installation.
#[derive(Clone)]
pub struct Store {
    api: Api<Secret>,
    namespace: String,
    name: String,
}

impl Store {
    /// The Secret `namespace/name`.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Store {
        Store {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The stored certificate if it can be kept, else a new one written to the Secret. When
    /// another replica writes first (conflict), its certificate is read and used.
    pub async fn ensure(&self, names: &[String]) -> Result<Bundle, Error> {
        let secret_err = |source| Error::Secret {
            key: self.key(),
            source,
        };
        let now = Timestamp::now();
        let existing = self.api.get_opt(&self.name).await.map_err(secret_err)?;
        let stored = existing.as_ref().and_then(|s| from_secret(s, now));
        let reason = match decide(stored.as_ref(), names, now) {
            Decision::Keep => return stored.ok_or_else(|| Error::Certificate("lost".into())),
            Decision::Renew(reason) => reason,
        };
        // Keep the names another replica needs too.
        let mut all: Vec<String> = stored.iter().flat_map(|b| b.names.clone()).collect();
        all.extend(names.iter().cloned());
        all.sort();
        all.dedup();
        let fresh = generate(&all, now, stored.as_ref())?;
        let mut secret = to_secret(&fresh, &self.namespace, &self.name);
        let written = match &existing {
            Some(old) => {
                secret.metadata.resource_version = old.metadata.resource_version.clone();
                self.api
                    .replace(&self.name, &PostParams::default(), &secret)
                    .await
            }
            None => self.api.create(&PostParams::default(), &secret).await,
        };
        match written {
            Ok(_) => {
                tracing::info!(secret = %self.key(), %reason, names = %fresh.names.join(","), not_after = %fresh.not_after, "admission: new certificate");
                Ok(fresh)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Another replica was first: use what it wrote.
                let theirs = self.api.get(&self.name).await.map_err(secret_err)?;
                from_secret(&theirs, now).ok_or_else(|| {
                    Error::Certificate(format!(
                        "Secret {} written by another replica is unreadable",
                        self.key()
                    ))
                })
            }
            Err(e) => Err(secret_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn names() -> Vec<String> {
        vec!["10.88.0.1".to_string()]
    }

    fn now() -> Timestamp {
        "2026-12-02T08:00:00Z".parse().unwrap()
    }

    fn days(n: i64) -> SignedDuration {
        SignedDuration::from_hours(24 * n)
    }

    #[test]
    fn a_new_certificate_is_valid_a_year_and_names_the_endpoint() {
        let b = generate(&names(), now(), None).unwrap();
        assert_eq!(b.not_after, now() + days(VALID_DAYS));
        assert_eq!(b.names, names());
        assert!(b.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(b.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(b.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(b.ca_pem, b.cert_pem, "a CA and a serving certificate");
        assert_eq!(b.previous_ca, None);
        assert_eq!(b.ca_bundle(), b.ca_pem);
    }

    #[test]
    fn rotation_table() {
        let b = generate(&names(), now(), None).unwrap();
        /// (rule, stored, names needed, now, renew?)
        type Row<'a> = (&'a str, Option<&'a Bundle>, Vec<String>, Timestamp, bool);
        let cases: Vec<Row> = vec![
            ("nothing stored: make one", None, names(), now(), true),
            (
                "fresh and naming the endpoint: keep",
                Some(&b),
                names(),
                now(),
                false,
            ),
            (
                "31 days left: keep",
                Some(&b),
                names(),
                now() + days(VALID_DAYS - 31),
                false,
            ),
            (
                "29 days left: renew",
                Some(&b),
                names(),
                now() + days(VALID_DAYS - 29),
                true,
            ),
            (
                "expired: renew",
                Some(&b),
                names(),
                now() + days(VALID_DAYS + 1),
                true,
            ),
            (
                "a name it lacks: renew",
                Some(&b),
                vec!["graft.graft-system.svc".to_string()],
                now(),
                true,
            ),
        ];
        for (rule, stored, want_names, at, renew) in cases {
            let d = decide(stored, &want_names, at);
            assert_eq!(matches!(d, Decision::Renew(_)), renew, "{rule}: {d:?}");
        }
    }

    #[test]
    fn the_secret_round_trips_and_a_second_start_reuses_it() {
        let b = generate(&names(), now(), None).unwrap();
        let s = to_secret(&b, "graft-system", "graft-admission-tls");
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
        let back = from_secret(&s, now()).unwrap();
        assert_eq!(back, b);
        assert_eq!(decide(Some(&back), &names(), now()), Decision::Keep);
    }

    #[test]
    fn a_secret_missing_a_key_is_replaced() {
        let b = generate(&names(), now(), None).unwrap();
        let mut s = to_secret(&b, "graft-system", "graft-admission-tls");
        s.data.as_mut().unwrap().remove(KEY_KEY);
        assert_eq!(from_secret(&s, now()), None);
        let mut s = to_secret(&b, "graft-system", "graft-admission-tls");
        s.metadata.annotations = None;
        assert_eq!(from_secret(&s, now()), None);
    }

    #[test]
    fn rotation_keeps_the_previous_ca_in_the_bundle_until_it_expires() {
        let old = generate(&names(), now(), None).unwrap();
        let later = now() + days(VALID_DAYS - 10);
        let new = generate(&names(), later, Some(&old)).unwrap();
        assert_ne!(new.ca_pem, old.ca_pem);
        assert_eq!(new.previous_ca, Some((old.ca_pem.clone(), old.not_after)));
        assert!(new.ca_bundle().contains(&new.ca_pem));
        assert!(new.ca_bundle().contains(&old.ca_pem));
        let s = to_secret(&new, "ns", "n");
        assert_eq!(from_secret(&s, later).unwrap(), new);
        // Once the old CA has expired it is dropped when read.
        let after = old.not_after + days(1);
        assert_eq!(from_secret(&s, after).unwrap().previous_ca, None);
        // A CA that has already expired is not kept at rotation.
        let newer = generate(&names(), after, Some(&old)).unwrap();
        assert_eq!(newer.previous_ca, None);
    }
}
