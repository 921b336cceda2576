use super::*;
use crate::{ConfigProblem, PluginInfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Spike,
    ShortLived,
}

impl RuleSet for Rule {
    const PLUGIN: &'static str = "container-churn";
    const RULES: &'static [Self] = &[Rule::Spike, Rule::ShortLived];

    fn short_name(self) -> &'static str {
        match self {
            Rule::Spike => "spike",
            Rule::ShortLived => "short-lived",
        }
    }
}

fn owned(entries: &[&str]) -> Vec<String> {
    entries.iter().map(|e| (*e).to_owned()).collect()
}

#[test]
fn ids_and_short_names() {
    for rule in Rule::RULES {
        let id = format!("{}/{}", Rule::PLUGIN, rule.short_name());
        assert_eq!(Rule::from_id(&id), Some(*rule));
        assert_eq!(Rule::from_id(rule.short_name()), Some(*rule));
    }
    assert_eq!(
        Rule::from_id("  container-churn/spike\n"),
        Some(Rule::Spike)
    );
    assert_eq!(Rule::from_id("container-churnspike"), None);
    assert_eq!(Rule::from_id("other-plugin/spike"), None);
    assert_eq!(Rule::from_id("container-churn/ spike"), None);
    assert_eq!(Rule::from_id(""), None);
}

#[test]
fn disabled_rules_are_parsed_and_unknown_ones_reported() {
    let mut problems = Problems::new();
    let disabled: Vec<Rule> = parse_disabled(
        &owned(&["short-lived", "nope", "container-churn/spike", "spike2"]),
        &mut problems,
    );
    assert_eq!(disabled, [Rule::ShortLived, Rule::Spike]);

    let known = "known rules: spike, short-lived";
    assert_eq!(
        problems.into_result().map_err(|e| e.problems),
        Err(vec![
            ConfigProblem::new("disabled_rules[1]", format!("unknown rule `nope`; {known}")),
            ConfigProblem::new(
                "disabled_rules[3]",
                format!("unknown rule `spike2`; {known}")
            ),
        ])
    );
}

#[test]
fn the_setting_is_described() {
    let info = PluginInfo::builder("container-churn", "0.1.0")
        .disabled_rules_setting::<Rule>()
        .build();
    assert_eq!(info.settings.len(), 1);
    let setting = &info.settings[0];
    assert_eq!(setting.name, "disabled_rules");
    assert_eq!(setting.kind, "list of rule ids");
    assert_eq!(setting.default_value, "[]");
    assert_eq!(
        setting.description,
        "Rules turned off: `container-churn/<rule>` or `<rule>`."
    );
}
