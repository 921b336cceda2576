//! Container-engine events: agent containers stopped, killed, removed,
//! died or paused (one finding per stop, however many events it takes),
//! and the collector's "events lost" marker.

use vigil_plugin_sdk::util::timefmt::rfc3339;
use vigil_plugin_sdk::view::{ContainerEventView, EventView};
use vigil_plugin_sdk::{ContainerAction, EntityKind, Finding, Severity};

use crate::rules::Rule;
use crate::{Held, MonitoringTamper, Recent};

/// The `raw-action` of the container event the Docker collector sends when
/// it could not close a gap in the Engine's event stream (events were lost).
pub const GAP_RAW_ACTION: &str = "vigil-events-gap";
/// Label of the gap event: the last event time seen before the break (`seconds.nanoseconds`).
pub const GAP_SINCE_LABEL: &str = "vigil.gap.since";
/// Label of the gap event: why the gap could not be closed.
pub const GAP_REASON_LABEL: &str = "vigil.gap.reason";

/// The actions this module judges, and so the plugin's container
/// subscription: those [`effect`] maps to an effect, and `other`, which the
/// gap marker ([`GAP_RAW_ACTION`]) arrives as.
pub(crate) const ACTIONS: [ContainerAction; 7] = [
    ContainerAction::Stop,
    ContainerAction::Destroy,
    ContainerAction::Die,
    ContainerAction::Oom,
    ContainerAction::Pause,
    ContainerAction::Kill,
    ContainerAction::Other,
];

/// Kubernetes' labels on the containers of pods (Docker-based nodes).
const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";

/// What an engine event does to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Stopped on request (`kill`, `stop`, `destroy`).
    Stopped,
    /// Died without a request through the engine (`die`, `oom`).
    Died,
    /// Frozen (`pause`, or SIGSTOP and the like through `kill`).
    Paused,
}

impl Effect {
    /// Stops and deaths are the same behaviour (an agent not running): one fold key.
    fn fold_key(self) -> u8 {
        match self {
            Effect::Stopped | Effect::Died => 0,
            Effect::Paused => 1,
        }
    }
}

/// The signal's name without `SIG` (`9` → `KILL`, `sigterm` → `TERM`).
fn signal_name(signal: &str) -> String {
    let upper = signal.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    match name {
        "1" => "HUP",
        "2" => "INT",
        "3" => "QUIT",
        "9" => "KILL",
        "10" => "USR1",
        "12" => "USR2",
        "15" => "TERM",
        "17" => "CHLD",
        "18" => "CONT",
        "19" => "STOP",
        "20" => "TSTP",
        "21" => "TTIN",
        "22" => "TTOU",
        "23" => "URG",
        "28" => "WINCH",
        other => other,
    }
    .to_owned()
}

fn effect(container: &ContainerEventView<'_>) -> Option<Effect> {
    match container.action {
        ContainerAction::Stop | ContainerAction::Destroy => Some(Effect::Stopped),
        ContainerAction::Die | ContainerAction::Oom => Some(Effect::Died),
        ContainerAction::Pause => Some(Effect::Paused),
        ContainerAction::Kill => match signal_name(container.signal).as_str() {
            "STOP" | "TSTP" | "TTIN" | "TTOU" => Some(Effect::Paused),
            // Signals agents handle without stopping (Falco reloads on HUP).
            "HUP" | "USR1" | "USR2" | "CONT" | "WINCH" | "URG" | "CHLD" | "0" => None,
            _ => Some(Effect::Stopped),
        },
        _ => None,
    }
}

pub(crate) fn findings(
    plugin: &mut MonitoringTamper,
    event: &EventView<'_>,
    container: &ContainerEventView<'_>,
    out: &mut Vec<Finding>,
) {
    if container.action == ContainerAction::Other && container.raw_action == GAP_RAW_ACTION {
        if plugin.config.enabled(Rule::DockerEventsGap) {
            out.push(gap(event, container));
        }
        return;
    }
    let Some(effect) = effect(container) else {
        return;
    };
    let rule = if effect == Effect::Paused {
        Rule::AgentPaused
    } else {
        Rule::AgentStopped
    };
    if !plugin.config.enabled(rule) {
        return;
    }
    let Some(matched) =
        plugin
            .config
            .agent_container(container.name, container.image, container.labels)
    else {
        return;
    };
    let label = |key: &str| {
        container
            .labels
            .iter()
            .find(|l| l.key == key)
            .map_or("", |l| l.value)
    };
    let (pod_namespace, pod_name) = (label(POD_NAMESPACE_LABEL), label(POD_NAME_LABEL));

    // One stop, one finding: `docker stop` is kill, die and stop; `rm -f`
    // is kill, die and destroy.
    let key = if container.id.is_empty() {
        container.name
    } else {
        container.id
    };
    let window = plugin.config.fold_window_ns;
    if let Some(recent) = plugin.recent.get(key)
        && recent.fold_key == effect.fold_key()
        && event.time.abs_diff(recent.time) <= window
    {
        return;
    }
    // The pod was deleted through the API (reported as agent-deleted, or a
    // controller's rollout): the kubelet stopping its containers is the same
    // behaviour.
    if effect != Effect::Paused
        && !pod_namespace.is_empty()
        && plugin.deleted_recently(pod_namespace, pod_name, event.time)
    {
        return;
    }
    plugin.remember(
        key.to_owned(),
        Recent {
            time: event.time,
            fold_key: effect.fold_key(),
        },
    );

    let name = if container.name.is_empty() {
        container.id.get(..12).unwrap_or(container.id)
    } else {
        container.name
    };
    let signal = signal_name(container.signal);
    let what = match (effect, container.action) {
        (Effect::Paused, ContainerAction::Kill) => {
            format!("was frozen with SIG{signal}: its processes are suspended and see nothing")
        }
        (Effect::Paused, _) => "was paused: its processes are frozen and see nothing".to_owned(),
        (_, ContainerAction::Kill) => format!(
            "was sent SIG{}",
            if signal.is_empty() { "KILL" } else { &signal }
        ),
        (_, ContainerAction::Destroy) => "was removed".to_owned(),
        (_, ContainerAction::Oom) => "was killed by the kernel's OOM killer".to_owned(),
        (_, ContainerAction::Die) => format!(
            "died{} without a stop or kill through the engine (a crash, or its process killed from the host)",
            container
                .exit_code
                .map(|code| format!(" (exit code {code})"))
                .unwrap_or_default()
        ),
        _ => "was stopped".to_owned(),
    };
    let severity = match effect {
        Effect::Died => Severity::Medium,
        Effect::Stopped | Effect::Paused => rule.severity(),
    };
    let image = if container.image.is_empty() {
        String::new()
    } else {
        format!(" ({})", container.image)
    };
    let mut finding = Finding::builder(rule.id(), severity)
        .title(rule.title())
        .summary(format!(
            "Security agent container {name}{image} {what}: while it is not running, the activity it \
             monitors on this node goes unrecorded."
        ))
        .entity(EntityKind::Container, container.id, container.name);
    for technique in rule.techniques() {
        finding = finding.technique(*technique);
    }
    if !container.image.is_empty() {
        finding = finding.entity(EntityKind::Image, container.image, "");
    }
    if !pod_namespace.is_empty() && !pod_name.is_empty() {
        finding = finding.entity(EntityKind::Pod, format!("{pod_namespace}/{pod_name}"), "");
    }
    if !event.node.is_empty() {
        finding = finding.entity(EntityKind::Node, event.node, "");
    }
    finding = finding
        .evidence("action", container.action.as_str())
        .evidence("container", name)
        .evidence("image", container.image)
        .evidence("matched", matched);
    if !container.signal.is_empty() {
        finding = finding.evidence("signal", container.signal);
    }
    if let Some(code) = container.exit_code {
        finding = finding.evidence("exit-code", code.to_string());
    }
    if !container.actor.is_empty() {
        finding = finding.evidence("actor", container.actor);
    }
    if !pod_namespace.is_empty() {
        finding = finding
            .evidence("pod.namespace", pod_namespace)
            .evidence("pod.name", pod_name);
    }
    let finding = finding.event(event.id).build();
    // A pod's container stopping may be the kubelet acting on a deletion
    // through the API whose audit event has not arrived yet: hold it a moment.
    if effect != Effect::Paused && !pod_namespace.is_empty() && plugin.config.pod_hold_ns > 0 {
        plugin.hold(Held {
            finding,
            time: event.time,
            namespace: pod_namespace.to_owned(),
            pod: pod_name.to_owned(),
        });
    } else {
        out.push(finding);
    }
}

/// `seconds.nanoseconds` (Docker's `since`) as nanoseconds.
fn parse_since(since: &str) -> Option<u64> {
    let (secs, frac) = since.trim().split_once('.').unwrap_or((since.trim(), ""));
    let secs: u64 = secs.parse().ok()?;
    let frac = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(9).collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{digits:0<9}").parse::<u64>().ok()?
    };
    secs.checked_mul(1_000_000_000)?.checked_add(frac)
}

fn gap(event: &EventView<'_>, container: &ContainerEventView<'_>) -> Finding {
    let label = |key: &str| {
        container
            .labels
            .iter()
            .find(|l| l.key == key)
            .map_or("", |l| l.value)
    };
    let since = parse_since(label(GAP_SINCE_LABEL));
    let reason = label(GAP_REASON_LABEL);
    let source = if event.source.is_empty() {
        "docker"
    } else {
        event.source
    };
    let rule = Rule::DockerEventsGap;
    let mut finding = Finding::builder(rule.id(), rule.severity())
        .title(rule.title())
        .summary(format!(
            "The {source} event stream lost events{}{}: containers created, started, stopped or removed \
             in that window were not seen (the running ones were re-inventoried). A daemon restart \
             (e.g. to load a changed daemon.json) or an event flood can cause it.",
            since
                .map(|s| format!(" after {}", rfc3339(s)))
                .unwrap_or_default(),
            if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            }
        ));
    for technique in rule.techniques() {
        finding = finding.technique(*technique);
    }
    if !event.node.is_empty() {
        finding = finding.entity(EntityKind::Node, event.node, "");
    }
    finding = finding.evidence("source", source);
    if let Some(since) = since {
        finding = finding.evidence("last-event-before-gap", rfc3339(since));
    }
    finding = finding.evidence("detected", rfc3339(event.time));
    if let Some(since) = since.filter(|s| *s <= event.time) {
        finding = finding.evidence(
            "gap-seconds",
            ((event.time - since) / 1_000_000_000).to_string(),
        );
    }
    if !reason.is_empty() {
        finding = finding.evidence("reason", reason);
    }
    finding.event(event.id).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_and_signals() {
        assert_eq!(parse_since("1764150000.5"), Some(1_764_150_000_500_000_000));
        assert_eq!(
            parse_since("1764150000.000000001"),
            Some(1_764_150_000_000_000_001)
        );
        assert_eq!(parse_since("1764150000"), Some(1_764_150_000_000_000_000));
        assert_eq!(parse_since("x"), None);
        assert_eq!(parse_since("1.x"), None);
        assert_eq!(signal_name("9"), "KILL");
        assert_eq!(signal_name("sigstop"), "STOP");
        assert_eq!(signal_name("SIGTERM"), "TERM");
    }
}
