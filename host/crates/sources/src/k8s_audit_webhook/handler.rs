//! One webhook request: authenticate, bound, parse, hand to the pipeline,
//! answer. Every refusal is answered with a status the API server
//! understands and a plain-text reason, and counted.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    ALLOW, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};

use super::deadline::RequestClock;
use super::internal_events::{
    AuditWebhookEventsDropped, AuditWebhookEventsReceived, AuditWebhookRequestRejected,
    AuditWebhookRequestTimedOut,
};
use crate::SourceContext;
use vigil_normalize::{Origin, k8s_audit};

/// What every connection shares.
pub struct Shared {
    pub ctx: SourceContext,
    /// The expected bearer token; `None` when authentication is off.
    pub token: Option<Box<[u8]>>,
    pub max_body_bytes: u64,
    /// Time allowed for a whole request from its first byte.
    pub request_timeout: std::time::Duration,
}

type Reply = Response<Full<Bytes>>;

/// Serves one request. Never fails: every problem is a status code.
pub async fn handle(
    shared: Arc<Shared>,
    clock: Arc<RequestClock>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Reply, Infallible> {
    let deadline = clock.request_started() + shared.request_timeout;
    let reply = handle_request(&shared, deadline, peer, req).await;
    clock.answered();
    Ok(reply)
}

async fn handle_request(
    shared: &Shared,
    deadline: std::time::Instant,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Reply {
    let refuse = |status: StatusCode, reason: &str| {
        AuditWebhookRequestRejected {
            peer,
            status: status.as_u16(),
            reason,
        }
        .emit(&shared.ctx.metrics);
        reply(status, reason)
    };
    // Authentication first, so an unauthenticated client learns nothing
    // about what else the endpoint checks.
    if let Some(token) = &shared.token {
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| bearer(v.as_bytes()));
        if !presented.is_some_and(|p| same_secret(p, token)) {
            let mut r = refuse(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
            r.headers_mut().insert(
                WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    if req.method() != Method::POST {
        let mut r = refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "only POST of an audit.k8s.io/v1 EventList is accepted",
        );
        r.headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("POST"));
        return r;
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = shared.max_body_bytes;
    if declared.is_some_and(|n| n > limit) {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("body larger than {limit} bytes"),
        );
    }
    // A chunked body has no declared length: the cap applies while reading.
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    // The rest of the request must arrive by its deadline: a client that
    // trickles its body would otherwise hold its connection slot forever.
    let read = Limited::new(req.into_body(), cap).collect();
    let Ok(read) = tokio::time::timeout_at(deadline.into(), read).await else {
        AuditWebhookRequestTimedOut {
            peer,
            phase: "body",
            after: shared.request_timeout,
        }
        .emit(&shared.ctx.metrics);
        let mut r = reply(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "request not received within {} s",
                shared.request_timeout.as_secs()
            ),
        );
        // The unread rest of the body makes the connection unusable.
        r.headers_mut()
            .insert(CONNECTION, hyper::header::HeaderValue::from_static("close"));
        return r;
    };
    let body = match read {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("body larger than {limit} bytes"),
            );
        }
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {e}"),
            );
        }
    };
    // Parsing is CPU work (a few ms for a batch of 400 events): on tokio's
    // blocking pool, not on the two async workers, so that the batches the
    // API server sends concurrently are normalised on every core and never
    // hold up accepting, reading or the other sources' tasks.
    let node = shared.ctx.node.clone();
    let bytes = body.len();
    let parsed = tokio::task::spawn_blocking(move || {
        let text = std::str::from_utf8(&body).map_err(|_| "body is not UTF-8 JSON".to_owned())?;
        let origin = Origin {
            node: &node,
            source: "k8s-audit",
        };
        let mut events = Vec::new();
        k8s_audit::normalise(text, &origin, &mut events)
            .map_err(|e| format!("not a valid audit.k8s.io/v1 EventList: {e}"))?;
        Ok::<_, String>(events)
    })
    .await;
    let events = match parsed {
        Ok(Ok(events)) => events,
        Ok(Err(reason)) => return refuse(StatusCode::BAD_REQUEST, &reason),
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("normalising failed: {e}"),
            );
        }
    };
    let n = events.len();
    AuditWebhookEventsReceived {
        peer,
        events: n,
        bytes,
    }
    .emit(&shared.ctx.metrics);
    // 200 only once queued: waiting here (back-pressure) makes the API
    // server buffer and retry instead of Vigil dropping events.
    if shared.ctx.send(events).await {
        reply(StatusCode::OK, "ok")
    } else {
        AuditWebhookEventsDropped { events: n }.emit(&shared.ctx.metrics);
        reply(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    }
}

fn reply(status: StatusCode, text: &str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The credentials of an `Authorization: Bearer <token>` header (the
/// scheme is case-insensitive, RFC 7235).
pub(super) fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Compares in time independent of where the inputs differ, so the token
/// cannot be guessed byte by byte from response times.
pub(super) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
