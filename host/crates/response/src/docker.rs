//! Docker quarantine: disconnect the container from every network it is
//! attached to (remembering each endpoint for release), pause it (its
//! processes are frozen by the cgroup freezer; memory, open files and
//! sockets are kept for forensics), mark it, and collect the evidence.
//!
//! Marking: Docker cannot change the labels of an existing container (they
//! are fixed at create time). Vigil's quarantine record (SQLite, plus
//! `record.json` in the evidence bundle) is the authoritative marker; the
//! visible one is a rename to `<name>.vigil-quarantine.<id>`, so `docker ps`
//! shows it. The rename is undone on release, and never done for
//! Kubernetes-managed containers (the kubelet parses their names).
//!
//! Every step reads the container first and only does what is still
//! needed, so quarantining twice, or resuming an interrupted quarantine,
//! does nothing twice; release is the same in reverse.
//!
//! The container is addressed by its full 64-hex id in every request (the
//! Engine resolves anything shorter, or a name, to whichever container has
//! it), and the evidence is collected before the rename.
//! [`DockerActions::identify`] gives the exemption checks what the Engine
//! says about that id.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ChangeType, ContainerInspectResponse, EndpointIpamConfig, EndpointSettings,
    NetworkConnectRequest, NetworkDisconnectRequest,
};
use bollard::query_parameters::{LogsOptions, RenameContainerOptions};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::Recorder;
use super::evidence::Bundle;
use super::policy::DockerResponseConfig;
use super::store::{Outcome, State};
use vigil_core::docker::connect;
use vigil_core::error::chain;

/// Per-request timeout of the responder's Engine API calls (the Docker
/// source's default).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Inserted in the name of a quarantined container.
pub const NAME_MARKER: &str = ".vigil-quarantine.";
/// How long one evidence request may take.
const EVIDENCE_TIMEOUT: Duration = Duration::from_secs(15);

/// What release needs to know, kept in the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerDetail {
    /// The container's name before the quarantine (without `/`).
    #[serde(default)]
    pub original_name: String,
    /// The name Vigil gave it, if renamed.
    #[serde(default)]
    pub marked_name: Option<String>,
    /// `HostConfig.NetworkMode` (`bridge`, `host`, `none`, `container:<id>`, a network name).
    #[serde(default)]
    pub network_mode: String,
    /// The networks Vigil disconnected it from, with their endpoint settings.
    #[serde(default)]
    pub networks: Vec<RememberedNetwork>,
    /// Whether Vigil paused it (a container paused by someone else stays paused on release).
    #[serde(default)]
    pub paused_by_vigil: bool,
}

/// One network endpoint, as it was before the disconnect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RememberedNetwork {
    pub name: String,
    #[serde(default)]
    pub network_id: String,
    #[serde(default)]
    pub ip_address: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub links: Vec<String>,
    /// Static addresses the operator had configured (`--ip`), if any.
    #[serde(default)]
    pub ipv4_address: Option<String>,
    #[serde(default)]
    pub ipv6_address: Option<String>,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
}

/// A container as the Engine describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The full id.
    pub id: String,
    /// Its name (without `/`).
    pub name: String,
    /// Its init process on the host (`State.Pid`; 0 when not running).
    pub pid: u32,
}

/// Whether `id` is a full container id: 64 lowercase hex digits.
pub fn is_full_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The Docker side of the responder: a lazily opened client.
pub struct DockerActions {
    cfg: DockerResponseConfig,
    client: Option<Docker>,
}

impl DockerActions {
    pub fn new(cfg: DockerResponseConfig) -> Self {
        Self { cfg, client: None }
    }

    /// The client, if one was opened.
    pub fn cached_client(&self) -> Option<Docker> {
        self.client.clone()
    }

    async fn client(&mut self) -> Result<Docker, String> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let c = connect(&self.cfg.socket, REQUEST_TIMEOUT)
            .await
            .map_err(|e| chain(&e))?;
        self.client = Some(c.clone());
        Ok(c)
    }

    /// What the Engine says about the container of full id `id`: its id,
    /// name and init process, for the exemption checks (never the names a
    /// finding gives). An id that is not a full 64-hex id is refused: the
    /// Engine would resolve a name or a prefix to whichever container has it.
    pub async fn identify(&mut self, id: &str) -> Result<Identity, String> {
        if !is_full_id(id) {
            return Err(format!("{id:?} is not a full 64-hex container id"));
        }
        let docker = self
            .client()
            .await
            .map_err(|e| format!("cannot reach the Docker daemon: {e}"))?;
        let inspect = docker
            .inspect_container(id, None)
            .await
            .map_err(|e| inspect_error(&e))?;
        let got = inspect.id.clone().unwrap_or_default();
        if got != id {
            return Err(format!(
                "the Engine answered for container {got:?}, not for {id}"
            ));
        }
        let name = inspect
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned();
        let pid = inspect
            .state
            .as_ref()
            .and_then(|s| s.pid)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0);
        Ok(Identity { id: got, name, pid })
    }

    /// Quarantines (or, with `dry`, plans the quarantine of) the record's
    /// container. Returns the state reached; the detail is kept in `rec`.
    pub async fn quarantine(
        &mut self,
        rec: &mut Recorder<'_>,
        bundle: Option<&Bundle>,
        dry: bool,
    ) -> State {
        let mut detail: DockerDetail =
            serde_json::from_value(rec.q.detail.clone()).unwrap_or_default();
        let docker = match self.client().await {
            Ok(d) => d,
            Err(e) => {
                rec.act(
                    "connect",
                    Outcome::Failed,
                    &format!("cannot reach the Docker daemon: {e}"),
                );
                return State::Failed;
            }
        };
        let id = rec.q.target.clone();
        let inspect = match docker.inspect_container(&id, None).await {
            Ok(i) => i,
            Err(e) => {
                rec.act("inspect", Outcome::Failed, &inspect_error(&e));
                return if dry {
                    State::DryRun
                } else {
                    end_state(rec, &detail)
                };
            }
        };
        // Asked by full id, the Engine answers for that container only; a
        // record whose target is anything else is refused, not guessed at.
        if inspect.id.as_deref() != Some(id.as_str()) {
            rec.act(
                "inspect",
                Outcome::Failed,
                &format!(
                    "the Engine answered for container {:?}, not for {id}: not acted on",
                    inspect.id.as_deref().unwrap_or_default()
                ),
            );
            return if dry { State::DryRun } else { State::Failed };
        }
        let name = inspect
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned();
        if detail.original_name.is_empty() {
            detail.original_name = name.clone();
        }
        let host = inspect.host_config.as_ref();
        detail.network_mode = host
            .and_then(|h| h.network_mode.clone())
            .unwrap_or_default();
        let state = inspect.state.as_ref();
        let running = state.and_then(|s| s.running).unwrap_or(false);
        let paused = state.and_then(|s| s.paused).unwrap_or(false);
        let status = state
            .and_then(|s| s.status)
            .map_or_else(|| "unknown".to_owned(), |s| s.to_string());
        let labels = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        let k8s_managed = labels.contains_key("io.kubernetes.pod.name")
            || labels.contains_key("io.kubernetes.container.name");

        if let Some(b) = bundle
            && !b.has("inspect.json")
        {
            rec.evidence(
                b.write_json("inspect.json", &inspect),
                "inspect.json (before any action)",
            );
        }

        // 1. Networks.
        if self.cfg.disconnect {
            self.disconnect(&docker, rec, &inspect, &mut detail, dry)
                .await;
        }
        // 2. Pause.
        if self.cfg.pause {
            if paused {
                let who = if detail.paused_by_vigil {
                    "by Vigil"
                } else {
                    "by someone else; it stays paused on release"
                };
                if !detail.paused_by_vigil || rec.first_run {
                    rec.act(
                        "pause",
                        Outcome::Skipped,
                        &format!("already paused ({who})"),
                    );
                }
            } else if !running && dry {
                rec.act("pause", Outcome::Planned, &format!("pause the container once it runs (status {status}): processes frozen, memory kept for forensics"));
            } else if !running {
                rec.pending += 1;
                rec.act(
                    "pause",
                    Outcome::Skipped,
                    &format!("not running (status {status}): nothing to pause yet; the next finding about it (e.g. its start) pauses it"),
                );
            } else if dry {
                rec.act(
                    "pause",
                    Outcome::Planned,
                    "pause the container: processes frozen, memory kept for forensics",
                );
            } else {
                match docker.pause_container(&id).await {
                    Ok(()) => {
                        detail.paused_by_vigil = true;
                        rec.save_detail(&detail);
                        rec.act(
                            "pause",
                            Outcome::Ok,
                            "paused: processes frozen, memory kept for forensics",
                        );
                    }
                    Err(e) => rec.act("pause", Outcome::Failed, &chain(&e)),
                }
            }
        }
        // 3. Evidence (after the pause: the processes listed are frozen;
        // before the rename).
        if dry {
            rec.act("evidence", Outcome::Planned, "write the evidence bundle (inspect, logs, docker diff, processes, findings) to DATA_DIR/quarantine/<id>/");
        } else if let Some(b) = bundle {
            self.collect(&docker, rec, b, &id, running || paused).await;
        }
        // 4. Mark (after the evidence: every step addresses the container by
        // its full id, and the evidence shows it under its own name).
        if self.cfg.rename {
            let marked = format!("{}{NAME_MARKER}{}", detail.original_name, rec.q.id);
            if name.contains(NAME_MARKER) {
                // Marked already (this quarantine, resumed).
            } else if k8s_managed {
                if rec.first_run {
                    rec.act("mark", Outcome::Skipped, "Kubernetes-managed container (the kubelet parses container names): not renamed; marked by the quarantine record only");
                }
            } else if dry {
                rec.act("mark", Outcome::Planned, &format!("rename {name} to {marked} (Docker cannot relabel a container); record the quarantine"));
            } else {
                match docker
                    .rename_container(
                        &id,
                        RenameContainerOptions {
                            name: marked.clone(),
                        },
                    )
                    .await
                {
                    Ok(()) => {
                        detail.marked_name = Some(marked.clone());
                        rec.save_detail(&detail);
                        rec.act("mark", Outcome::Ok, &format!("renamed {name} to {marked}"));
                    }
                    Err(e) => rec.act(
                        "mark",
                        Outcome::Failed,
                        &format!("rename to {marked}: {}", chain(&e)),
                    ),
                }
            }
        }
        if dry {
            rec.save_detail(&detail);
            return State::DryRun;
        }
        rec.save_detail(&detail);
        end_state(rec, &detail)
    }

    async fn disconnect(
        &self,
        docker: &Docker,
        rec: &mut Recorder<'_>,
        inspect: &ContainerInspectResponse,
        detail: &mut DockerDetail,
        dry: bool,
    ) {
        let mode = detail.network_mode.clone();
        if mode == "host" {
            if rec.first_run {
                rec.act("disconnect", Outcome::Skipped, "host network: the container shares the host's network stack, so there is no network to disconnect it from (pausing still stops it)");
            }
            return;
        }
        if mode == "none" {
            if rec.first_run {
                rec.act(
                    "disconnect",
                    Outcome::Skipped,
                    "network mode none: no network",
                );
            }
            return;
        }
        if let Some(other) = mode.strip_prefix("container:") {
            if rec.first_run {
                rec.act("disconnect", Outcome::Skipped, &format!("shares the network namespace of container {other}: disconnecting would cut that container instead (pausing still stops this one)"));
            }
            return;
        }
        let networks: BTreeMap<String, EndpointSettings> = inspect
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.clone())
            .unwrap_or_default()
            .into_iter()
            .collect();
        if networks.is_empty() {
            if rec.first_run {
                rec.act(
                    "disconnect",
                    Outcome::Skipped,
                    "not connected to any network",
                );
            }
            return;
        }
        let id = &rec.q.target.clone();
        for (name, ep) in networks {
            let ip = ep.ip_address.clone().unwrap_or_default();
            if dry {
                rec.act(
                    "disconnect",
                    Outcome::Planned,
                    &format!("disconnect from network {name} (address {ip})"),
                );
                continue;
            }
            let req = NetworkDisconnectRequest {
                container: id.clone(),
                force: Some(false),
            };
            let mut result = docker.disconnect_network(&name, req.clone()).await;
            if result.is_err() {
                // A container being started or stopped right now is briefly
                // "not connected": look again once things settle.
                tokio::time::sleep(Duration::from_millis(500)).await;
                let still = docker
                    .inspect_container(id, None)
                    .await
                    .ok()
                    .and_then(|i| i.network_settings)
                    .and_then(|n| n.networks)
                    .is_some_and(|n| n.contains_key(&name));
                if !still {
                    rec.act(
                        "disconnect",
                        Outcome::Skipped,
                        &format!("network {name}: no longer attached"),
                    );
                    continue;
                }
                result = docker.disconnect_network(&name, req).await;
            }
            match result {
                Ok(()) => {
                    detail.networks.retain(|n| n.name != name);
                    detail.networks.push(remember(&name, &ep, id));
                    rec.save_detail(detail);
                    rec.act(
                        "disconnect",
                        Outcome::Ok,
                        &format!("disconnected from network {name} (address {ip})"),
                    );
                }
                Err(e) => rec.act(
                    "disconnect",
                    Outcome::Failed,
                    &format!("network {name}: {}", chain(&e)),
                ),
            }
        }
    }

    async fn collect(
        &self,
        docker: &Docker,
        rec: &mut Recorder<'_>,
        b: &Bundle,
        id: &str,
        alive: bool,
    ) {
        // Logs, changes and processes are taken again by a resumed pass (a
        // container first seen `created` has none yet); inspect.json is not.
        match tokio::time::timeout(EVIDENCE_TIMEOUT, self.logs(docker, id)).await {
            Ok(Ok(text)) => rec.evidence(b.write("logs.txt", text.as_bytes()), "logs.txt"),
            Ok(Err(e)) if e.contains("does not support reading") => {
                rec.act(
                    "evidence",
                    Outcome::Skipped,
                    &format!("logs.txt: the container's logging driver keeps no logs ({e})"),
                );
            }
            Ok(Err(e)) => rec.act("evidence", Outcome::Failed, &format!("logs.txt: {e}")),
            Err(_) => rec.act("evidence", Outcome::Failed, "logs.txt: timed out"),
        }
        match docker.container_changes(id).await {
            Ok(changes) => {
                let changes: Vec<serde_json::Value> = changes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| {
                        let kind = match c.kind {
                            ChangeType::_0 => "C",
                            ChangeType::_1 => "A",
                            ChangeType::_2 => "D",
                        };
                        serde_json::json!({"kind": kind, "path": c.path})
                    })
                    .collect();
                rec.evidence(
                    b.write_json("changes.json", &changes),
                    "changes.json (docker diff)",
                );
            }
            Err(e) => rec.act(
                "evidence",
                Outcome::Failed,
                &format!("changes.json: {}", chain(&e)),
            ),
        }
        if alive {
            match docker.top_processes(id, None).await {
                Ok(top) => rec.evidence(b.write_json("top.json", &top), "top.json (processes)"),
                Err(e) => rec.act(
                    "evidence",
                    Outcome::Failed,
                    &format!("top.json: {}", chain(&e)),
                ),
            }
        } else if rec.first_run {
            rec.act(
                "evidence",
                Outcome::Skipped,
                "top.json: not running, no processes (collected when it is paused later)",
            );
        }
    }

    /// The last `log_lines` lines of stdout and stderr, timestamped, each
    /// prefixed by its stream; cut at `log_max_bytes`.
    async fn logs(&self, docker: &Docker, id: &str) -> Result<String, String> {
        let mut stream = docker.logs(
            id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                timestamps: true,
                tail: self.cfg.log_lines.to_string(),
                ..LogsOptions::default()
            }),
        );
        let mut out = String::new();
        let cap = usize::try_from(self.cfg.log_max_bytes).unwrap_or(usize::MAX);
        while let Some(item) = stream.next().await {
            let item = item.map_err(|e| chain(&e))?;
            let (tag, message) = match &item {
                bollard::container::LogOutput::StdErr { message } => ("stderr", message),
                bollard::container::LogOutput::StdOut { message } => ("stdout", message),
                bollard::container::LogOutput::Console { message } => ("console", message),
                bollard::container::LogOutput::StdIn { message } => ("stdin", message),
            };
            let text = String::from_utf8_lossy(message);
            for line in text.split_inclusive('\n') {
                if out.len() + line.len() + tag.len() + 1 > cap {
                    out.push_str("[vigil] log excerpt cut at log_max_bytes\n");
                    return Ok(out);
                }
                out.push_str(tag);
                out.push(' ');
                out.push_str(line);
                if !line.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        Ok(out)
    }

    /// Undoes a quarantine: the original name, the networks, the pause.
    pub async fn release(&mut self, rec: &mut Recorder<'_>) -> State {
        let detail: DockerDetail = serde_json::from_value(rec.q.detail.clone()).unwrap_or_default();
        let docker = match self.client().await {
            Ok(d) => d,
            Err(e) => {
                rec.act(
                    "connect",
                    Outcome::Failed,
                    &format!("cannot reach the Docker daemon: {e}"),
                );
                return State::ReleaseFailed;
            }
        };
        let id = rec.q.target.clone();
        let inspect = match docker.inspect_container(&id, None).await {
            Ok(i) => i,
            Err(e) if is_not_found(&e) => {
                rec.act(
                    "release",
                    Outcome::Skipped,
                    "the container no longer exists: nothing to restore",
                );
                return State::Released;
            }
            Err(e) => {
                rec.act("inspect", Outcome::Failed, &chain(&e));
                return State::ReleaseFailed;
            }
        };
        let name = inspect
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned();
        if let Some(marked) = &detail.marked_name {
            if name == *marked {
                match docker
                    .rename_container(
                        &id,
                        RenameContainerOptions {
                            name: detail.original_name.clone(),
                        },
                    )
                    .await
                {
                    Ok(()) => rec.act(
                        "unmark",
                        Outcome::Ok,
                        &format!("renamed {marked} back to {}", detail.original_name),
                    ),
                    Err(e) => rec.act(
                        "unmark",
                        Outcome::Failed,
                        &format!("rename back to {}: {}", detail.original_name, chain(&e)),
                    ),
                }
            } else if name == detail.original_name {
                rec.act("unmark", Outcome::Skipped, "already has its original name");
            } else {
                rec.act(
                    "unmark",
                    Outcome::Skipped,
                    &format!("renamed since to {name} (not by Vigil): left as is"),
                );
            }
        }
        let connected: Vec<String> = inspect
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .map(|n| n.keys().cloned().collect())
            .unwrap_or_default();
        for n in &detail.networks {
            if connected.contains(&n.name) {
                rec.act(
                    "reconnect",
                    Outcome::Skipped,
                    &format!("already connected to network {}", n.name),
                );
                continue;
            }
            let endpoint = EndpointSettings {
                aliases: (!n.aliases.is_empty()).then(|| n.aliases.clone()),
                links: (!n.links.is_empty()).then(|| n.links.clone()),
                driver_opts: (!n.driver_opts.is_empty())
                    .then(|| n.driver_opts.clone().into_iter().collect()),
                ipam_config: (n.ipv4_address.is_some() || n.ipv6_address.is_some()).then(|| {
                    EndpointIpamConfig {
                        ipv4_address: n.ipv4_address.clone(),
                        ipv6_address: n.ipv6_address.clone(),
                        link_local_ips: None,
                    }
                }),
                ..EndpointSettings::default()
            };
            let req = NetworkConnectRequest {
                container: id.clone(),
                endpoint_config: Some(endpoint),
            };
            match docker.connect_network(&n.name, req).await {
                Ok(()) => rec.act(
                    "reconnect",
                    Outcome::Ok,
                    &format!("reconnected to network {}", n.name),
                ),
                Err(e) => rec.act(
                    "reconnect",
                    Outcome::Failed,
                    &format!("network {}: {}", n.name, chain(&e)),
                ),
            }
        }
        let paused = inspect
            .state
            .as_ref()
            .and_then(|s| s.paused)
            .unwrap_or(false);
        if detail.paused_by_vigil {
            if paused {
                match docker.unpause_container(&id).await {
                    Ok(()) => rec.act("unpause", Outcome::Ok, "unpaused"),
                    Err(e) => rec.act("unpause", Outcome::Failed, &chain(&e)),
                }
            } else {
                rec.act("unpause", Outcome::Skipped, "not paused any more");
            }
        } else if paused {
            rec.act(
                "unpause",
                Outcome::Skipped,
                "was paused before the quarantine (not by Vigil): left paused",
            );
        }
        if rec.failed > 0 {
            State::ReleaseFailed
        } else {
            State::Released
        }
    }
}

/// The state after a quarantine pass: all done, nothing isolated, or in between.
fn end_state(rec: &Recorder<'_>, detail: &DockerDetail) -> State {
    let isolated = !detail.networks.is_empty()
        || detail.paused_by_vigil
        || matches!(detail.network_mode.as_str(), "host" | "none");
    if rec.failed == 0 && rec.pending == 0 {
        State::Quarantined
    } else if !isolated && rec.failed > 0 {
        State::Failed
    } else {
        State::Partial
    }
}

fn remember(name: &str, ep: &EndpointSettings, container: &str) -> RememberedNetwork {
    let short = container.get(..12).unwrap_or(container);
    let ipam = ep.ipam_config.as_ref();
    RememberedNetwork {
        name: name.to_owned(),
        network_id: ep.network_id.clone().unwrap_or_default(),
        ip_address: ep.ip_address.clone().unwrap_or_default(),
        // Docker adds the short id itself on user-defined networks.
        aliases: ep
            .aliases
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a != short && !container.starts_with(a.as_str()))
            .collect(),
        links: ep.links.clone().unwrap_or_default(),
        ipv4_address: ipam
            .and_then(|i| i.ipv4_address.clone())
            .filter(|a| !a.is_empty()),
        ipv6_address: ipam
            .and_then(|i| i.ipv6_address.clone())
            .filter(|a| !a.is_empty()),
        driver_opts: ep
            .driver_opts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn inspect_error(e: &bollard::errors::Error) -> String {
    if is_not_found(e) {
        "the container no longer exists".to_owned()
    } else {
        chain(e)
    }
}
