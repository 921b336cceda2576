//! The webhook output over HTTPS against a rustls server on loopback with
//! the test certificate of `tests/data/k8s-audit-tls` (trusted through
//! `ca_file`): the POST carries the bearer token from its file, the custom
//! headers and the finding in the chosen format; keep-alive reuses one
//! connection; 503 is retried, 400 is a permanent refusal; a server whose
//! certificate is not trusted is refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use vigil_core::finding_record::FindingRecord;
use vigil_core::model::{Entity, EntityKind, Finding, Severity};
use vigil_delivery::outputs::webhook::{Webhook, WebhookConfig};
use vigil_delivery::outputs::{Format, Output};
use vigil_test_support::TempDir;
use vigil_test_support::fixtures::tls;

fn acceptor() -> TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(tls("cert.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(tls("key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

#[derive(Debug, Clone)]
struct Request {
    head: String,
    body: String,
}

/// Serves HTTPS; answers each request with the next status of `statuses`
/// (200 once they run out).
async fn serve(
    listener: TcpListener,
    statuses: Vec<u16>,
    got: Arc<Mutex<Vec<Request>>>,
    conns: Arc<AtomicUsize>,
) {
    let acceptor = acceptor();
    let statuses = Arc::new(Mutex::new(statuses.into_iter()));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let Ok(tls) = acceptor.accept(tcp).await else {
            continue;
        };
        conns.fetch_add(1, Ordering::SeqCst);
        let (got, statuses) = (got.clone(), statuses.clone());
        tokio::spawn(async move {
            let mut r = BufReader::new(tls);
            loop {
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                let mut body = vec![0; len];
                r.read_exact(&mut body).await.unwrap();
                got.lock().unwrap().push(Request {
                    head,
                    body: String::from_utf8(body).unwrap(),
                });
                let status = statuses.lock().unwrap().next().unwrap_or(200);
                let resp = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok");
                if r.get_mut().write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn rec(i: usize) -> FindingRecord {
    FindingRecord::new(
        Finding {
            rule_id: "container-escape/privileged".into(),
            title: "Privileged container".into(),
            severity: Severity::Critical,
            summary: format!("finding {i}"),
            techniques: vec!["T1611".into()],
            entities: vec![Entity {
                kind: EntityKind::Pod,
                id: format!("default/web-{i}"),
                name: String::new(),
            }],
            evidence: vec![],
            event_ids: vec![format!("e{i}")],
        },
        "container-escape",
        "0.1.0",
        "node-1",
        0,
    )
}

#[test]
fn https_post_with_token_headers_and_statuses() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let conns = Arc::new(AtomicUsize::new(0));
    rt.spawn(serve(
        listener,
        vec![200, 200, 503, 200, 400],
        got.clone(),
        conns.clone(),
    ));

    let dir = TempDir::new("webhook-tls");
    let token = dir.join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let mut cfg = WebhookConfig::to(&format!("https://localhost:{port}/falco"));
    cfg.ca_file = Some(tls("ca.pem"));
    cfg.bearer_token_file = Some(token);
    cfg.headers.insert("X-Team".into(), "secops".into());
    cfg.format = Format::Falco;
    let mut problems = vigil::config::Problems::default();
    vigil::config::Validate::validate(&cfg, "outputs.webhook[0]", &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    let mut hook = Webhook::new(&cfg, rt.handle().clone()).unwrap();

    hook.deliver(&[rec(0)]).unwrap();
    hook.deliver(&[rec(1)]).unwrap();
    let err = hook.deliver(&[rec(2)]).unwrap_err();
    assert!(!err.permanent, "503 is retried: {err}");
    hook.deliver(&[rec(2)]).unwrap();
    let err = hook.deliver(&[rec(3)]).unwrap_err();
    assert!(err.permanent, "400 is for good: {err}");

    let requests = got.lock().unwrap().clone();
    assert_eq!(requests.len(), 5);
    assert_eq!(conns.load(Ordering::SeqCst), 1, "one kept-alive connection");
    let first = &requests[0];
    assert!(
        first.head.starts_with("POST /falco HTTP/1.1\r\n"),
        "{}",
        first.head
    );
    let head = first.head.to_ascii_lowercase();
    assert!(head.contains("authorization: bearer t0ken\r\n"), "{head}");
    assert!(head.contains("x-team: secops\r\n"), "{head}");
    assert!(
        head.contains("content-type: application/json\r\n"),
        "{head}"
    );
    let v: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(v["priority"], "Critical");
    assert_eq!(v["rule"], "container-escape/privileged");
    assert_eq!(v["output_fields"]["k8s.pod.name"], "web-0");

    // Batches are JSON arrays.
    cfg.batch_max = 2;
    cfg.format = Format::Vigil;
    let mut hook = Webhook::new(&cfg, rt.handle().clone()).unwrap();
    hook.deliver(&[rec(5), rec(6)]).unwrap();
    let last = got.lock().unwrap().last().cloned().unwrap();
    let v: serde_json::Value = serde_json::from_str(&last.body).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["summary"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["finding 5", "finding 6"]);
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    rt.spawn(serve(
        listener,
        vec![],
        got.clone(),
        Arc::new(AtomicUsize::new(0)),
    ));
    // No ca_file: the test CA is not among the system's roots.
    let cfg = WebhookConfig::to(&format!("https://localhost:{port}/"));
    let Ok(mut hook) = Webhook::new(&cfg, rt.handle().clone()) else {
        return; // no system roots at all: refused even earlier
    };
    let err = hook.deliver(&[rec(0)]).unwrap_err();
    assert!(!err.permanent);
    assert!(err.message.contains("TLS"), "{err}");
    assert!(got.lock().unwrap().is_empty());
}
