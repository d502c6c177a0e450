//! Small text helpers shared by the views: durations, ages, short SHAs, labels.

use k8s_openapi::jiff::Timestamp;

/// A duration in seconds as people read it: `0.4s`, `12s`, `3m 05s`, `2h 10m`, `3d 4h`.
pub fn duration(secs: f64) -> String {
    let secs = secs.max(0.0);
    if secs < 10.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Seconds from `from` to `to` (negative when `to` is earlier).
pub fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()) as f64 / 1000.0
}

/// `3m 05s ago` for a time before `now` (`just now` under a second).
pub fn age(t: Timestamp, now: Timestamp) -> String {
    let s = seconds_between(t, now);
    if s < 1.0 {
        "just now".into()
    } else {
        format!("{} ago", duration(s.floor()))
    }
}

/// The short form of a commit SHA ([`graft_api::commit::short_sha`]: 7 characters).
pub fn short_sha(sha: &str) -> String {
    graft_api::commit::short_sha(sha).to_string()
}

/// Shortens every full commit SHA (40 hex digits) in `text` to its short form.
pub fn shorten_shas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() == 40 {
            out.push_str(graft_api::commit::short_sha(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// A repository URL as it may be shown: a user or token in an http(s) URL becomes `***`, a
/// password in any other URL becomes `***`; scp-like (`git@host:path`) and local paths show as
/// written. A URL graft would refuse (unknown scheme, no host) is `(invalid URL)`.
pub fn redacted_url(url: &str) -> String {
    const INVALID: &str = "(invalid URL)";
    let url = url.trim();
    if url.is_empty() {
        return INVALID.into();
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let scheme_lc = scheme.to_ascii_lowercase();
    let http = matches!(scheme_lc.as_str(), "http" | "https");
    let remote = http || matches!(scheme_lc.as_str(), "git" | "ssh" | "git+ssh" | "ssh+git");
    if !remote && scheme_lc != "file" {
        return INVALID.into();
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (userinfo, host) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let host_name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if remote && host_name.trim_matches(['[', ']']).is_empty() {
        return INVALID.into();
    }
    let userinfo = match userinfo.filter(|u| !u.is_empty()) {
        None => String::new(),
        Some(_) if http => "***@".into(),
        Some(u) => match u.split_once(':') {
            Some((user, _)) => format!("{user}:***@"),
            None => format!("{u}@"),
        },
    };
    let path = if path.is_empty() && remote { "/" } else { path };
    format!("{scheme_lc}://{userinfo}{host}{path}")
}

/// `rollingOut` / `RollingOut` / `PrePulling` → `rolling out` / `pre-pulling`: a phase name as
/// words, for any phase (new ones need no code here). `PrePulling` keeps its hyphen as people
/// write it.
pub fn phase_label(name: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in name.chars() {
        if c.is_uppercase() && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    if words.first().is_some_and(|w| w == "pre") && words.len() > 1 {
        let rest = words.split_off(1);
        return format!("pre-{}", rest.join(" "));
    }
    words.join(" ")
}

/// The CSS state class of a phase: `ok`, `fail`, `muted` or `progress`.
pub fn phase_state(phase: &str) -> &'static str {
    match phase {
        "Healthy" | "healthy" => "ok",
        "Failed" | "failed" => "fail",
        "Superseded" | "superseded" => "muted",
        _ => "progress",
    }
}

/// `n` over `of` as a whole percentage clamped to 0..=100 (100 when `of` is 0).
pub fn percent(n: i32, of: i32) -> u32 {
    if of <= 0 {
        return 100;
    }
    ((f64::from(n.max(0)) / f64::from(of)) * 100.0)
        .round()
        .clamp(0.0, 100.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(duration(0.42), "0.4s");
        assert_eq!(duration(12.0), "12s");
        assert_eq!(duration(185.0), "3m 05s");
        assert_eq!(duration(7800.0), "2h 10m");
        assert_eq!(duration(3.0 * 86400.0 + 4.0 * 3600.0), "3d 4h");
        assert_eq!(duration(-3.0), "0.0s");
    }

    #[test]
    fn phase_names_become_words_for_any_phase() {
        assert_eq!(phase_label("RollingOut"), "rolling out");
        assert_eq!(phase_label("rollingOut"), "rolling out");
        assert_eq!(phase_label("PrePulling"), "pre-pulling");
        assert_eq!(phase_label("prePulling"), "pre-pulling");
        assert_eq!(phase_label("Healthy"), "healthy");
        assert_eq!(phase_label("WaitingForApproval"), "waiting for approval");
        assert_eq!(phase_state("Healthy"), "ok");
        assert_eq!(phase_state("SomethingNew"), "progress");
    }

    #[test]
    fn full_shas_are_shortened_in_messages() {
        let sha = "181fd9c702fd3abbc5d8161750fa2c0712b7febf";
        assert_eq!(
            shorten_shas(&format!("Applied revision {sha}: 0 created, deadbeef")),
            "Applied revision 181fd9c: 0 created, deadbeef"
        );
        assert_eq!(short_sha(sha), "181fd9c");
    }

    #[test]
    fn urls_never_show_credentials() {
        let cases = [
            (
                "https://user:hunter2@git.example.com/team/app.git",
                "https://***@git.example.com/team/app.git",
            ),
            (
                "https://ghp_token@github.com/o/r",
                "https://***@github.com/o/r",
            ),
            ("https://github.com/o/r.git", "https://github.com/o/r.git"),
            ("http://127.0.0.1:8080/r.git", "http://127.0.0.1:8080/r.git"),
            (
                "ssh://git:s3cret@example.com:2222/o/r.git",
                "ssh://git:***@example.com:2222/o/r.git",
            ),
            (
                "ssh://git@example.com/o/r.git",
                "ssh://git@example.com/o/r.git",
            ),
            ("git@github.com:o/r.git", "git@github.com:o/r.git"),
            ("git://127.0.0.1/r.git", "git://127.0.0.1/r.git"),
            ("file:///srv/git/r.git", "file:///srv/git/r.git"),
            ("/srv/git/r.git", "/srv/git/r.git"),
            ("https://example.com", "https://example.com/"),
            ("ftp://x/r", "(invalid URL)"),
            ("https://", "(invalid URL)"),
            ("https://bob:pw@/r", "(invalid URL)"),
            ("", "(invalid URL)"),
        ];
        for (raw, shown) in cases {
            assert_eq!(redacted_url(raw), shown, "{raw}");
        }
    }

    #[test]
    fn percentages_are_clamped() {
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(5, 3), 100);
        assert_eq!(percent(0, 0), 100);
        assert_eq!(percent(-1, 3), 0);
    }
}
