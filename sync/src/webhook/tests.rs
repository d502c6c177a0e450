//! Signature tests with published vectors, and payload reading per provider.

use serde_json::json;

use super::*;

const SECRET: &[u8] = b"It's a Secret to Everybody";
const BODY: &[u8] = b"Hello, World!";
/// GitHub's documented example ("Validating webhook deliveries").
const GITHUB_VECTOR: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

#[test]
fn hmac_matches_published_vectors() {
    assert_eq!(sign(BODY, SECRET), GITHUB_VECTOR);
    // RFC 4231, test case 2.
    assert_eq!(
        sign(b"what do ya want for nothing?", b"Jefe"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

fn push_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "after": "0123456789abcdef0123456789abcdef01234567",
        "repository": {"clone_url": "https://git.example/org/app.git", "ssh_url": "git@git.example:org/app.git", "html_url": "https://git.example/org/app"},
    }))
    .unwrap()
}

#[test]
fn signatures_of_every_provider() {
    let body = push_body();
    let sig = sign(&body, SECRET);
    let prefixed = format!("sha256={sig}");
    let ok: Vec<(Provider, Vec<(&str, &str)>)> = vec![
        (
            Provider::GitHub,
            vec![
                ("X-GitHub-Event", "push"),
                ("x-hub-signature-256", &prefixed),
            ],
        ),
        (
            Provider::Gitea,
            vec![
                ("X-Gitea-Event", "push"),
                ("X-Gitea-Signature", &sig),
                ("X-GitHub-Event", "push"),
            ],
        ),
        (
            Provider::Forgejo,
            vec![("X-Forgejo-Event", "push"), ("X-Forgejo-Signature", &sig)],
        ),
        (Provider::Generic, vec![("X-Graft-Signature", &prefixed)]),
    ];
    for (provider, headers) in &ok {
        let (p, event) =
            verify(headers, &body, SECRET).unwrap_or_else(|e| panic!("{provider:?}: {e}"));
        assert_eq!(p, *provider);
        let Event::Push(push) = event else {
            panic!("{provider:?}: {event:?}")
        };
        assert_eq!(push.git_ref.as_deref(), Some("refs/heads/main"));
        assert!(push.matches(
            "git@git.example:org/app.git",
            &Reference::Branch("main".into())
        ));
    }
    // A wrong secret, a changed body, a missing or malformed header: all refused.
    for (provider, headers) in &ok {
        for (body, secret) in [(&body[..], &b"wrong"[..]), (&b"{}"[..], SECRET)] {
            let e = verify(headers, body, secret).unwrap_err();
            assert!(
                matches!(e, Error::WebhookSignature { .. }),
                "{provider:?}: {e:?}"
            );
            assert!(!e.to_string().contains(&sig), "{e}");
        }
    }
    let bad: Vec<Vec<(&str, &str)>> = vec![
        vec![("X-GitHub-Event", "push")],
        vec![("X-Hub-Signature-256", &sig)],
        vec![("X-Hub-Signature-256", "sha256=zz")],
        vec![("X-Graft-Signature", "sha256=")],
        vec![("X-Gitea-Event", "push")],
        vec![],
    ];
    for headers in bad {
        assert!(
            matches!(
                verify(&headers, &body, SECRET),
                Err(Error::WebhookSignature { .. })
            ),
            "{headers:?}"
        );
    }
    // No secret configured: nothing is accepted.
    let e = verify(&ok[0].1, &body, b"").unwrap_err();
    assert!(e.to_string().contains("no webhook secret"), "{e}");
}

#[test]
fn gitlab_token_and_payload() {
    let body = serde_json::to_vec(&json!({
        "object_kind": "push", "ref": "refs/heads/main", "after": "aaa", "checkout_sha": "bbb",
        "project": {"git_http_url": "https://gitlab.example/g/app.git", "git_ssh_url": "git@gitlab.example:g/app.git", "web_url": "https://gitlab.example/g/app"},
    }))
    .unwrap();
    let secret = b"gl-token";
    let headers = [
        ("X-Gitlab-Event", "Push Hook"),
        ("X-Gitlab-Token", "gl-token"),
    ];
    let (p, Event::Push(push)) = verify(&headers, &body, secret).unwrap() else {
        panic!()
    };
    assert_eq!(p, Provider::GitLab);
    assert_eq!(push.commit.as_deref(), Some("bbb"));
    assert_eq!(push.repository_urls.len(), 3);
    assert!(push.matches("https://gitlab.example/g/app", &Reference::DefaultBranch));
    assert!(!push.matches(
        "https://gitlab.example/g/app",
        &Reference::Branch("dev".into())
    ));
    assert!(!push.matches("https://gitlab.example/g/other", &Reference::DefaultBranch));
    for wrong in ["gl-toke", "gl-token2", ""] {
        let h = [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", wrong)];
        assert!(
            matches!(
                verify(&h, &body, secret),
                Err(Error::WebhookSignature { .. })
            ),
            "{wrong}"
        );
    }
    let h = [
        ("X-Gitlab-Event", "Merge Request Hook"),
        ("X-Gitlab-Token", "gl-token"),
    ];
    assert_eq!(
        verify(&h, &body, secret).unwrap().1,
        Event::Other("Merge Request Hook".into())
    );
}

#[test]
fn pings_other_events_tags_and_bad_payloads() {
    let body = br#"{"zen": "Keep it logically awesome."}"#;
    let sig = format!("sha256={}", sign(body, SECRET));
    let h = [
        ("X-GitHub-Event", "ping"),
        ("X-Hub-Signature-256", sig.as_str()),
    ];
    assert_eq!(verify(&h, body, SECRET).unwrap().1, Event::Ping);
    let h = [
        ("X-GitHub-Event", "issues"),
        ("X-Hub-Signature-256", sig.as_str()),
    ];
    assert_eq!(
        verify(&h, body, SECRET).unwrap().1,
        Event::Other("issues".into())
    );

    // A push without a repository URL, and a body that is not JSON.
    for body in [&br#"{"ref": "refs/heads/main"}"#[..], &b"not json"[..]] {
        let sig = format!("sha256={}", sign(body, SECRET));
        let h = [
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", sig.as_str()),
        ];
        assert!(matches!(
            verify(&h, body, SECRET),
            Err(Error::WebhookPayload { .. })
        ));
    }

    // Generic form with a tag.
    let body = serde_json::to_vec(&json!({"url": "ssh://git@git.example/org/app.git", "ref": "refs/tags/v2", "commit": "abc"})).unwrap();
    let sig = format!("sha256={}", sign(&body, SECRET));
    let (_, Event::Push(push)) =
        verify(&[("x-graft-signature", sig.as_str())], &body, SECRET).unwrap()
    else {
        panic!()
    };
    assert!(push.matches("https://git.example/org/app", &Reference::Tag("v2".into())));
    assert!(!push.matches("https://git.example/org/app", &Reference::Tag("v3".into())));
    assert!(push.matches(
        "https://git.example/org/app",
        &Reference::Commit("abc".into())
    ));
}
