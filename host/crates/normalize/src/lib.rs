//! Recorded and received input into Vigil events: Vigil's own JSON lines,
//! Kubernetes audit events, and `docker inspect` output.
//!
//! Input is split into records (JSON lines, a JSON array, or concatenated
//! multi-line JSON documents), each normalised on its own: a bad record is
//! reported with its file, line and reason, and the rest goes on.

mod borrowed;
pub mod docker_inspect;
pub mod k8s_audit;
mod lines;
pub mod pod;
mod records;

pub use borrowed::Str;
pub use lines::{Block, LineBlocks, ReadyCheck, is_json_lines};
pub use records::{
    LineBlock, Normaliser, Record, Segment, for_each_record, normalise_records, split_records,
};
pub mod swarm_service;

use serde::Deserialize;
use serde::de::IgnoredAny;

use vigil_core::model::{Event, PROCESS_BODY_KIND, ParsedProcessRecord, ProcessEvent};

/// What the input is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Decide per file from its first record.
    Auto,
    /// Vigil's own event JSON (`vigil replay` input, `vigil run` output).
    Vigil,
    /// Kubernetes audit events (`audit.k8s.io/v1` `Event` or `EventList`).
    K8sAudit,
    /// `docker inspect` output (one container object, or an array of them).
    DockerInspect,
}

/// Where normalised events are said to come from.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    /// The node name stamped on each event.
    pub node: &'a str,
    /// The source name stamped on events whose format does not imply one.
    pub source: &'a str,
}

/// Why one record could not be normalised.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// The record is not the JSON expected.
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    /// A field of the record has the wrong type or value.
    #[error("field `{path}`: {source}")]
    Field {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The record is JSON but not a valid event of its format.
    #[error("{0}")]
    Invalid(String),
}

/// One bad record, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

#[derive(Deserialize)]
struct Sniff {
    kind: Option<IgnoredAny>,
    #[serde(rename = "auditID")]
    audit_id: Option<IgnoredAny>,
    body: Option<IgnoredAny>,
    #[serde(rename = "HostConfig")]
    host_config: Option<IgnoredAny>,
}

fn sniff(doc: &str) -> Option<Format> {
    let s: Sniff = serde_json::from_str(doc).ok()?;
    if s.body.is_some() {
        Some(Format::Vigil)
    } else if s.host_config.is_some() {
        Some(Format::DockerInspect)
    } else if s.kind.is_some() || s.audit_id.is_some() {
        Some(Format::K8sAudit)
    } else {
        None
    }
}

/// Deserialises `doc`; on failure, parses again tracking the path, so the
/// error names the field (the fast path pays nothing for this).
pub fn parse<'a, T: Deserialize<'a>>(doc: &'a str) -> Result<T, NormalizeError> {
    serde_json::from_str(doc).map_err(|first| {
        let mut de = serde_json::Deserializer::from_str(doc);
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Err(e) if e.path().iter().next().is_some() => NormalizeError::Field {
                path: e.path().to_string(),
                source: e.into_inner(),
            },
            _ => NormalizeError::Json(first),
        }
    })
}

/// What one good record normalised to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Normalised {
    /// This many events, appended to the output.
    Events(usize),
    /// A process event (Vigil JSON whose `body.kind` is `process`, as
    /// `vigil run --emit-events` writes it): no `event-body` case, so it
    /// travels beside the events (WIT 0.1.3). Boxed: it is rare in a
    /// stream of events and much larger than a count.
    Process(Box<ProcessEvent>),
}

#[derive(Deserialize)]
struct BodyKind {
    body: KindOnly,
}

#[derive(Deserialize)]
struct KindOnly {
    kind: Option<String>,
}

/// Whether a Vigil JSON record is a process event (asked only of records
/// that are not events, so events pay nothing for it).
fn is_process(doc: &str) -> bool {
    serde_json::from_str::<BodyKind>(doc)
        .is_ok_and(|b| b.body.kind.as_deref() == Some(PROCESS_BODY_KIND))
}

/// Normalises one record of a known format.
pub fn normalise_record(
    doc: &str,
    format: Format,
    origin: &Origin<'_>,
    out: &mut Vec<Event>,
) -> Result<Normalised, NormalizeError> {
    match format {
        Format::K8sAudit => k8s_audit::normalise(doc, origin, out).map(Normalised::Events),
        Format::DockerInspect => {
            docker_inspect::normalise_value(doc, origin, out).map(Normalised::Events)
        }
        Format::Vigil => match parse::<Event>(doc) {
            Ok(e) => {
                out.push(e);
                Ok(Normalised::Events(1))
            }
            Err(_) if is_process(doc) => {
                parse::<ParsedProcessRecord>(doc).map(|r| Normalised::Process(Box::new(r.0)))
            }
            Err(e) => Err(e),
        },
        Format::Auto => match sniff(doc) {
            Some(f) => normalise_record(doc, f, origin, out),
            None => Err(NormalizeError::Invalid(
                "cannot tell the format of this record (not a Vigil event, a Kubernetes audit event or a docker inspect object); pass --format".into(),
            )),
        },
    }
}

/// True when the first non-blank line is a complete JSON value (JSON lines),
/// false when a document spans several lines.
fn first_line_complete(data: &[u8], first: usize) -> bool {
    let end = data[first..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(data.len(), |p| first + p);
    match serde_json::from_slice::<IgnoredAny>(&data[first..end]) {
        Ok(_) => true,
        Err(e) => !e.is_eof(),
    }
}

fn line_of(data: &[u8], offset: usize) -> usize {
    data[..offset.min(data.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests;
