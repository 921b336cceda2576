use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
struct Allowlist {
    images: Vec<String>,
    namespaces: Vec<String>,
}

#[derive(Debug, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    allowlist: Allowlist,
    limit: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Required {
    #[expect(dead_code, reason = "only its presence is tested")]
    name: String,
}

fn paths(error: &ConfigError) -> Vec<&str> {
    error.problems.iter().map(|p| p.path.as_str()).collect()
}

#[test]
fn empty_text_and_empty_object_give_defaults() {
    assert_eq!(parse::<Settings>("").unwrap(), Settings::default());
    assert_eq!(parse::<Settings>(" {} ").unwrap(), Settings::default());
}

#[test]
fn parses_nested_values() {
    let settings: Settings = parse(r#"{"allowlist": {"images": ["a", "b"]}, "limit": 3}"#).unwrap();
    assert_eq!(settings.allowlist.images, ["a", "b"]);
    assert_eq!(settings.limit, 3);
}

#[test]
fn reports_invalid_json_and_non_objects_for_the_whole_document() {
    let error = parse::<Settings>("{").unwrap_err();
    assert_eq!(paths(&error), [""]);
    assert!(
        error.problems[0].message.contains("not valid JSON"),
        "{error:?}"
    );
    let error = parse::<Settings>("[]").unwrap_err();
    assert_eq!(
        error.problems[0].message,
        "settings must be a JSON object, not an array"
    );
}

#[test]
fn reports_every_problem_with_original_paths() {
    let error = parse::<Settings>(
        r#"{"allowlist": {"images": [1, "ok", 2, "fine", true], "colour": 1},
            "limit": "x", "extra": {}}"#,
    )
    .unwrap_err();
    // Keys are visited in sorted order.
    assert_eq!(
        paths(&error),
        [
            "allowlist.colour",
            "allowlist.images[0]",
            "allowlist.images[2]",
            "allowlist.images[4]",
            "extra",
            "limit"
        ]
    );
    assert!(
        error.problems[0]
            .message
            .starts_with("unknown field `colour`"),
        "{error:?}"
    );
    assert!(
        error.problems[5].message.contains("invalid type"),
        "{error:?}"
    );
}

#[test]
fn reports_missing_required_fields_at_their_path() {
    let error = parse::<Required>("{}").unwrap_err();
    assert_eq!(paths(&error), ["name"]);
    // An invalid required field is reported once, as invalid, not also as missing.
    let error = parse::<Required>(r#"{"name": 5}"#).unwrap_err();
    assert_eq!(paths(&error), ["name"]);
    assert!(
        error.problems[0].message.contains("invalid type"),
        "{error:?}"
    );
}

#[test]
fn expect_none_accepts_only_nothing() {
    assert!(expect_none("").is_ok());
    assert!(expect_none("{}").is_ok());
    let error = expect_none(r#"{"a": 1, "b": 2}"#).unwrap_err();
    assert_eq!(paths(&error), ["a", "b"]);
    assert_eq!(
        error.problems[0].message,
        "unknown setting: this plugin takes no settings"
    );
}

#[test]
fn problems_collects_and_converts() {
    let mut problems = Problems::new();
    assert!(problems.is_empty());
    problems.push("a", "bad");
    problems.extend(ConfigError::new("b", "worse"));
    let error = problems.into_result().unwrap_err();
    assert_eq!(paths(&error), ["a", "b"]);
}
