//! Process events in Vigil JSON, the format of `vigil run --emit-events`
//! and `vigil replay --format vigil`: the envelope of an event (`id`,
//! `time`, `node`, `source`) and a `body` whose `kind` is `process`,
//! holding the rest. One stream then carries events and process events in
//! the order they happened, and a reader tells them apart by `body.kind`
//! (`process` is no `event-body` case: process events travel beside events,
//! see [`super::super::Batch`]).

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::ProcessEvent;
use crate::model::Timestamp;

/// The `body.kind` of a process event in Vigil JSON.
pub const PROCESS_BODY_KIND: &str = "process";

/// The fields that make the envelope, the same as an event's.
const ENVELOPE: [&str; 4] = ["id", "time", "node", "source"];

/// A process event as a Vigil JSON record (serialise it).
#[derive(Debug, Clone, Copy)]
pub struct ProcessRecord<'a>(pub &'a ProcessEvent);

impl Serialize for ProcessRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The body is the event less its envelope, taken from the event's
        // own serialisation so that a field added to it is never left out.
        let serde_json::Value::Object(mut fields) =
            serde_json::to_value(self.0).map_err(serde::ser::Error::custom)?
        else {
            return Err(serde::ser::Error::custom(
                "a process event is not a JSON object",
            ));
        };
        for key in ENVELOPE {
            fields.remove(key);
        }
        let e = self.0;
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("id", &e.id)?;
        map.serialize_entry("time", &e.time)?;
        map.serialize_entry("node", &e.node)?;
        map.serialize_entry("source", &e.source)?;
        map.serialize_entry("body", &Body(&fields))?;
        map.end()
    }
}

/// `kind` first, then the fields.
struct Body<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len() + 1))?;
        map.serialize_entry("kind", PROCESS_BODY_KIND)?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    id: String,
    #[serde(default)]
    time: Timestamp,
    #[serde(default)]
    node: String,
    #[serde(default)]
    source: String,
    body: ProcessBody,
}

#[derive(Deserialize)]
struct ProcessBody {
    kind: Kind,
    #[serde(flatten)]
    event: ProcessEvent,
}

#[derive(Deserialize)]
enum Kind {
    #[serde(rename = "process")]
    Process,
}

/// A Vigil JSON record read as a process event (deserialise it): refused
/// when it is not one (its `body.kind` is not `process`) or a field is
/// malformed. Absent fields take their defaults, as an event's do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedProcessRecord(pub ProcessEvent);

impl<'de> Deserialize<'de> for ParsedProcessRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Envelope {
            id,
            time,
            node,
            source,
            body,
        } = Envelope::deserialize(deserializer)?;
        let Kind::Process = body.kind;
        Ok(Self(ProcessEvent {
            id,
            time,
            node,
            source,
            ..body.event
        }))
    }
}

/// Reads a Vigil JSON record as a process event ([`ParsedProcessRecord`]).
///
/// # Errors
/// The JSON error when the record is not a process event.
pub fn read_process_record(doc: &str) -> Result<ProcessEvent, serde_json::Error> {
    serde_json::from_str::<ParsedProcessRecord>(doc).map(|r| r.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContainerRef;

    fn full() -> ProcessEvent {
        ProcessEvent {
            id: "p-1".into(),
            time: 1_700_000_000_123_456_789,
            node: "node-1".into(),
            source: "ebpf".into(),
            action: "exec".into(),
            pid: 4242,
            namespace_pid: 17,
            parent_pid: 4100,
            parent_name: "runc:[2:INIT]".into(),
            uid: 1000,
            binary: "/proc/self/exe".into(),
            args: vec!["sh".into(), "-c".into(), "echo \"x\"\n".into()],
            args_truncated: true,
            container: Some(ContainerRef {
                id: "c0ffee".into(),
                name: "web".into(),
                image: "nginx:1.25".into(),
                pod: "default/web-0".into(),
            }),
            container_tty: Some(false),
            path: None,
        }
    }

    #[test]
    fn a_process_record_round_trips_with_the_envelope_of_an_event() {
        let e = full();
        let text = serde_json::to_string(&ProcessRecord(&e)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["id"], "p-1");
        assert_eq!(v["source"], "ebpf");
        assert_eq!(v["body"]["kind"], "process");
        assert_eq!(v["body"]["pid"], 4242);
        assert!(v["body"].get("id").is_none(), "{text}");
        assert!(text.starts_with(r#"{"id":"p-1","time":"#), "{text}");
        assert!(text.contains(r#""body":{"kind":"process","#), "{text}");
        assert_eq!(read_process_record(&text).unwrap(), e);

        let host = ProcessEvent {
            container: None,
            container_tty: None,
            ..full()
        };
        let text = serde_json::to_string(&ProcessRecord(&host)).unwrap();
        assert_eq!(read_process_record(&text).unwrap(), host);

        // A write named by the file-integrity source keeps its path.
        let write = ProcessEvent {
            action: crate::model::PROCESS_WRITE.into(),
            path: Some("/usr/bin/runc".into()),
            ..full()
        };
        let text = serde_json::to_string(&ProcessRecord(&write)).unwrap();
        assert!(text.contains(r#""path":"/usr/bin/runc""#), "{text}");
        assert_eq!(read_process_record(&text).unwrap(), write);
    }

    #[test]
    fn other_records_and_bad_fields_are_refused() {
        let event = r#"{"id":"c","time":1,"body":{"kind":"container","action":"start","id":"c1"}}"#;
        assert!(read_process_record(event).is_err());
        let bad = r#"{"id":"p","body":{"kind":"process","pid":"many"}}"#;
        let err = read_process_record(bad).unwrap_err().to_string();
        assert!(err.contains("invalid type"), "{err}");
        // A sparse record takes defaults, as events do.
        let sparse = r#"{"body":{"kind":"process","binary":"/bin/sh"}}"#;
        assert_eq!(read_process_record(sparse).unwrap().binary, "/bin/sh");
    }
}
