//! The `MutatingWebhookConfiguration` graft writes for its handlers (server-side apply, field
//! manager `graft`). Every webhook fails open (`failurePolicy: Ignore`) after at most
//! [`crate::TIMEOUT_SECONDS`], never sees `kube-system`, graft's own namespace or anything labelled
//! `graft.dev/admission: disabled`, and trusts the CA from graft's certificate Secret. The
//! configuration is left in place when graft stops: the API server then admits without graft
//! (a refused connection fails at once, no timeout wait).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, ServiceReference, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, OwnerReference,
};
use kube::api::{Api, ObjectMeta, Patch, PatchParams};

use crate::error::Error;
use crate::server::{Registry, Webhook};
use crate::{Endpoint, Options, TIMEOUT_SECONDS};

/// Label that keeps a namespace or an object away from graft's webhooks.
pub const OPT_OUT_LABEL: &str = graft_api::apps::v1beta1::sidecarset::ADMISSION_OPT_OUT_LABEL;
/// Its value.
pub const OPT_OUT_VALUE: &str = "disabled";
/// Namespaces never sent to graft (besides graft's own).
pub const SYSTEM_NAMESPACES: &[&str] = &["kube-system"];

/// Where a webhook is sent requests from: the namespace and object selectors every graft
/// webhook shares, and the client config with the CA.
pub(crate) struct Scope {
    pub(crate) namespace_selector: LabelSelector,
    pub(crate) object_selector: LabelSelector,
}

pub(crate) fn scope(opts: &Options) -> Scope {
    let mut excluded: Vec<String> = SYSTEM_NAMESPACES.iter().map(|s| s.to_string()).collect();
    // graft's own namespace is left out, unless graft watches only that namespace (a graft
    // installed next to the workloads it runs, as one namespace-scoped release): then it is the
    // one namespace the webhooks are for.
    let own_is_watched = opts.watch_namespace.as_deref() == Some(opts.namespace.as_str());
    if !own_is_watched && !excluded.contains(&opts.namespace) {
        excluded.push(opts.namespace.clone());
    }
    let mut namespace_rules = vec![
        requirement("kubernetes.io/metadata.name", "NotIn", excluded),
        requirement(OPT_OUT_LABEL, "NotIn", vec![OPT_OUT_VALUE.to_string()]),
    ];
    if let Some(ns) = &opts.watch_namespace {
        namespace_rules.push(requirement(
            "kubernetes.io/metadata.name",
            "In",
            vec![ns.clone()],
        ));
    }
    Scope {
        namespace_selector: LabelSelector {
            match_expressions: Some(namespace_rules),
            match_labels: None,
        },
        object_selector: LabelSelector {
            match_expressions: Some(vec![requirement(
                OPT_OUT_LABEL,
                "NotIn",
                vec![OPT_OUT_VALUE.to_string()],
            )]),
            match_labels: None,
        },
    }
}

fn managed_metadata(opts: &Options) -> ObjectMeta {
    ObjectMeta {
        name: Some(opts.config_name.clone()),
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_string(),
            "graft".to_string(),
        )])),
        ..Default::default()
    }
}

/// The MutatingWebhookConfiguration for the mutating ones of these webhooks.
pub fn configuration(
    opts: &Options,
    webhooks: &[Webhook],
    ca_bundle: &str,
) -> MutatingWebhookConfiguration {
    let scope = scope(opts);
    let hooks = webhooks
        .iter()
        .filter(|w| !w.is_validating())
        .map(|w| MutatingWebhook {
            name: w.name.to_string(),
            admission_review_versions: vec!["v1".to_string()],
            client_config: client_config(&opts.endpoint, w.path, ca_bundle),
            failure_policy: Some("Ignore".to_string()),
            match_policy: Some("Equivalent".to_string()),
            namespace_selector: Some(scope.namespace_selector.clone()),
            object_selector: Some(object_selector(&scope.object_selector, w)),
            reinvocation_policy: Some("Never".to_string()),
            rules: Some(w.rules.clone()),
            side_effects: "None".to_string(),
            timeout_seconds: Some(TIMEOUT_SECONDS),
            match_conditions: None,
        })
        .collect();
    MutatingWebhookConfiguration {
        metadata: managed_metadata(opts),
        webhooks: Some(hooks),
    }
}

/// The ValidatingWebhookConfiguration (same name) for the validating ones: same scope, same
/// fail-open policy and timeout.
pub fn validating_configuration(
    opts: &Options,
    webhooks: &[Webhook],
    ca_bundle: &str,
) -> ValidatingWebhookConfiguration {
    let scope = scope(opts);
    let hooks = webhooks
        .iter()
        .filter(|w| w.is_validating())
        .map(|w| ValidatingWebhook {
            name: w.name.to_string(),
            admission_review_versions: vec!["v1".to_string()],
            client_config: client_config(&opts.endpoint, w.path, ca_bundle),
            failure_policy: Some("Ignore".to_string()),
            match_policy: Some("Equivalent".to_string()),
            namespace_selector: Some(scope.namespace_selector.clone()),
            object_selector: Some(object_selector(&scope.object_selector, w)),
            rules: Some(w.rules.clone()),
            side_effects: "None".to_string(),
            timeout_seconds: Some(TIMEOUT_SECONDS),
            match_conditions: None,
        })
        .collect();
    ValidatingWebhookConfiguration {
        metadata: managed_metadata(opts),
        webhooks: Some(hooks),
    }
}

/// The shared object selector plus the webhook's own label requirements.
fn object_selector(shared: &LabelSelector, w: &Webhook) -> LabelSelector {
    let mut s = with_absent(shared, w.absent_labels);
    s.match_expressions
        .get_or_insert_with(Vec::new)
        .extend(w.label_in.iter().map(|(key, values)| {
            requirement(key, "In", values.iter().map(|v| v.to_string()).collect())
        }));
    s
}

/// `selector` plus a `DoesNotExist` requirement per label.
fn with_absent(selector: &LabelSelector, labels: &[&str]) -> LabelSelector {
    let mut s = selector.clone();
    s.match_expressions
        .get_or_insert_with(Vec::new)
        .extend(labels.iter().map(|l| LabelSelectorRequirement {
            key: (*l).to_string(),
            operator: "DoesNotExist".to_string(),
            values: None,
        }));
    s
}

fn requirement(key: &str, operator: &str, values: Vec<String>) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_string(),
        operator: operator.to_string(),
        values: Some(values),
    }
}

fn client_config(endpoint: &Endpoint, path: &str, ca_bundle: &str) -> WebhookClientConfig {
    let ca = Some(ByteString(ca_bundle.as_bytes().to_vec()));
    match endpoint {
        Endpoint::Url(base) => WebhookClientConfig {
            url: Some(format!("{}{path}", base.trim_end_matches('/'))),
            ca_bundle: ca,
            service: None,
        },
        Endpoint::Service {
            name,
            namespace,
            port,
        } => WebhookClientConfig {
            url: None,
            ca_bundle: ca,
            service: Some(ServiceReference {
                name: name.clone(),
                namespace: namespace.clone(),
                path: Some(path.to_string()),
                port: Some(*port),
            }),
        },
    }
}

/// Writes both configurations and the deletion-protection policy (server-side apply, field
/// manager `graft`, forced: graft owns them).
pub async fn apply(
    client: &kube::Client,
    opts: &Options,
    registry: &Registry,
    ca_bundle: &str,
) -> Result<(), Error> {
    // Owned by graft's namespace: deleting graft's namespace removes the configurations too.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let owner = match namespaces.get_opt(&opts.namespace).await {
        Ok(Some(ns)) => ns.metadata.uid.map(|uid| OwnerReference {
            api_version: "v1".to_string(),
            kind: "Namespace".to_string(),
            name: opts.namespace.clone(),
            uid,
            ..Default::default()
        }),
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(namespace = %opts.namespace, error = %e, "admission: graft's namespace not readable; the configuration gets no owner");
            None
        }
    };
    let webhooks = registry.webhooks();
    let mut mutating = configuration(opts, &webhooks, ca_bundle);
    mutating.metadata.owner_references = owner.clone().map(|o| vec![o]);
    let mut validating = validating_configuration(opts, &webhooks, ca_bundle);
    validating.metadata.owner_references = owner.clone().map(|o| vec![o]);
    apply_one::<MutatingWebhookConfiguration>(client, opts, &mutating).await?;
    apply_one::<ValidatingWebhookConfiguration>(client, opts, &validating).await?;
    crate::policy::apply(client, opts, owner.as_ref()).await
}

async fn apply_one<K>(client: &kube::Client, opts: &Options, config: &K) -> Result<(), Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
        + k8s_openapi::Resource
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let api: Api<K> = Api::all(client.clone());
    let mut value = serde_json::to_value(config).map_err(|e| Error::Tls(e.to_string()))?;
    if let Some(o) = value.as_object_mut() {
        o.insert(
            "apiVersion".into(),
            <K as k8s_openapi::Resource>::API_VERSION.into(),
        );
        o.insert("kind".into(), <K as k8s_openapi::Resource>::KIND.into());
    }
    api.patch(
        &opts.config_name,
        &PatchParams::apply("graft").force(),
        &Patch::Apply(&value),
    )
    .await
    .map_err(|source| Error::Configuration {
        name: format!(
            "{} {}",
            <K as k8s_openapi::Resource>::KIND,
            opts.config_name
        ),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::rule;
    use pretty_assertions::assert_eq;
    use serde_json::{Value, json};

    fn webhooks() -> Vec<Webhook> {
        vec![Webhook {
            name: "mcloneset.graft.dev",
            path: "/mutate-apps-kruise-io-v1alpha1-cloneset",
            rules: vec![rule(
                "apps.kruise.io",
                &["v1alpha1"],
                "clonesets",
                &["CREATE", "UPDATE"],
            )],
            absent_labels: &[],
            label_in: &[],
        }]
    }

    #[test]
    fn absent_labels_keep_those_objects_away() {
        let opts = Options::new(
            "127.0.0.1:9443".parse().unwrap(),
            Endpoint::Url("https://10.0.0.1:9443".into()),
            "graft-system".into(),
        );
        let pod = Webhook {
            name: "mpod.graft.dev",
            path: "/mutate-pod",
            rules: vec![rule("", &["v1"], "pods", &["CREATE"])],
            absent_labels: &["apps.kruise.io/cloneset-instance-id"],
            label_in: &[],
        };
        let c = configuration(&opts, &[webhooks().remove(0), pod], "CA");
        let selectors: Vec<Value> = c
            .webhooks
            .unwrap()
            .iter()
            .map(|w| serde_json::to_value(w.object_selector.as_ref().unwrap()).unwrap())
            .collect();
        let opt_out =
            json!({"key": "graft.dev/admission", "operator": "NotIn", "values": ["disabled"]});
        assert_eq!(selectors[0], json!({"matchExpressions": [opt_out.clone()]}));
        assert_eq!(
            selectors[1],
            json!({"matchExpressions": [opt_out, {"key": "apps.kruise.io/cloneset-instance-id", "operator": "DoesNotExist"}]})
        );
    }

    #[test]
    fn outside_the_cluster_the_url_is_used_and_it_fails_open() {
        let opts = Options::new(
            "0.0.0.0:9443".parse().unwrap(),
            Endpoint::Url("https://10.88.0.1:9443/".into()),
            "graft-system".into(),
        );
        let c = serde_json::to_value(configuration(&opts, &webhooks(), "CA")).unwrap();
        assert_eq!(c["metadata"]["name"], json!("graft"));
        assert_eq!(
            c["webhooks"][0],
            json!({
                "name": "mcloneset.graft.dev",
                "admissionReviewVersions": ["v1"],
                "clientConfig": {
                    "url": "https://10.88.0.1:9443/mutate-apps-kruise-io-v1alpha1-cloneset",
                    "caBundle": "Q0E="
                },
                "failurePolicy": "Ignore",
                "matchPolicy": "Equivalent",
                "namespaceSelector": {"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "graft-system"]},
                    {"key": "graft.dev/admission", "operator": "NotIn", "values": ["disabled"]}
                ]},
                "objectSelector": {"matchExpressions": [
                    {"key": "graft.dev/admission", "operator": "NotIn", "values": ["disabled"]}
                ]},
                "reinvocationPolicy": "Never",
                "rules": [{
                    "apiGroups": ["apps.kruise.io"],
                    "apiVersions": ["v1alpha1"],
                    "resources": ["clonesets"],
                    "operations": ["CREATE", "UPDATE"],
                    "scope": "Namespaced"
                }],
                "sideEffects": "None",
                "timeoutSeconds": 3
            })
        );
    }

    #[test]
    fn in_the_cluster_the_service_is_used_and_a_watched_namespace_narrows_it() {
        let mut opts = Options::new(
            "0.0.0.0:9443".parse().unwrap(),
            Endpoint::Service {
                name: "graft-admission".into(),
                namespace: "graft-system".into(),
                port: 443,
            },
            "graft-system".into(),
        );
        opts.watch_namespace = Some("apps".into());
        opts.config_name = "graft-apps".into();
        let c = serde_json::to_value(configuration(&opts, &webhooks(), "CA")).unwrap();
        assert_eq!(c["metadata"]["name"], json!("graft-apps"));
        assert_eq!(
            c["webhooks"][0]["clientConfig"],
            json!({
                "caBundle": "Q0E=",
                "service": {
                    "name": "graft-admission",
                    "namespace": "graft-system",
                    "path": "/mutate-apps-kruise-io-v1alpha1-cloneset",
                    "port": 443
                }
            })
        );
        assert_eq!(
            c["webhooks"][0]["namespaceSelector"]["matchExpressions"][2],
            json!({"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["apps"]})
        );
    }

    #[test]
    fn a_graft_watching_only_its_own_namespace_admits_there() {
        let mut opts = Options::new(
            "0.0.0.0:9443".parse().unwrap(),
            Endpoint::Url("https://10.0.0.1:9443".into()),
            "apps".into(),
        );
        opts.watch_namespace = Some("apps".into());
        let c = serde_json::to_value(configuration(&opts, &webhooks(), "CA")).unwrap();
        let rules = &c["webhooks"][0]["namespaceSelector"]["matchExpressions"];
        assert_eq!(
            rules[0],
            json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]})
        );
        assert_eq!(
            rules[2],
            json!({"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["apps"]})
        );
    }
}
