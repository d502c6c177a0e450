//! The webhooks graft serves. Each handler is a thin async shell (decode, read what it needs from
//! the API) around a pure function from the object (and what was read) to a [`Verdict`], which
//! the unit tests call directly.

pub mod advancedcronjob;
pub mod broadcastjob;
pub mod cloneset;
pub mod convert;
pub mod crr;
pub mod deletion;
pub mod pod;
pub mod r#pub;
pub mod sidecarset;
pub mod statefulset;

use std::sync::Arc;

use kube::core::DynamicObject;
use kube::core::admission::AdmissionRequest;
use serde_json::Value;

use crate::error::HandlerError;
use crate::server::{Registry, Verdict};

/// Every handler graft serves; `sidecarsets` feeds pod injection, `pubs` PodUnavailableBudget
/// protection; `deletion_protection` adds the `Cascading` Namespace and CRD webhooks.
pub fn registry(
    client: kube::Client,
    sidecarsets: graft_controllers::sidecarset::SidecarSetSource,
    pubs: kube::runtime::reflector::Store<graft_api::policy::v1alpha1::PodUnavailableBudget>,
    deletion_protection: bool,
) -> Registry {
    let mut handlers: Vec<Arc<dyn crate::server::Handler>> = vec![
        Arc::new(crr::CrrHandler::new(client.clone())),
        Arc::new(cloneset::CloneSetHandler),
        Arc::new(advancedcronjob::AdvancedCronJobHandler),
        Arc::new(broadcastjob::BroadcastJobHandler),
        Arc::new(statefulset::StatefulSetHandler::new(client.clone())),
        Arc::new(sidecarset::SidecarSetHandler::new(
            sidecarsets.sidecarsets.clone(),
        )),
        Arc::new(pod::PodHandler::new(sidecarsets)),
        Arc::new(r#pub::PubHandler::new(
            client.clone(),
            pubs,
            graft_controllers::pubguard::Guard::new(
                client.clone(),
                Some(Arc::new(graft_controllers::events::Recorder::new(
                    client.clone(),
                    "graft-admission",
                    "graft",
                ))),
            ),
        )),
    ];
    if deletion_protection {
        handlers.push(Arc::new(deletion::NamespaceDeletion::new(client.clone())));
        handlers.push(Arc::new(deletion::CrdDeletion::new(client)));
    }
    Registry::new(handlers)
}

/// The request's object (or old object) as JSON, exactly as the API server sent it.
pub(crate) fn object_json(
    req: &AdmissionRequest<DynamicObject>,
    old: bool,
    kind: &'static str,
) -> Result<Value, HandlerError> {
    let obj = if old { &req.old_object } else { &req.object };
    let obj = obj.as_ref().ok_or_else(|| HandlerError::Decode {
        kind,
        key: crate::server::request_key(req),
        reason: format!(
            "the request has no {}",
            if old { "oldObject" } else { "object" }
        ),
    })?;
    serde_json::to_value(obj).map_err(|e| HandlerError::Decode {
        kind,
        key: crate::server::request_key(req),
        reason: e.to_string(),
    })
}

/// The JSON patch from `before` to `after`, or [`Verdict::Allow`] when they are equal.
pub fn patch_between(before: &Value, after: &Value) -> Verdict {
    let patch = json_patch::diff(before, after);
    if patch.0.is_empty() {
        Verdict::Allow
    } else {
        Verdict::Patch(patch)
    }
}

/// Adds to `target` every field of `defaults` it lacks (or holds as `null`), recursing into
/// objects; lists and present values are left as they are.
pub fn fill_missing(target: &mut Value, defaults: &Value) {
    let (Some(t), Some(d)) = (target.as_object_mut(), defaults.as_object()) else {
        return;
    };
    for (k, v) in d {
        match t.get_mut(k) {
            None | Some(Value::Null) => {
                t.insert(k.clone(), v.clone());
            }
            Some(existing) => fill_missing(existing, v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fill_missing_never_overrides() {
        let mut t = json!({"a": 1, "b": {"c": 2, "e": null}, "l": [1]});
        fill_missing(
            &mut t,
            &json!({"a": 9, "b": {"c": 9, "d": 3, "e": 4}, "l": [9, 9], "n": {"x": 1}}),
        );
        assert_eq!(
            t,
            json!({"a": 1, "b": {"c": 2, "d": 3, "e": 4}, "l": [1], "n": {"x": 1}})
        );
    }

    #[test]
    fn no_change_is_no_patch() {
        assert_eq!(
            patch_between(&json!({"a": 1}), &json!({"a": 1})),
            Verdict::Allow
        );
        assert!(matches!(
            patch_between(&json!({"a": 1}), &json!({"a": 1, "b": 2})),
            Verdict::Patch(_)
        ));
    }
}
