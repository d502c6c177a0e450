//! Reading push payloads: the repository URLs, the ref and the new tip.

use serde_json::Value;

use super::{Event, Provider, Push, header};

/// The event of a verified request.
pub(super) fn event(
    provider: Provider,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Event, String> {
    let kind = match provider {
        Provider::GitHub => header(headers, "X-GitHub-Event"),
        Provider::Gitea => {
            header(headers, "X-Gitea-Event").or_else(|| header(headers, "X-GitHub-Event"))
        }
        Provider::Forgejo => {
            header(headers, "X-Forgejo-Event").or_else(|| header(headers, "X-Gitea-Event"))
        }
        Provider::GitLab => header(headers, "X-Gitlab-Event"),
        Provider::Generic => None,
    };
    match (provider, kind) {
        (_, Some("ping")) => return Ok(Event::Ping),
        (Provider::GitLab, Some(k)) if k != "Push Hook" && k != "Tag Push Hook" => {
            return Ok(Event::Other(k.to_string()));
        }
        (Provider::GitHub | Provider::Gitea | Provider::Forgejo, Some(k))
            if k != "push" && k != "create" =>
        {
            return Ok(Event::Other(k.to_string()));
        }
        _ => {}
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let urls =
        |pointers: &[&str]| -> Vec<String> { pointers.iter().filter_map(|p| s(p)).collect() };
    let (repository_urls, git_ref, commit) = match provider {
        Provider::GitHub | Provider::Gitea | Provider::Forgejo => (
            urls(&[
                "/repository/clone_url",
                "/repository/ssh_url",
                "/repository/git_url",
                "/repository/html_url",
                "/repository/url",
            ]),
            s("/ref"),
            s("/after"),
        ),
        Provider::GitLab => (
            urls(&[
                "/project/git_http_url",
                "/project/git_ssh_url",
                "/project/web_url",
                "/repository/git_http_url",
                "/repository/git_ssh_url",
                "/repository/homepage",
            ]),
            s("/ref"),
            s("/checkout_sha").or_else(|| s("/after")),
        ),
        Provider::Generic => {
            let mut u = urls(&["/url", "/repository/url", "/repository/clone_url"]);
            if let Some(list) = v.get("urls").and_then(Value::as_array) {
                u.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
            }
            (u, s("/ref"), s("/commit").or_else(|| s("/after")))
        }
    };
    if repository_urls.is_empty() {
        return Err("the payload names no repository URL".into());
    }
    // A branch or tag push of all zeros is a deletion: nothing to sync, but a sync is harmless.
    Ok(Event::Push(Push {
        repository_urls,
        git_ref,
        commit,
    }))
}

/// Reduces a repository URL to `host/path` (lower-case host, no scheme, user, port 22/443/80,
/// `.git` suffix or trailing slash), so the clone, SSH and web URLs of a repository compare
/// equal.
fn normalize(url: &str) -> String {
    let url = url.trim();
    let (rest, scp) = match url.split_once("://") {
        Some((_, rest)) => (rest, false),
        None => (url, true),
    };
    let rest = match rest.find('/') {
        Some(slash) => match rest[..slash].rfind('@') {
            Some(at) => &rest[at + 1..],
            None => rest,
        },
        None => rest.rsplit_once('@').map_or(rest, |(_, r)| r),
    };
    let (host, path) = if scp && !url.starts_with('/') {
        rest.split_once(':').unwrap_or((rest, ""))
    } else {
        rest.split_once('/').unwrap_or((rest, ""))
    };
    let host = host.to_ascii_lowercase();
    let host = host
        .strip_suffix(":22")
        .or_else(|| host.strip_suffix(":443"))
        .or_else(|| host.strip_suffix(":80"))
        .unwrap_or(&host);
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    format!("{host}/{path}")
}

/// True when two URLs name the same repository (see the normalisation above; paths compare
/// case-sensitively, hosts not).
pub fn same_repository(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms_of_one_repository_compare_equal() {
        let forms = [
            "https://github.com/org/repo.git",
            "https://github.com/org/repo",
            "https://GitHub.com/org/repo/",
            "http://github.com:80/org/repo",
            "git@github.com:org/repo.git",
            "ssh://git@github.com/org/repo.git",
            "ssh://git@github.com:22/org/repo",
            "git://github.com/org/repo.git",
            "https://token@github.com/org/repo.git",
        ];
        for f in forms {
            assert!(same_repository(f, forms[0]), "{f} -> {}", normalize(f));
        }
        assert!(!same_repository("https://github.com/org/repo2", forms[0]));
        assert!(!same_repository("https://gitlab.com/org/repo", forms[0]));
        assert!(!same_repository("https://github.com/Org/repo", forms[0]));
        assert!(same_repository(
            "http://127.0.0.1:8080/r.git",
            "http://127.0.0.1:8080/r"
        ));
        assert!(!same_repository(
            "http://127.0.0.1:8080/r.git",
            "http://127.0.0.1:9090/r"
        ));
        assert!(same_repository(
            "file:///srv/git/r.git",
            "file:///srv/git/r"
        ));
    }
}
