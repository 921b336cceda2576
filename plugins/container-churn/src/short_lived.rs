//! The short-lived rule: containers and pods removed within seconds of
//! their creation.

use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::util::image::repository;
use vigil_plugin_sdk::util::timefmt::rfc3339_secs;

use crate::config::WindowAction;
use crate::{Born, ContainerChurn, NANOS, Rule, Stream};

/// What a short-lived finding is about.
pub(crate) struct Subject<'a> {
    pub(crate) stream: Stream,
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) image: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) actor: &'a str,
}

impl ContainerChurn {
    pub(crate) fn short_lived(
        &mut self,
        event: &EventView<'_>,
        subject: &Subject<'_>,
        lifetime_ms: u64,
        measured_from: &str,
        born: Option<&Born>,
        out: &mut Vec<Finding>,
    ) {
        let limit_ms = self.config.short_lived_secs.saturating_mul(1_000);
        if !self.config.enabled(Rule::ShortLived) || lifetime_ms > limit_ms {
            return;
        }
        let secs = event.time / NANOS;
        let maintenance = match self.config.maintenance_at(secs) {
            Some(w) if w.action == WindowAction::Suppress => return,
            Some(w) => Some(w.name.clone()),
            None => None,
        };
        let risky: &[&str] = born.map_or(&[], |b| b.risky.as_slice());
        let severity = if maintenance.is_some() {
            Severity::Info
        } else if risky.is_empty() {
            Rule::ShortLived.severity()
        } else {
            Severity::Medium
        };
        // Many harmless run-and-remove containers of one image: report the
        // first of each window; risky ones are always reported.
        if risky.is_empty() {
            let key = format!("{}/{}", subject.stream.letter(), repository(subject.image));
            let window = self.window_of(secs);
            if self
                .short_reported
                .get_mut(key.as_str())
                .is_some_and(|w| *w == window)
            {
                return;
            }
            self.short_reported.insert(key, window);
        }
        let (what, entity) = match subject.stream {
            Stream::Docker => ("Container", EntityKind::Container),
            Stream::Kubernetes => ("Pod", EntityKind::Pod),
            Stream::Swarm => ("Service", EntityKind::Container),
        };
        let shown = if subject.name.is_empty() {
            subject.id.get(..12).unwrap_or(subject.id)
        } else {
            subject.name
        };
        let mut summary = format!(
            "{what} {shown}{} was removed {:.1} s after it was {} (threshold {} s): run-and-remove leaves \
             little to inspect.",
            if subject.image.is_empty() {
                String::new()
            } else {
                format!(" ({})", subject.image)
            },
            lifetime_ms as f64 / 1_000.0,
            if measured_from == "create" {
                "created"
            } else {
                "started"
            },
            self.config.short_lived_secs,
        );
        if !risky.is_empty() {
            summary.push_str(&format!(" It ran with {}.", risky.join(", ")));
        }
        if let Some(window) = &maintenance {
            summary.push_str(&format!(
                " Inside maintenance window `{window}`: downgraded to info."
            ));
        }
        let mut finding = Finding::builder(Rule::ShortLived.id(), severity)
            .title(format!("Short-lived {}", what.to_ascii_lowercase()))
            .summary(summary)
            // Deploy Container; Indicator Removal.
            .technique("T1610")
            .technique("T1070")
            .entity(entity, subject.id.to_owned(), subject.name.to_owned());
        if !subject.image.is_empty() {
            finding = finding.entity(EntityKind::Image, subject.image.to_owned(), "");
        }
        if !event.node.is_empty() {
            finding = finding.entity(EntityKind::Node, event.node, "");
        }
        if !subject.actor.is_empty() {
            finding = finding.entity(EntityKind::User, subject.actor.to_owned(), "");
        }
        finding = finding
            .evidence(what.to_ascii_lowercase(), shown.to_owned())
            .evidence("image", subject.image.to_owned())
            .evidence("lifetime-ms", lifetime_ms.to_string())
            .evidence("lifetime-from", measured_from.to_owned())
            .evidence("threshold-secs", self.config.short_lived_secs.to_string())
            .evidence("removed", rfc3339_secs(secs));
        if let Some(b) = born {
            finding = finding.evidence("created", rfc3339_secs(b.time / NANOS));
            if let Some(code) = b.exit_code {
                finding = finding.evidence("exit-code", code.to_string());
            }
        }
        if !subject.namespace.is_empty() {
            finding = finding.evidence("namespace", subject.namespace.to_owned());
        }
        if !subject.actor.is_empty() {
            finding = finding.evidence("actor", subject.actor.to_owned());
        }
        for flag in risky {
            finding = finding.evidence("risky", (*flag).to_owned());
        }
        if let Some(window) = maintenance {
            finding = finding.evidence("maintenance-window", window);
        }
        out.push(finding.event(event.id).build());
    }
}
