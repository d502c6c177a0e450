//! CRI v1 (k8s.io/cri-api v0.34.4) over a unix socket: the generated stubs, a small typed client with
//! bounded timeouts, and (for tests) an in-process fake runtime.

mod client;
#[cfg(test)]
mod client_tests;
mod error;
#[cfg(any(test, feature = "fake-cri"))]
pub mod fake;

pub use client::{CriClient, Timeouts, default_socket_candidates};
pub use error::CriError;

/// Generated CRI v1 messages, clients (`runtime_service_client`, `image_service_client`) and server
/// traits (`runtime_service_server`, `image_service_server`) from the vendored `proto/api.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("runtime.v1");
}

/// The CRI API version graft asks for in `Version` (the kubelet sends the same).
pub const CRI_API_VERSION: &str = "v1";

/// Whether `reference` (`name:tag` or `name@digest`) names `image` by one of its tags or digests,
/// with Docker Hub's short names normalised (`busybox:1` is `docker.io/library/busybox:1`).
pub fn image_matches(image: &proto::Image, reference: &str) -> bool {
    let wanted = normalize_reference(reference);
    image.id == reference
        || image
            .repo_tags
            .iter()
            .chain(image.repo_digests.iter())
            .any(|r| normalize_reference(r) == wanted)
}

/// Expands Docker Hub short names and adds the implicit `:latest` tag, so references compare equal.
pub fn normalize_reference(reference: &str) -> String {
    let (name, suffix) = split_reference(reference);
    let first = name.split('/').next().unwrap_or_default();
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let name = if has_registry {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    match suffix {
        Some(s) => format!("{name}{s}"),
        None => format!("{name}:latest"),
    }
}

/// Splits `name[:tag][@digest]` into the name and the `:tag`/`@digest` suffix (with its separator).
pub fn split_reference(reference: &str) -> (&str, Option<&str>) {
    if let Some(at) = reference.find('@') {
        return (&reference[..at], Some(&reference[at..]));
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(colon) => {
            let at = last_slash + colon;
            (&reference[..at], Some(&reference[at..]))
        }
        None => (reference, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised_like_the_runtime_does() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("org/app:v1", "docker.io/org/app:v1"),
            (
                "127.0.0.1:5100/graft-test/app:v1",
                "127.0.0.1:5100/graft-test/app:v1",
            ),
            (
                "127.0.0.1:5100/graft-test/app",
                "127.0.0.1:5100/graft-test/app:latest",
            ),
            ("localhost/app:v1", "localhost/app:v1"),
            ("reg.io/a/b@sha256:abc", "reg.io/a/b@sha256:abc"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_reference(input), want, "{input}");
        }
    }

    #[test]
    fn an_image_matches_by_tag_digest_or_id() {
        let image = proto::Image {
            id: "sha256:1".into(),
            repo_tags: vec!["127.0.0.1:5100/graft-test/app:v1".into()],
            repo_digests: vec!["127.0.0.1:5100/graft-test/app@sha256:9".into()],
            ..Default::default()
        };
        assert!(image_matches(&image, "127.0.0.1:5100/graft-test/app:v1"));
        assert!(image_matches(
            &image,
            "127.0.0.1:5100/graft-test/app@sha256:9"
        ));
        assert!(image_matches(&image, "sha256:1"));
        assert!(!image_matches(&image, "127.0.0.1:5100/graft-test/app:v2"));
        assert!(!image_matches(&image, "127.0.0.1:5100/graft-test/app"));
    }
}
