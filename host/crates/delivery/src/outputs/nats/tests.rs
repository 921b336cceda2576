//! Config checks of the NATS output: URLs, subjects, credentials and when
//! they make TLS mandatory, the read cap. The frame guard's own tests are
//! `guard/tests.rs`; the output against a real server and hostile ones is
//! `host/tests/nats_live.rs`.

use super::config::{NatsConfig, Url, parse_url, valid_subject};
use vigil_core::validate::{Problems, Validate};

#[test]
fn urls_and_subjects() {
    let url = |tls, host: &str, port| Url {
        tls,
        host: host.into(),
        port,
    };
    assert_eq!(
        parse_url("nats://127.0.0.1:4333"),
        Ok(url(false, "127.0.0.1", 4333))
    );
    assert_eq!(
        parse_url("tls://nats.example"),
        Ok(url(true, "nats.example", 4222))
    );
    assert_eq!(parse_url("nats://[::1]:5000"), Ok(url(false, "::1", 5000)));
    assert!(parse_url("http://x").is_err());
    assert!(parse_url("nats://u:p@x").is_err());
    assert!(parse_url("nats://x/path").is_err());
    assert!(valid_subject("vigil.findings"));
    assert!(!valid_subject("vigil.*"));
    assert!(!valid_subject("vigil..x"));
}

#[test]
fn the_client_gets_the_url_it_can_parse() {
    for (given, server) in [
        ("nats://127.0.0.1:4333/", "nats://127.0.0.1:4333"),
        ("tls://nats.example", "tls://nats.example:4222"),
        ("nats://[::1]:5000", "nats://[::1]:5000"),
    ] {
        let url = parse_url(given).unwrap_or_else(|e| panic!("{given}: {e}"));
        assert_eq!(url.server(), server);
        assert!(server.parse::<async_nats::ServerAddr>().is_ok(), "{server}");
    }
}

#[test]
fn credentials_require_tls_unless_allowed() {
    let mut cfg = NatsConfig::to("nats://127.0.0.1:4222", "vigil.findings");
    assert!(!cfg.tls_for_credentials(), "no credentials, no demand");
    cfg.token_file = Some("/run/secrets/nats-token".into());
    assert!(cfg.tls_for_credentials());
    cfg.allow_plaintext_credentials = true;
    assert!(!cfg.tls_for_credentials());
    cfg.token_file = None;
    cfg.allow_plaintext_credentials = false;
    cfg.user = Some("vigil".into());
    cfg.password_file = Some("/run/secrets/nats-password".into());
    assert!(cfg.tls_for_credentials());
}

#[test]
fn the_new_key_defaults_to_false_and_unknown_keys_are_refused() {
    let cfg: NatsConfig = toml::from_str(
        r#"
        url = "nats://127.0.0.1:4222"
        subject = "vigil.findings"
        "#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!cfg.allow_plaintext_credentials);
    assert_eq!(
        cfg,
        NatsConfig::to("nats://127.0.0.1:4222", "vigil.findings")
    );
    let bad = toml::from_str::<NatsConfig>(
        r#"
        url = "nats://127.0.0.1:4222"
        subject = "vigil.findings"
        allow_plaintext = true
        "#,
    );
    assert!(bad.is_err());
}

#[test]
fn validation_reports_every_problem() {
    let mut cfg = NatsConfig::to("http://nats.example", "vigil.*");
    cfg.user = Some("vigil".into());
    cfg.token_file = Some("/nonexistent/token".into());
    cfg.ca_file = Some("/nonexistent/ca.pem".into());
    cfg.timeout_ms = 1;
    cfg.max_read_payload_bytes = 100;
    cfg.batch_max = 0;
    cfg.retry.max_ms = 1;
    let mut p = Problems::default();
    cfg.validate("outputs.nats[0]", &mut p);
    let paths: Vec<&str> = p.list().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "outputs.nats[0].url",
            "outputs.nats[0].subject",
            "outputs.nats[0].user",
            "outputs.nats[0].token_file",
            "outputs.nats[0].token_file",
            "outputs.nats[0].ca_file",
            "outputs.nats[0].timeout_ms",
            "outputs.nats[0].max_read_payload_bytes",
            "outputs.nats[0].batch_max",
            "outputs.nats[0].retry.max_ms",
        ],
        "{p:?}"
    );
}

#[test]
fn a_plain_config_is_valid() {
    let mut p = Problems::default();
    NatsConfig::to("nats://127.0.0.1:4222", "vigil.findings").validate("n", &mut p);
    assert!(p.is_empty(), "{p:?}");
}
