use std::collections::BTreeSet;

use super::*;

fn example_text() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/vigil.example.toml");
    std::fs::read_to_string(p).expect("config/vigil.example.toml")
}

fn problems_of(text: &str) -> Vec<String> {
    match parse(text) {
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
        Ok(c) => match c.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        },
    }
}

#[test]
fn empty_file_is_the_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c, VigilConfig::default());
    c.check().unwrap();
    assert!(c.sources.docker.enabled && c.sources.network.enabled);
    assert!(!c.sources.k8s_audit_webhook.enabled && !c.sources.k8s_audit_log.enabled);
    assert_eq!(c.admin.listen, "127.0.0.1:9464");
}

#[test]
fn example_parses_and_validates() {
    let c = parse(&example_text()).unwrap_or_else(|e| panic!("{e}"));
    c.check().unwrap_or_else(|e| panic!("{e}"));
    // With every opt-in source on, its documented values must validate too.
    let mut all_on = c.clone();
    all_on.sources.k8s_audit_webhook.enabled = true;
    all_on.sources.k8s_audit_log.enabled = true;
    all_on.check().unwrap_or_else(|e| panic!("{e}"));
}

/// Every key of the defaults, as dotted paths (`None` values are absent).
fn keys(v: &serde_json::Value, at: &str, out: &mut BTreeSet<String>) {
    if let serde_json::Value::Object(m) = v {
        for (k, v) in m {
            let path = join(at, k);
            if !v.is_null() {
                out.insert(path.clone());
            }
            keys(v, &path, out);
        }
    }
}

#[test]
fn example_names_every_key_of_the_defaults() {
    let mut want = BTreeSet::new();
    keys(
        &serde_json::to_value(VigilConfig::default()).unwrap(),
        "",
        &mut want,
    );
    let example: toml::Table = toml::from_str(&example_text()).unwrap();
    let mut have = BTreeSet::new();
    keys(&serde_json::to_value(example).unwrap(), "", &mut have);
    let missing: Vec<_> = want.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "config/vigil.example.toml misses {missing:?}"
    );
}

#[test]
fn every_key_of_the_example_has_a_comment_above_it() {
    let text = example_text();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let is_key = !t.starts_with('#') && !t.starts_with('[') && t.contains(" = ");
        if is_key {
            let above = i.checked_sub(1).map(|j| lines[j].trim_start());
            assert!(
                above.is_some_and(|a| a.starts_with('#')),
                "line {}: `{t}` has no comment above it",
                i + 1
            );
        }
    }
}

#[test]
fn reports_every_problem_with_its_path() {
    let problems = problems_of(
        r#"
data_dir = "relative"
[admin]
listen = "nowhere"
[log]
level = "info,=,"
[sources.docker]
socket = "docker.sock"
max_backoff_ms = 1
[sources.network]
interval_ms = 5
[sources.k8s_audit_webhook]
enabled = true
listen = "0.0.0.0:8444"
tls_cert = "/c.pem"
[sources.k8s_audit_log]
enabled = true
[sources.k8s_watch]
namespace = "Not_A_Namespace"
[plugins]
dir = "/nonexistent/vigil/plugins"
[plugins.limits]
deadline_ms = 0
[plugins.settings.container-escape]
when = 1979-05-27T07:32:00Z
[intel]
poll_interval_ms = 5
[[intel.feeds]]
path = "feeds/c2.txt"
category = ""
"#,
    );
    let paths: Vec<&str> = problems
        .iter()
        .map(|p| p.split_once(": ").map_or(p.as_str(), |(a, _)| a))
        .collect();
    for want in [
        "data_dir",
        "admin.listen",
        "log.level",
        "sources.docker.socket",
        "sources.docker.max_backoff_ms",
        "sources.network.interval_ms",
        "sources.k8s_audit_webhook.token_file",
        "sources.k8s_audit_webhook.tls_key",
        "sources.k8s_audit_log.path",
        "sources.k8s_watch.namespace",
        "plugins.limits.deadline_ms",
        "plugins.dir",
        "plugins.settings.container-escape",
        "intel.feeds[0].path",
        "intel.feeds[0].category",
        "intel.poll_interval_ms",
    ] {
        assert!(paths.contains(&want), "no problem at {want}: {problems:#?}");
    }
}

#[test]
fn unknown_keys_and_wrong_types_name_the_path_and_line() {
    let p = problems_of("[sources.docker]\nsocket = \"/s\"\nsockett = \"/x\"\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("sources.docker"), "{p:?}");
    assert!(p[0].contains("unknown field `sockett`"), "{p:?}");
    assert!(p[0].contains("line 3, column 1"), "{p:?}");

    let p = problems_of("[plugins.limits]\n\ndeadline_ms = \"fast\"\n");
    assert!(p[0].starts_with("plugins.limits.deadline_ms: "), "{p:?}");
    assert!(p[0].contains("line 3"), "{p:?}");

    let p = problems_of("[outputs]\nx = 1\n");
    assert!(p[0].starts_with("outputs.x: unknown field `x`"), "{p:?}");

    let p = problems_of("[nonsense]\nx = 1\n");
    assert!(p[0].contains("unknown field `nonsense`"), "{p:?}");
}

#[test]
fn every_syntax_error_is_reported_with_its_line() {
    let p = problems_of("a = \nb = [\n[log\n");
    assert!(p.len() >= 2, "{p:?}");
    assert!(p.iter().all(|p| p.starts_with("(syntax): ")), "{p:?}");
    assert!(p[0].contains("line 1"), "{p:?}");
}

#[test]
fn plugin_settings_become_json() {
    let c = parse(
        "[plugins.settings.container-escape]\ndisabled_rules = [\"host-network\"]\n[plugins.settings.container-escape.allowlist]\nnamespaces = [\"a\"]\n",
    )
    .unwrap();
    let sel = c.plugins.selection();
    let json: serde_json::Value = serde_json::from_str(&sel.settings["container-escape"]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"disabled_rules": ["host-network"], "allowlist": {"namespaces": ["a"]}})
    );
}

#[test]
fn plugins_check_their_own_settings_with_paths() {
    let c = parse(
        "[plugins.settings.container-escape]\nhost_cgroupns = \"sometimes\"\nno_such_key = 1\n[plugins.settings.not-a-plugin]\nx = 1\n",
    )
    .unwrap();
    let problems = check_plugins(&c.plugins).unwrap_err();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|p| p.starts_with("plugins.settings.container-escape")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|p| p.starts_with("plugins.settings.not-a-plugin: no such plugin")),
        "{text:#?}"
    );
    let ok = parse("").unwrap();
    let mut builtins: Vec<&str> = vigil_runtime::builtin::names().collect();
    builtins.sort_unstable();
    assert_eq!(check_plugins(&ok.plugins).unwrap(), builtins);
}

#[test]
fn plugin_policies_are_validated_and_checked_against_the_plugins() {
    let problems = problems_of(
        "[plugins]\nmax_file_bytes = 0\n[plugins.policy.container-escape]\nkinds = []\nsha256 = \"abc\"\n",
    );
    assert_eq!(
        problems,
        [
            "plugins.max_file_bytes: must be at least 1",
            "plugins.policy.container-escape.kinds: must name at least one event kind (remove the plugin to give it none)",
            "plugins.policy.container-escape.sha256: \"abc\" is not a SHA-256 digest (64 hex digits)",
        ]
    );
    let c = parse(&format!(
        "[plugins.policy.container-escape]\nsha256 = \"{}\"\n[plugins.policy.nosuch]\nresponse = true\n",
        "0".repeat(64)
    ))
    .unwrap();
    let text: Vec<String> = check_plugins(&c.plugins)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        text.iter().any(|p| p.starts_with(
            "plugins.policy.container-escape.sha256: plugin builtin:container-escape refused: its SHA-256 is "
        )),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|p| p.starts_with("plugins.policy.nosuch: no such plugin (plugins: ")),
        "{text:#?}"
    );
}

#[test]
fn baseline_follows_the_data_dir_unless_set() {
    let mut c = parse("data_dir = \"/srv/vigil\"\n").unwrap();
    let d = c.data_dir.clone();
    c.sources.resolve(&d);
    assert_eq!(
        c.sources.file_integrity.baseline,
        std::path::Path::new("/srv/vigil/fim.sqlite")
    );
    let mut c = parse("[sources.file_integrity]\nbaseline = \"/b.sqlite\"\n").unwrap();
    let d = c.data_dir.clone();
    c.sources.resolve(&d);
    assert_eq!(
        c.sources.file_integrity.baseline,
        std::path::Path::new("/b.sqlite")
    );
}

#[test]
fn audit_log_position_follows_the_data_dir_unless_set() {
    let mut c = parse("data_dir = \"/srv/vigil\"\n").unwrap();
    let d = c.data_dir.clone();
    c.sources.resolve(&d);
    assert_eq!(
        c.sources.k8s_audit_log.position_file.as_deref(),
        Some(std::path::Path::new("/srv/vigil/k8s-audit-log.position"))
    );
    let mut c = parse("[sources.k8s_audit_log]\nposition_file = \"/p/pos\"\n").unwrap();
    let d = c.data_dir.clone();
    c.sources.resolve(&d);
    assert_eq!(
        c.sources.k8s_audit_log.position_file.as_deref(),
        Some(std::path::Path::new("/p/pos"))
    );
}

#[test]
fn conntrack_keys_are_validated_under_the_network_source() {
    let problems = problems_of(
        "[sources.network]\nconntrack_receive_buffer_bytes = 1\nattribution_wait_ms = 60000\nmax_pending_flows = 0\n[sources.k8s_audit_log]\nenabled = true\npath = \"/a.log\"\nposition_file = \"rel.position\"\n",
    );
    for want in [
        "sources.network.conntrack_receive_buffer_bytes",
        "sources.network.attribution_wait_ms",
        "sources.network.max_pending_flows",
        "sources.k8s_audit_log.position_file",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(&format!("{want}: "))),
            "no problem at {want}: {problems:#?}"
        );
    }
    // A network source that is off is not checked, its conntrack keys neither.
    assert!(problems_of("[sources.network]\nenabled = false\nmax_pending_flows = 0\n").is_empty());
}

#[test]
fn no_conntrack_flag_overrides_the_file() {
    use clap::Parser;
    let run_args = |argv: &[&str]| match crate::cli::Cli::try_parse_from(argv).unwrap().command {
        crate::cli::Command::Run(a) => a,
        _ => unreachable!(),
    };
    let mut c = parse("[sources.network]\nconntrack = true\n").unwrap();
    overrides::apply(&mut c, &run_args(&["vigil", "run"])).unwrap();
    assert!(c.sources.network.conntrack);
    overrides::apply(&mut c, &run_args(&["vigil", "run", "--no-conntrack"])).unwrap();
    assert!(!c.sources.network.conntrack && c.sources.network.enabled);
}

#[test]
fn intel_polling_is_off_at_zero_and_without_feeds() {
    let c = parse("[intel]\npoll_interval_ms = 0\n").unwrap();
    c.check().unwrap();
    assert_eq!(c.intel.poll_interval(), None);
    let mut c = parse("").unwrap();
    assert_eq!(c.intel.poll_interval_ms, 1000);
    assert_eq!(c.intel.poll_interval(), None, "no feed: nothing to poll");
    c.intel.feeds.push(FeedConfig {
        path: "/etc/vigil/c2.txt".into(),
        category: "c2".into(),
    });
    assert_eq!(
        c.intel.poll_interval(),
        Some(std::time::Duration::from_secs(1))
    );
    for bad in [1, 99, 3_600_001] {
        let p = problems_of(&format!("[intel]\npoll_interval_ms = {bad}\n"));
        assert!(
            p.len() == 1 && p[0].starts_with("intel.poll_interval_ms: "),
            "{bad}: {p:?}"
        );
    }
}

#[test]
fn the_response_section_parses_and_reports_problems_with_paths() {
    let c = parse(
        "[response]\nmode = \"enforce\"\n[[response.rules]]\nrule = \"container-escape/*\"\nmin_severity = \"critical\"\n[[response.rules]]\nrule = \"*\"\nmode = \"dry-run\"\n[response.docker]\nexempt = [\"registry\"]\n",
    )
    .unwrap();
    c.check().unwrap();
    assert_eq!(
        c.response.rules[0].min_severity,
        Some(vigil_core::model::Severity::Critical)
    );
    assert_eq!(c.response.rules[1].mode, Some(vigil_response::Mode::DryRun));
    assert_eq!(c.response.docker.exempt, ["registry"]);
    let err = parse("[response]\nmode = \"enforce\"\n")
        .unwrap()
        .check()
        .unwrap_err();
    assert!(
        err.to_string().contains("response.rules: mode is enforce"),
        "{err}"
    );
    let err = parse("[response.docker]\npuase = true\n").unwrap_err();
    assert!(err.to_string().contains("response.docker"), "{err}");
}

#[test]
fn the_timeline_section_is_bounded_and_reports_problems_with_paths() {
    assert!(problems_of("[timeline]\nevents_per_entity = 4096\nmax_age_secs = 1\n").is_empty());
    let problems = problems_of(
        "[timeline]\nevents_per_entity = 0\nfindings_per_entity = 5000\nmax_age_secs = 0\nmax_entities = 1000000\npersist_interval_secs = 999999\n",
    );
    for want in [
        "timeline.events_per_entity",
        "timeline.findings_per_entity",
        "timeline.max_age_secs",
        "timeline.max_entities",
        "timeline.persist_interval_secs",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(&format!("{want}: "))),
            "no problem at {want}: {problems:#?}"
        );
    }
    assert!(
        problems_of("[timeline]\nring = 3\n")
            .iter()
            .any(|p| p.contains("ring")),
        "unknown keys are refused"
    );
}

#[test]
fn fleet_rules_must_be_built_in_plugins() {
    assert!(problems_of("[fleet]\nrules = [\"incident\"]\n").is_empty());
    let problems = problems_of("[fleet]\nrules = [\"incident\", \"incidnet\"]\n");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("fleet.rules[1]") && problems[0].contains("not a built-in plugin"),
        "{problems:?}"
    );
}
