//! Shell-style patterns over names and ids, the one matcher of the host:
//! suppressions, response rules and exemptions, file-integrity paths.
//! `*` matches any run of characters (`/` included: rule ids and container
//! names are not paths), `?` exactly one; everything else is literal. The
//! matching is `wildmatch`'s (linear, no pathological backtracking), the
//! same crate the plugin SDK uses, so host and plugins agree.

/// Whether `text` matches `pattern` as a whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    wildmatch::WildMatch::new(pattern).matches(text)
}

#[cfg(test)]
mod tests {
    use super::matches as glob;

    #[test]
    fn stars_and_question_marks() {
        assert!(glob("a/*", "a/b"));
        assert!(glob("*", ""));
        assert!(glob("k*-sys*/x", "kube-system/x"));
        assert!(!glob("a/*", "b/a"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("exact", "exact"));
        assert!(glob("a?c*", "abcdef") && !glob("a?c", "abcd"));
    }

    #[test]
    fn rule_ids() {
        assert!(glob("container-escape/*", "container-escape/privileged"));
        assert!(glob("*", "a/b"));
        assert!(glob(
            "container-escape/host-???",
            "container-escape/host-pid"
        ));
        assert!(glob("a/b", "a/b"));
        assert!(!glob("a/b", "a/bc"));
        assert!(!glob("container-escape/*", "fim/x"));
        assert!(glob("*/priv*", "container-escape/privileged"));
    }
}
