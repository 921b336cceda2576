//! The findings: what each one says, and the evidence that explains it.

use std::net::IpAddr;

use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::view::NetworkEventView;

use crate::net::{endpoint, pack, packed_name, protocol_name};
use crate::profile::Profile;
use crate::{EVIDENCE_PORTS, Peer, Rule, SuspiciousEgress};

impl SuspiciousEgress {
    pub(crate) fn threat_intel_finding(
        &self,
        event: &EventView<'_>,
        net: &NetworkEventView<'_>,
        remote: IpAddr,
        matches: &[IpMatch],
    ) -> Finding {
        let rule = Rule::ThreatIntel;
        let remote_text = remote.to_string();
        let subject = subject(net);
        let first = &matches[0];
        let mut listed = format!("listed in {} as {}", first.feed, first.entry);
        if !first.category.is_empty() {
            listed.push_str(&format!(" ({})", first.category));
        }
        if !first.note.is_empty() {
            listed.push_str(&format!(", {}", first.note));
        }
        if matches.len() > 1 {
            listed.push_str(&format!(" and {} more entries", matches.len() - 1));
        }
        let mut finding = start(rule, rule.severity(), event, net)
            .summary(format!(
                "{subject} opened {} {} → {}, {listed}.",
                protocol_name(net.protocol),
                endpoint(net.local_address, net.local_port),
                endpoint(&remote_text, net.remote_port),
            ))
            .entity(EntityKind::Address, remote_text.clone(), "");
        finding = connection_evidence(finding, net, &remote_text);
        let standard = self
            .config
            .standard_ports
            .contains(net.remote_port, net.protocol);
        finding = finding.evidence("standard-port", standard.to_string());
        for hit in matches {
            finding = finding
                .evidence("feed", hit.feed.clone())
                .evidence("feed-entry", hit.entry.clone());
            if !hit.category.is_empty() {
                finding = finding.evidence("feed-category", hit.category.clone());
            }
            if !hit.note.is_empty() {
                finding = finding.evidence("feed-note", hit.note.clone());
            }
        }
        finding.event(event.id).build()
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; a struct would only rename them"
    )]
    pub(crate) fn port_finding(
        &self,
        event: &EventView<'_>,
        net: &NetworkEventView<'_>,
        rule: Rule,
        severity: Severity,
        remote: IpAddr,
        repo: &str,
        profile: Option<&Profile>,
        peer: Option<&Peer>,
        peer_ports: &[u32],
        now: u64,
    ) -> Finding {
        let internal = rule == Rule::UnexpectedPeerPort;
        let remote_text = remote.to_string();
        let port = packed_name(pack(net.remote_port, net.protocol));
        let subject = subject(net);
        let peer_text = match peer {
            Some(peer) if !peer.name.is_empty() => format!("container {}", peer.name),
            Some(peer) => format!("container {}", short_id(&peer.id)),
            None => "a container address".to_owned(),
        };
        let profile_text = match profile {
            Some(p) if p.warm => format!("not in the ports learned for {repo}"),
            Some(_) => format!("new for {repo}, whose port profile is still learning"),
            None => "from a container whose image is unknown (no profile)".to_owned(),
        };
        let summary = if internal {
            format!(
                "{subject} connected to {peer_text} at {} on {port}: not a standard or service port, \
                 not a port the peer was seen listening on, and {profile_text}.",
                endpoint(&remote_text, net.remote_port)
            )
        } else {
            format!(
                "{subject} connected to {} on {port}: not a standard port, and {profile_text}.",
                endpoint(&remote_text, net.remote_port)
            )
        };
        let mut finding = start(rule, severity, event, net).summary(summary).entity(
            EntityKind::Address,
            remote_text.clone(),
            peer.map_or("", |p| p.name.as_str()),
        );
        if let Some(peer) = peer {
            finding = finding.entity(EntityKind::Container, peer.id.clone(), peer.name.clone());
        }
        finding = connection_evidence(finding, net, &remote_text);
        finding = finding.evidence("standard-ports", self.config.standard_ports.to_string());
        if internal {
            finding = finding.evidence("internal-ports", self.config.internal_ports.to_string());
            match peer {
                Some(peer) => {
                    finding = finding
                        .evidence("peer-container", display_name(&peer.name, &peer.id))
                        .evidence("peer-image", peer.image.clone())
                        .evidence("peer-listening", port_list(peer_ports));
                }
                None => {
                    finding = finding
                        .evidence("peer-container", "(unknown: address in container_networks)");
                }
            }
        }
        match profile {
            Some(p) => {
                finding = finding
                    .evidence("profile", repo.to_owned())
                    .evidence("profile-state", if p.warm { "learned" } else { "learning" })
                    .evidence("profile-ports", port_list(p.ports(internal)))
                    .evidence("profile-connections", p.connections.to_string())
                    .evidence(
                        "profile-age-secs",
                        now.saturating_sub(p.first_seen).to_string(),
                    );
            }
            None => finding = finding.evidence("profile", "(none: image unknown)"),
        }
        finding = finding.event(event.id);
        if let Some(peer) = peer
            && peer.seen_in != event.id
        {
            finding = finding.event(peer.seen_in.clone());
        }
        finding.build()
    }
}

/// Starts a finding with the entities every finding of this plugin has.
fn start(
    rule: Rule,
    severity: Severity,
    event: &EventView<'_>,
    net: &NetworkEventView<'_>,
) -> FindingBuilder {
    let mut finding = Finding::builder(rule.id(), severity).title(rule.title());
    for technique in rule.techniques() {
        finding = finding.technique(*technique);
    }
    if let Some(container) = &net.container {
        finding = finding.entity(EntityKind::Container, container.id, container.name);
        if !container.image.is_empty() {
            finding = finding.entity(EntityKind::Image, container.image, "");
        }
        if !container.pod.is_empty() {
            finding = finding.entity(EntityKind::Pod, container.pod, "");
        }
    }
    if !event.node.is_empty() {
        finding = finding.entity(EntityKind::Node, event.node, "");
    }
    finding
}

/// The connection's facts, common to every finding.
fn connection_evidence(
    mut finding: FindingBuilder,
    net: &NetworkEventView<'_>,
    remote: &str,
) -> FindingBuilder {
    match &net.container {
        Some(container) => {
            finding = finding
                .evidence("container", display_name(container.name, container.id))
                .evidence("image", container.image);
            if !container.pod.is_empty() {
                finding = finding.evidence("pod", container.pod);
            }
        }
        None => finding = finding.evidence("container", "(host)"),
    }
    if net.host_network {
        finding = finding.evidence("host-network", "true");
    }
    finding
        .evidence("direction", "outbound")
        .evidence("protocol", protocol_name(net.protocol))
        .evidence("local", endpoint(net.local_address, net.local_port))
        .evidence("remote-address", remote.to_owned())
        .evidence("remote-port", net.remote_port.to_string())
        .evidence("state", net.state)
}

/// "Container web (nginx:1.25)", "The host".
fn subject(net: &NetworkEventView<'_>) -> String {
    match &net.container {
        Some(c) if c.image.is_empty() => format!("Container {}", display_name(c.name, c.id)),
        Some(c) => format!("Container {} ({})", display_name(c.name, c.id), c.image),
        None => "The host".to_owned(),
    }
}

fn display_name<'a>(name: &'a str, id: &'a str) -> &'a str {
    if name.is_empty() { short_id(id) } else { name }
}

fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// `443/tcp,8443/tcp` (cut after a few, with the count of the rest).
fn port_list(ports: &[u32]) -> String {
    if ports.is_empty() {
        return "(none)".to_owned();
    }
    let mut text: Vec<String> = ports
        .iter()
        .take(EVIDENCE_PORTS)
        .map(|p| packed_name(*p))
        .collect();
    if ports.len() > EVIDENCE_PORTS {
        text.push(format!("…(+{})", ports.len() - EVIDENCE_PORTS));
    }
    text.join(",")
}
