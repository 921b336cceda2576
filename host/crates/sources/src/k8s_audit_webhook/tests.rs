use crate::Source as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_core::validate::InvalidConfig;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use super::handler::{bearer, same_secret};
use super::*;
use vigil_core::metrics::{PluginMetrics, SourceMetrics};

fn config(listen: &str) -> WebhookConfig {
    WebhookConfig {
        listen: listen.into(),
        ..WebhookConfig::default()
    }
}

fn unauthenticated(listen: &str) -> WebhookConfig {
    WebhookConfig {
        allow_unauthenticated: true,
        ..config(listen)
    }
}

#[test]
fn a_token_is_required_on_loopback_too_unless_waived() {
    let err = config("127.0.0.1:8444").validated().unwrap_err();
    assert_eq!(err.0[0].path, "k8s_audit_webhook.token_file");
    assert!(
        err.0[0].message.contains("allow_unauthenticated = true"),
        "{err}"
    );
    let s = WebhookConfig {
        allow_unauthenticated: true,
        ..config("127.0.0.1:8444")
    }
    .validated()
    .unwrap();
    assert_eq!(s.listen.port(), 8444);
    assert_eq!(s.auth, Auth::Unauthenticated);
    assert_eq!(s.transport, Transport::Plain);
    assert_eq!(s.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    assert_eq!(s.waivers, [Waiver::Unauthenticated]);
    assert_eq!(
        s.request_timeout,
        Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS)
    );
    let with_token = WebhookConfig {
        token_file: Some("/t".into()),
        allow_unauthenticated: true,
        ..config("127.0.0.1:8444")
    };
    let s = with_token.validated().unwrap();
    assert_eq!(s.auth, Auth::BearerTokenFile("/t".into()));
    assert!(s.waivers.is_empty(), "the token wins: nothing is waived");
    assert!(with_token.warnings().is_empty());
}

#[test]
fn tls_is_required_off_loopback_unless_waived() {
    let c = WebhookConfig {
        token_file: Some("/t".into()),
        ..config("0.0.0.0:8444")
    };
    let err = c.validated().unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!(err.0[0].path, "k8s_audit_webhook.tls_cert");
    assert!(err.0[0].message.contains("allow_plaintext = true"), "{err}");
    let waived = WebhookConfig {
        allow_plaintext: true,
        ..c
    };
    assert_eq!(waived.validated().unwrap().waivers, [Waiver::Plaintext]);
    let warnings = waived.warnings();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("allow_plaintext = true: "),
        "{warnings:?}"
    );
    // Loopback needs no TLS, and so no waiver.
    let c = WebhookConfig {
        token_file: Some("/t".into()),
        ..config("[::1]:8444")
    };
    assert!(c.validated().unwrap().waivers.is_empty());
}

#[test]
fn every_problem_is_reported_at_once() {
    let c = WebhookConfig {
        listen: "0.0.0.0:8444".into(),
        max_body_bytes: 0,
        max_connections: 0,
        header_timeout_secs: 0,
        request_timeout_secs: 0,
        tls_cert: Some(PathBuf::from("/c.pem")),
        ..WebhookConfig::default()
    };
    let InvalidConfig(problems) = c.validated().unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "k8s_audit_webhook.token_file",
            "k8s_audit_webhook.max_body_bytes",
            "k8s_audit_webhook.max_connections",
            "k8s_audit_webhook.header_timeout_secs",
            "k8s_audit_webhook.request_timeout_secs",
            "k8s_audit_webhook.tls_key",
        ]
    );
}

#[test]
fn tls_needs_cert_and_key() {
    let c = WebhookConfig {
        tls_cert: Some("/c.pem".into()),
        tls_key: Some("/k.pem".into()),
        ..unauthenticated("127.0.0.1:8444")
    };
    assert_eq!(
        c.validated().unwrap().transport,
        Transport::Tls {
            cert: "/c.pem".into(),
            key: "/k.pem".into()
        }
    );
    let c = WebhookConfig {
        tls_key: Some("/k.pem".into()),
        ..unauthenticated("127.0.0.1:8444")
    };
    assert_eq!(
        c.validated().unwrap_err().0[0].path,
        "k8s_audit_webhook.tls_cert"
    );
}

#[test]
fn bad_address_is_reported() {
    let err = config("localhost").validated().unwrap_err();
    assert_eq!(err.0[0].path, "k8s_audit_webhook.listen");
}

#[test]
fn non_loopback_with_token_and_tls_is_valid() {
    let c = WebhookConfig {
        token_file: Some("/etc/vigil/token".into()),
        tls_cert: Some("/c.pem".into()),
        tls_key: Some("/k.pem".into()),
        ..config("0.0.0.0:8444")
    };
    assert_eq!(
        c.validated().unwrap().auth,
        Auth::BearerTokenFile("/etc/vigil/token".into())
    );
}

#[test]
fn unknown_fields_are_refused() {
    let r: Result<WebhookConfig, _> =
        serde_json::from_str(r#"{"listen":"127.0.0.1:1","tls":true}"#);
    assert!(r.is_err());
}

#[test]
fn bearer_header_parsing() {
    assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
    assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
    assert_eq!(bearer(b"Basic abc"), None);
    assert_eq!(bearer(b"Bearer "), None);
    assert_eq!(bearer(b"Bear"), None);
}

#[test]
fn secrets_compare_whole() {
    assert!(same_secret(b"abc", b"abc"));
    assert!(!same_secret(b"abc", b"abd"));
    assert!(!same_secret(b"abc", b"abcd"));
}

/// Sends raw bytes and returns the whole response.
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn oversized_chunked_body_wrong_method_and_good_batch() {
    let (tx, mut rx) = mpsc::channel(8);
    let (_stop_tx, stop) = watch::channel(false);
    let metrics = Arc::new(SourceMetrics::new(METRICS_NAME));
    let ctx = SourceContext::new("n1".into(), tx, metrics.clone(), stop);
    let settings = WebhookConfig {
        max_body_bytes: 200,
        ..unauthenticated("127.0.0.1:0")
    }
    .validated()
    .unwrap();
    let started = start(settings, ctx).unwrap();
    let addr = started.local_addr;

    let chunk = "x".repeat(300);
    let req = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let resp = exchange(addr, req.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");

    let body = r#"{"kind":"EventList","items":[{"kind":"Event","auditID":"a","verb":"get"}]}"#;
    let req = format!(
        "POST /audit HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let resp = exchange(addr, req.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let batch = rx.try_recv().unwrap().into_events();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].source, "k8s-audit");
    assert_eq!(batch[0].node, "n1");
    let resp = exchange(
        addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
    assert_eq!(PluginMetrics::get(&metrics.counters.rejected), 2);
    assert_eq!(PluginMetrics::get(&metrics.counters.received), 1);
    assert!(rx.try_recv().is_err(), "nothing else queued");
    started.task.abort();
}

/// A client that sends its headers and then trickles its body is answered
/// 408 at the request deadline and its connection closed, so the only
/// connection slot is free again for the next client.
#[tokio::test]
async fn a_trickling_body_is_cut_off_at_the_deadline_and_frees_its_slot() {
    let (tx, mut rx) = mpsc::channel(8);
    let (_stop_tx, stop) = watch::channel(false);
    let metrics = Arc::new(SourceMetrics::new(METRICS_NAME));
    let ctx = SourceContext::new("n1".into(), tx, metrics.clone(), stop);
    let settings = WebhookConfig {
        max_connections: 1,
        request_timeout_secs: 1,
        ..unauthenticated("127.0.0.1:0")
    }
    .validated()
    .unwrap();
    let started = start(settings, ctx).unwrap();
    let addr = started.local_addr;

    let t0 = Instant::now();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        let mut out = Vec::new();
        // One byte every 200 ms: always "making progress", never done.
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow.write_all(b" ").await.is_err() {
                break;
            }
            let mut buf = [0u8; 512];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await
            {
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    // The next client waits for the slot, then is served.
    let body = r#"{"kind":"EventList","items":[{"kind":"Event","auditID":"a","verb":"get"}]}"#;
    let req = format!(
        "POST /audit HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let resp = exchange(addr, req.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "served after {waited:?}"
    );
    let slow_resp = trickle.await.unwrap();
    assert!(slow_resp.starts_with("HTTP/1.1 408"), "{slow_resp:?}");
    assert_eq!(PluginMetrics::get(&metrics.counters.timeouts), 1);
    assert_eq!(rx.try_recv().unwrap().len(), 1);
    started.task.abort();
}
