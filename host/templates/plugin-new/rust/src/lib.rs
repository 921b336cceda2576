//! {{name}}: a Vigil detector plugin (scaffolded by `vigil plugin new`).
//!
//! The sample rule reports exec sessions started in a container with
//! `--privileged` (`docker exec --privileged`): the command runs with every
//! capability and device of the host, whatever the container's own settings.
//! Replace it with your own logic; keep the shape.

use serde::Deserialize;
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::{host, settings};

/// The detector. One instance lives as long as the component instance.
#[derive(Debug, Default)]
pub struct Plugin {
    settings: Settings,
}

/// The settings, a JSON object; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    /// Container names whose privileged execs are not reported.
    ignored_containers: Vec<String>,
}

impl Detector for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::builder("{{name}}", "0.1.0")
            .description("Exec sessions started with --privileged in a container.")
            .subscribe(EventKind::Container)
            .setting(
                "ignored_containers",
                "list of strings",
                "[]",
                "Container names whose privileged execs are not reported.",
            )
            .build()
    }

    fn configure(&mut self, json: &str) -> Result<(), ConfigError> {
        let parsed: Settings = settings::parse(json)?;
        let mut problems = settings::Problems::new();
        for (i, name) in parsed.ignored_containers.iter().enumerate() {
            if name.trim().is_empty() {
                problems.push(format!("ignored_containers[{i}]"), "must not be empty");
            }
        }
        problems.into_result()?;
        let count = parsed.ignored_containers.len().to_string();
        host::log::info("configured", &[("ignored_containers", &count)]);
        self.settings = parsed;
        Ok(())
    }

    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for event in batch {
            let EventBody::Container(c) = &event.body else {
                continue;
            };
            let Some(exec) = &c.exec else { continue };
            if c.action != ContainerAction::ExecStart
                || !exec.privileged
                || self.settings.ignored_containers.contains(&c.name)
            {
                continue;
            }
            findings.push(
                Finding::builder("{{name}}/privileged-exec", Severity::High)
                    .title("Privileged exec in a container")
                    .summary(format!(
                        "`{}` was run with --privileged in container {}.",
                        exec.command, c.name
                    ))
                    .technique("T1609")
                    .entity(EntityKind::Container, &c.id, &c.name)
                    .entity(EntityKind::Image, &c.image, "")
                    .evidence("command", &exec.command)
                    .evidence("user", &exec.user)
                    .evidence("privileged", "true")
                    .event(&event.id)
                    .build(),
            );
        }
        findings
    }
}

vigil_plugin_sdk::export_detector!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(id: &str, privileged: bool) -> Event {
        Event::new(
            id,
            1_700_000_000_000_000_000,
            EventBody::Container(ContainerEvent {
                action: ContainerAction::ExecStart,
                id: "c0ffee".into(),
                name: "web".into(),
                exec: Some(ExecInfo {
                    command: "sh".into(),
                    user: "root".into(),
                    privileged,
                    tty: true,
                }),
                ..Default::default()
            }),
        )
    }

    #[test]
    fn reports_privileged_execs_only() {
        let mut plugin = Plugin::default();
        plugin.configure("{}").expect("default settings");
        let findings = plugin.on_events(&[exec("e1", true), exec("e2", false)]);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule_id, "{{name}}/privileged-exec");
        assert_eq!(findings[0].event_ids, ["e1"]);
    }

    #[test]
    fn settings_problems_have_paths() {
        let mut plugin = Plugin::default();
        let paths = |json: &str, plugin: &mut Plugin| -> Vec<String> {
            let error = plugin.configure(json).expect_err("bad settings");
            error.problems.into_iter().map(|p| p.path).collect()
        };
        assert_eq!(paths(r#"{"colour": 1}"#, &mut plugin), ["colour"]);
        assert_eq!(
            paths(r#"{"ignored_containers": [""]}"#, &mut plugin),
            ["ignored_containers[0]"]
        );
    }
}
