//! Falco's JSON output (`json_output: true`), so falcosidekick (`POST /` of
//! one event) and anything else that reads Falco events takes Vigil's
//! findings: `output`, `priority`, `rule`, `time`, `output_fields`,
//! `source`, `tags`, `hostname`.
//!
//! - `rule` is Vigil's `rule_id` (`plugin/rule`), stable for routing rules;
//!   the human title starts `output`.
//! - `priority`: critical → Critical, high → Error, medium → Warning,
//!   low → Notice, info → Informational (Falco's scale has no "High").
//! - `output_fields` uses Falco's field names where one fits
//!   (`container.id`, `container.name`, `container.image`, `k8s.ns.name`,
//!   `k8s.pod.name`, `k8s.pod.uid`, `fd.name`, `user.name`, `fd.rip`), plus
//!   `vigil.*` (finding id, rule id, plugin, node, count, and
//!   `vigil.container.verified` / `vigil.pod.verified`: whether the host
//!   matched each container / pod to what the plugin was shown) and
//!   `evidence.KEY`.
//! - `tags`: the ATT&CK technique ids, the plugin, `vigil`, and `monitor`
//!   for findings of a plugin in monitor mode.

use serde_json::{Map, Value, json};

use vigil_core::finding_record::FindingRecord;
use vigil_core::model::{EntityKind, Severity};

/// `source` of every event.
pub const SOURCE: &str = "vigil";

/// Falco's priority name for a severity.
pub fn priority(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "Critical",
        Severity::High => "Error",
        Severity::Medium => "Warning",
        Severity::Low => "Notice",
        Severity::Info => "Informational",
    }
}

/// `HH:MM:SS.nnnnnnnnn` of an RFC 3339 time, as Falco starts `output`.
fn clock(time: &str) -> &str {
    time.get(11..).map_or(time, |t| t.trim_end_matches('Z'))
}

fn insert(fields: &mut Map<String, Value>, key: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    match fields.get_mut(key) {
        // Two entities of a kind: keep both, comma-separated.
        Some(Value::String(v)) => {
            v.push(',');
            v.push_str(value);
        }
        _ => {
            fields.insert(key.to_owned(), Value::String(value.to_owned()));
        }
    }
}

/// `vigil.container.verified` / `vigil.pod.verified`: one `true`/`false`
/// per entity of that kind, in the order of `container.id` / `k8s.pod.name`.
fn verified(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    }
}

/// The finding as a Falco event.
pub fn event(rec: &FindingRecord) -> Value {
    let mut fields = Map::new();
    for e in &rec.entities {
        match e.kind {
            EntityKind::Container => {
                insert(&mut fields, "container.id", &e.id);
                insert(&mut fields, "container.name", &e.name);
                insert(
                    &mut fields,
                    "vigil.container.verified",
                    verified(e.verified),
                );
            }
            EntityKind::Pod => {
                let (ns, pod) = e.id.split_once('/').unwrap_or(("", &e.id));
                insert(&mut fields, "k8s.ns.name", ns);
                insert(&mut fields, "k8s.pod.name", pod);
                insert(
                    &mut fields,
                    "k8s.pod.uid",
                    e.uid.as_deref().unwrap_or_default(),
                );
                insert(&mut fields, "vigil.pod.verified", verified(e.verified));
            }
            EntityKind::Image => insert(&mut fields, "container.image", &e.id),
            EntityKind::File => insert(&mut fields, "fd.name", &e.id),
            EntityKind::User => insert(&mut fields, "user.name", &e.id),
            EntityKind::Address => insert(&mut fields, "fd.rip", &e.id),
            EntityKind::Node => insert(&mut fields, "k8s.node.name", &e.id),
        }
    }
    fields.insert("vigil.id".into(), json!(rec.id));
    fields.insert("vigil.rule_id".into(), json!(rec.rule_id));
    fields.insert("vigil.plugin".into(), json!(rec.plugin));
    fields.insert("vigil.node".into(), json!(rec.node));
    fields.insert("vigil.severity".into(), json!(rec.severity.as_str()));
    if let Some(count) = rec.count {
        fields.insert("vigil.count".into(), json!(count));
        if let Some(first) = &rec.aggregates {
            fields.insert("vigil.aggregates".into(), json!(first));
        }
    }
    for (k, v) in &rec.evidence {
        fields.insert(format!("evidence.{k}"), json!(v));
    }
    let mut tags: Vec<String> = rec.techniques.clone();
    tags.push(rec.plugin.clone());
    tags.push("vigil".into());
    if rec.monitor {
        tags.push("monitor".into());
    }
    let count = rec
        .count
        .map(|n| format!(" ({n} times)"))
        .unwrap_or_default();
    json!({
        "output": format!(
            "{}: {} {}{count}: {} (rule={} node={} id={})",
            clock(&rec.time),
            priority(rec.severity),
            rec.title,
            rec.summary,
            rec.rule_id,
            rec.node,
            rec.id
        ),
        "priority": priority(rec.severity),
        "rule": rec.rule_id,
        "time": rec.time,
        "output_fields": fields,
        "source": SOURCE,
        "tags": tags,
        "hostname": rec.node,
    })
}
