//! Native tests: positive and negative fixtures for every rule, the learned
//! profile and its persistence, and the settings.

use vigil_plugin_sdk::host;
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::testing::{self, evidence, rule_ids};
use vigil_plugin_sdk::util::rules::RuleSet;

use super::*;

/// 2025-11-26T10:00:00Z.
const T0: u64 = 1_764_151_200_000_000_000;
const SEC: u64 = 1_000_000_000;

fn detector(settings: &str) -> SuspiciousEgress {
    testing::configured(settings)
}

fn container(id: &str, name: &str, image: &str) -> ContainerRef {
    ContainerRef {
        id: id.into(),
        name: name.into(),
        image: image.into(),
        pod: String::new(),
    }
}

fn web() -> ContainerRef {
    container("c0ffee", "web", "shop/web:1.4")
}

/// An outbound TCP connection from `from` at `T0 + secs`.
fn outbound(id: &str, secs: u64, from: ContainerRef, remote: &str, port: u16) -> Event {
    let mut event = Event::new(
        id,
        T0 + secs * SEC,
        EventBody::Network(NetworkEvent {
            protocol: Protocol::Tcp,
            local_address: "172.18.0.5".into(),
            local_port: 40_000,
            remote_address: remote.into(),
            remote_port: port,
            direction: Direction::Outbound,
            state: "ESTABLISHED".into(),
            container: Some(from),
            host_network: false,
        }),
    );
    event.node = "n1".into();
    event
}

fn with(mut event: Event, f: impl FnOnce(&mut NetworkEvent)) -> Event {
    if let EventBody::Network(net) = &mut event.body {
        f(net);
    }
    event
}

fn c2(ip: &str) {
    testing::set_threat_intel(
        ip,
        vec![IpMatch {
            feed: "feodo.csv".into(),
            entry: "203.0.113.0/24".into(),
            category: "intel".into(),
            note: "QakBot".into(),
        }],
    );
}

/// Warms `shop/web`'s profile: `n` connections to 443 over `secs`, plus the given ports.
fn warm_up(detector: &mut SuspiciousEgress, ports: &[(&str, u16)]) {
    let mut events = Vec::new();
    for (i, (remote, port)) in ports.iter().enumerate() {
        events.push(outbound(&format!("w{i}"), i as u64, web(), remote, *port));
    }
    for i in 0..25 {
        events.push(outbound(
            &format!("h{i}"),
            100 + i,
            web(),
            "198.51.100.1",
            443,
        ));
    }
    events.push(outbound("late", 90_000, web(), "198.51.100.1", 443));
    let findings = detector.on_events(&events);
    assert!(
        findings.iter().all(|f| f.severity <= Severity::Low),
        "{findings:?}"
    );
}

#[test]
fn describes_itself() {
    let info = SuspiciousEgress::describe();
    assert_eq!(info.name, "suspicious-egress");
    assert_eq!(info.subscribes, [EventKind::Network]);
    let standard = info
        .settings
        .iter()
        .find(|s| s.name == "standard_ports")
        .unwrap();
    assert_eq!(standard.default_value, r#"[53,80,"123/udp",443,"853/tcp"]"#);
    for rule in Rule::ALL {
        assert!(rule.id().starts_with("suspicious-egress/"));
        assert_eq!(Rule::from_id(rule.id()), Some(rule));
        assert_eq!(Rule::from_id(rule.name()), Some(rule));
    }
}

#[test]
fn threat_intel_match_names_the_feed_and_entry() {
    c2("203.0.113.9");
    let mut d = detector("{}");
    let findings = d.on_events(&[outbound("e1", 0, web(), "203.0.113.9", 443)]);
    assert_eq!(rule_ids(&findings), ["suspicious-egress/threat-intel"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.techniques, ["T1071", "T1041"]);
    assert_eq!(evidence(f, "feed"), ["feodo.csv"]);
    assert_eq!(evidence(f, "feed-entry"), ["203.0.113.0/24"]);
    assert_eq!(evidence(f, "feed-note"), ["QakBot"]);
    assert_eq!(evidence(f, "remote-address"), ["203.0.113.9"]);
    assert_eq!(evidence(f, "remote-port"), ["443"]);
    assert_eq!(evidence(f, "standard-port"), ["true"]);
    assert_eq!(evidence(f, "container"), ["web"]);
    assert_eq!(f.event_ids, ["e1"]);
    assert!(
        f.summary.contains("listed in feodo.csv as 203.0.113.0/24"),
        "{}",
        f.summary
    );
    assert!(
        f.entities
            .contains(&Entity::new(EntityKind::Address, "203.0.113.9", ""))
    );
    assert!(
        f.entities
            .contains(&Entity::new(EntityKind::Container, "c0ffee", "web"))
    );

    // Not listed: nothing (443 is standard).
    assert!(
        d.on_events(&[outbound("e2", 1, web(), "198.51.100.7", 443)])
            .is_empty()
    );
}

#[test]
fn threat_intel_is_reported_once_per_realert_period() {
    c2("203.0.113.9");
    let mut d = detector(r#"{"realert_secs": 600}"#);
    let events = [
        outbound("e1", 0, web(), "203.0.113.9", 443),
        outbound("e2", 10, web(), "203.0.113.9", 443),
        outbound("e3", 700, web(), "203.0.113.9", 443),
    ];
    let findings = d.on_events(&events);
    let ids: Vec<&str> = findings.iter().map(|f| f.event_ids[0].as_str()).collect();
    assert_eq!(ids, ["e1", "e3"]);
}

#[test]
fn only_outbound_sockets_are_egress() {
    c2("203.0.113.9");
    let mut d = detector("{}");
    let inbound = with(outbound("e1", 0, web(), "203.0.113.9", 51_000), |n| {
        n.direction = Direction::Inbound;
    });
    let listen = with(outbound("e2", 0, web(), "", 0), |n| {
        n.direction = Direction::Listen;
        n.local_address = "0.0.0.0".into();
        n.local_port = 4444;
        n.state = "LISTEN".into();
    });
    let unknown = with(outbound("e3", 0, web(), "203.0.113.9", 4444), |n| {
        n.direction = Direction::Unknown;
    });
    assert!(d.on_events(&[inbound, listen, unknown]).is_empty());
}

#[test]
fn host_sockets_only_with_include_host() {
    c2("203.0.113.9");
    let host = with(outbound("e1", 0, web(), "203.0.113.9", 4444), |n| {
        n.container = None
    });
    assert!(
        detector("{}")
            .on_events(std::slice::from_ref(&host))
            .is_empty()
    );
    let findings = detector(r#"{"include_host": true}"#).on_events(&[host]);
    assert_eq!(rule_ids(&findings), ["suspicious-egress/threat-intel"]);
    assert_eq!(evidence(&findings[0], "container"), ["(host)"]);
}

#[test]
fn allowlisted_destination_and_image_are_silent() {
    c2("203.0.113.9");
    let settings =
        r#"{"allowlist": {"destinations": ["203.0.113.0/24"], "images": ["shop/scanner"]}}"#;
    let mut d = detector(settings);
    let scanner = container("5ca1ab1e", "scan", "shop/scanner:2");
    assert!(
        d.on_events(&[
            outbound("e1", 0, web(), "203.0.113.9", 4444),
            outbound("e2", 0, scanner, "198.51.100.9", 4444),
        ])
        .is_empty()
    );
}

#[test]
fn non_standard_port_after_warm_up() {
    let mut d = detector("{}");
    warm_up(&mut d, &[("198.51.100.2", 5432)]);
    // Learned during warm-up: silent.
    assert!(
        d.on_events(&[outbound("a", 90_010, web(), "198.51.100.3", 5432)])
            .is_empty()
    );
    // Standard: silent.
    assert!(
        d.on_events(&[outbound("b", 90_011, web(), "198.51.100.3", 443)])
            .is_empty()
    );
    // New, non-standard: reported.
    let findings = d.on_events(&[outbound("c", 90_012, web(), "198.51.100.66", 4444)]);
    assert_eq!(rule_ids(&findings), ["suspicious-egress/non-standard-port"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Medium);
    assert_eq!(f.techniques, ["T1571"]);
    assert_eq!(evidence(f, "profile"), ["shop/web"]);
    assert_eq!(evidence(f, "profile-state"), ["learned"]);
    assert_eq!(evidence(f, "profile-ports"), ["5432/tcp"]);
    assert_eq!(evidence(f, "profile-connections"), ["27"]);
    assert_eq!(evidence(f, "standard-ports"), ["53,80,123/udp,443,853/tcp"]);
    // After warm-up nothing more is learned: the same port elsewhere is reported again.
    let again = d.on_events(&[outbound("d", 90_013, web(), "198.51.100.67", 4444)]);
    assert_eq!(rule_ids(&again), ["suspicious-egress/non-standard-port"]);
    // Same destination again within realert_secs: silent.
    assert!(
        d.on_events(&[outbound("e", 90_014, web(), "198.51.100.66", 4444)])
            .is_empty()
    );
}

#[test]
fn during_warm_up_ports_are_learned_and_reported_low() {
    let mut d = detector("{}");
    let findings = d.on_events(&[
        outbound("e1", 0, web(), "198.51.100.2", 6667),
        outbound("e2", 1, web(), "198.51.100.3", 6667),
    ]);
    assert_eq!(rule_ids(&findings), ["suspicious-egress/non-standard-port"]);
    assert_eq!(findings[0].severity, Severity::Low);
    assert_eq!(evidence(&findings[0], "profile-state"), ["learning"]);

    let mut quiet = detector(r#"{"warmup_severity": "off"}"#);
    assert!(
        quiet
            .on_events(&[outbound("e1", 0, web(), "198.51.100.2", 6667)])
            .is_empty()
    );
}

#[test]
fn profiles_are_shared_by_tags_and_separate_per_repository() {
    let mut d = detector("{}");
    warm_up(&mut d, &[("198.51.100.2", 5432)]);
    let v2 = container("beef", "web-v2", "shop/web:1.5");
    assert!(
        d.on_events(&[outbound("a", 90_010, v2, "198.51.100.3", 5432)])
            .is_empty()
    );
    let other = container("cafe", "api", "shop/api:1.0");
    let findings = d.on_events(&[outbound("b", 90_011, other, "198.51.100.3", 5432)]);
    assert_eq!(findings[0].severity, Severity::Low); // shop/api is still learning
}

#[test]
fn container_to_container_on_service_and_listening_ports_is_silent() {
    let mut d = detector(r#"{"warmup_secs": 0, "warmup_min_connections": 1}"#);
    // orders (172.18.0.7) listens on 7001; checkout connects to it and to a DB port.
    let orders = container("0rders", "orders", "shop/orders:3");
    let listen = with(outbound("l", 0, orders.clone(), "", 0), |n| {
        n.direction = Direction::Listen;
        n.local_address = "0.0.0.0".into();
        n.local_port = 7001;
        n.state = "LISTEN".into();
    });
    let accepted = with(outbound("i", 0, orders, "172.18.0.5", 40_000), |n| {
        n.direction = Direction::Inbound;
        n.local_address = "172.18.0.7".into();
        n.local_port = 7001;
    });
    let checkout = container("ca11", "checkout", "shop/checkout:1");
    let events = [
        listen,
        accepted,
        outbound("a", 1, checkout.clone(), "172.18.0.7", 7001),
        outbound("b", 2, checkout.clone(), "172.18.0.8", 5432),
        outbound("c", 3, checkout.clone(), "172.18.0.8", 443),
        outbound("d", 4, checkout, "172.18.0.9", 8080),
    ];
    assert!(d.on_events(&events).is_empty());
}

#[test]
fn container_to_container_on_an_unexpected_port() {
    let mut d = detector(r#"{"warmup_secs": 0, "warmup_min_connections": 1}"#);
    let orders = container("0rders", "orders", "shop/orders:3");
    let accepted = with(outbound("i", 0, orders, "172.18.0.5", 40_000), |n| {
        n.direction = Direction::Inbound;
        n.local_address = "172.18.0.7".into();
        n.local_port = 7001;
    });
    let checkout = container("ca11", "checkout", "shop/checkout:1");
    let findings = d.on_events(&[
        accepted,
        outbound("warm", 1, checkout.clone(), "198.51.100.1", 443),
        outbound("ssh", 2, checkout, "172.18.0.7", 22),
    ]);
    assert_eq!(
        rule_ids(&findings),
        ["suspicious-egress/unexpected-peer-port"]
    );
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Medium);
    assert_eq!(evidence(f, "peer-container"), ["orders"]);
    assert_eq!(evidence(f, "peer-image"), ["shop/orders:3"]);
    assert_eq!(evidence(f, "peer-listening"), ["(none)"]);
    assert!(
        f.entities
            .contains(&Entity::new(EntityKind::Container, "0rders", "orders"))
    );
    // It cites the flow and the event that showed the peer at its address:
    // the host verifies the peer against that one.
    assert_eq!(f.event_ids, ["ssh", "i"]);
    // A learned address outside container_networks is still a container.
    let mut d =
        detector(r#"{"container_networks": [], "warmup_secs": 0, "warmup_min_connections": 1}"#);
    let learned = with(
        outbound("x", 0, container("peer", "p", "x/p"), "10.9.9.9", 1),
        |n| {
            n.local_address = "10.1.2.3".into();
        },
    );
    let findings = d.on_events(&[
        learned,
        outbound("warm", 1, web(), "198.51.100.1", 443),
        outbound("y", 2, web(), "10.1.2.3", 2375),
        outbound("z", 3, web(), "10.1.2.4", 2375),
    ]);
    assert_eq!(
        rule_ids(&findings),
        [
            "suspicious-egress/non-standard-port", // the learning event x (from x/p, still learning: low)
            "suspicious-egress/unexpected-peer-port",
            "suspicious-egress/non-standard-port",
        ]
    );
}

#[test]
fn loopback_and_port_zero_are_not_port_findings() {
    let mut d = detector(r#"{"warmup_secs": 0, "warmup_min_connections": 1}"#);
    assert!(
        d.on_events(&[
            outbound("a", 0, web(), "127.0.0.1", 9999),
            outbound("b", 0, web(), "::1", 9999),
            outbound("c", 0, web(), "198.51.100.1", 0),
        ])
        .is_empty()
    );
}

#[test]
fn udp_ports_follow_the_protocol() {
    let mut d = detector(r#"{"warmup_secs": 0, "warmup_min_connections": 1}"#);
    let ntp = with(outbound("a", 0, web(), "198.51.100.1", 123), |n| {
        n.protocol = Protocol::Udp;
    });
    let ntp_tcp = outbound("b", 1, web(), "198.51.100.1", 123);
    let findings = d.on_events(&[ntp, ntp_tcp]);
    assert_eq!(rule_ids(&findings), ["suspicious-egress/non-standard-port"]);
    assert_eq!(findings[0].event_ids, ["b"]);
}

#[test]
fn profiles_survive_a_restart_through_state() {
    let mut d = detector("{}");
    warm_up(&mut d, &[("198.51.100.2", 5432)]);
    assert!(d.on_tick(T0 + 90_001 * SEC).is_empty());
    let stored = testing::state();
    let raw = stored.get("img/shop/web").expect("profile persisted");
    assert!(raw.len() < 128, "compact: {}", String::from_utf8_lossy(raw));

    // A new instance (same thread: same fake state) knows the profile.
    let mut restarted = detector("{}");
    assert!(
        restarted
            .on_events(&[outbound("a", 90_010, web(), "198.51.100.3", 5432)])
            .is_empty()
    );
    let findings = restarted.on_events(&[outbound("b", 90_011, web(), "198.51.100.3", 4444)]);
    assert_eq!(findings[0].severity, Severity::Medium);
}

#[test]
fn bad_persisted_profiles_are_dropped() {
    host::state::set("img/shop/web", b"not json").unwrap();
    let mut d = detector("{}");
    let findings = d.on_events(&[outbound("a", 0, web(), "198.51.100.3", 4444)]);
    assert_eq!(findings[0].severity, Severity::Low);
    assert!(
        testing::take_logs()
            .iter()
            .any(|l| l.message.contains("unreadable port profiles"))
    );
}

#[test]
fn image_profiles_are_bounded() {
    let mut d = detector(r#"{"max_images": 2}"#);
    for (i, image) in ["a/one", "a/two", "a/three"].iter().enumerate() {
        d.on_events(&[outbound(
            "e",
            i as u64,
            container("x", "x", image),
            "198.51.100.1",
            443,
        )]);
    }
    d.on_tick(T0 + 100 * SEC);
    let keys: Vec<String> = testing::state().keys().cloned().collect();
    assert_eq!(keys, ["img/a/three", "img/a/two"]);
}

#[test]
fn disabled_rules_are_silent() {
    c2("203.0.113.9");
    let mut d =
        detector(r#"{"disabled_rules": ["threat-intel", "suspicious-egress/non-standard-port"]}"#);
    assert!(
        d.on_events(&[
            outbound("a", 0, web(), "203.0.113.9", 443),
            outbound("b", 1, web(), "198.51.100.1", 4444),
        ])
        .is_empty()
    );
}

#[test]
fn settings_are_validated_with_paths() {
    let error = SuspiciousEgress::default()
        .configure(
            r#"{"standard_ports": [443, 0, "53/icmp", "90-80", "x"], "container_networks": ["10.0.0.0/33"],
                "warmup_severity": "high", "max_images": 0, "disabled_rules": ["nope"],
                "allowlist": {"destinations": ["nowhere"], "images": [""]}}"#,
        )
        .unwrap_err();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "standard_ports[1]",
            "standard_ports[2]",
            "standard_ports[3]",
            "standard_ports[4]",
            "container_networks[0]",
            "allowlist.destinations[0]",
            "allowlist.images[0]",
            "warmup_severity",
            "max_images",
            "disabled_rules[0]",
        ]
    );
    let unknown = Config::from_json(r#"{"colour": 1, "warmup_secs": "x"}"#).unwrap_err();
    let paths: Vec<&str> = unknown.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["colour", "warmup_secs"]);
    let config =
        Config::from_json(r#"{"standard_ports": ["8000-8099/tcp", 22], "internal_ports": []}"#)
            .unwrap();
    assert!(config.standard_ports.contains(8050, Protocol::Tcp));
    assert!(!config.standard_ports.contains(8050, Protocol::Udp));
    assert!(config.standard_ports.contains(22, Protocol::Udp));
    assert!(!config.internal_ports.contains(8080, Protocol::Tcp));
}

#[test]
fn cidrs() {
    let cidr = net::Cidr::parse("172.16.0.0/12").unwrap();
    assert!(cidr.contains("172.31.255.1".parse().unwrap()));
    assert!(cidr.contains(net::parse_addr("::ffff:172.17.0.2").unwrap()));
    assert!(!cidr.contains("172.32.0.1".parse().unwrap()));
    assert!(
        net::Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap())
    );
    assert!(
        net::Cidr::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap())
    );
}
