//! Image reference comparison for completion checks.

/// Whether two image references name the same image: equal after the Docker normalisation the
/// kubelet applies (`nginx` = `nginx:latest` = `docker.io/library/nginx:latest`). kruise compares
/// the status `image` with the spec image, adding `:latest` to untagged ones; the runtime may
/// report the fully qualified name, so graft normalises the registry part too.
pub fn same_image(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

fn normalize(image: &str) -> String {
    let image = image.trim();
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let (repo, tag) = match name.rsplit_once(':') {
        // A ':' before the last '/' is a registry port, not a tag.
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (name, None),
    };
    let repo = match repo.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            repo.to_string()
        }
        Some(_) => format!("docker.io/{repo}"),
        None => format!("docker.io/library/{repo}"),
    };
    let repo = repo
        .strip_prefix("index.docker.io/")
        .map_or(repo.clone(), |r| format!("docker.io/{r}"));
    match (tag, digest) {
        (Some(t), Some(d)) => format!("{repo}:{t}@{d}"),
        (Some(t), None) => format!("{repo}:{t}"),
        (None, Some(d)) => format!("{repo}@{d}"),
        (None, None) => format!("{repo}:latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        let cases = [
            ("nginx", "nginx:latest", true),
            ("nginx:1.25", "docker.io/library/nginx:1.25", true),
            ("user/app:v1", "docker.io/user/app:v1", true),
            ("localhost:5000/app", "localhost:5000/app:latest", true),
            ("localhost:5000/app:v1", "localhost:5000/app:v2", false),
            ("nginx:1", "nginx:2", false),
            ("nginx@sha256:aa", "docker.io/library/nginx@sha256:aa", true),
            ("registry.k8s.io/pause:3.9", "pause:3.9", false),
        ];
        for (a, b, same) in cases {
            assert_eq!(same_image(a, b), same, "{a} vs {b}");
        }
    }
}
