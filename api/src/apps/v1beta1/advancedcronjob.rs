//! AdvancedCronJob (`apps.kruise.io/v1beta1`, the storage version; short name `acj`): creates
//! Jobs or BroadcastJobs on a cron schedule (OpenKruise `apis/apps/v1beta1/advancedcronjob_types.go`).
//!
//! v1alpha1 is served with this schema ([`crate::crds::advancedcronjob`]): upstream it is the same
//! type without `template.imageListPullJobTemplate`.

pub mod cron;

use k8s_openapi::api::batch::v1::JobTemplateSpec;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::apps::v1beta1::broadcastjob::BroadcastJobSpec;
use crate::field::{FieldError, FieldErrorKind, FieldErrors};

/// Desired state of an AdvancedCronJob.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1beta1",
    kind = "AdvancedCronJob",
    namespaced,
    shortname = "acj",
    status = "AdvancedCronJobStatus",
    derive = "PartialEq",
    doc = "AdvancedCronJob creates Jobs or BroadcastJobs on a cron schedule.",
    printcolumn(
        name = "Schedule",
        type_ = "string",
        json_path = ".spec.schedule",
        description = "The schedule of advanced cron job."
    ),
    printcolumn(
        name = "Type",
        type_ = "string",
        json_path = ".status.type",
        description = "Type of cron job."
    ),
    printcolumn(
        name = "LastScheduleTime",
        type_ = "date",
        json_path = ".status.lastScheduleTime",
        description = "The last time at which job was scheduled."
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC."
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AdvancedCronJobSpec {
    /// The schedule in cron format (five fields, or `@hourly`, `@daily`, ...).
    pub schedule: String,
    /// IANA time zone of the schedule (default: the controller's, UTC in graft's image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Seconds after a missed scheduled time during which the run may still start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline_seconds: Option<i64>,
    /// `Allow` (default), `Forbid` or `Replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    /// Stop scheduling runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Finished successful jobs to keep (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_jobs_history_limit: Option<i32>,
    /// Finished failed jobs to keep (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_jobs_history_limit: Option<i32>,
    /// The job each run creates.
    pub template: CronJobTemplate,
}

/// What a run creates: exactly one of the templates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CronJobTemplate {
    /// A batch/v1 Job (opaque in the CRD schema, as upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::opaque_object")]
    pub job_template: Option<JobTemplateSpec>,
    /// A BroadcastJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast_job_template: Option<BroadcastJobTemplateSpec>,
    /// An ImageListPullJob (v1beta1 only upstream). graft has no ImageListPullJob kind: the field
    /// is kept, and an AdvancedCronJob using it is refused by graft's validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::opaque_object")]
    pub image_list_pull_job_template: Option<serde_json::Value>,
}

/// The metadata and spec of the BroadcastJobs a run creates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BroadcastJobTemplateSpec {
    /// Labels and annotations copied to each BroadcastJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::opaque_object")]
    pub metadata: Option<ObjectMeta>,
    /// The BroadcastJob's spec.
    #[serde(default)]
    pub spec: BroadcastJobSpec,
}

/// AdvancedCronJob `concurrencyPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Runs may overlap (default).
    #[default]
    Allow,
    /// Skip a run while the previous one is active.
    Forbid,
    /// Delete the active runs and start the new one.
    Replace,
}

/// Which template the AdvancedCronJob runs (`status.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TemplateKind {
    /// `template.jobTemplate`.
    Job,
    /// `template.broadcastJobTemplate`.
    BroadcastJob,
    /// `template.imageListPullJobTemplate`.
    ImageListPullJob,
}

/// Observed state of an AdvancedCronJob.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct AdvancedCronJobStatus {
    /// The template kind.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<TemplateKind>,
    /// The runs still active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<Vec<ObjectReference>>,
    /// When a run was last scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
}

impl AdvancedCronJobSpec {
    /// A copy with OpenKruise's defaults (`SetDefaultsAdvancedCronJob`, without the pod template
    /// defaults graft never injects): concurrencyPolicy Allow (Replace for an ImageListPullJob
    /// template), paused false, successfulJobsHistoryLimit 3, failedJobsHistoryLimit 1.
    pub fn defaulted(&self) -> Self {
        let mut s = self.clone();
        let policy = if s.template.image_list_pull_job_template.is_some() {
            ConcurrencyPolicy::Replace
        } else {
            ConcurrencyPolicy::Allow
        };
        s.concurrency_policy.get_or_insert(policy);
        s.paused.get_or_insert(false);
        s.successful_jobs_history_limit.get_or_insert(3);
        s.failed_jobs_history_limit.get_or_insert(1);
        s
    }

    /// The kind of job a run creates, by template (`None`: no template set).
    pub fn template_kind(&self) -> Option<TemplateKind> {
        let t = &self.template;
        if t.job_template.is_some() {
            Some(TemplateKind::Job)
        } else if t.broadcast_job_template.is_some() {
            Some(TemplateKind::BroadcastJob)
        } else if t.image_list_pull_job_template.is_some() {
            Some(TemplateKind::ImageListPullJob)
        } else {
            None
        }
    }
}

/// kruise's longest AdvancedCronJob name (`AdvancedCronJobNameMaxLen`).
pub const NAME_MAX_LEN: usize = 63;
/// kruise's name rule (`validAdvancedCronJobNameFmt`).
const NAME_FMT: &str = r"^[a-zA-Z0-9\-]+$";
/// kruise's message when an update changes a fixed field.
pub const FORBIDDEN_UPDATE: &str = "updates to advancedcronjob spec for fields other than 'imageListPullJobTemplate', 'schedule', 'concurrencyPolicy', 'successfulJobsHistoryLimit', 'failedJobsHistoryLimit', 'startingDeadlineSeconds', 'timeZone' and 'paused' are forbidden";

/// `field.Invalid` with a number: Go prints numbers bare, not quoted.
fn invalid_number(field: &str, value: i64, detail: &str) -> FieldError {
    FieldError {
        field: field.to_string(),
        kind: FieldErrorKind::Invalid,
        value: None,
        detail: format!("{value}: {detail}"),
    }
}

impl AdvancedCronJob {
    /// kruise's `validateAdvancedCronJob` (CREATE) on the defaulted object: the name, then the
    /// spec. A name that is not a DNS subdomain is left to the API server, which refuses it
    /// first in its own words.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        let name = self.metadata.name.as_deref().unwrap_or_default();
        let generate = self.metadata.generate_name.as_deref().unwrap_or_default();
        if name.is_empty() && generate.is_empty() {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
        if !name.is_empty() && crate::names::is_dns1123_subdomain(name).is_empty() {
            let ok = name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
            if !ok {
                errs.push(FieldError::invalid(
                    "metadata.name",
                    name,
                    &format!(
                        "AdvancedCronJob name must consist of alphanumeric characters or '-' (e.g. 'example-com', regex used for validation is '{NAME_FMT}')"
                    ),
                ));
            }
            if name.len() > NAME_MAX_LEN {
                errs.push(FieldError::invalid(
                    "metadata.name",
                    name,
                    &format!("must be no more than {NAME_MAX_LEN} characters"),
                ));
            }
        }
        errs.extend(self.spec.validate());
        errs
    }

    /// kruise's `validateAdvancedCronJobUpdate` on the defaulted objects: the spec again, and
    /// only the schedule, policies, limits, deadline, time zone and `paused` may change.
    pub fn validate_update(&self, old: &AdvancedCronJob) -> FieldErrors {
        let mut errs = self.spec.validate();
        let mut fixed = self.spec.clone();
        let o = &old.spec;
        fixed.schedule = o.schedule.clone();
        fixed.concurrency_policy = o.concurrency_policy;
        fixed.successful_jobs_history_limit = o.successful_jobs_history_limit;
        fixed.failed_jobs_history_limit = o.failed_jobs_history_limit;
        fixed.starting_deadline_seconds = o.starting_deadline_seconds;
        fixed.paused = o.paused;
        fixed.time_zone = o.time_zone.clone();
        if o.template.image_list_pull_job_template.is_some() {
            fixed.template.image_list_pull_job_template =
                o.template.image_list_pull_job_template.clone();
        }
        if !semantic_eq(&fixed, o) {
            errs.push(FieldError::forbidden("spec", FORBIDDEN_UPDATE));
        }
        errs
    }
}

/// apimachinery's `Semantic.DeepEqual` as far as it matters here: absent, null, empty lists and
/// empty maps are one and the same.
fn semantic_eq(a: &AdvancedCronJobSpec, b: &AdvancedCronJobSpec) -> bool {
    fn norm(v: serde_json::Value) -> Option<serde_json::Value> {
        use serde_json::Value;
        match v {
            Value::Null => None,
            Value::Array(a) if a.is_empty() => None,
            Value::Array(a) => Some(Value::Array(
                a.into_iter()
                    .map(|x| norm(x).unwrap_or(Value::Null))
                    .collect(),
            )),
            Value::Object(m) => {
                let m: serde_json::Map<String, Value> = m
                    .into_iter()
                    .filter_map(|(k, v)| norm(v).map(|v| (k, v)))
                    .collect();
                (!m.is_empty()).then_some(Value::Object(m))
            }
            other => Some(other),
        }
    }
    let (Ok(a), Ok(b)) = (serde_json::to_value(a), serde_json::to_value(b)) else {
        return false;
    };
    norm(a) == norm(b)
}

impl AdvancedCronJobSpec {
    /// kruise's `validateAdvancedCronJobSpec`, in its order: schedule, template, deadline,
    /// history limits, time zone.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        if self.schedule.is_empty() {
            errs.push(FieldError::invalid(
                "spec.schedule",
                &self.schedule,
                "schedule cannot be empty, please provide valid cron schedule.",
            ));
        }
        match cron::parse_standard(&self.schedule) {
            Ok(_) => {}
            Err(cron::ParseError::Invalid(m)) => {
                errs.push(FieldError::invalid("spec.schedule", &self.schedule, &m));
            }
            Err(cron::ParseError::Panic(m)) => errs.push(FieldError::invalid(
                "spec.schedule",
                &self.schedule,
                &format!("invalid cron schedule: {m}"),
            )),
        }
        if self.schedule.contains("TZ") && self.time_zone.is_some() {
            errs.push(FieldError::invalid(
                "spec.schedule",
                &self.schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        }
        errs.extend(self.validate_template());
        let nonnegative = "must be greater than or equal to 0";
        if let Some(d) = self.starting_deadline_seconds
            && d < 0
        {
            errs.push(invalid_number(
                "spec.startingDeadlineSeconds",
                d,
                nonnegative,
            ));
        }
        if let Some(l) = self.successful_jobs_history_limit
            && l < 0
        {
            errs.push(invalid_number(
                "spec.successfulJobsHistoryLimit",
                i64::from(l),
                nonnegative,
            ));
        }
        if let Some(l) = self.failed_jobs_history_limit
            && l < 0
        {
            errs.push(invalid_number(
                "spec.failedJobsHistoryLimit",
                i64::from(l),
                nonnegative,
            ));
        }
        if let Some(tz) = &self.time_zone {
            if tz.is_empty() {
                errs.push(FieldError::invalid(
                    "spec.timeZone",
                    tz,
                    "timeZone must be nil or non-empty string",
                ));
            } else {
                if tz.eq_ignore_ascii_case("Local") {
                    errs.push(FieldError::invalid(
                        "spec.timeZone",
                        tz,
                        "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
                    ));
                }
                if let Err(m) = cron::load_location(tz) {
                    errs.push(FieldError::invalid("spec.timeZone", tz, &m));
                }
            }
        }
        errs
    }

    fn validate_template(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        let t = &self.template;
        let mut count = 0;
        if let Some(j) = &t.job_template {
            count += 1;
            let pod = j.spec.as_ref().map(|s| &s.template);
            errs.extend(validate_pod_template_basics(pod));
        }
        if let Some(b) = &t.broadcast_job_template {
            count += 1;
            errs.extend(validate_pod_template_basics(Some(&b.spec.template)));
        }
        if t.image_list_pull_job_template.is_some() {
            count += 1;
            let policy = self.concurrency_policy.unwrap_or_default();
            if policy == ConcurrencyPolicy::Allow {
                errs.push(FieldError::invalid(
                    "spec.spec.concurrencyPolicy",
                    "Allow",
                    "concurrencyPolicy should be Replace or Forbid, but current value is: Allow",
                ));
            }
            errs.push(FieldError::forbidden(
                "spec.template.imageListPullJobTemplate",
                "graft has no ImageListPullJob kind",
            ));
        }
        match count {
            0 => errs.push(FieldError::forbidden(
                "spec.template",
                "spec must have one template, either JobTemplate or BroadcastJobTemplate or ImageListPullJobTemplate should be provided",
            )),
            1 => {}
            _ => errs.push(FieldError::forbidden(
                "spec.template",
                "spec can have only one template, either JobTemplate or BroadcastJobTemplate or ImageListPullJobTemplate should be provided",
            )),
        }
        errs
    }
}

/// The parts of `ValidatePodTemplateSpec` graft checks (kruise reports them under
/// `spec.template` for either template): labels, annotations, at least one container, names set
/// and unique, images set, a known restartPolicy. The pod defaults (dnsPolicy, …) are not
/// required: graft injects none, as kruise with `TemplateNoDefaults`.
fn validate_pod_template_basics(
    pod: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>,
) -> FieldErrors {
    let mut errs = FieldErrors::default();
    let meta = pod.and_then(|p| p.metadata.as_ref());
    if let Some(l) = meta.and_then(|m| m.labels.as_ref()) {
        errs.extend(crate::names::validate_labels(l, "spec.template.labels"));
    }
    if let Some(a) = meta.and_then(|m| m.annotations.as_ref()) {
        errs.extend(crate::names::validate_annotations(
            a,
            "spec.template.annotations",
        ));
    }
    let spec = pod.and_then(|p| p.spec.as_ref());
    let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    if containers.is_empty() {
        errs.push(FieldError::required("spec.template.spec.containers", ""));
    }
    for (i, c) in containers.iter().enumerate() {
        let at = format!("spec.template.spec.containers[{i}]");
        if c.name.is_empty() {
            errs.push(FieldError::required(&format!("{at}.name"), ""));
        } else if containers[..i].iter().any(|o| o.name == c.name) {
            errs.push(FieldError::duplicate(&format!("{at}.name"), &c.name));
        }
        if c.image.as_deref().is_none_or(str::is_empty) {
            errs.push(FieldError::required(&format!("{at}.image"), ""));
        }
    }
    if let Some(rp) = spec.and_then(|s| s.restart_policy.as_deref())
        && !["Always", "OnFailure", "Never"].contains(&rp)
    {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            rp,
            &["Always", "Never", "OnFailure"],
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn defaults_are_pinned() {
        let spec: AdvancedCronJobSpec = serde_json::from_value(json!({
            "schedule": "*/1 * * * *",
            "template": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}
        }))
        .unwrap();
        let v = serde_json::to_value(spec.defaulted()).unwrap();
        assert_eq!(v["concurrencyPolicy"], json!("Allow"));
        assert_eq!(v["paused"], json!(false));
        assert_eq!(v["successfulJobsHistoryLimit"], json!(3));
        assert_eq!(v["failedJobsHistoryLimit"], json!(1));
        assert_eq!(spec.template_kind(), Some(TemplateKind::Job));
    }

    fn acj(name: &str, spec: serde_json::Value) -> AdvancedCronJob {
        let mut s = json!({
            "schedule": "*/1 * * * *",
            "template": {"jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}
        });
        if let (Some(m), Some(e)) = (s.as_object_mut(), spec.as_object()) {
            m.extend(e.clone());
        }
        let mut o: AdvancedCronJob = serde_json::from_value(json!({
            "apiVersion": "apps.kruise.io/v1beta1", "kind": "AdvancedCronJob",
            "metadata": {"name": name, "namespace": "ns"}, "spec": s}))
        .unwrap();
        o.spec = o.spec.defaulted();
        o
    }

    fn messages(errs: &FieldErrors) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    /// (rule, name, spec fields, kruise's messages)
    #[test]
    fn validation_table() {
        let bcj = json!({"broadcastJobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "busybox"}]}}}}});
        let cases: Vec<(&str, &str, serde_json::Value, Vec<&str>)> = vec![
            ("valid", "demo", json!({}), vec![]),
            (
                "a broadcastJobTemplate",
                "demo",
                json!({"template": bcj.clone()}),
                vec![],
            ),
            (
                "descriptors and time zones",
                "demo",
                json!({"schedule": "@daily", "timeZone": "Europe/Berlin"}),
                vec![],
            ),
            (
                "@every is accepted, as ParseStandard does",
                "demo",
                json!({"schedule": "@every 2m"}),
                vec![],
            ),
            (
                "empty schedule",
                "demo",
                json!({"schedule": ""}),
                vec![
                    "spec.schedule: Invalid value: \"\": schedule cannot be empty, please provide valid cron schedule.",
                    "spec.schedule: Invalid value: \"\": empty spec string",
                ],
            ),
            (
                "bad schedule",
                "demo",
                json!({"schedule": "61 * * * *"}),
                vec![
                    "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
                ],
            ),
            (
                "TZ prefix without a space",
                "demo",
                json!({"schedule": "TZ=UTC"}),
                vec![
                    "spec.schedule: Invalid value: \"TZ=UTC\": invalid cron schedule: runtime error: slice bounds out of range [:-1]",
                ],
            ),
            (
                "TZ and timeZone",
                "demo",
                json!({"schedule": "TZ=UTC 0 * * * *", "timeZone": "UTC"}),
                vec![
                    "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use both timeZone field and TZ or CRON_TZ in schedule",
                ],
            ),
            (
                "unknown time zone",
                "demo",
                json!({"timeZone": "broken"}),
                vec!["spec.timeZone: Invalid value: \"broken\": unknown time zone broken"],
            ),
            (
                "empty time zone",
                "demo",
                json!({"timeZone": ""}),
                vec![
                    "spec.timeZone: Invalid value: \"\": timeZone must be nil or non-empty string",
                ],
            ),
            (
                "Local",
                "demo",
                json!({"timeZone": "Local"}),
                vec![
                    "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
                ],
            ),
            (
                "negative numbers, bare",
                "demo",
                json!({"startingDeadlineSeconds": -1, "successfulJobsHistoryLimit": -2, "failedJobsHistoryLimit": -3}),
                vec![
                    "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0",
                    "spec.successfulJobsHistoryLimit: Invalid value: -2: must be greater than or equal to 0",
                    "spec.failedJobsHistoryLimit: Invalid value: -3: must be greater than or equal to 0",
                ],
            ),
            (
                "no template",
                "demo",
                json!({"template": {}}),
                vec![
                    "spec.template: Forbidden: spec must have one template, either JobTemplate or BroadcastJobTemplate or ImageListPullJobTemplate should be provided",
                ],
            ),
            (
                "two templates",
                "demo",
                json!({"template": {
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}},
                "broadcastJobTemplate": bcj["broadcastJobTemplate"].clone()}}),
                vec![
                    "spec.template: Forbidden: spec can have only one template, either JobTemplate or BroadcastJobTemplate or ImageListPullJobTemplate should be provided",
                ],
            ),
            (
                "a template without containers",
                "demo",
                json!({"template": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}}),
                vec!["spec.template.spec.containers: Required value"],
            ),
            (
                "dots in the name",
                "a.b",
                json!({}),
                vec![
                    "metadata.name: Invalid value: \"a.b\": AdvancedCronJob name must consist of alphanumeric characters or '-' (e.g. 'example-com', regex used for validation is '^[a-zA-Z0-9\\-]+$')",
                ],
            ),
        ];
        for (rule, name, spec, want) in cases {
            assert_eq!(messages(&acj(name, spec).validate()), want, "{rule}");
        }
        let long = "a".repeat(64);
        assert_eq!(
            messages(&acj(&long, json!({})).validate()),
            vec![format!(
                "metadata.name: Invalid value: \"{long}\": must be no more than 63 characters"
            )]
        );
        assert!(acj(&"a".repeat(63), json!({})).validate().is_empty());
    }

    #[test]
    fn updates_change_only_the_schedule_and_policies() {
        let old = acj("demo", json!({}));
        let new = acj(
            "demo",
            json!({"schedule": "@hourly", "paused": true, "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 0, "startingDeadlineSeconds": 30,
            "timeZone": "Asia/Tokyo"}),
        );
        assert!(new.validate_update(&old).is_empty());
        let changed = acj(
            "demo",
            json!({"template": {"jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:2"}]}}}}}}),
        );
        assert_eq!(
            messages(&changed.validate_update(&old)),
            vec![format!("spec: Forbidden: {FORBIDDEN_UPDATE}")]
        );
    }
}
