//! Shell-style patterns over names and ids, the one matcher of the host:
//! suppressions, response rules and exemptions, file-integrity paths.
//! `*` matches any run of characters (`/` included: rule ids and container
//! names are not paths), `?` exactly one; everything else is literal.

/// Whether `text` matches `pattern` as a whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it was tried at: greedy with
    // one backtrack point, linear in practice.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
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
