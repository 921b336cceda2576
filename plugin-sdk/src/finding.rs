//! [`FindingBuilder`]: findings without spelling out every field.

use crate::types::{Entity, EntityKind, Finding, KeyValue, Severity};

impl Finding {
    /// Starts a finding for `rule_id` (`plugin/rule`, e.g.
    /// `container-escape/host-network`) with the given severity.
    pub fn builder(rule_id: impl Into<String>, severity: Severity) -> FindingBuilder {
        FindingBuilder {
            finding: Finding {
                rule_id: rule_id.into(),
                title: String::new(),
                severity,
                summary: String::new(),
                techniques: Vec::new(),
                entities: Vec::new(),
                evidence: Vec::new(),
                event_ids: Vec::new(),
            },
        }
    }
}

/// Builds a [`Finding`]; start with [`Finding::builder`].
///
/// Entities, techniques and event ids are kept once each, in the order first
/// given; evidence keeps every pair (a key may repeat, e.g. one `capability`
/// per capability). A finding without a title gets its rule id as title.
#[derive(Debug, Clone)]
#[must_use]
pub struct FindingBuilder {
    finding: Finding,
}

impl FindingBuilder {
    /// Sets the one-line title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.finding.title = title.into();
        self
    }

    /// Sets the sentence for a human: what happened, where, why it matters.
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.finding.summary = summary.into();
        self
    }

    /// Changes the severity.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.finding.severity = severity;
        self
    }

    /// Adds a MITRE ATT&CK technique id (`T1611`).
    pub fn technique(mut self, id: impl Into<String>) -> Self {
        push_unique(&mut self.finding.techniques, id.into());
        self
    }

    /// Adds an entity the finding is about. An empty `name` is fine.
    pub fn entity(
        mut self,
        kind: EntityKind,
        id: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        push_unique(&mut self.finding.entities, Entity::new(kind, id, name));
        self
    }

    /// Adds a fact that explains the finding.
    pub fn evidence(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.finding.evidence.push(KeyValue::new(key, value));
        self
    }

    /// Adds the id of an event behind the finding.
    pub fn event(mut self, id: impl Into<String>) -> Self {
        push_unique(&mut self.finding.event_ids, id.into());
        self
    }

    /// The finding.
    #[must_use]
    pub fn build(mut self) -> Finding {
        if self.finding.title.is_empty() {
            self.finding.title.clone_from(&self.finding.rule_id);
        }
        self.finding
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_with_deduplicated_lists() {
        let finding = Finding::builder("p/r", Severity::High)
            .technique("T1611")
            .technique("T1611")
            .entity(EntityKind::Container, "abc", "web")
            .entity(EntityKind::Container, "abc", "web")
            .evidence("capability", "SYS_ADMIN")
            .evidence("capability", "BPF")
            .event("e1")
            .event("e1")
            .build();
        assert_eq!(finding.title, "p/r");
        assert_eq!(finding.techniques, ["T1611"]);
        assert_eq!(finding.entities.len(), 1);
        assert_eq!(finding.evidence.len(), 2);
        assert_eq!(finding.event_ids, ["e1"]);
    }
}
