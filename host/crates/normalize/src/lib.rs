//! Recorded and received input into Vigil events: Vigil's own JSON lines,
//! Kubernetes audit events, and `docker inspect` output.
//!
//! Input is split into records (JSON lines, a JSON array, or concatenated
//! multi-line JSON documents), each normalised on its own: a bad record is
//! reported with its file, line and reason, and the rest goes on.

pub mod docker_inspect;
pub mod k8s_audit;
pub mod pod;
pub mod swarm_service;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use vigil_core::model::Event;

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

/// Normalises one record of a known format.
pub fn normalise_record(
    doc: &str,
    format: Format,
    origin: &Origin<'_>,
    out: &mut Vec<Event>,
) -> Result<usize, NormalizeError> {
    match format {
        Format::K8sAudit => k8s_audit::normalise(doc, origin, out),
        Format::DockerInspect => docker_inspect::normalise_value(doc, origin, out),
        Format::Vigil => {
            let e: Event = parse(doc)?;
            out.push(e);
            Ok(1)
        }
        Format::Auto => match sniff(doc) {
            Some(f) => normalise_record(doc, f, origin, out),
            None => Err(NormalizeError::Invalid(
                "cannot tell the format of this record (not a Vigil event, a Kubernetes audit event or a docker inspect object); pass --format".into(),
            )),
        },
    }
}

/// Splits `data` into records and normalises each. `on_events` receives
/// the events of each good record (and may drain the vector); `on_error`
/// each bad one. Returns the number of records read.
pub fn for_each_record(
    file: &str,
    data: &[u8],
    format: Format,
    origin: &Origin<'_>,
    mut on_events: impl FnMut(&mut Vec<Event>),
    mut on_error: impl FnMut(InputError),
) -> usize {
    let mut format = format;
    let mut scratch = Vec::new();
    let mut records = 0;
    let mut err = |line: usize, reason: String| {
        on_error(InputError {
            file: file.to_owned(),
            line,
            reason,
        })
    };
    let first = data.iter().position(|b| !b.is_ascii_whitespace());
    let Some(first) = first else { return 0 };

    let whole_document = data[first] == b'[' || !first_line_complete(data, first);
    if whole_document {
        let text = match std::str::from_utf8(data) {
            Ok(t) => t,
            Err(e) => {
                err(line_of(data, e.valid_up_to()), format!("not UTF-8: {e}"));
                return 0;
            }
        };
        let docs: Vec<&RawValue> = if data[first] == b'[' {
            match serde_json::from_str::<Vec<&RawValue>>(text) {
                Ok(v) => v,
                Err(e) => {
                    err(e.line(), format!("invalid JSON array: {e}"));
                    return 0;
                }
            }
        } else {
            let mut v = Vec::new();
            for item in serde_json::Deserializer::from_str(text).into_iter::<&RawValue>() {
                match item {
                    Ok(d) => v.push(d),
                    Err(e) => {
                        // A stream cannot resynchronise after a syntax error.
                        err(
                            e.line(),
                            format!("invalid JSON, the rest of the file is skipped: {e}"),
                        );
                        break;
                    }
                }
            }
            v
        };
        for doc in docs {
            let line = line_of(data, doc.get().as_ptr() as usize - text.as_ptr() as usize);
            records += 1;
            handle(
                doc.get(),
                line,
                &mut format,
                origin,
                &mut scratch,
                &mut on_events,
                &mut err,
            );
        }
        return records;
    }

    // Fast path: the whole input is UTF-8 (checked once, vectorised) and
    // lines are found with memchr; otherwise each line is checked alone so
    // one bad line does not cost the others.
    let lines: Box<dyn Iterator<Item = Result<&str, std::str::Utf8Error>>> =
        match std::str::from_utf8(data) {
            Ok(text) => Box::new(text.split('\n').map(Ok)),
            Err(_) => Box::new(data.split(|b| *b == b'\n').map(std::str::from_utf8)),
        };
    for (idx, line) in lines.enumerate() {
        match line.map(|l| l.strip_suffix('\r').unwrap_or(l)) {
            Ok(l) if l.bytes().all(|b| b.is_ascii_whitespace()) => {}
            Ok(l) => {
                records += 1;
                handle(
                    l,
                    idx + 1,
                    &mut format,
                    origin,
                    &mut scratch,
                    &mut on_events,
                    &mut err,
                );
            }
            Err(e) => {
                records += 1;
                err(idx + 1, format!("not UTF-8: {e}"));
            }
        }
    }
    records
}

fn handle(
    doc: &str,
    line: usize,
    format: &mut Format,
    origin: &Origin<'_>,
    scratch: &mut Vec<Event>,
    on_events: &mut impl FnMut(&mut Vec<Event>),
    err: &mut impl FnMut(usize, String),
) {
    if *format == Format::Auto {
        match sniff(doc) {
            Some(f) => *format = f,
            None => {
                let reason = match serde_json::from_str::<IgnoredAny>(doc) {
                    Err(e) => format!("invalid JSON: {e}"),
                    Ok(_) => "cannot tell the format of this record (not a Vigil event, a Kubernetes audit event or a docker inspect object); pass --format".into(),
                };
                err(line, reason);
                return;
            }
        }
    }
    scratch.clear();
    match normalise_record(doc, *format, origin, scratch) {
        Ok(_) => on_events(scratch),
        Err(e) => {
            let what = match format {
                Format::K8sAudit => "Kubernetes audit event",
                Format::DockerInspect => "docker inspect object",
                Format::Vigil => "Vigil event",
                Format::Auto => "record",
            };
            err(line, format!("invalid {what}: {e}"));
        }
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
