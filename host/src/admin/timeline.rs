//! `GET /timeline?entity=ENTITY`: the entity's recent events and findings
//! as JSON ([`TimelineView`]), what `vigil timeline` prints.
//!
//! The query is parsed strictly: exactly one `entity` parameter,
//! percent-decoded, in the syntax of [`EntityQuery`]; anything else is 400
//! with a JSON `error` saying what is expected. An entity with no history is
//! 404 with the view (its `entity` null). The answer is bounded by the
//! per-entity rings (`timeline.events_per_entity` +
//! `timeline.findings_per_entity` items, each summary at most
//! [`vigil_core::timeline::SUMMARY_BYTES`]).
//!
//! This serves what Vigil saw about a workload (names, images, commands,
//! addresses): the endpoint is loopback by default, for that reason too.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde::Serialize;

use vigil_core::time::wall_now;
use vigil_core::timeline::{EntityQuery, Timeline};

/// Longest query string read.
const MAX_QUERY_BYTES: usize = 1024;

/// The answer to `/timeline?QUERY`.
pub fn respond(timeline: Option<&Timeline>, query: Option<&str>) -> Response<Full<Bytes>> {
    let Some(timeline) = timeline else {
        return error(
            StatusCode::NOT_FOUND,
            "the timeline is off ([timeline] enabled = false)",
        );
    };
    let entity = match parse(query.unwrap_or("")) {
        Ok(e) => e,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    let view = timeline.query(&entity, wall_now());
    let status = if view.found() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    json(status, &view)
}

/// The entity of a query string, or why it is refused.
fn parse(query: &str) -> Result<EntityQuery, String> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(format!("query string longer than {MAX_QUERY_BYTES} bytes"));
    }
    let mut entity = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "entity" {
            return Err(format!(
                "unknown parameter {:?}: only entity=ENTITY",
                decode(key).unwrap_or_else(|| key.to_owned())
            ));
        }
        if entity.is_some() {
            return Err("entity given more than once".to_owned());
        }
        entity = Some(decode(value).ok_or("entity is not valid percent-encoded UTF-8")?);
    }
    let entity = entity.ok_or(format!(
        "missing entity=ENTITY ({})",
        vigil_core::timeline::SYNTAX
    ))?;
    entity.parse().map_err(|e| format!("entity: {e}"))
}

/// Percent-decodes `s` (`+` is not a space: no entity has one).
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn error(status: StatusCode, why: &str) -> Response<Full<Bytes>> {
    #[derive(Serialize)]
    struct Error<'a> {
        error: &'a str,
    }
    json(status, &Error { error: why })
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec(value).unwrap_or_else(|e| {
        format!("{{\"error\":\"cannot encode the answer: {e}\"}}").into_bytes()
    });
    body.push(b'\n');
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::{decode, parse};

    #[test]
    fn queries_parse_strictly() {
        assert!(parse("entity=container:web").is_ok());
        assert!(parse("entity=pod:shop%2Fweb-1").is_ok());
        for (q, why) in [
            ("", "missing entity"),
            ("entity=web", "has no kind"),
            ("entity=container:web&entity=container:db", "more than once"),
            ("entity=container:web&limit=3", "unknown parameter"),
            ("entity=container%3", "percent-encoded"),
            ("entity=container:%1b%5b31m", "container"),
        ] {
            let err = parse(q).unwrap_err();
            assert!(err.contains(why), "{q:?}: {err}");
            assert!(!err.contains('\u{1b}'), "{q:?}: {err:?}");
        }
        assert_eq!(decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(decode("%ff"), None);
    }
}
