use vigil_core::finding_record::{FindingRecord, RecordEntity};
use vigil_core::model::{EntityKind, Finding, Severity};

use super::*;

const ID: &str = "9002afd52e26f00c16761b0b702d2d25c95bd7c59c33b57eab67f8dda56cfaaa";

fn record(entities: Vec<RecordEntity>) -> FindingRecord {
    let mut rec = FindingRecord::new(
        Finding {
            rule_id: "p/r".into(),
            title: "t".into(),
            severity: Severity::Critical,
            summary: String::new(),
            techniques: Vec::new(),
            entities: Vec::new(),
            evidence: Vec::new(),
            event_ids: Vec::new(),
        },
        "p",
        "1",
        "node",
        0,
    );
    rec.entities = entities;
    rec
}

fn entity(kind: EntityKind, id: &str, verified: Option<bool>, uid: Option<&str>) -> RecordEntity {
    RecordEntity {
        kind,
        id: id.into(),
        name: "web".into(),
        verified,
        uid: uid.map(str::to_owned),
    }
}

#[test]
fn only_verified_full_container_ids_and_pods_are_targets() {
    let rec = record(vec![
        entity(EntityKind::Container, ID, Some(true), None),
        // Verified by the host, but the id is not a full id (a runtime
        // that names containers otherwise): nothing the Engine can be asked for safely.
        entity(EntityKind::Container, "c0ffee", Some(true), None),
        entity(EntityKind::Container, "victim_db", Some(false), None),
        // Written before the mark existed, or by hand: not verified.
        entity(EntityKind::Container, &ID.replace('9', "8"), None, None),
        entity(EntityKind::Pod, "shop/web-1", Some(true), Some("u-1")),
        entity(EntityKind::Pod, "shop/web-2", Some(false), None),
        entity(EntityKind::Image, "nginx", None, None),
    ]);
    let (targets, unverified) = targets(&rec, &ResponseConfig::default());
    assert_eq!(
        targets,
        [
            Target {
                kind: TargetKind::Docker,
                id: ID.into(),
                name: "web".into(),
                uid: None
            },
            Target {
                kind: TargetKind::Kubernetes,
                id: "shop/web-1".into(),
                name: "web-1".into(),
                uid: Some("u-1".into())
            },
        ]
    );
    let refused: Vec<&str> = unverified.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(
        refused,
        [
            "c0ffee",
            "victim_db",
            ID.replace('9', "8").as_str(),
            "shop/web-2"
        ]
    );
}

#[test]
fn full_ids_are_64_lowercase_hex_digits() {
    assert!(docker::is_full_id(ID));
    assert!(!docker::is_full_id(&ID.to_uppercase()));
    assert!(!docker::is_full_id(&ID[..12]));
    assert!(!docker::is_full_id("vigil"));
    assert!(!docker::is_full_id(&format!("{}/", &ID[..63])));
}
