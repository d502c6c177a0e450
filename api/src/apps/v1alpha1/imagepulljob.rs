//! ImagePullJob (`apps.kruise.io/v1alpha1`): pull an image on a set of nodes ahead of time
//! (kruise-api.md §6.1).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, Time,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::apps::common::{CompletionPolicy, CompletionPolicyType};
use crate::field::{FieldError, FieldErrors};

/// Default `pullPolicy.timeoutSeconds`.
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 600;
/// Default `pullPolicy.backoffLimit`.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 3;

/// Desired state of an ImagePullJob.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1alpha1",
    kind = "ImagePullJob",
    namespaced,
    status = "ImagePullJobStatus",
    derive = "PartialEq",
    doc = "ImagePullJob pulls an image on selected nodes through their NodeImage.",
    printcolumn(
        name = "TOTAL",
        type_ = "integer",
        json_path = ".status.desired",
        description = "Number of all nodes matched by this job"
    ),
    printcolumn(
        name = "ACTIVE",
        type_ = "integer",
        json_path = ".status.active",
        description = "Number of image pull task active"
    ),
    printcolumn(
        name = "SUCCEED",
        type_ = "integer",
        json_path = ".status.succeeded",
        description = "Number of image pull task succeeded"
    ),
    printcolumn(
        name = "FAILED",
        type_ = "integer",
        json_path = ".status.failed",
        description = "Number of image pull tasks failed"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC."
    ),
    printcolumn(
        name = "MESSAGE",
        type_ = "string",
        json_path = ".status.message",
        description = "Summary of status when job is failed"
    )
)]
#[serde(rename_all = "camelCase")]
// OpenKruise's webhook rules the API server can check itself (table: `ImagePullJobSpec::validate`).
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!(has(self.selector) && has(self.podSelector))",
        "message": messages::SELECTOR_AND_POD_SELECTOR
    },
    {
        "rule": "!has(self.completionPolicy) || !has(self.completionPolicy.activeDeadlineSeconds) || (has(self.completionPolicy.type) && self.completionPolicy.type != 'Always') || self.completionPolicy.activeDeadlineSeconds >= (has(self.pullPolicy) && has(self.pullPolicy.timeoutSeconds) ? self.pullPolicy.timeoutSeconds : 600)",
        "message": messages::DEADLINE_BELOW_TIMEOUT
    },
    {
        "rule": "!has(self.completionPolicy) || !has(self.completionPolicy.type) || self.completionPolicy.type in ['Always', 'Never']",
        "messageExpression": "'unknown type of completionPolicy: ' + self.completionPolicy.type"
    },
    {
        "rule": "!has(self.completionPolicy) || !has(self.completionPolicy.type) || self.completionPolicy.type != 'Never' || (!has(self.completionPolicy.activeDeadlineSeconds) && !has(self.completionPolicy.ttlSecondsAfterFinished))",
        "message": messages::NEVER_WITH_DEADLINE_OR_TTL
    },
    {
        "rule": "has(self.pullSecrets) == has(oldSelf.pullSecrets) && (!has(self.pullSecrets) || self.pullSecrets == oldSelf.pullSecrets)",
        "message": messages::PULL_SECRETS_IMMUTABLE
    }
]))]
pub struct ImagePullJobSpec {
    /// Image to pull, e.g. `nginx:1.27` or `repo@sha256:...`.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "size(self) > 0",
        "message": messages::IMAGE_EMPTY
    }]))]
    pub image: String,
    /// Secret names in the job's namespace used to pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secrets: Option<Vec<String>>,
    /// Nodes by name or by NodeImage (= Node) labels; exclusive with `podSelector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<ImagePullJobNodeSelector>,
    /// Nodes of the pods in the namespace matching this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Nodes pulling at once (1 when unset, which OpenKruise does not write into the object;
    /// an integer or a string holding one, no percentage; 0 pauses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "type(self) == int ? self >= 0 : (!string(self).endsWith('%') && string(self).matches('^[+-]?0*[0-9]{1,10}$') && int(string(self)) >= 0 && int(string(self)) <= 2147483647)",
        "messageExpression": "type(self) == int ? 'parallelism must be non-negative' : string(self).endsWith('%') ? 'parallelism does not support percentage value' : !string(self).matches('^[+-]?[0-9]+$') ? 'parallelism must be a valid integer: strconv.ParseInt: parsing \"' + string(self) + '\": invalid syntax' : (!string(self).matches('^[+-]?0*[0-9]{1,10}$') || int(string(self)) > 2147483647 || int(string(self)) < -2147483648) ? 'parallelism must be a valid integer: strconv.ParseInt: parsing \"' + string(self) + '\": value out of range' : 'parallelism must be non-negative'"
    }]))]
    pub parallelism: Option<IntOrString>,
    /// Timeout and retries per node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub pull_policy: Option<PullPolicy>,
    /// When the job completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub completion_policy: Option<CompletionPolicy>,
    /// Labels and annotations of the CRI pull sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_config: Option<SandboxConfig>,
    /// `IfNotPresent` (default) or `Always`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "IfNotPresent"))]
    pub image_pull_policy: Option<ImagePullPolicy>,
}

/// Node selection of an ImagePullJob: `names`, or a label selector, not both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(has(self.names) && (has(self.matchLabels) || has(self.matchExpressions)))",
    "message": messages::NAMES_AND_LABELS
}]))]
pub struct ImagePullJobNodeSelector {
    /// Node names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// Node labels that must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Node label requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// Per-node pull timeout and retries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullPolicy {
    /// Seconds per attempt (default 600; OpenKruise sets no minimum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 600))]
    pub timeout_seconds: Option<i32>,
    /// Retries (default 3; OpenKruise sets no minimum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 3))]
    pub backoff_limit: Option<i32>,
}

/// Labels and annotations of the CRI pull sandbox.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SandboxConfig {
    /// Sandbox labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Sandbox annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Pull policy of an image on a node. OpenKruise's schema and webhook take any string here
/// (it only defaults an empty one to `IfNotPresent`), and its node agent skips the pull only
/// for `IfNotPresent` with the image present: any other value pulls, as `Always` does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ImagePullPolicy {
    /// Skip the pull when the image is present (default).
    #[default]
    IfNotPresent,
    /// Always pull.
    Always,
    /// Any other value, kept as written (pulls as `Always` does).
    Other(String),
}

impl ImagePullPolicy {
    /// The value as written in the object.
    pub fn as_str(&self) -> &str {
        match self {
            Self::IfNotPresent => "IfNotPresent",
            Self::Always => "Always",
            Self::Other(s) => s,
        }
    }
}

impl From<&str> for ImagePullPolicy {
    fn from(s: &str) -> Self {
        match s {
            "IfNotPresent" => Self::IfNotPresent,
            "Always" => Self::Always,
            other => Self::Other(other.to_string()),
        }
    }
}

impl Serialize for ImagePullPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ImagePullPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::from(s.as_str()))
    }
}

impl JsonSchema for ImagePullPolicy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ImagePullPolicy".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string"})
    }
}

/// Observed state of an ImagePullJob. There is no `completed` counter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ImagePullJobStatus {
    /// When the job started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the job completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Matching NodeImages.
    pub desired: i32,
    /// Nodes pulling.
    pub active: i32,
    /// Nodes done.
    pub succeeded: i32,
    /// Nodes failed.
    pub failed: i32,
    /// Progress summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Names of failed nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_nodes: Option<Vec<String>>,
}

/// OpenKruise's validating webhook messages (`pkg/webhook/imagepulljob/validating`), word for
/// word: the CRD's CEL rules and [`ImagePullJobSpec::validate`] both use them.
pub mod messages {
    /// `selector.names` with `matchLabels`/`matchExpressions`.
    pub const NAMES_AND_LABELS: &str =
        "can not set both names and labelSelector in this spec.selector";
    /// A node named twice in `selector.names`.
    pub const DUPLICATED_NAMES: &str = "duplicated name in selector names";
    /// `selector` with `podSelector`.
    pub const SELECTOR_AND_POD_SELECTOR: &str = "can not set both selector and podSelector";
    /// `image: ""`.
    pub const IMAGE_EMPTY: &str = "image can not be empty";
    /// `parallelism: "50%"`.
    pub const PARALLELISM_PERCENT: &str = "parallelism does not support percentage value";
    /// `parallelism: -1` (or `"-1"`).
    pub const PARALLELISM_NEGATIVE: &str = "parallelism must be non-negative";
    /// `Always` with `activeDeadlineSeconds < pullPolicy.timeoutSeconds` (equal is accepted).
    pub const DEADLINE_BELOW_TIMEOUT: &str = "completionPolicy.activeDeadlineSeconds must be greater than pullPolicy.timeoutSeconds(default 600)";
    /// `Never` with `activeDeadlineSeconds` or `ttlSecondsAfterFinished`.
    pub const NEVER_WITH_DEADLINE_OR_TTL: &str = "activeDeadlineSeconds and ttlSecondsAfterFinished can only work with Always CompletionPolicyType";
    /// An update that changes `spec.pullSecrets`.
    pub const PULL_SECRETS_IMMUTABLE: &str = "spec.pullSecrets is immutable";
}

/// An image reference as OpenKruise normalises it (`NormalizeImageRefToNameTag`): the familiar
/// name (`nginx`, `reg:5000/app`) and the tag, or the digest when there is one (`latest` when
/// neither is given). These are the keys of `NodeImage.spec.images` and of the tag entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalizedImage {
    /// Familiar repository name (Docker Hub's `docker.io/library/` prefix dropped).
    pub name: String,
    /// Tag, or `algorithm:hex` digest.
    pub tag: String,
}

/// Parses `image` as distribution/reference's `ParseNormalizedNamed` does, with its error texts
/// (`invalid reference format`, `repository name must be lowercase`, ...).
pub fn normalize_image(image: &str) -> Result<NormalizedImage, String> {
    if image.len() == 64
        && image
            .bytes()
            .all(|b| matches!(b, b'a'..=b'f' | b'0'..=b'9'))
    {
        return Err(format!(
            "invalid repository name ({image}), cannot specify 64-byte hexadecimal strings"
        ));
    }
    let (domain, remainder) = split_docker_domain(image);
    let remote = remainder.split(':').next().unwrap_or_default();
    if remote.to_lowercase() != remote {
        return Err(format!(
            "invalid reference format: repository name ({remote}) must be lowercase"
        ));
    }
    let full = format!("{domain}/{remainder}");
    let Some((name, tag, digest)) = match_reference(&full) else {
        if match_reference(&full.to_lowercase()).is_some() {
            return Err("repository name must be lowercase".into());
        }
        return Err("invalid reference format".into());
    };
    let path = match name.split_once('/') {
        Some((first, rest)) if is_domain(first) => rest,
        _ => name,
    };
    if path.len() > 255 {
        return Err("repository name must not be more than 255 characters".into());
    }
    if let Some(d) = digest {
        check_digest(d)?;
    }
    let familiar = match name.strip_prefix("docker.io/") {
        Some(rest) => match rest.strip_prefix("library/") {
            Some(official) if !official.contains('/') => official,
            _ => rest,
        },
        None => name,
    };
    Ok(NormalizedImage {
        name: familiar.to_string(),
        tag: digest.or(tag).unwrap_or("latest").to_string(),
    })
}

fn split_docker_domain(name: &str) -> (&str, String) {
    let Some((maybe_domain, rest)) = name.split_once('/') else {
        return ("docker.io", format!("library/{name}"));
    };
    let (domain, remote) = if maybe_domain == "index.docker.io" {
        ("docker.io", rest.to_string())
    } else if maybe_domain == "localhost"
        || maybe_domain.contains(['.', ':'])
        || maybe_domain.to_lowercase() != maybe_domain
    {
        (maybe_domain, rest.to_string())
    } else {
        ("docker.io", name.to_string())
    };
    if domain == "docker.io" && !remote.contains('/') {
        return (domain, format!("library/{remote}"));
    }
    (domain, remote)
}

/// `ReferenceRegexp`: `name(:tag)?(@digest)?` → (name, tag, digest).
fn match_reference(s: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    if digest.is_some_and(|d| !is_digest_shape(d)) {
        return None;
    }
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) || !is_name(name) {
        return None;
    }
    Some((name, tag, digest))
}

fn is_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    parts.iter().all(|p| is_path_component(p))
        || (parts.len() > 1
            && is_domain(parts[0])
            && parts[1..].iter().all(|p| is_path_component(p)))
}

fn is_path_component(p: &str) -> bool {
    // [a-z0-9]+ ( ([._]|__|-+) [a-z0-9]+ )*
    let b = p.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == sep {
            return false;
        }
    }
}

fn is_domain(d: &str) -> bool {
    // (domainName | \[ipv6\]) (:[0-9]+)?
    let (host_ok, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        let ok = !v6.is_empty() && v6.bytes().all(|c| c.is_ascii_hexdigit() || c == b':');
        match after {
            "" => (ok, None),
            _ => (ok, Some(after.strip_prefix(':').unwrap_or("x"))),
        }
    } else {
        let (h, p) = match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        };
        let ok = h.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        });
        (ok, p)
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

fn is_tag(t: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|c| word(*c) || *c == b'.' || *c == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}`
fn is_digest_shape(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    hex.len() >= 32
        && hex.bytes().all(|c| c.is_ascii_hexdigit())
        && alg.split(['-', '_', '+', '.']).all(|part| {
            let b = part.as_bytes();
            !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
        })
}

/// go-digest's `Parse`: a known algorithm and an encoded part of its exact length.
fn check_digest(d: &str) -> Result<(), String> {
    let (alg, hex) = d.split_once(':').unwrap_or((d, ""));
    let size = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err("unsupported digest algorithm".into()),
    };
    if hex.len() != size {
        return Err("invalid checksum digest length".into());
    }
    if !hex.bytes().all(|c| matches!(c, b'a'..=b'f' | b'0'..=b'9')) {
        return Err("invalid checksum digest format".into());
    }
    Ok(())
}

/// Go's `strconv.ParseInt(s, 10, 32)` error text, or the value.
fn parse_int32(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"));
    }
    match s.parse::<i64>() {
        Ok(v) if i32::try_from(v).is_ok() => Ok(v),
        _ => Err(format!(
            "strconv.ParseInt: parsing {s:?}: value out of range"
        )),
    }
}

impl ImagePullJobSpec {
    /// A copy with OpenKruise's defaults (`SetDefaultsImagePullJob`): timeout 600 s, backoff 3,
    /// completion `Always`, pull policy `IfNotPresent`; and parallelism 1, which OpenKruise does
    /// not write into the object but its controller assumes when it is unset.
    pub fn defaulted(&self) -> Self {
        let mut s = self.clone();
        s.parallelism.get_or_insert(IntOrString::Int(1));
        let p = s.pull_policy.get_or_insert_with(Default::default);
        p.timeout_seconds.get_or_insert(DEFAULT_TIMEOUT_SECONDS);
        p.backoff_limit.get_or_insert(DEFAULT_BACKOFF_LIMIT);
        s.completion_policy
            .get_or_insert_with(Default::default)
            .type_
            .get_or_insert(CompletionPolicyType::Always);
        // OpenKruise's defaulting replaces an empty value too.
        if s.image_pull_policy
            .as_ref()
            .is_none_or(|p| p.as_str().is_empty())
        {
            s.image_pull_policy = Some(ImagePullPolicy::IfNotPresent);
        }
        s
    }

    /// The parallelism as a number: an integer, or a string holding one (OpenKruise accepts
    /// `"5"`); `None` when it is invalid (see [`ImagePullJobSpec::validate`]).
    pub fn parallelism_value(&self) -> Option<i64> {
        match self.parallelism.as_ref()? {
            IntOrString::Int(i) => Some(i64::from(*i)),
            IntOrString::String(s) => parse_int32(s).ok(),
        }
    }

    /// Checks the spec as OpenKruise's validating webhook does (after its defaults), with its
    /// messages. Rules (kruise 1.9 `validate`), and where graft enforces each:
    ///
    /// | rule | message | graft |
    /// |---|---|---|
    /// | names with a label selector | [`messages::NAMES_AND_LABELS`] | CEL on `spec.selector` + here |
    /// | a name twice in `selector.names` | [`messages::DUPLICATED_NAMES`] | here only (CEL has no cheap "distinct") |
    /// | invalid label selector | `invalid selector: ...` | here (controller, `plan::selector_errors`) |
    /// | selector with podSelector | [`messages::SELECTOR_AND_POD_SELECTOR`] | CEL on `spec` + here |
    /// | image empty | [`messages::IMAGE_EMPTY`] | CEL on `spec.image` + here |
    /// | image not a reference | `invalid image X: <reference error>` | here only (the grammar is not worth a CEL regex) |
    /// | parallelism a percentage | [`messages::PARALLELISM_PERCENT`] | CEL on `spec.parallelism` + here |
    /// | parallelism a non-integer string | `parallelism must be a valid integer: strconv...` | CEL + here |
    /// | parallelism negative | [`messages::PARALLELISM_NEGATIVE`] | CEL + here |
    /// | Always: deadline < timeout (equal is fine) | [`messages::DEADLINE_BELOW_TIMEOUT`] | CEL on `spec` + here |
    /// | Never with deadline or TTL | [`messages::NEVER_WITH_DEADLINE_OR_TTL`] | CEL on `spec` + here |
    /// | unknown completionPolicy.type | `unknown type of completionPolicy: X` | CEL on `spec` (next to the schema's enum) |
    /// | imagePullPolicy | none: any string is accepted (empty defaults to `IfNotPresent`) | plain string schema |
    /// | update changes pullSecrets | [`messages::PULL_SECRETS_IMMUTABLE`] | CEL transition rule on `spec` |
    ///
    /// OpenKruise has no minimum on `timeoutSeconds`/`backoffLimit`, so neither has graft.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        if let Some(sel) = &self.selector {
            if (sel.match_labels.is_some() || sel.match_expressions.is_some())
                && sel.names.is_some()
            {
                errs.push(FieldError::forbidden(
                    "spec.selector",
                    messages::NAMES_AND_LABELS,
                ));
            }
            let names = sel.names.as_deref().unwrap_or_default();
            if let Some((i, n)) = names
                .iter()
                .enumerate()
                .find(|(i, n)| names[..*i].contains(n))
            {
                errs.push(FieldError::invalid(
                    &format!("spec.selector.names[{i}]"),
                    n,
                    messages::DUPLICATED_NAMES,
                ));
            }
        }
        if self.pod_selector.is_some() && self.selector.is_some() {
            errs.push(FieldError::forbidden(
                "spec.podSelector",
                messages::SELECTOR_AND_POD_SELECTOR,
            ));
        }
        if self.image.is_empty() {
            errs.push(FieldError::required("spec.image", messages::IMAGE_EMPTY));
        } else if let Err(e) = normalize_image(&self.image) {
            errs.push(FieldError::invalid(
                "spec.image",
                &self.image,
                &format!("invalid image {}: {e}", self.image),
            ));
        }
        match &self.parallelism {
            Some(IntOrString::String(s)) if s.ends_with('%') => errs.push(FieldError::invalid(
                "spec.parallelism",
                s,
                messages::PARALLELISM_PERCENT,
            )),
            Some(IntOrString::String(s)) => match parse_int32(s) {
                Err(e) => errs.push(FieldError::invalid(
                    "spec.parallelism",
                    s,
                    &format!("parallelism must be a valid integer: {e}"),
                )),
                Ok(v) if v < 0 => errs.push(FieldError::invalid(
                    "spec.parallelism",
                    s,
                    messages::PARALLELISM_NEGATIVE,
                )),
                Ok(_) => {}
            },
            Some(IntOrString::Int(i)) if *i < 0 => errs.push(FieldError::invalid(
                "spec.parallelism",
                i,
                messages::PARALLELISM_NEGATIVE,
            )),
            _ => {}
        }
        let timeout = self
            .pull_policy
            .as_ref()
            .and_then(|p| p.timeout_seconds)
            .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        let c = self.completion_policy.clone().unwrap_or_default();
        match c.type_.unwrap_or_default() {
            CompletionPolicyType::Always => {
                if let Some(ad) = c.active_deadline_seconds
                    && i64::from(timeout) > ad
                {
                    errs.push(FieldError::invalid(
                        "spec.completionPolicy.activeDeadlineSeconds",
                        ad,
                        messages::DEADLINE_BELOW_TIMEOUT,
                    ));
                }
            }
            CompletionPolicyType::Never => {
                if c.active_deadline_seconds.is_some() || c.ttl_seconds_after_finished.is_some() {
                    errs.push(FieldError::forbidden(
                        "spec.completionPolicy",
                        messages::NEVER_WITH_DEADLINE_OR_TTL,
                    ));
                }
            }
        }
        errs
    }

    /// Checks an update as OpenKruise's webhook does: the new spec is valid and `pullSecrets`
    /// did not change (absent and `[]` differ, as Go's `reflect.DeepEqual` of nil and empty).
    pub fn validate_update(&self, old: &Self) -> FieldErrors {
        let mut errs = self.validate();
        if self.pull_secrets != old.pull_secrets {
            errs.push(FieldError::forbidden(
                "spec.pullSecrets",
                messages::PULL_SECRETS_IMMUTABLE,
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> ImagePullJobSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults_are_pinned() {
        let v = serde_json::to_value(spec(json!({"image": "nginx:1.27"})).defaulted()).unwrap();
        assert_eq!(
            v,
            json!({
                "image": "nginx:1.27",
                "parallelism": 1,
                "pullPolicy": {"timeoutSeconds": 600, "backoffLimit": 3},
                "completionPolicy": {"type": "Always"},
                "imagePullPolicy": "IfNotPresent"
            })
        );
    }

    /// One row per OpenKruise 1.9 webhook rule: (rule, spec, field of the error or `None` when
    /// OpenKruise accepts it, exact detail).
    #[test]
    fn validation_table() {
        /// (rule, spec, field and detail of the error, or `None` when accepted)
        type Row<'a> = (&'a str, serde_json::Value, Option<(&'a str, &'a str)>);
        let short_digest = format!(
            "invalid image app@sha256:{}: invalid checksum digest length",
            "a".repeat(40)
        );
        let cases: Vec<Row> = vec![
            ("minimal job is accepted", json!({"image": "nginx"}), None),
            (
                "names with matchLabels are refused",
                json!({"image": "a", "selector": {"names": ["n"], "matchLabels": {"a": "b"}}}),
                Some(("spec.selector", messages::NAMES_AND_LABELS)),
            ),
            (
                "empty names with matchExpressions are refused (Go: names != nil)",
                json!({"image": "a", "selector": {"names": [], "matchExpressions": []}}),
                Some(("spec.selector", messages::NAMES_AND_LABELS)),
            ),
            (
                "duplicated names are refused",
                json!({"image": "a", "selector": {"names": ["n", "m", "n"]}}),
                Some(("spec.selector.names[2]", messages::DUPLICATED_NAMES)),
            ),
            (
                "selector with podSelector is refused",
                json!({"image": "a", "selector": {"names": ["n"]}, "podSelector": {"matchLabels": {"a": "b"}}}),
                Some(("spec.podSelector", messages::SELECTOR_AND_POD_SELECTOR)),
            ),
            (
                "empty image is refused",
                json!({"image": ""}),
                Some(("spec.image", messages::IMAGE_EMPTY)),
            ),
            (
                "image that is no reference is refused",
                json!({"image": "bad image"}),
                Some((
                    "spec.image",
                    "invalid image bad image: invalid reference format",
                )),
            ),
            (
                "image with an uppercase repository is refused",
                json!({"image": "reg.io/App:v1"}),
                Some((
                    "spec.image",
                    "invalid image reg.io/App:v1: invalid reference format: repository name (App) must be lowercase",
                )),
            ),
            (
                "image with a short sha256 digest is refused",
                json!({"image": format!("app@sha256:{}", "a".repeat(40))}),
                Some(("spec.image", &short_digest)),
            ),
            (
                "percentage parallelism is refused",
                json!({"image": "a", "parallelism": "50%"}),
                Some(("spec.parallelism", messages::PARALLELISM_PERCENT)),
            ),
            (
                "non-integer string parallelism is refused",
                json!({"image": "a", "parallelism": "two"}),
                Some((
                    "spec.parallelism",
                    "parallelism must be a valid integer: strconv.ParseInt: parsing \"two\": invalid syntax",
                )),
            ),
            (
                "string parallelism beyond int32 is refused",
                json!({"image": "a", "parallelism": "3000000000"}),
                Some((
                    "spec.parallelism",
                    "parallelism must be a valid integer: strconv.ParseInt: parsing \"3000000000\": value out of range",
                )),
            ),
            (
                "negative string parallelism is refused",
                json!({"image": "a", "parallelism": "-1"}),
                Some(("spec.parallelism", messages::PARALLELISM_NEGATIVE)),
            ),
            (
                "negative parallelism is refused",
                json!({"image": "a", "parallelism": -1}),
                Some(("spec.parallelism", messages::PARALLELISM_NEGATIVE)),
            ),
            (
                "integer string parallelism is accepted",
                json!({"image": "a", "parallelism": "5"}),
                None,
            ),
            (
                "zero parallelism (paused) is accepted",
                json!({"image": "a", "parallelism": 0}),
                None,
            ),
            (
                "Always: deadline below the default timeout is refused",
                json!({"image": "a", "completionPolicy": {"activeDeadlineSeconds": 599}}),
                Some((
                    "spec.completionPolicy.activeDeadlineSeconds",
                    messages::DEADLINE_BELOW_TIMEOUT,
                )),
            ),
            (
                "Always: deadline equal to the timeout is accepted",
                json!({"image": "a", "completionPolicy": {"activeDeadlineSeconds": 600}}),
                None,
            ),
            (
                "Always: deadline equal to a set timeout is accepted",
                json!({"image": "a", "pullPolicy": {"timeoutSeconds": 30}, "completionPolicy": {"type": "Always", "activeDeadlineSeconds": 30}}),
                None,
            ),
            (
                "Always: deadline below a set timeout is refused",
                json!({"image": "a", "pullPolicy": {"timeoutSeconds": 30}, "completionPolicy": {"activeDeadlineSeconds": 29}}),
                Some((
                    "spec.completionPolicy.activeDeadlineSeconds",
                    messages::DEADLINE_BELOW_TIMEOUT,
                )),
            ),
            (
                "Never with ttlSecondsAfterFinished is refused",
                json!({"image": "a", "completionPolicy": {"type": "Never", "ttlSecondsAfterFinished": 5}}),
                Some((
                    "spec.completionPolicy",
                    messages::NEVER_WITH_DEADLINE_OR_TTL,
                )),
            ),
            (
                "Never with activeDeadlineSeconds is refused",
                json!({"image": "a", "completionPolicy": {"type": "Never", "activeDeadlineSeconds": 1200}}),
                Some((
                    "spec.completionPolicy",
                    messages::NEVER_WITH_DEADLINE_OR_TTL,
                )),
            ),
            (
                "zero timeout and negative backoff are accepted (no minimum in OpenKruise)",
                json!({"image": "a", "pullPolicy": {"timeoutSeconds": 0, "backoffLimit": -1}}),
                None,
            ),
        ];
        for (rule, v, want) in cases {
            let errs = spec(v.clone()).validate();
            match want {
                None => assert!(errs.is_empty(), "{rule}: {v}: {errs}"),
                Some((field, detail)) => assert!(
                    errs.iter().any(|e| e.field == field && e.detail == detail),
                    "{rule}: {v}: want {field}: {detail}, got {errs}"
                ),
            }
        }
    }

    #[test]
    fn pull_secrets_are_immutable() {
        let old = spec(json!({"image": "a", "pullSecrets": ["s1"]}));
        let same = old.clone();
        assert!(same.validate_update(&old).is_empty());
        let changed = spec(json!({"image": "a", "pullSecrets": ["s2"]}));
        assert!(
            changed
                .validate_update(&old)
                .iter()
                .any(|e| e.detail == messages::PULL_SECRETS_IMMUTABLE)
        );
        let emptied = spec(json!({"image": "a", "pullSecrets": []}));
        let unset = spec(json!({"image": "a"}));
        assert!(
            !emptied.validate_update(&unset).is_empty(),
            "nil and [] differ"
        );
    }

    #[test]
    fn images_normalize_as_kruise_does() {
        let d = format!("sha256:{}", "b".repeat(64));
        for (image, name, tag) in [
            ("nginx", "nginx", "latest"),
            ("nginx:1.27", "nginx", "1.27"),
            ("docker.io/library/nginx:1", "nginx", "1"),
            ("index.docker.io/foo/bar:2", "foo/bar", "2"),
            ("localhost:5000/app:v1", "localhost:5000/app", "v1"),
            ("localhost/app", "localhost/app", "latest"),
            ("reg.io:5000/a/b", "reg.io:5000/a/b", "latest"),
            ("[::1]:5000/app:v2", "[::1]:5000/app", "v2"),
            (&*format!("reg.io/app:v1@{d}"), "reg.io/app", &*d),
        ] {
            assert_eq!(
                normalize_image(image),
                Ok(NormalizedImage {
                    name: name.into(),
                    tag: tag.into()
                }),
                "{image}"
            );
        }
        for (image, err) in [
            ("a:b:c", "invalid reference format"),
            ("-a", "invalid reference format"),
            ("a/", "invalid reference format"),
            (
                "app@md5:0123456789abcdef0123456789abcdef",
                "unsupported digest algorithm",
            ),
            (
                &*"a".repeat(64),
                &*format!(
                    "invalid repository name ({}), cannot specify 64-byte hexadecimal strings",
                    "a".repeat(64)
                ),
            ),
        ] {
            assert_eq!(normalize_image(image), Err(err.to_string()), "{image}");
        }
    }
}
