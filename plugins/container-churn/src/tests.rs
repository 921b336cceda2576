//! Native tests: spikes against the learned (seasonal) baseline, warm-up,
//! maintenance windows, allowlists, short-lived containers and pods,
//! persistence across restarts, and the settings.

use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::testing::{self, evidence, rule_ids};
use vigil_plugin_sdk::util::rules::RuleSet;

use super::*;

/// 2025-11-26T10:00:00Z, a Wednesday.
const T0: u64 = 1_764_151_200;
const HOUR: u64 = 3_600;

fn detector(settings: &str) -> ContainerChurn {
    testing::configured(settings)
}

fn docker(id: &str, secs: u64, action: ContainerAction, image: &str) -> Event {
    let mut event = Event::new(
        id,
        secs * NANOS,
        EventBody::Container(ContainerEvent {
            action,
            raw_action: action.as_str().into(),
            id: format!("c-{id}"),
            name: format!("n-{id}"),
            image: image.into(),
            ..ContainerEvent::default()
        }),
    );
    event.node = "n1".into();
    event
}

fn with_container(mut event: Event, f: impl FnOnce(&mut ContainerEvent)) -> Event {
    if let EventBody::Container(c) = &mut event.body {
        f(c);
    }
    event
}

fn pod(id: &str, secs: u64, verb: &str, namespace: &str, name: &str, user: &str) -> Event {
    let mut event = Event::new(
        id,
        secs * NANOS,
        EventBody::Kubernetes(KubernetesEvent {
            verb: verb.into(),
            resource: "pods".into(),
            namespace: namespace.into(),
            name: name.into(),
            user: user.into(),
            stage: "ResponseComplete".into(),
            response_code: Some(if verb == "create" { 201 } else { 200 }),
            pod: (verb == "create").then(|| PodSpec {
                containers: vec![PodContainer {
                    role: ContainerRole::Main,
                    name: "main".into(),
                    image: "shop/job:7".into(),
                    security: ContainerSecurity::default(),
                }],
                ..PodSpec::default()
            }),
            ..KubernetesEvent::default()
        }),
    );
    event.node = "n1".into();
    event
}

/// One `create` per hour of `image` from `start` for `hours` hours.
fn history(start: u64, hours: u64, image: &str) -> Vec<Event> {
    (0..hours)
        .map(|h| {
            docker(
                &format!("h{h}"),
                start + h * HOUR + 120,
                ContainerAction::Create,
                image,
            )
        })
        .collect()
}

/// `n` creates of `image` spread over one window starting at `start`.
fn burst(prefix: &str, start: u64, n: u64, image: &str) -> Vec<Event> {
    (0..n)
        .map(|i| {
            docker(
                &format!("{prefix}{i}"),
                start + i * 5,
                ContainerAction::Create,
                image,
            )
        })
        .collect()
}

#[test]
fn describes_itself() {
    let info = ContainerChurn::describe();
    assert_eq!(info.name, "container-churn");
    assert_eq!(
        info.subscribes,
        [EventKind::Container, EventKind::Kubernetes]
    );
    assert!(
        info.settings
            .iter()
            .any(|s| s.name == "maintenance_windows")
    );
    for rule in Rule::ALL {
        assert!(rule.id().starts_with("container-churn/"));
        assert_eq!(Rule::from_id(rule.name()), Some(rule));
    }
}

#[test]
fn a_burst_after_warm_up_is_a_spike_with_its_baseline() {
    let mut d = detector("{}");
    assert!(d.on_events(&history(T0, 25, "shop/web:1")).is_empty());
    let start = T0 + 25 * HOUR + 300; // Thu 11:05
    let findings = d.on_events(&burst("b", start, 20, "shop/web:2"));
    assert_eq!(rule_ids(&findings), ["container-churn/spike"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Medium);
    assert_eq!(f.title, "Burst of container creations");
    assert_eq!(f.techniques, ["T1610"]);
    // Node and image crossed on the same (10th) event: one finding for both.
    assert_eq!(evidence(f, "scope"), ["node:n1", "image:shop/web"]);
    assert_eq!(evidence(f, "observed"), ["10", "10"]);
    assert_eq!(evidence(f, "window-start")[0], "2025-11-27T11:05:00Z");
    assert_eq!(evidence(f, "baseline-mean")[0], "0.08");
    assert_eq!(evidence(f, "baseline-sd")[0], "1.00");
    assert_eq!(evidence(f, "baseline-bucket")[0], "all hours, 301 windows");
    assert_eq!(evidence(f, "z-score")[0], "9.92");
    assert_eq!(evidence(f, "threshold")[0], "z >= 4 and count >= 10");
    assert!(
        f.entities
            .contains(&Entity::new(EntityKind::Node, "n1", ""))
    );
    assert!(
        f.entities
            .contains(&Entity::new(EntityKind::Image, "shop/web", ""))
    );
    assert_eq!(f.event_ids, ["b0", "b1", "b2", "b3", "b4", "b9"]);
    assert!(
        f.summary
            .starts_with("10 container creations in node n1 within the 5-minute window"),
        "{}",
        f.summary
    );

    // One finding per scope and window; the next window can alert again.
    let next = d.on_events(&burst("c", start + 300, 20, "shop/web:2"));
    assert_eq!(rule_ids(&next), ["container-churn/spike"]);
}

#[test]
fn nothing_during_warm_up() {
    let mut d = detector("{}");
    let mut events = history(T0, 10, "shop/web:1");
    events.extend(burst("b", T0 + 10 * HOUR + 300, 50, "shop/web:1"));
    assert!(d.on_events(&events).is_empty());
}

#[test]
fn below_min_count_or_threshold_is_quiet() {
    let mut d = detector("{}");
    d.on_events(&history(T0, 25, "shop/web:1"));
    assert!(
        d.on_events(&burst("b", T0 + 25 * HOUR + 300, 9, "shop/web:1"))
            .is_empty()
    );

    // A scope that is always busy: 30 per window is its normal.
    let mut busy = detector(r#"{"warmup_hours": 2}"#);
    let mut events = Vec::new();
    for w in 0..36 {
        events.extend(burst(&format!("w{w}-"), T0 + w * 300, 30, "shop/web:1"));
    }
    assert!(busy.on_events(&events).is_empty());
    assert!(
        busy.on_events(&burst("b", T0 + 36 * 300, 35, "shop/web:1"))
            .is_empty()
    );
    let findings = busy.on_events(&burst("c", T0 + 37 * 300, 60, "shop/web:1"));
    assert_eq!(rule_ids(&findings), ["container-churn/spike"]);
    assert_eq!(evidence(&findings[0], "observed")[0], "53");
}

#[test]
fn the_hour_of_week_baseline_knows_the_weekly_deploy() {
    let mut d = detector("{}");
    let week = 7 * 24 * HOUR;
    let mut events = Vec::new();
    // Four weeks: every Wednesday 10:00-11:00 UTC, 15 deploys per 5 minutes; a trickle otherwise.
    for wk in 0..4 {
        let monday = T0 - 2 * 24 * HOUR - 10 * HOUR + wk * week;
        for h in 0..168 {
            let hour = monday + h * HOUR;
            if h == 2 * 24 + 10 {
                for w in 0..12 {
                    events.extend(burst(
                        &format!("d{wk}-{w}-"),
                        hour + w * 300,
                        15,
                        "shop/web:1",
                    ));
                }
            } else {
                events.push(docker(
                    &format!("t{wk}-{h}"),
                    hour + 120,
                    ContainerAction::Create,
                    "shop/web:1",
                ));
            }
        }
    }
    let first_week = events.iter().position(|e| e.id == "t1-0").unwrap();
    let findings = d.on_events(&events[..first_week]);
    assert!(
        !findings.is_empty(),
        "the first weekly deploy is a spike: nothing says it is normal yet"
    );
    assert!(d.on_events(&events[first_week..]).is_empty());
    let wednesday_10 = T0 + 4 * week;
    assert!(
        d.on_events(&burst("ok", wednesday_10 + 300, 15, "shop/web:1"))
            .is_empty(),
        "the weekly deploy is normal at its hour"
    );
    let findings = d.on_events(&burst(
        "odd",
        wednesday_10 + 4 * HOUR + 300,
        15,
        "shop/web:1",
    ));
    assert_eq!(rule_ids(&findings), ["container-churn/spike"]);
    assert_eq!(
        evidence(&findings[0], "baseline-bucket")[0],
        "Wed 14:00-15:00 UTC"
    );
}

#[test]
fn maintenance_windows_suppress_or_downgrade_and_are_not_learned() {
    // Thu 11:00-12:00 UTC, written as 13:00-14:00 at +02:00.
    let window = r#"{"days": ["thu"], "start": "13:00", "end": "14:00", "tz_offset": "+02:00"}"#;
    let mut d = detector(&format!(r#"{{"maintenance_windows": [{window}]}}"#));
    d.on_events(&history(T0, 25, "shop/web:1"));
    let start = T0 + 25 * HOUR + 300;
    assert!(d.on_events(&burst("b", start, 40, "shop/web:1")).is_empty());
    // The burst was not learned: right after the window, the same burst alerts.
    let after = d.on_events(&burst("c", T0 + 26 * HOUR + 300, 40, "shop/web:1"));
    assert_eq!(rule_ids(&after), ["container-churn/spike"]);
    assert_eq!(evidence(&after[0], "baseline-mean")[0], "0.08");

    let downgrade = r#"{"days": ["thursday"], "start": "11:00", "end": "12:00", "action": "downgrade", "name": "weekly deploy"}"#;
    let mut d = detector(&format!(r#"{{"maintenance_windows": [{downgrade}]}}"#));
    d.on_events(&history(T0, 25, "shop/web:1"));
    let findings = d.on_events(&burst("b", start, 40, "shop/web:1"));
    assert_eq!(rule_ids(&findings), ["container-churn/spike"]);
    assert_eq!(findings[0].severity, Severity::Info);
    assert_eq!(
        evidence(&findings[0], "maintenance-window"),
        ["weekly deploy"]
    );
}

#[test]
fn maintenance_windows_cross_midnight_and_default_to_every_day() {
    let config = Config::from_json(
        r#"{"maintenance_windows": [{"days": ["sat"], "start": "23:00", "end": "01:00"}, {"start": "04:00", "end": "04:30", "tz_offset": "-05:00"}]}"#,
    )
    .unwrap();
    let sat = T0 + 3 * 24 * HOUR - 10 * HOUR; // Sat 2025-11-29 00:00 UTC
    let at = |secs: u64| config.maintenance_at(secs).map(|w| w.name.clone());
    assert_eq!(
        at(sat + 23 * HOUR + 1_800).as_deref(),
        Some("sat 23:00-01:00 +00:00")
    );
    assert_eq!(
        at(sat + 24 * HOUR + 1_800).as_deref(),
        Some("sat 23:00-01:00 +00:00")
    ); // Sun 00:30
    assert_eq!(at(sat + 1_800), None); // Sat 00:30: the window started on Friday? no
    assert_eq!(
        at(sat + 9 * HOUR + 600).as_deref(),
        Some("daily 04:00-04:30 -05:00")
    );
    assert_eq!(at(sat + 4 * HOUR + 600), None);
}

#[test]
fn allowlisted_actors_images_and_labels_do_not_count() {
    let settings = r#"{"allowlist": {"actors": ["system:serviceaccount:ci:*"], "labels": ["com.gitlab.gitlab-runner.managed=true"], "images": ["ci/runner"]}, "warmup_hours": 1}"#;
    let mut d = detector(settings);
    // Warm the cluster and namespace scopes with a trickle of pod creations by a person.
    let mut events: Vec<Event> = (0..30)
        .map(|i| {
            pod(
                &format!("p{i}"),
                T0 + i * 300 + 10,
                "create",
                "ci",
                &format!("p{i}"),
                "alice",
            )
        })
        .collect();
    // Then the CI service account creates 50 pods in five minutes.
    events.extend((0..50).map(|i| {
        pod(
            &format!("ci{i}"),
            T0 + 30 * 300 + i * 5,
            "create",
            "ci",
            &format!("ci{i}"),
            "system:serviceaccount:ci:runner",
        )
    }));
    assert!(d.on_events(&events).is_empty());

    let mut docker_events = history(T0, 2, "shop/web:1");
    docker_events.extend(
        burst("r", T0 + 2 * HOUR + 300, 30, "build/step:1")
            .into_iter()
            .map(|e| {
                with_container(e, |c| {
                    c.labels = vec![KeyValue::new("com.gitlab.gitlab-runner.managed", "true")];
                })
            }),
    );
    docker_events.extend(burst("i", T0 + 2 * HOUR + 600, 30, "ci/runner:16"));
    assert!(d.on_events(&docker_events).is_empty());
}

#[test]
fn pod_churn_counts_per_namespace_and_user() {
    let mut d = detector(r#"{"warmup_hours": 1, "short_lived_secs": 1}"#);
    let mut events: Vec<Event> = (0..30)
        .map(|i| {
            pod(
                &format!("p{i}"),
                T0 + i * 300 + 10,
                "create",
                "shop",
                &format!("p{i}"),
                "deployer",
            )
        })
        .collect();
    // Only ResponseComplete counts; refused requests do not.
    let mut received = pod("rr", T0 + 30 * 300 + 1, "create", "shop", "x", "mallory");
    if let EventBody::Kubernetes(k) = &mut received.body {
        k.stage = "RequestReceived".into();
    }
    events.push(received);
    let mut refused = pod("403", T0 + 30 * 300 + 2, "create", "shop", "y", "mallory");
    if let EventBody::Kubernetes(k) = &mut refused.body {
        k.response_code = Some(403);
    }
    events.push(refused);
    assert!(d.on_events(&events).is_empty());

    let deletes: Vec<Event> = (0..12)
        .map(|i| {
            pod(
                &format!("del{i}"),
                T0 + 31 * 300 + i,
                "delete",
                "shop",
                &format!("p{i}"),
                "mallory",
            )
        })
        .collect();
    let findings = d.on_events(&deletes);
    assert_eq!(rule_ids(&findings), ["container-churn/spike"]);
    let f = &findings[0];
    assert_eq!(f.title, "Burst of pod deletions");
    assert_eq!(f.techniques, ["T1489", "T1070"]);
    // The cluster, the namespace and the pods' image (remembered from their
    // creation) had seen no deletion in their warm history; mallory is new (not warm).
    assert_eq!(
        evidence(f, "scope"),
        ["cluster:n1", "namespace:shop", "image:shop/job"]
    );

    // The kubelet's final delete is not counted again.
    let kubelet: Vec<Event> = (0..12)
        .map(|i| {
            pod(
                &format!("k{i}"),
                T0 + 32 * 300 + i,
                "delete",
                "shop",
                &format!("q{i}"),
                "system:node:n1",
            )
        })
        .collect();
    assert!(d.on_events(&kubelet).is_empty());
}

#[test]
fn short_lived_containers() {
    let mut d = detector("{}");
    let create = docker("a", T0, ContainerAction::Create, "alpine:3");
    let die = with_container(docker("a", T0 + 2, ContainerAction::Die, "alpine:3"), |c| {
        c.exit_code = Some(0);
    });
    let destroy = docker("a", T0 + 3, ContainerAction::Destroy, "alpine:3");
    let findings = d.on_events(&[create, die, destroy]);
    assert_eq!(rule_ids(&findings), ["container-churn/short-lived"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Low);
    assert_eq!(f.techniques, ["T1610", "T1070"]);
    assert_eq!(evidence(f, "lifetime-ms"), ["3000"]);
    assert_eq!(evidence(f, "lifetime-from"), ["create"]);
    assert_eq!(evidence(f, "exit-code"), ["0"]);
    assert_eq!(evidence(f, "container"), ["n-a"]);
    assert_eq!(f.event_ids, ["a"]);
    assert!(
        f.entities
            .contains(&Entity::new(EntityKind::Container, "c-a", "n-a"))
    );

    // A second one of the same image in the same window: not repeated.
    let again = d.on_events(&[
        docker("b", T0 + 10, ContainerAction::Create, "alpine:3.20"),
        docker("b", T0 + 11, ContainerAction::Destroy, "alpine:3.20"),
    ]);
    assert!(again.is_empty());

    // Privileged: medium, and always reported.
    let privileged = with_container(
        docker("c", T0 + 20, ContainerAction::Create, "alpine:3"),
        |c| {
            c.security = Some(ContainerSecurity {
                privileged: true,
                network_mode: "host".into(),
                ..ContainerSecurity::default()
            });
        },
    );
    let findings = d.on_events(&[
        privileged,
        docker("c", T0 + 21, ContainerAction::Destroy, "alpine:3"),
    ]);
    assert_eq!(findings[0].severity, Severity::Medium);
    assert_eq!(
        evidence(&findings[0], "risky"),
        ["privileged", "host-network"]
    );

    // Long-lived: nothing.
    assert!(
        d.on_events(&[
            docker("d", T0, ContainerAction::Create, "nginx:1"),
            docker("d", T0 + 3_600, ContainerAction::Destroy, "nginx:1"),
        ])
        .is_empty()
    );

    // Creation not seen: the engine's lifetime (start → die) is used.
    let unknown = with_container(
        docker("e", T0 + 5_000, ContainerAction::Destroy, "busybox:1"),
        |c| {
            c.lifetime_ms = Some(800);
        },
    );
    let findings = d.on_events(&[unknown]);
    assert_eq!(evidence(&findings[0], "lifetime-from"), ["start"]);
}

#[test]
fn short_lived_pods_and_allowlisted_containers() {
    let mut d = detector(r#"{"allowlist": {"images": ["alpine"]}}"#);
    let findings = d.on_events(&[
        pod("c", T0, "create", "shop", "debug", "mallory"),
        pod("d", T0 + 4, "delete", "shop", "debug", "mallory"),
    ]);
    assert_eq!(rule_ids(&findings), ["container-churn/short-lived"]);
    assert_eq!(findings[0].title, "Short-lived pod");
    assert!(findings[0].entities.contains(&Entity::new(
        EntityKind::Pod,
        "shop/debug",
        "shop/debug"
    )));
    assert_eq!(evidence(&findings[0], "actor"), ["mallory"]);

    assert!(
        d.on_events(&[
            docker("a", T0, ContainerAction::Create, "alpine:3"),
            docker("a", T0 + 1, ContainerAction::Destroy, "alpine:3"),
        ])
        .is_empty()
    );
}

#[test]
fn the_baseline_survives_a_restart_and_gaps_are_not_learned() {
    let mut d = detector("{}");
    d.on_events(&history(T0, 25, "shop/web:1"));
    d.on_tick((T0 + 25 * HOUR) * NANOS);
    let stored = testing::state();
    let keys: Vec<&String> = stored.keys().collect();
    assert_eq!(keys, ["s/d/image/shop/web", "s/d/node/n1"]);
    let total: usize = stored.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(total < 1_200, "compact state: {total} bytes");
    let learned = |d: &ContainerChurn| {
        d.scopes["s/d/node/n1"].stats.series[0]
            .as_ref()
            .map(|s| s.learned)
            .unwrap()
    };
    let before = learned(&d);

    // A new instance (same thread, same fake state) three days later: warm
    // from state, and the three days it did not see are not learned as zeros.
    let mut restarted = detector("{}");
    let later = T0 + 25 * HOUR + 3 * 24 * HOUR;
    let findings = restarted.on_events(&burst("b", later, 12, "shop/web:1"));
    assert_eq!(rule_ids(&findings), ["container-churn/spike"]);
    assert_eq!(learned(&restarted), before);
}

#[test]
fn unreadable_state_is_dropped_loudly() {
    vigil_plugin_sdk::host::state::set("s/d/node/n1", b"junk").unwrap();
    vigil_plugin_sdk::host::state::set("s/x/node/n1", &[1]).unwrap();
    let mut d = detector("{}");
    d.on_tick(T0 * NANOS);
    assert!(testing::state().is_empty());
    assert!(
        testing::take_logs()
            .iter()
            .any(|l| l.message.contains("unreadable churn baselines"))
    );
}

#[test]
fn scopes_are_bounded_and_nodes_are_kept() {
    let mut d = detector(r#"{"max_scopes": 3}"#);
    for (i, image) in ["a/one", "a/two", "a/three", "a/four"].iter().enumerate() {
        d.on_events(&[docker(
            &format!("e{i}"),
            T0 + i as u64,
            ContainerAction::Create,
            image,
        )]);
    }
    let mut keys: Vec<&String> = d.scopes.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["s/d/image/a/four", "s/d/image/a/three", "s/d/node/n1"]
    );
}

#[test]
fn late_events_count_in_the_current_window() {
    let mut d = detector(r#"{"warmup_hours": 1}"#);
    let mut events = history(T0, 2, "shop/web:1");
    let start = T0 + 2 * HOUR + 300;
    events.extend(burst("b", start, 9, "shop/web:1"));
    // An event from the previous window arriving late still counts.
    events.push(docker(
        "late",
        start - 10,
        ContainerAction::Create,
        "shop/web:1",
    ));
    let findings = d.on_events(&events);
    assert_eq!(rule_ids(&findings), ["container-churn/spike"]);
    assert_eq!(
        findings[0].event_ids.last().map(String::as_str),
        Some("late")
    );
}

#[test]
fn disabled_rules_and_scopes() {
    let mut d = detector(r#"{"disabled_rules": ["spike", "container-churn/short-lived"]}"#);
    let mut events = history(T0, 25, "shop/web:1");
    events.extend(burst("b", T0 + 25 * HOUR + 300, 20, "shop/web:1"));
    events.push(docker(
        "x",
        T0 + 26 * HOUR,
        ContainerAction::Destroy,
        "shop/web:1",
    ));
    assert!(d.on_events(&events).is_empty());

    let mut image_only = detector(r#"{"scopes": ["image"]}"#);
    image_only.on_events(&history(T0, 25, "shop/web:1"));
    let findings = image_only.on_events(&burst("b", T0 + 25 * HOUR + 300, 20, "shop/web:1"));
    assert_eq!(evidence(&findings[0], "scope"), ["image:shop/web"]);
}

#[test]
fn settings_are_validated_with_paths() {
    let error = Config::from_json(
        r#"{"window_secs": 700, "z_threshold": -1, "min_count": 0, "scopes": ["pod"], "short_lived_secs": 0,
            "kubernetes_sources": ["etcd"], "max_scopes": 0,
            "maintenance_windows": [{"days": ["caturday"], "start": "25:00", "end": "02:00", "tz_offset": "CET", "action": "ignore"},
                                    {"start": "02:00", "end": "02:00"}],
            "allowlist": {"actors": ["*"], "labels": ["=x"], "namespaces": [""]}, "disabled_rules": ["nope"]}"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "window_secs",
            "z_threshold",
            "min_count",
            "scopes[0]",
            "short_lived_secs",
            "kubernetes_sources[0]",
            "max_scopes",
            "maintenance_windows[0].days[0]",
            "maintenance_windows[0].start",
            "maintenance_windows[0].tz_offset",
            "maintenance_windows[0].action",
            "maintenance_windows[1].end",
            "allowlist.actors[0]",
            "allowlist.labels[0]",
            "allowlist.namespaces[0]",
            "disabled_rules[0]",
        ]
    );
    let missing = Config::from_json(r#"{"maintenance_windows": [{"days": ["sat"]}], "colour": 1}"#)
        .unwrap_err();
    let paths: Vec<&str> = missing.problems.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"colour"), "{paths:?}");
    assert!(paths.contains(&"maintenance_windows[0].start"), "{paths:?}");
}

fn service_event(
    id: &str,
    secs: u64,
    action: &str,
    changes: &[(&str, &str)],
    replicas: u64,
) -> ServiceEvent {
    ServiceEvent {
        id: id.into(),
        time: secs * NANOS,
        node: "n1".into(),
        action: action.into(),
        object_id: "svc1".into(),
        name: "web".into(),
        service: Some(ServiceSpec {
            id: "svc1".into(),
            name: "web".into(),
            image: "shop/web:1".into(),
            replicas: Some(replicas),
            ..ServiceSpec::default()
        }),
        changes: changes.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect(),
        ..ServiceEvent::default()
    }
}

#[test]
fn a_swarm_scale_up_after_warm_up_is_a_spike_of_the_service() {
    let mut d = detector(r#"{"warmup_hours": 1}"#);
    assert!(
        d.on_service_events(&[service_event("s0", T0 + 10, "create", &[], 1)])
            .is_empty()
    );
    // Two quiet hours are learned.
    assert!(d.on_tick((T0 + 2 * HOUR) * NANOS).is_empty());
    let scale = service_event(
        "s1",
        T0 + 2 * HOUR + 300,
        "update",
        &[("replicas.old", "1"), ("replicas.new", "40")],
        40,
    );
    let findings = d.on_service_events(&[scale]);
    assert_eq!(rule_ids(&findings), ["container-churn/spike"]);
    let f = &findings[0];
    assert_eq!(f.title, "Burst of Swarm service scale-ups");
    assert_eq!(evidence(f, "scope"), ["service:web"]);
    assert!(f.summary.contains("Swarm service web"), "{}", f.summary);
    assert_eq!(f.event_ids.last().map(String::as_str), Some("s1"));
    // A scale-down, a removal and other objects count nothing.
    let down = service_event(
        "s2",
        T0 + 2 * HOUR + 400,
        "update",
        &[("replicas.old", "40"), ("replicas.new", "1")],
        1,
    );
    assert!(d.on_service_events(&[down]).is_empty());
}

#[test]
fn task_containers_count_in_their_service_scope() {
    let mut d = detector(r#"{"warmup_hours": 1}"#);
    let task = |id: &str, secs: u64| {
        with_container(
            docker(id, secs, ContainerAction::Create, "shop/web:1"),
            |c| {
                c.labels = vec![KeyValue::new("com.docker.swarm.service.name", "web")];
            },
        )
    };
    assert!(d.on_events(&[task("t0", T0 + 10)]).is_empty());
    assert!(d.on_tick((T0 + 2 * HOUR) * NANOS).is_empty());
    let burst: Vec<Event> = (0..12)
        .map(|i| task(&format!("b{i}"), T0 + 2 * HOUR + 300 + i))
        .collect();
    let findings = d.on_events(&burst);
    assert_eq!(rule_ids(&findings), ["container-churn/spike"]);
    assert!(
        evidence(&findings[0], "scope").contains(&"service:web"),
        "{:?}",
        evidence(&findings[0], "scope")
    );
}
