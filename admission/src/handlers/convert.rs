//! `POST /convert`: the CRD conversion webhook (`apiextensions.k8s.io/v1` ConversionReview), as
//! OpenKruise's webhook server answers it for its multi-version CRDs. Each object is converted by
//! [`graft_api::conversion::convert`]; one object that cannot be converted fails the whole review
//! (the API server then fails the request that needed it, naming the object).
//!
//! Unlike the admission webhooks this cannot fail open: the API server has no unconverted answer
//! to fall back on.

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use kube::core::Status;
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};

/// Largest ConversionReview accepted: the API server sends a whole list in one review.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The route `POST` [`graft_api::crds::CONVERSION_PATH`].
pub fn router() -> Router {
    Router::new().route(
        graft_api::crds::CONVERSION_PATH,
        post(review).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    )
}

async fn review(Json(review): Json<ConversionReview>) -> Json<ConversionReview> {
    Json(answer(review))
}

/// The answer to one ConversionReview.
pub fn answer(review: ConversionReview) -> ConversionReview {
    let mut req = match ConversionRequest::from_review(review) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "conversion: a review without a request");
            return ConversionResponse::invalid(Status::failure(&e.to_string(), "BadRequest"))
                .into_review();
        }
    };
    let desired = req.desired_api_version.clone();
    let objects = std::mem::take(&mut req.objects);
    let count = objects.len();
    let response = ConversionResponse::for_request(req);
    let converted: Result<Vec<_>, _> = objects
        .into_iter()
        .map(|o| graft_api::conversion::convert(o, &desired))
        .collect();
    match converted {
        Ok(objects) => {
            tracing::debug!(%desired, count, "conversion: converted");
            response.success(objects).into_review()
        }
        Err(e) => {
            tracing::warn!(%desired, error = %e, "conversion: refused");
            response
                .failure(Status::failure(&e.to_string(), "Invalid"))
                .into_review()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn review(objects: serde_json::Value, desired: &str) -> ConversionReview {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {"uid": "u-1", "desiredAPIVersion": desired, "objects": objects}
        }))
        .unwrap()
    }

    #[test]
    fn converts_every_object_in_order() {
        let out = answer(review(
            json!([
                {"apiVersion": "apps.kruise.io/v1alpha1", "kind": "SidecarSet",
                 "metadata": {"name": "a", "labels": {"apps.kruise.io/sidecarset-custom-version": "v1"}},
                 "spec": {"namespace": "prod"}},
                {"apiVersion": "apps.kruise.io/v1alpha1", "kind": "SidecarSet", "metadata": {"name": "b"}, "spec": {}}
            ]),
            "apps.kruise.io/v1beta1",
        ));
        assert_eq!(
            serde_json::to_value(out).unwrap(),
            json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "ConversionReview",
                "response": {
                    "uid": "u-1",
                    "result": {"status": "Success"},
                    "convertedObjects": [
                        {"apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet", "metadata": {"name": "a"},
                         "spec": {"customVersion": "v1",
                                  "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prod"}}}},
                        {"apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet", "metadata": {"name": "b"}, "spec": {}}
                    ]
                }
            })
        );
    }

    #[test]
    fn an_unknown_version_fails_the_review_and_names_the_object() {
        let out = answer(review(
            json!([{"apiVersion": "apps.kruise.io/v1alpha1", "kind": "SidecarSet", "metadata": {"name": "a"}}]),
            "apps.kruise.io/v2",
        ));
        let v = serde_json::to_value(out).unwrap();
        assert_eq!(v["response"]["uid"], json!("u-1"));
        assert_eq!(v["response"]["result"]["status"], json!("Failure"));
        assert_eq!(
            v["response"]["result"]["message"],
            json!("cannot convert SidecarSet a: unsupported version \"apps.kruise.io/v2\"")
        );
        assert_eq!(v["response"]["convertedObjects"], json!([]));
    }
}
