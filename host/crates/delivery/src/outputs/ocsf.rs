//! OCSF 1.5 **Detection Finding** (class_uid 2004, category Findings): the
//! finding's rule as the analytic, its ATT&CK techniques as `attacks` (with
//! the technique's name and tactic where Vigil knows them), its entities as
//! `resources` (containers, pods, images, files, users, addresses, and the
//! node as a host; a checked container or pod carries `data.verified`, and
//! `data.pod_uid` when known), its evidence as an `evidences` artifact.
//!
//! A dedup summary is an OCSF *Update* (activity 2) of the first finding
//! (`finding_info.uid` is the first finding's id) with `count`, and
//! `start_time`/`end_time` spanning the window.
//!
//! `host/tests/ocsf_validate.rs` validates this output with the
//! independent `py-ocsf-models` implementation.

use serde_json::{Map, Value, json};

use vigil_core::finding_record::FindingRecord;
use vigil_core::model::{EntityKind, Severity};
use vigil_core::time::parse_rfc3339;

/// The OCSF schema version written in `metadata.version`.
pub const OCSF_VERSION: &str = "1.5.0";
/// Detection Finding.
pub const CLASS_UID: u64 = 2004;
/// Findings.
pub const CATEGORY_UID: u64 = 2;

/// ATT&CK tactic ids and names.
const TACTICS: &[(&str, &str)] = &[
    ("TA0001", "Initial Access"),
    ("TA0002", "Execution"),
    ("TA0003", "Persistence"),
    ("TA0004", "Privilege Escalation"),
    ("TA0005", "Defense Evasion"),
    ("TA0006", "Credential Access"),
    ("TA0007", "Discovery"),
    ("TA0008", "Lateral Movement"),
    ("TA0009", "Collection"),
    ("TA0010", "Exfiltration"),
    ("TA0011", "Command and Control"),
    ("TA0040", "Impact"),
    ("TA0042", "Resource Development"),
    ("TA0043", "Reconnaissance"),
];

/// ATT&CK (Enterprise, containers-relevant) techniques: id, name, tactic ids.
const TECHNIQUES: &[(&str, &str, &[&str])] = &[
    ("T1046", "Network Service Discovery", &["TA0007"]),
    ("T1059", "Command and Scripting Interpreter", &["TA0002"]),
    (
        "T1068",
        "Exploitation for Privilege Escalation",
        &["TA0004"],
    ),
    ("T1070", "Indicator Removal", &["TA0005"]),
    ("T1071", "Application Layer Protocol", &["TA0011"]),
    (
        "T1078",
        "Valid Accounts",
        &["TA0001", "TA0003", "TA0004", "TA0005"],
    ),
    ("T1098", "Account Manipulation", &["TA0003", "TA0004"]),
    ("T1105", "Ingress Tool Transfer", &["TA0011"]),
    ("T1190", "Exploit Public-Facing Application", &["TA0001"]),
    ("T1496", "Resource Hijacking", &["TA0040"]),
    ("T1525", "Implant Internal Image", &["TA0003"]),
    ("T1552", "Unsecured Credentials", &["TA0006"]),
    ("T1552.007", "Container API", &["TA0006"]),
    ("T1562", "Impair Defenses", &["TA0005"]),
    ("T1562.001", "Disable or Modify Tools", &["TA0005"]),
    ("T1562.006", "Indicator Blocking", &["TA0005"]),
    ("T1567", "Exfiltration Over Web Service", &["TA0010"]),
    ("T1571", "Non-Standard Port", &["TA0011"]),
    ("T1595", "Active Scanning", &["TA0043"]),
    ("T1596", "Search Open Technical Databases", &["TA0043"]),
    ("T1596.004", "CDNs", &["TA0043"]),
    ("T1609", "Container Administration Command", &["TA0002"]),
    ("T1610", "Deploy Container", &["TA0002", "TA0005"]),
    ("T1611", "Escape to Host", &["TA0004"]),
    ("T1612", "Build Image on Host", &["TA0005"]),
    ("T1613", "Container and Resource Discovery", &["TA0007"]),
];

fn technique(id: &str) -> Option<(&'static str, &'static [&'static str])> {
    TECHNIQUES
        .iter()
        .find(|(t, _, _)| *t == id)
        .map(|(_, name, tactics)| (*name, *tactics))
}

fn tactic_name(id: &str) -> &'static str {
    TACTICS
        .iter()
        .find(|(t, _)| *t == id)
        .map_or("", |(_, n)| n)
}

fn attack_url(id: &str) -> String {
    format!(
        "https://attack.mitre.org/techniques/{}/",
        id.replace('.', "/")
    )
}

/// The `attacks` of a finding: one per technique and tactic. A
/// sub-technique (`T1562.001`) is written as its parent technique plus
/// `sub_technique`, as OCSF models it. An unknown technique keeps its id as
/// its name.
fn attacks(techniques: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for id in techniques {
        let (parent, sub) = match id.split_once('.') {
            Some((p, _)) => (p, Some(id.as_str())),
            None => (id.as_str(), None),
        };
        let parent_name = technique(parent).map_or(parent, |(n, _)| n);
        let tactics = technique(id).map_or(&[][..], |(_, t)| t);
        let mut attack = Map::new();
        attack.insert(
            "technique".into(),
            json!({"uid": parent, "name": parent_name, "src_url": attack_url(parent)}),
        );
        if let Some(sub) = sub {
            let name = technique(sub).map_or(sub, |(n, _)| n);
            attack.insert(
                "sub_technique".into(),
                json!({"uid": sub, "name": name, "src_url": attack_url(sub)}),
            );
        }
        if tactics.is_empty() {
            out.push(Value::Object(attack));
            continue;
        }
        for t in tactics {
            let mut a = attack.clone();
            a.insert(
                "tactic".into(),
                json!({"uid": t, "name": tactic_name(t), "src_url": format!("https://attack.mitre.org/tactics/{t}/")}),
            );
            out.push(Value::Object(a));
        }
    }
    out
}

/// OCSF `severity_id` and its caption.
pub fn severity(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

/// RFC 3339 → OCSF timestamp (milliseconds since the epoch).
fn ms(t: &str) -> u64 {
    parse_rfc3339(t).map_or(0, |ns| ns / 1_000_000)
}

fn resources(rec: &FindingRecord) -> Vec<Value> {
    let mut out: Vec<Value> = rec
        .entities
        .iter()
        .map(|e| {
            let (kind, name, namespace) = match e.kind {
                EntityKind::Pod => {
                    let (ns, name) = e.id.split_once('/').unwrap_or(("", &e.id));
                    ("pod", name.to_owned(), Some(ns.to_owned()))
                }
                EntityKind::Node => ("host", e.id.clone(), None),
                k => (
                    k.as_str(),
                    if e.name.is_empty() {
                        e.id.clone()
                    } else {
                        e.name.clone()
                    },
                    None,
                ),
            };
            let mut r = json!({"type": kind, "uid": e.id, "name": name});
            if let Some(ns) = namespace.filter(|ns| !ns.is_empty()) {
                r["namespace"] = Value::String(ns);
            }
            // Whether the host matched the entity to what the plugin was
            // shown: OCSF has no attribute for that, `data` is the free-form one.
            if let Some(verified) = e.verified {
                let mut data = json!({"verified": verified});
                if let Some(uid) = &e.uid {
                    data["pod_uid"] = Value::String(uid.clone());
                }
                r["data"] = data;
            }
            r
        })
        .collect();
    if !rec
        .entities
        .iter()
        .any(|e| e.kind == EntityKind::Node && e.id == rec.node)
    {
        out.push(json!({"type": "host", "uid": rec.node, "name": rec.node}));
    }
    out
}

/// The finding as an OCSF Detection Finding.
pub fn detection_finding(rec: &FindingRecord) -> Value {
    let (severity_id, severity) = severity(rec.severity);
    let summary = rec.count.is_some();
    let (activity_id, activity) = if summary {
        (2, "Update")
    } else {
        (1, "Create")
    };
    let time = ms(&rec.time);
    let mut finding_info = json!({
        "uid": rec.aggregates.as_deref().unwrap_or(&rec.id),
        "title": rec.title,
        "desc": rec.summary,
        "types": [rec.rule_id],
        "analytic": {
            "uid": rec.rule_id,
            "name": rec.title,
            "type_id": 1,
            "type": "Rule",
            "category": rec.plugin,
            "version": rec.plugin_version,
        },
        "attacks": attacks(&rec.techniques),
        "created_time": time,
        "data_sources": [rec.plugin],
        "related_events": rec.event_ids.iter().map(|id| json!({"uid": id})).collect::<Vec<_>>(),
    });
    let mut v = json!({
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": format!("Detection Finding: {activity}"),
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 1,
        "status": "New",
        "time": time,
        "message": rec.summary,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": rec.id,
            "event_code": rec.rule_id,
            "correlation_uid": rec.dedup_key(),
            "product": {
                "name": "Vigil",
                "vendor_name": "Vigil",
                "version": env!("CARGO_PKG_VERSION"),
                "feature": {"name": rec.plugin, "version": rec.plugin_version},
            },
            "labels": if rec.monitor { vec!["monitor"] } else { Vec::new() },
        },
        "finding_info": Value::Null,
        "resources": resources(rec),
        "evidences": [{
            "name": rec.rule_id,
            "data": rec.evidence,
            "resources": resources(rec),
        }],
    });
    if let (Some(count), Some(first), Some(last)) = (rec.count, &rec.first_seen, &rec.last_seen) {
        v["count"] = json!(count);
        v["start_time"] = json!(ms(first));
        v["end_time"] = json!(ms(last));
        finding_info["first_seen_time"] = json!(ms(first));
        finding_info["last_seen_time"] = json!(ms(last));
        finding_info["modified_time"] = json!(time);
    }
    v["finding_info"] = finding_info;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_techniques_have_their_parent_and_tactics() {
        let a = attacks(&["T1562.001".into(), "T1610".into(), "T9999".into()]);
        assert_eq!(a.len(), 4, "{a:#?}");
        assert_eq!(a[0]["technique"]["uid"], "T1562");
        assert_eq!(a[0]["technique"]["name"], "Impair Defenses");
        assert_eq!(a[0]["sub_technique"]["uid"], "T1562.001");
        assert_eq!(a[0]["tactic"]["name"], "Defense Evasion");
        assert_eq!(a[1]["tactic"]["uid"], "TA0002");
        assert_eq!(a[2]["tactic"]["uid"], "TA0005");
        assert_eq!(a[3]["technique"]["name"], "T9999");
        assert!(a[3].get("tactic").is_none());
    }

    #[test]
    fn every_tactic_of_the_table_is_named() {
        for (id, _, tactics) in TECHNIQUES {
            for t in *tactics {
                assert!(!tactic_name(t).is_empty(), "{id}: {t}");
            }
        }
    }
}
