use super::*;
use crate::ConfigProblem;

#[test]
fn trims_and_reports_every_empty_entry() {
    let entries: Vec<String> = [" kube-system ", "", "default", "  "]
        .map(str::to_owned)
        .to_vec();
    let mut problems = Problems::new();
    let kept: Vec<&str> = non_empty(&entries, "allowlist.namespaces", &mut problems).collect();
    assert_eq!(kept, ["kube-system", "default"]);

    assert_eq!(
        problems.into_result().map_err(|e| e.problems),
        Err(vec![
            ConfigProblem::new("allowlist.namespaces[1]", "must not be empty"),
            ConfigProblem::new("allowlist.namespaces[3]", "must not be empty"),
        ])
    );
}

#[test]
fn owned_entries() {
    let entries: Vec<String> = ["falco ", "", "vigil"].map(str::to_owned).to_vec();
    let mut problems = Problems::new();
    assert_eq!(
        non_empty_owned(&entries, "agents.names", &mut problems),
        ["falco", "vigil"]
    );
    assert_eq!(
        problems.into_result().map_err(|e| e.problems),
        Err(vec![ConfigProblem::new(
            "agents.names[1]",
            "must not be empty"
        )])
    );
}

#[test]
fn defaults_as_json() {
    assert_eq!(json_list::<&str>(&[]), "[]");
    assert_eq!(
        json_list(&["SYS_ADMIN", "*/falcosecurity/*", "/etc/cni/net.d/"]),
        r#"["SYS_ADMIN","*/falcosecurity/*","/etc/cni/net.d/"]"#
    );
    assert_eq!(json_list(&["vigil.agent".to_owned()]), r#"["vigil.agent"]"#);
    assert_eq!(json_list(&[r#"a"b\c"#]), r#"["a\"b\\c"]"#);
    assert_eq!(json_list(&["tab\there\u{1}"]), r#"["tab\u0009here\u0001"]"#);
    let tricky = ["\"quoted\"", "back\\slash", "line\nbreak", "\u{7f}é✓", ""];
    let parsed: Vec<String> = serde_json::from_str(&json_list(&tricky)).unwrap();
    assert_eq!(parsed, tricky);
}

#[test]
fn an_empty_list_is_fine() {
    let mut problems = Problems::new();
    assert_eq!(non_empty(&[], "names", &mut problems).count(), 0);
    assert!(problems.is_empty());
}
