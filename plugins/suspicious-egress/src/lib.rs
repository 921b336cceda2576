#![doc = include_str!("../README.md")]

mod config;
mod findings;
mod net;
mod profile;
mod rules;

use std::net::IpAddr;

pub use config::{
    Config, DEFAULT_CONTAINER_NETWORKS, DEFAULT_INTERNAL_PORTS, DEFAULT_MAX_IMAGES,
    DEFAULT_MAX_PROFILE_PORTS, DEFAULT_REALERT_SECS, DEFAULT_STANDARD_PORTS,
    DEFAULT_WARMUP_MIN_CONNECTIONS, DEFAULT_WARMUP_SECS, WarmupSeverity,
};
pub use rules::Rule;
use vigil_plugin_sdk::host::threat_intel;
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::util::cache::Bounded;
use vigil_plugin_sdk::util::image::repository;
use vigil_plugin_sdk::util::lists::json_list;
use vigil_plugin_sdk::view::NetworkEventView;

use net::{is_wildcard, pack, parse_addr};
use profile::Profiles;

/// Addresses of containers remembered (address → container).
const MAX_PEERS: usize = 8_192;
/// Containers whose listening ports are remembered.
const MAX_LISTENERS: usize = 8_192;
/// Ports remembered per listening container.
const MAX_LISTEN_PORTS: usize = 64;
/// (rule, container, address, port) remembered for `realert_secs`.
const MAX_REPORTED: usize = 16_384;
/// Profile changes after which `on-events` persists (besides every tick).
const PERSIST_EVERY: u32 = 256;
/// Seconds between two persists from `on-tick`.
const PERSIST_INTERVAL_SECS: u64 = 30;
/// Ports listed in evidence before the list is cut.
const EVIDENCE_PORTS: usize = 16;

/// A container known by one of its addresses.
#[derive(Debug, Clone)]
struct Peer {
    id: String,
    name: String,
    image: String,
    /// The latest event that showed this container at the address: a
    /// finding naming the peer cites it, since the host verifies a container
    /// entity only against the events a finding cites.
    seen_in: String,
}

/// What one report is deduplicated by.
type ReportKey = (Rule, String, IpAddr, u16);

/// The detector: container connections to threat-intel addresses, to
/// non-standard ports, and between containers on unexpected ports.
#[derive(Debug, Clone)]
pub struct SuspiciousEgress {
    config: Config,
    profiles: Profiles,
    peers: Bounded<IpAddr, Peer>,
    listening: Bounded<String, Vec<u32>>,
    reported: Bounded<ReportKey, u64>,
    last_persist: u64,
}

impl Default for SuspiciousEgress {
    fn default() -> Self {
        Self::with_config(Config::default())
    }
}

impl SuspiciousEgress {
    /// A detector with an already validated configuration.
    #[must_use]
    pub fn with_config(config: Config) -> Self {
        Self {
            config,
            profiles: Profiles::default(),
            peers: Bounded::new(MAX_PEERS),
            listening: Bounded::new(MAX_LISTENERS),
            reported: Bounded::new(MAX_REPORTED),
            last_persist: 0,
        }
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn observe(
        &mut self,
        event: &EventView<'_>,
        net: &NetworkEventView<'_>,
        out: &mut Vec<Finding>,
    ) {
        if net.container.is_none() && !self.config.include_host {
            return;
        }
        // Learn which container owns which address, and what it listens on.
        if let Some(container) = &net.container
            && !net.host_network
            && !container.id.is_empty()
            && let Some(local) = parse_addr(net.local_address)
            && !is_wildcard(local)
            && !local.is_loopback()
        {
            let known = match self.peers.get_mut(&local) {
                Some(p) if p.id == container.id => {
                    p.seen_in.clear();
                    p.seen_in.push_str(event.id);
                    true
                }
                _ => false,
            };
            if !known {
                self.peers.insert(
                    local,
                    Peer {
                        id: container.id.to_owned(),
                        name: container.name.to_owned(),
                        image: container.image.to_owned(),
                        seen_in: event.id.to_owned(),
                    },
                );
            }
        }
        match net.direction {
            Direction::Listen => {
                if let Some(container) = &net.container
                    && !container.id.is_empty()
                {
                    self.note_listener(container.id, pack(net.local_port, net.protocol));
                }
                return;
            }
            // Only what the source says was opened from here is egress.
            Direction::Inbound | Direction::Unknown => return,
            Direction::Outbound => {}
        }
        let Some(remote) = parse_addr(net.remote_address) else {
            return;
        };
        if is_wildcard(remote) || self.config.destination_allowed(remote) {
            return;
        }
        if let Some(container) = &net.container
            && self.config.image_allowed(container.image)
        {
            return;
        }
        let now = event.time / 1_000_000_000;

        if self.config.enabled(Rule::ThreatIntel) {
            let matches = threat_intel::lookup_ip(&remote.to_string());
            if !matches.is_empty() {
                // One behaviour, one finding: a listed destination is reported
                // as such, whatever its port.
                if self.first_report(Rule::ThreatIntel, net, remote, now) {
                    out.push(self.threat_intel_finding(event, net, remote, &matches));
                }
                return;
            }
        }
        let Some(container) = &net.container else {
            return; // the host's own sockets: threat intel only
        };
        if remote.is_loopback() || net.remote_port == 0 {
            return;
        }
        let peer = self.peers.get_mut(&remote).cloned();
        let internal = peer.is_some() || self.config.in_container_network(remote);
        let rule = if internal {
            Rule::UnexpectedPeerPort
        } else {
            Rule::NonStandardPort
        };
        let port = net.remote_port;
        let packed = pack(port, net.protocol);
        let peer_ports = peer
            .as_ref()
            .and_then(|p| self.listening.get_mut(&p.id).cloned())
            .unwrap_or_default();
        // Expected whatever the image: a standard port; towards a container,
        // a service port or a port that container listens on.
        let expected = self.config.standard_ports.contains(port, net.protocol)
            || (internal
                && (self.config.internal_ports.contains(port, net.protocol)
                    || peer_ports.contains(&packed)));

        // The image's profile: every outbound connection counts towards its
        // warm-up; while it learns, unexpected ports are added to it.
        let repo = repository(container.image).to_owned();
        let profile = if repo.is_empty() {
            None
        } else {
            self.profiles.ensure_loaded(self.config.max_images);
            let profile = self.profiles.entry(&repo, now, self.config.max_images);
            let was_warm = profile.warm;
            profile.observe(
                now,
                self.config.warmup_secs,
                self.config.warmup_min_connections,
            );
            let in_profile = profile.knows(internal, packed);
            if !was_warm && !expected && !in_profile {
                profile.learn(internal, packed, self.config.max_profile_ports);
            }
            let snapshot = (!in_profile).then(|| profile.clone());
            if !was_warm {
                self.profiles.pending += 1;
            }
            if in_profile {
                return;
            }
            snapshot
        };
        if expected || !self.config.enabled(rule) {
            return;
        }
        let severity = if profile.as_ref().is_some_and(|p| p.warm) {
            rule.severity()
        } else {
            match self.config.warmup_severity {
                WarmupSeverity::Off => return,
                WarmupSeverity::Report(severity) => severity,
            }
        };
        if !self.first_report(rule, net, remote, now) {
            return;
        }
        out.push(self.port_finding(
            event,
            net,
            rule,
            severity,
            remote,
            &repo,
            profile.as_ref(),
            peer.as_ref(),
            &peer_ports,
            now,
        ));
    }

    fn note_listener(&mut self, id: &str, packed: u32) {
        match self.listening.get_mut(id) {
            Some(ports) => {
                if !ports.contains(&packed) && ports.len() < MAX_LISTEN_PORTS {
                    ports.push(packed);
                }
            }
            None => self.listening.insert(id.to_owned(), vec![packed]),
        }
    }

    /// True (and remembered) when this rule, container, address and port was
    /// not reported within `realert_secs`.
    fn first_report(
        &mut self,
        rule: Rule,
        net: &NetworkEventView<'_>,
        remote: IpAddr,
        now: u64,
    ) -> bool {
        let who = net
            .container
            .as_ref()
            .map_or_else(|| "host".to_owned(), |c| c.id.to_owned());
        let key = (rule, who, remote, net.remote_port);
        if let Some(last) = self.reported.get_mut(&key) {
            if now.saturating_sub(*last) < self.config.realert_secs {
                return false;
            }
            *last = now;
            return true;
        }
        self.reported.insert(key, now);
        true
    }
}

impl Detector for SuspiciousEgress {
    fn describe() -> PluginInfo {
        PluginInfo::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .description(
                "Outbound connections from containers to threat-intel addresses (the host's feeds), to \
                 non-standard ports outside a learned per-image port profile, and to other containers on \
                 unexpected ports.",
            )
            .subscribe(EventKind::Network)
            .setting(
                "standard_ports",
                "list of ports (`443`, `\"123/udp\"`, `\"8000-8099/tcp\"`)",
                port_json(DEFAULT_STANDARD_PORTS),
                "Ports any container may reach anywhere; never reported (replaces the default).",
            )
            .setting(
                "internal_ports",
                "list of ports",
                port_json(DEFAULT_INTERNAL_PORTS),
                "Service ports any container may reach on another container (replaces the default).",
            )
            .setting(
                "container_networks",
                "list of CIDR blocks",
                json_list(DEFAULT_CONTAINER_NETWORKS),
                "Address blocks holding containers (Docker bridges, the pod CIDR): destinations there are \
                 container-to-container traffic. Container addresses seen on sockets are added automatically.",
            )
            .setting(
                "warmup_secs",
                "integer seconds",
                DEFAULT_WARMUP_SECS.to_string(),
                "How long an image's port profile learns before it is trusted.",
            )
            .setting(
                "warmup_min_connections",
                "integer",
                DEFAULT_WARMUP_MIN_CONNECTIONS.to_string(),
                "Outbound connections an image's profile must have seen before it is trusted.",
            )
            .setting(
                "warmup_severity",
                "`off`, `info` or `low`",
                "\"low\"",
                "Severity of port findings while the image's profile is still learning (`off`: none).",
            )
            .setting(
                "realert_secs",
                "integer seconds",
                DEFAULT_REALERT_SECS.to_string(),
                "The same rule, container, address and port is reported at most once in this time.",
            )
            .setting(
                "max_profile_ports",
                "integer",
                DEFAULT_MAX_PROFILE_PORTS.to_string(),
                "Ports learned per image, for each of external and container destinations.",
            )
            .setting("max_images", "integer", DEFAULT_MAX_IMAGES.to_string(), "Image profiles kept (least recently seen forgotten).")
            .setting(
                "include_host",
                "boolean",
                "false",
                "Also check the host's own sockets (with `vigil run --network-include-host`) against threat intel.",
            )
            .setting("allowlist.images", "list of image patterns", "[]", "Images whose connections are never reported.")
            .setting(
                "allowlist.destinations",
                "list of CIDR blocks",
                "[]",
                "Destinations never reported (not even when on a threat-intel feed).",
            )
            .disabled_rules_setting::<Rule>()
            .build()
    }

    fn configure(&mut self, settings: &str) -> Result<(), ConfigError> {
        *self = Self::with_config(Config::from_json(settings)?);
        Ok(())
    }

    /// Every network event, on purpose: listening sockets and inbound
    /// flows teach it which container owns which address and port.
    fn subscriptions(&self) -> SubscriptionSet {
        SubscriptionSet::everything()
    }

    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
        self.on_event_views(&views_of(batch))
    }

    fn on_event_views(&mut self, batch: &[EventView<'_>]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for event in batch {
            if let EventBodyView::Network(net) = &event.body {
                self.observe(event, net, &mut findings);
            }
        }
        if self.profiles.pending >= PERSIST_EVERY {
            self.profiles.persist();
        }
        findings
    }

    fn on_tick(&mut self, now: Timestamp) -> Vec<Finding> {
        let now = now / 1_000_000_000;
        if self.profiles.pending > 0
            && (now.saturating_sub(self.last_persist) >= PERSIST_INTERVAL_SECS
                || now < self.last_persist)
        {
            self.profiles.persist();
            self.last_persist = now;
        }
        Vec::new()
    }
}

export_detector!(SuspiciousEgress);

/// A JSON list of ports: numbers as numbers, the rest as strings.
fn port_json(items: &[&str]) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|item| {
            if item.bytes().all(|b| b.is_ascii_digit()) {
                (*item).to_owned()
            } else {
                format!("\"{item}\"")
            }
        })
        .collect();
    format!("[{}]", items.join(","))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should fail loudly")]
mod tests;
