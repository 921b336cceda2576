//! The response redirector (issue 10, item 2): for every event it is shown,
//! a critical finding whose container entity names whatever its settings
//! say — by default a container it was never shown — to make the response
//! stage quarantine that one.
//!
//! Settings (a JSON object of strings):
//! - `target`: the container entity's id, as given (a name, an id prefix,
//!   `vigil` …); or `@shown-name` / `@shown-prefix8`: the name, or the first
//!   8 hex digits of the id, of the container of the event it was shown;
//! - `suffix`: with `@shown-*`, only containers whose name ends with it
//!   (the test's own), other events are ignored;
//! - `entity-name`: the entity's `name` (e.g. a lie such as `vigil`);
//! - `target` = `@cite-other`: once shown the container named `other`, on
//!   every event about the container named `cite`, a finding naming
//!   `other` (by the full id and name it was shown with) that cites the
//!   event about `cite` — shown both, it tries to pass one's event off as
//!   the other's.
use std::collections::BTreeMap;

use vigil_plugin_sdk::prelude::*;

const NAME: &str = "hostile-redirect";

#[derive(Default)]
struct Redirector {
    settings: BTreeMap<String, String>,
    /// `@cite-other`: the id of `other` once shown.
    other_id: Option<String>,
}

impl Redirector {
    fn setting(&self, key: &str) -> &str {
        self.settings.get(key).map_or("", String::as_str)
    }

    /// The entity id to report for this event, if any.
    fn target(&self, event: &Event) -> Option<String> {
        let target = self.setting("target");
        let shown = match &event.body {
            EventBody::Container(c) if !c.id.is_empty() => Some(c),
            _ => None,
        };
        match target {
            "@shown-name" | "@shown-prefix8" => {
                let c = shown?;
                let name = c.name.trim_start_matches('/');
                if !name.ends_with(self.setting("suffix")) {
                    return None;
                }
                Some(if target == "@shown-name" {
                    name.to_owned()
                } else {
                    c.id.chars().take(8).collect()
                })
            }
            other => Some(other.to_owned()),
        }
    }
}

impl Detector for Redirector {
    fn describe() -> PluginInfo {
        PluginInfo::builder(NAME, "0.1.0")
            .description("hostile test fixture: names a container it was not shown")
            .subscribe(EventKind::Container)
            .subscribe(EventKind::File)
            .build()
    }

    fn configure(&mut self, settings: &str) -> Result<(), ConfigError> {
        self.settings = vigil_plugin_sdk::settings::parse(settings)?;
        Ok(())
    }

    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
        let mut out = Vec::new();
        if self.setting("target") == "@cite-other" {
            self.cite_other(batch, &mut out);
            return out;
        }
        for event in batch {
            let Some(target) = self.target(event) else {
                continue;
            };
            let finding = Finding::builder(format!("{NAME}/redirect"), Severity::Critical)
                .title("Redirected finding")
                .summary(format!("names container {target}"))
                .entity(EntityKind::Container, target, self.setting("entity-name"))
                .event(event.id.clone())
                .build();
            if !out.contains(&finding) {
                out.push(finding);
            }
        }
        out
    }
}

impl Redirector {
    fn cite_other(&mut self, batch: &[Event], out: &mut Vec<Finding>) {
        for event in batch {
            let EventBody::Container(c) = &event.body else {
                continue;
            };
            let name = c.name.trim_start_matches('/');
            if name == self.setting("other") && !c.id.is_empty() {
                self.other_id = Some(c.id.clone());
            }
            if name != self.setting("cite") {
                continue;
            }
            let Some(other) = &self.other_id else {
                continue;
            };
            out.push(
                Finding::builder(format!("{NAME}/redirect"), Severity::Critical)
                    .title("Redirected finding")
                    .summary(format!("names container {other} on an event about {name}"))
                    .entity(EntityKind::Container, other.clone(), self.setting("other"))
                    .event(event.id.clone())
                    .build(),
            );
        }
    }
}

export_detector!(Redirector);
