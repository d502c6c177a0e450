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

/// The first 8 characters of a commit SHA.
pub fn short_sha(sha: &str) -> String {
    sha.chars().take(8).collect()
}

/// Shortens every full commit SHA (40 hex digits) in `text` to its first 8 characters.
pub fn shorten_shas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() == 40 {
            out.push_str(&run[..8]);
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
            "Applied revision 181fd9c7: 0 created, deadbeef"
        );
    }

    #[test]
    fn percentages_are_clamped() {
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(5, 3), 100);
        assert_eq!(percent(0, 0), 100);
        assert_eq!(percent(-1, 3), 0);
    }
}
