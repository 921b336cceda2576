//! Findings as input to plugins (WIT 0.1.2, `interface correlate`).
//!
//! A plugin that exports `correlate` receives the findings of the *other*
//! plugins, so correlation rules run in the sandbox like any detection.
//! What is handed on is what the host accepted: the finding after the
//! runner's output checks, its container and pod entities corrected by the
//! host's verdicts (full id, name as shown) and each marked with its
//! verdict. The receiving plugin's subject window then learns only the
//! *verified* containers and pods ([`vigil_core::subjects`]), so a plugin
//! cannot launder an entity another plugin was never shown into a verified
//! one by passing it through a correlator.
//!
//! Loops are bounded by depth: a finding made from events is 0 deep; a
//! finding a plugin returns from `on-findings` is one deeper than the
//! deepest finding of that batch, and one it returns from `on-events` or
//! `on-tick` while it was handed findings recently is one deeper than the
//! deepest of those (so re-emitting on a tick does not reset the depth). A
//! finding at or beyond [`crate::PluginLimits::max_finding_depth`] is
//! delivered, never handed on, and counted
//! ([`crate::internal_events::PluginFindingsDepthCapped`]). A plugin never
//! receives its own findings.

use vigil_core::finding_record::finding_id;
use vigil_core::model::{Entity, EntityKind, EntityVerdict, Finding, FindingEvent, Timestamp};
use vigil_core::subjects::Verdict;

/// A batch of accepted findings of one plugin, ready to hand on.
#[derive(Debug, Default, Clone)]
pub struct FedFindings {
    /// What the receiving plugins get, in the order they were reported.
    pub events: Vec<FindingEvent>,
    /// The host's full verdicts (pod uids included), one list per event:
    /// what the receiving plugin's subject window records.
    pub verdicts: Vec<Vec<Verdict>>,
}

/// Who reported a batch, where and when: the fields of a [`FindingEvent`]
/// the host fills in.
#[derive(Debug, Clone, Copy)]
pub struct Producer<'a> {
    pub plugin: &'a str,
    pub version: &'a str,
    pub node: &'a str,
    pub time: Timestamp,
    pub depth: u32,
}

impl FedFindings {
    /// Adds one accepted finding with the host's verdicts on its entities.
    pub fn push(&mut self, by: Producer<'_>, finding: &Finding, verdicts: &[Verdict]) {
        let id = finding_id(finding);
        let mut finding = finding.clone();
        let mut marks = Vec::with_capacity(finding.entities.len());
        for (i, e) in finding.entities.iter_mut().enumerate() {
            let v = verdicts.get(i).unwrap_or(&Verdict::NotChecked);
            correct(e, v);
            marks.push(EntityVerdict::from(v));
        }
        self.events.push(FindingEvent {
            id,
            plugin: by.plugin.to_owned(),
            plugin_version: by.version.to_owned(),
            time: by.time,
            node: by.node.to_owned(),
            depth: by.depth,
            finding,
            verdicts: marks,
        });
        self.verdicts.push(verdicts.to_vec());
    }

    /// How many findings the batch holds.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The depth of the deepest finding of the batch.
    pub fn max_depth(&self) -> u32 {
        self.events.iter().map(|e| e.depth).max().unwrap_or(0)
    }
}

/// A verified entity as the host's record carries it: the matched full id
/// and, for a container, the name as shown.
fn correct(e: &mut Entity, v: &Verdict) {
    if let Verdict::Verified { id, name, .. } = v {
        e.id.clone_from(id);
        if e.kind == EntityKind::Container && !name.is_empty() {
            e.name.clone_from(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::model::Severity;

    fn finding(entities: Vec<Entity>) -> Finding {
        Finding {
            rule_id: "a/b".into(),
            title: "t".into(),
            severity: Severity::High,
            summary: String::new(),
            techniques: vec![],
            entities,
            evidence: vec![],
            event_ids: vec!["e1".into()],
        }
    }

    #[test]
    fn verified_entities_are_corrected_and_marked() {
        let f = finding(vec![
            Entity {
                kind: EntityKind::Container,
                id: "abcdef012345".into(),
                name: String::new(),
            },
            Entity {
                kind: EntityKind::Container,
                id: "victim".into(),
                name: String::new(),
            },
            Entity {
                kind: EntityKind::Node,
                id: "n1".into(),
                name: String::new(),
            },
        ]);
        let full = format!("abcdef012345{}", "0".repeat(52));
        let verdicts = vec![
            Verdict::Verified {
                id: full.clone(),
                name: "web".into(),
                uid: None,
            },
            Verdict::Unverified,
            Verdict::NotChecked,
        ];
        let mut fed = FedFindings::default();
        let by = Producer {
            plugin: "a",
            version: "1",
            node: "n1",
            time: 7,
            depth: 1,
        };
        fed.push(by, &f, &verdicts);
        let e = &fed.events[0];
        assert_eq!(
            e.id,
            finding_id(&f),
            "the id is the record's, from what the plugin said"
        );
        assert_eq!(e.finding.entities[0].id, full);
        assert_eq!(e.finding.entities[0].name, "web");
        assert_eq!(e.finding.entities[1].id, "victim", "unverified: as given");
        assert_eq!(
            e.verdicts,
            [
                EntityVerdict::Verified,
                EntityVerdict::Unverified,
                EntityVerdict::NotChecked
            ]
        );
        assert_eq!((e.depth, e.time, e.plugin.as_str()), (1, 7, "a"));
        assert_eq!(fed.max_depth(), 1);
    }
}
