//! `vigil timeline ENTITY`: the recent events and findings of a container,
//! pod or service, in time order, from a running host's admin endpoint
//! (`/timeline`) or from the file a host wrote to its data directory.
//!
//! Exit status: 0 with the timeline; 1 when the entity has none (not seen
//! within `timeline.max_age_secs`, or evicted); 2 for a malformed entity
//! or when neither a host nor a file could be read.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{TimelineArgs, TimelineFormat};
use crate::config::{DEFAULT_ADMIN_LISTEN, DEFAULT_DATA_DIR};
use vigil_core::text::escape_control;
use vigil_core::time::format_rfc3339;
use vigil_core::timeline::{EntityQuery, SUMMARY_BYTES, Timeline, TimelineView};

/// How long the admin endpoint may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read (the endpoint's is bounded well below).
const MAX_ANSWER_BYTES: u64 = 64 << 20;

/// Why no timeline could be read.
#[derive(Debug, thiserror::Error)]
pub enum TimelineCmdError {
    /// `--admin` is not `http://HOST:PORT` (or `HOST:PORT`).
    #[error("--admin {0:?}: expected http://HOST:PORT (the admin endpoint has no TLS)")]
    AdminUrl(String),
    /// The endpoint could not be reached or did not answer.
    #[error("cannot read the timeline from the admin endpoint {addr}")]
    Admin {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The endpoint answered something other than a timeline.
    #[error("the admin endpoint {addr} answered {status}: {message}")]
    Refused {
        addr: String,
        status: u16,
        message: String,
    },
    /// Neither the endpoint nor the data directory had a timeline.
    #[error(
        "no running host answered at http://{DEFAULT_ADMIN_LISTEN} ({admin}) and there is no {file}: pass --admin URL for a running host, or --data-dir DIR for a stopped host's data directory"
    )]
    Nothing { admin: String, file: String },
    /// The data directory has no timeline file.
    #[error(
        "no timeline in {0}: the host has not written one (it does at shutdown and every timeline.persist_interval_secs), or [timeline] is off"
    )]
    NoFile(PathBuf),
    /// The timeline file could not be read.
    #[error(transparent)]
    File(#[from] crate::timeline::TimelineFileError),
}

/// Runs `vigil timeline`.
pub fn timeline(args: &TimelineArgs) -> anyhow::Result<ExitCode> {
    let entity: EntityQuery = match args.entity.parse() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("vigil timeline: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let (view, from) = match fetch(args, &entity) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("vigil timeline: {}", vigil_core::error::chain(&e));
            return Ok(ExitCode::from(2));
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        TimelineFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &view)?;
            writeln!(out)?;
        }
        TimelineFormat::Text => out.write_all(text(&view, &from).as_bytes())?,
    }
    Ok(if view.found() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The view, and where it came from (for the text header).
fn fetch(
    args: &TimelineArgs,
    entity: &EntityQuery,
) -> Result<(TimelineView, String), TimelineCmdError> {
    if let Some(url) = &args.admin {
        let addr = admin_addr(url)?;
        return from_admin(&addr, entity).map(|v| (v, format!("http://{addr}")));
    }
    if let Some(dir) = &args.data_dir {
        return from_file(dir, entity);
    }
    match from_admin(DEFAULT_ADMIN_LISTEN, entity) {
        Ok(v) => Ok((v, format!("http://{DEFAULT_ADMIN_LISTEN}"))),
        Err(TimelineCmdError::Admin { source, .. }) => {
            let dir = Path::new(DEFAULT_DATA_DIR);
            match from_file(dir, entity) {
                Err(TimelineCmdError::NoFile(file)) => Err(TimelineCmdError::Nothing {
                    admin: source.to_string(),
                    file: file.display().to_string(),
                }),
                other => other,
            }
        }
        Err(e) => Err(e),
    }
}

/// `HOST:PORT` of `http://HOST:PORT[/]` or `HOST:PORT`.
fn admin_addr(url: &str) -> Result<String, TimelineCmdError> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) || url.starts_with("https://") {
        return Err(TimelineCmdError::AdminUrl(url.to_owned()));
    }
    Ok(rest.to_owned())
}

fn from_admin(addr: &str, entity: &EntityQuery) -> Result<TimelineView, TimelineCmdError> {
    let io = |source| TimelineCmdError::Admin {
        addr: addr.to_owned(),
        source,
    };
    let sock: SocketAddr = addr
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or_else(|| io(std::io::Error::other("no address")))?;
    let mut stream = TcpStream::connect_timeout(&sock, TIMEOUT).map_err(io)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    // The entity was validated: only characters a query string may carry.
    let request = format!(
        "GET /timeline?entity={entity} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream
        .take(MAX_ANSWER_BYTES)
        .read_to_end(&mut raw)
        .map_err(io)?;
    let (status, body) =
        split_answer(&raw).ok_or_else(|| io(std::io::Error::other("not an HTTP answer")))?;
    if (status == 200 || status == 404)
        && let Ok(view) = serde_json::from_slice::<TimelineView>(body)
    {
        return Ok(view);
    }
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    Err(TimelineCmdError::Refused {
        addr: addr.to_owned(),
        status,
        message: escape_control(message.trim(), 512).into_owned(),
    })
}

/// The status and body of an HTTP/1.1 answer with a `Content-Length` body
/// (what the admin endpoint sends) or one ended by the connection's close.
fn split_answer(raw: &[u8]) -> Option<(u16, &[u8])> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = &raw[end + 4..];
    let len = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    Some((status, len.map_or(body, |n| &body[..n.min(body.len())])))
}

fn from_file(dir: &Path, entity: &EntityQuery) -> Result<(TimelineView, String), TimelineCmdError> {
    let path = crate::timeline::path(dir);
    let Some(snap) = crate::timeline::read(&path)? else {
        return Err(TimelineCmdError::NoFile(path));
    };
    // As the host had it when it wrote the file, within its own bounds.
    let at = snap.written_ns;
    let t = Timeline::with_limits(snap.limits, Arc::default());
    t.restore(snap, at);
    let from = format!("{} (written {})", path.display(), format_rfc3339(at));
    Ok((t.query(entity, at), from))
}

/// The text form: a header, then one line per item. Everything that came
/// from a source or a plugin is escaped (one item, one line).
fn text(view: &TimelineView, from: &str) -> String {
    use std::fmt::Write as _;
    let esc = |s: &str| escape_control(s, SUMMARY_BYTES * 2).into_owned();
    let mut out = String::new();
    let Some(e) = &view.entity else {
        let _ = writeln!(
            out,
            "no timeline for {}: not seen within the last {} s (timeline.max_age_secs), or evicted; from {}",
            esc(&view.query),
            view.limits.max_age_ns / 1_000_000_000,
            esc(from)
        );
        return out;
    };
    let _ = write!(out, "{} {}", e.kind.as_str(), esc(&e.id));
    if !e.name.is_empty() {
        let _ = write!(out, " name={}", esc(&e.name));
    }
    if !e.uid.is_empty() {
        let _ = write!(out, " uid={}", esc(&e.uid));
    }
    let _ = writeln!(
        out,
        ": {} items, as of {} from {}",
        view.items.len(),
        view.as_of,
        esc(from)
    );
    if !view.other_matches.is_empty() {
        let ids: Vec<String> = view.other_matches.iter().map(|i| esc(i)).collect();
        let _ = writeln!(
            out,
            "(also matched, less recently active: {}; ask by id)",
            ids.join(", ")
        );
    }
    for i in &view.items {
        let it = &i.item;
        let _ = write!(
            out,
            "{}  {:<10} {:<16} ",
            i.at,
            it.kind.as_str(),
            esc(&it.source)
        );
        if let (Some(rule), Some(sev)) = (&it.rule_id, it.severity) {
            let _ = write!(out, "{} {}: ", sev.as_str().to_uppercase(), esc(rule));
        }
        let _ = writeln!(out, "{}", esc(&it.summary));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{admin_addr, split_answer, text};
    use vigil_core::timeline::{
        Item, ItemKind, Limits, TimelineView, TrackKind, ViewEntity, ViewItem,
    };

    #[test]
    fn plugin_and_source_text_cannot_break_a_line_or_reach_the_terminal() {
        let item = |kind, summary: &str| ViewItem {
            at: "2026-12-02T19:40:01Z".into(),
            item: Item {
                time: 1,
                kind,
                source: "evil\x1b]0;owned\x07".into(),
                id: "x".into(),
                summary: summary.into(),
                rule_id: (kind == ItemKind::Finding).then(|| "evil/rule\n".into()),
                severity: (kind == ItemKind::Finding).then_some(vigil_core::model::Severity::High),
            },
        };
        let view = TimelineView {
            query: "container:web".into(),
            entity: Some(ViewEntity {
                kind: TrackKind::Container,
                id: "abc".into(),
                name: "web\u{202e}".into(),
                uid: String::new(),
            }),
            other_matches: Vec::new(),
            items: vec![
                item(
                    ItemKind::Container,
                    "start web\n2026-12-02T19:40:02Z  finding forged",
                ),
                item(ItemKind::Finding, "\x1b[31mred\x1b[0m"),
            ],
            limits: Limits {
                events_per_entity: 1,
                findings_per_entity: 1,
                max_age_ns: 1,
                max_entities: 1,
            },
            as_of: "now".into(),
        };
        let out = text(&view, "test");
        assert_eq!(out.lines().count(), 3, "{out}");
        assert!(
            !out.chars()
                .any(|c| c != '\n' && vigil_core::text::needs_escape(c)),
            "{out:?}"
        );
        assert!(out.contains("HIGH evil/rule\\n: \\u{1b}[31mred"), "{out}");
    }

    #[test]
    fn admin_urls() {
        assert_eq!(
            admin_addr("http://127.0.0.1:9464").unwrap(),
            "127.0.0.1:9464"
        );
        assert_eq!(admin_addr("127.0.0.1:9464/").unwrap(), "127.0.0.1:9464");
        for bad in [
            "https://127.0.0.1:9464",
            "http://127.0.0.1:9464/x",
            "",
            "http://u@h:1",
        ] {
            assert!(admin_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_split_on_content_length() {
        let raw = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}garbage";
        assert_eq!(split_answer(raw), Some((404, &b"{}"[..])));
    }
}
