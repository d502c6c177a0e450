//! Deletion protection the API server enforces itself: a ValidatingAdmissionPolicy (CEL, in the
//! API server's process) and its binding, written by graft at start like the webhook
//! configuration. It decides everything that needs only the deleted object
//! (kruise-api.md §9):
//!
//! - `policy.kruise.io/delete-protection: Always` refuses the DELETE of a Namespace, CRD,
//!   Deployment, ReplicaSet, StatefulSet, CloneSet, Advanced StatefulSet, Service or Ingress;
//! - `Cascading` refuses the DELETE of a workload while `spec.replicas > 0`.
//!
//! No network hop and no graft process is involved, so it holds while graft is down and can never
//! time out. `Cascading` on Namespaces and CRDs needs a list of their dependents: that is the
//! webhook in [`crate::handlers::deletion`]. `Cascading` on Services and Ingresses protects
//! nothing, as in OpenKruise 1.9.
//!
//! The policy's scope is the webhooks' scope (kube-system, graft's namespace and objects or
//! namespaces labelled `graft.dev/admission: disabled` are left out), and only labelled objects
//! match, so an unlabelled delete is not even evaluated.

use std::collections::BTreeMap;

use graft_api::labels::{DELETE_PROTECTION, DELETE_PROTECTION_ALWAYS, DELETE_PROTECTION_CASCADING};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::Options;
use crate::error::Error;

/// The name of the policy and of its binding for these options.
pub fn name(opts: &Options) -> String {
    format!("{}-deletion-protection", opts.config_name)
}

/// The kinds the policy guards: (API group, resources).
pub const PROTECTED: &[(&str, &[&str])] = &[
    ("", &["namespaces", "services"]),
    ("apps", &["deployments", "replicasets", "statefulsets"]),
    ("apps.kruise.io", &["clonesets", "statefulsets"]),
    ("networking.k8s.io", &["ingresses"]),
    ("apiextensions.k8s.io", &["customresourcedefinitions"]),
];

/// The resources whose `Cascading` protection is `spec.replicas > 0`.
pub const WITH_REPLICAS: &[&str] = &["deployments", "replicasets", "statefulsets", "clonesets"];

/// The ValidatingAdmissionPolicy, as JSON (server-side applied).
pub fn policy(opts: &Options, owner: Option<&OwnerReference>) -> Value {
    let label = format!("oldObject.metadata.labels['{DELETE_PROTECTION}']");
    let rules: Vec<Value> = PROTECTED
        .iter()
        .map(|(group, resources)| {
            json!({
                "apiGroups": [group],
                "apiVersions": ["*"],
                "resources": resources,
                "operations": ["DELETE"],
                "scope": "*"
            })
        })
        .collect();
    let with_replicas = serde_json::to_string(WITH_REPLICAS).unwrap_or_default();
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": metadata(&name(opts), owner),
        "spec": {
            // A CEL error (none is expected: every access is guarded) admits the delete.
            "failurePolicy": "Ignore",
            "matchConstraints": {
                "resourceRules": rules,
                "matchPolicy": "Equivalent",
            },
            "matchConditions": [
                {"name": "not-being-deleted", "expression": "!has(oldObject.metadata.deletionTimestamp)"}
            ],
            "validations": [
                {
                    "expression": format!("{label} != '{DELETE_PROTECTION_ALWAYS}'"),
                    "message": format!("forbidden by ResourcesProtectionDeletion for {DELETE_PROTECTION}={DELETE_PROTECTION_ALWAYS}"),
                    "reason": "Forbidden"
                },
                {
                    "expression": format!(
                        "{label} != '{DELETE_PROTECTION_CASCADING}' || !(request.resource.resource in {with_replicas}) || !has(oldObject.spec) || !has(oldObject.spec.replicas) || oldObject.spec.replicas <= 0"
                    ),
                    "messageExpression": format!(
                        "'forbidden by ResourcesProtectionDeletion for {DELETE_PROTECTION}={DELETE_PROTECTION_CASCADING} and replicas ' + string(oldObject.spec.replicas) + '>0'"
                    ),
                    "reason": "Forbidden"
                }
            ]
        }
    })
}

/// Its binding: deny, in the webhooks' scope, for labelled objects only.
pub fn binding(opts: &Options, owner: Option<&OwnerReference>) -> Value {
    let scope = crate::config::scope(opts);
    let mut object_selector = serde_json::to_value(&scope.object_selector).unwrap_or_default();
    if let Some(exprs) = object_selector
        .get_mut("matchExpressions")
        .and_then(Value::as_array_mut)
    {
        exprs.push(json!({
            "key": DELETE_PROTECTION,
            "operator": "In",
            "values": [DELETE_PROTECTION_ALWAYS, DELETE_PROTECTION_CASCADING]
        }));
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": metadata(&name(opts), owner),
        "spec": {
            "policyName": name(opts),
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": scope.namespace_selector,
                "objectSelector": object_selector
            }
        }
    })
}

fn metadata(name: &str, owner: Option<&OwnerReference>) -> Value {
    let mut m = json!({
        "name": name,
        "labels": BTreeMap::from([("app.kubernetes.io/managed-by", "graft")]),
    });
    if let Some(o) = owner {
        m["ownerReferences"] = json!([o]);
    }
    m
}

/// Writes the policy and its binding (server-side apply, forced), or removes them when deletion
/// protection is switched off.
pub async fn apply(
    client: &kube::Client,
    opts: &Options,
    owner: Option<&OwnerReference>,
) -> Result<(), Error> {
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    let name = name(opts);
    let fail = |source| Error::Configuration {
        name: name.clone(),
        source,
    };
    if !opts.deletion_protection {
        for r in [
            bindings
                .delete(&name, &DeleteParams::default())
                .await
                .map(|_| ()),
            policies
                .delete(&name, &DeleteParams::default())
                .await
                .map(|_| ()),
        ] {
            match r {
                Ok(()) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(fail(e)),
            }
        }
        return Ok(());
    }
    let params = PatchParams::apply("graft").force();
    policies
        .patch(&name, &params, &Patch::Apply(policy(opts, owner)))
        .await
        .map_err(fail)?;
    bindings
        .patch(&name, &params, &Patch::Apply(binding(opts, owner)))
        .await
        .map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Endpoint;
    use pretty_assertions::assert_eq;

    fn opts() -> Options {
        Options::new(
            "127.0.0.1:9443".parse().unwrap(),
            Endpoint::Url("https://10.0.0.1:9443".into()),
            "graft-system".into(),
        )
    }

    #[test]
    fn the_policy_guards_every_protected_kind_on_delete_only() {
        let p = policy(&opts(), None);
        assert_eq!(p["metadata"]["name"], json!("graft-deletion-protection"));
        let rules = p["spec"]["matchConstraints"]["resourceRules"]
            .as_array()
            .unwrap();
        let mut resources: Vec<String> = Vec::new();
        for r in rules {
            assert_eq!(r["operations"], json!(["DELETE"]));
            for res in r["resources"].as_array().unwrap() {
                resources.push(format!(
                    "{}/{}",
                    r["apiGroups"][0].as_str().unwrap(),
                    res.as_str().unwrap()
                ));
            }
        }
        assert_eq!(
            resources,
            [
                "/namespaces",
                "/services",
                "apps/deployments",
                "apps/replicasets",
                "apps/statefulsets",
                "apps.kruise.io/clonesets",
                "apps.kruise.io/statefulsets",
                "networking.k8s.io/ingresses",
                "apiextensions.k8s.io/customresourcedefinitions"
            ]
        );
        let v = &p["spec"]["validations"];
        assert_eq!(
            v[0]["message"],
            json!(
                "forbidden by ResourcesProtectionDeletion for policy.kruise.io/delete-protection=Always"
            )
        );
        assert!(
            v[1]["expression"]
                .as_str()
                .unwrap()
                .contains(r#"["deployments","replicasets","statefulsets","clonesets"]"#)
        );
    }

    #[test]
    fn the_binding_denies_only_labelled_objects_in_the_webhooks_scope() {
        let b = binding(&opts(), None);
        assert_eq!(b["spec"]["policyName"], json!("graft-deletion-protection"));
        assert_eq!(b["spec"]["validationActions"], json!(["Deny"]));
        let m = &b["spec"]["matchResources"];
        assert_eq!(
            m["namespaceSelector"]["matchExpressions"][0],
            json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "graft-system"]})
        );
        assert_eq!(
            m["objectSelector"]["matchExpressions"],
            json!([
                {"key": "graft.dev/admission", "operator": "NotIn", "values": ["disabled"]},
                {"key": "policy.kruise.io/delete-protection", "operator": "In", "values": ["Always", "Cascading"]}
            ])
        );
    }
}
