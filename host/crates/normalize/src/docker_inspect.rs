//! `docker inspect` output (the Engine API's container inspect object) into
//! container events. The live Docker source uses the same function on the
//! inspect responses it fetches, so replayed and live containers normalise
//! identically.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::pod::capability;
use super::{NormalizeError, Origin};
use vigil_core::model::{
    ContainerAction, ContainerEvent, ContainerSecurity, Event, EventBody, KeyValue, Mount,
};
use vigil_core::time::parse_rfc3339;

/// The fields of a container inspect object that Vigil reads.
#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct Inspect {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image id (`sha256:…`).
    pub image: String,
    pub state: State,
    pub config: Config,
    pub host_config: HostConfig,
    pub mounts: Vec<MountRaw>,
    pub app_armor_profile: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct State {
    pub running: bool,
    pub paused: bool,
    pub started_at: String,
    pub finished_at: String,
    pub exit_code: Option<i32>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct Config {
    pub image: String,
    pub user: String,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct HostConfig {
    pub network_mode: String,
    pub pid_mode: String,
    pub ipc_mode: String,
    pub userns_mode: String,
    pub cgroupns_mode: String,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub privileged: bool,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub devices: Option<Vec<Device>>,
    pub security_opt: Option<Vec<String>>,
    pub log_config: LogConfig,
    pub restart_policy: RestartPolicy,
    pub readonly_rootfs: bool,
    pub runtime: String,
    pub binds: Option<Vec<String>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct Device {
    pub path_on_host: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct RestartPolicy {
    pub name: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct MountRaw {
    #[serde(rename = "Type")]
    pub kind: String,
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: bool,
}

/// Normalises one inspect object into a container event with `action`.
pub fn event_from_inspect(
    i: &Inspect,
    action: ContainerAction,
    raw_action: &str,
    origin: &Origin<'_>,
    time: u64,
    id: String,
) -> Event {
    let labels = i
        .config
        .labels
        .as_ref()
        .map(|l| {
            l.iter()
                .map(|(k, v)| KeyValue::new(k.as_str(), v.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let mut seccomp = String::new();
    let mut apparmor = i.app_armor_profile.clone();
    let mut no_new_privs = None;
    for opt in i.host_config.security_opt.iter().flatten() {
        let (k, v) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), ""));
        match k {
            "seccomp" => seccomp = v.to_owned(),
            "apparmor" => apparmor = v.to_owned(),
            "no-new-privileges" => no_new_privs = Some(v.is_empty() || v == "true"),
            _ => {}
        }
    }
    let start = parse_rfc3339(&i.state.started_at).filter(|t| *t > 0);
    let finish = parse_rfc3339(&i.state.finished_at).filter(|t| *t > 0);
    let lifetime_ms = match (start, finish) {
        (Some(s), Some(f)) if f >= s && !i.state.running => Some((f - s) / 1_000_000),
        _ => None,
    };
    let security = ContainerSecurity {
        network_mode: i.host_config.network_mode.clone(),
        pid_mode: i.host_config.pid_mode.clone(),
        ipc_mode: i.host_config.ipc_mode.clone(),
        userns_mode: i.host_config.userns_mode.clone(),
        cgroupns_mode: i.host_config.cgroupns_mode.clone(),
        uts_mode: i.host_config.uts_mode.clone(),
        privileged: i.host_config.privileged,
        cap_add: i
            .host_config
            .cap_add
            .iter()
            .flatten()
            .map(|c| capability(c))
            .collect(),
        cap_drop: i
            .host_config
            .cap_drop
            .iter()
            .flatten()
            .map(|c| capability(c))
            .collect(),
        devices: i
            .host_config
            .devices
            .iter()
            .flatten()
            .map(|d| d.path_on_host.clone())
            .collect(),
        mounts: i
            .mounts
            .iter()
            .map(|m| Mount {
                source: if m.kind == "volume" && !m.name.is_empty() {
                    m.name.clone()
                } else {
                    m.source.clone()
                },
                destination: m.destination.clone(),
                read_only: !m.rw,
                kind: m.kind.clone(),
            })
            .collect(),
        user: i.config.user.clone(),
        allow_privilege_escalation: no_new_privs.map(|n| !n),
        read_only_rootfs: i.host_config.readonly_rootfs,
        seccomp_profile: seccomp,
        apparmor_profile: apparmor,
        log_driver: i.host_config.log_config.kind.clone(),
        restart_policy: i.host_config.restart_policy.name.clone(),
    };
    Event {
        id,
        time,
        node: origin.node.to_owned(),
        source: origin.source.to_owned(),
        body: EventBody::Container(ContainerEvent {
            action,
            raw_action: raw_action.to_owned(),
            id: i.id.clone(),
            name: i.name.trim_start_matches('/').to_owned(),
            image: i.config.image.clone(),
            image_digest: i.image.clone(),
            runtime: i.host_config.runtime.clone(),
            labels,
            security: Some(security),
            actor: String::new(),
            exit_code: if i.state.running {
                None
            } else {
                i.state.exit_code
            },
            signal: String::new(),
            exec: None,
            network: String::new(),
            lifetime_ms,
        }),
    }
}

/// Normalises a recorded inspect object (replay): a running container is a
/// `running` event, any other a `create` event, timed at its start (or
/// creation).
pub fn normalise_value(
    doc: &str,
    origin: &Origin<'_>,
    out: &mut Vec<Event>,
) -> Result<usize, NormalizeError> {
    let i: Inspect = super::parse(doc)?;
    if i.id.is_empty() {
        return Err(NormalizeError::Invalid(
            "docker inspect object without \"Id\"".into(),
        ));
    }
    let action = if i.state.running {
        ContainerAction::Running
    } else {
        ContainerAction::Create
    };
    let time = parse_rfc3339(&i.state.started_at)
        .filter(|t| *t > 0)
        .or_else(|| parse_rfc3339(&i.created))
        .unwrap_or(0);
    let id = format!("docker-inspect:{}", i.id);
    out.push(event_from_inspect(&i, action, "inspect", origin, time, id));
    Ok(1)
}
