//! Git commit ids as people read them.

/// The short form of a commit id: its first 7 characters, as `git log --oneline`, GitHub and
/// Argo CD show it. Every commit id graft prints or shows goes through this.
pub fn short_sha(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_shortened_to_seven_characters() {
        assert_eq!(
            short_sha("0123456789abcdef0123456789abcdef01234567"),
            "0123456"
        );
        assert_eq!(short_sha("abc"), "abc");
        assert_eq!(short_sha(""), "");
    }
}
