//! A Docker Swarm service inspect object (`GET /services/{id}`, `docker
//! service inspect`) into the security-relevant [`ServiceSpec`]: the task
//! template's container settings normalised like a container's, so that a
//! detector checks a service with the same code as a container.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::NormalizeError;
use super::pod::capability;
use vigil_core::model::{ContainerSecurity, KeyValue, Mount, ServiceMode, ServiceSpec};
use vigil_core::time::parse_rfc3339;

/// The name of the network a service attaches to for host networking.
pub const HOST_NETWORK: &str = "host";

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct ServiceRaw {
    #[serde(rename = "ID")]
    id: String,
    version: VersionRaw,
    created_at: String,
    updated_at: String,
    spec: Option<SpecRaw>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct VersionRaw {
    index: u64,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct SpecRaw {
    name: String,
    labels: Option<BTreeMap<String, String>>,
    task_template: TaskRaw,
    mode: Option<ModeRaw>,
    /// Deprecated place of the networks (API < 1.25); still read.
    networks: Option<Vec<NetworkRaw>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct TaskRaw {
    container_spec: Option<ContainerRaw>,
    networks: Option<Vec<NetworkRaw>>,
    log_driver: Option<LogDriverRaw>,
    restart_policy: Option<RestartRaw>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct ContainerRaw {
    image: String,
    user: String,
    mounts: Option<Vec<MountRaw>>,
    capability_add: Option<Vec<String>>,
    capability_drop: Option<Vec<String>>,
    read_only: bool,
    privileges: Option<PrivilegesRaw>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct MountRaw {
    #[serde(rename = "Type")]
    kind: String,
    source: String,
    target: String,
    read_only: bool,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct PrivilegesRaw {
    no_new_privileges: Option<bool>,
    seccomp: Option<ModeProfileRaw>,
    app_armor: Option<ModeProfileRaw>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct ModeProfileRaw {
    mode: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct NetworkRaw {
    target: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct LogDriverRaw {
    name: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct RestartRaw {
    condition: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct ModeRaw {
    replicated: Option<ReplicasRaw>,
    global: Option<serde_json::Value>,
    replicated_job: Option<JobRaw>,
    global_job: Option<serde_json::Value>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct ReplicasRaw {
    replicas: Option<u64>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
struct JobRaw {
    total_completions: Option<u64>,
}

/// Normalises one service inspect object. `network_name` resolves a
/// network id of the spec to its name (`None`: the id is kept).
///
/// # Errors
/// The document is not a service (no `ID`, no `Spec.Name`), or a field has
/// the wrong type (named by its path).
pub fn service_from_inspect(
    doc: &str,
    network_name: &dyn Fn(&str) -> Option<String>,
) -> Result<ServiceSpec, NormalizeError> {
    let raw: ServiceRaw = super::parse(doc)?;
    if raw.id.is_empty() {
        return Err(NormalizeError::Invalid("service without ID".into()));
    }
    let spec = raw
        .spec
        .ok_or_else(|| NormalizeError::Invalid(format!("service {} without Spec", raw.id)))?;
    if spec.name.is_empty() {
        return Err(NormalizeError::Invalid(format!(
            "service {} without Spec.Name",
            raw.id
        )));
    }
    let task = spec.task_template;
    let c = task.container_spec.unwrap_or_default();
    let networks: Vec<String> = task
        .networks
        .or(spec.networks)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !n.target.is_empty())
        .map(|n| network_name(&n.target).unwrap_or(n.target))
        .collect();
    let network_mode = if networks.iter().any(|n| n == HOST_NETWORK) {
        HOST_NETWORK.to_owned()
    } else {
        networks.first().cloned().unwrap_or_default()
    };
    let privileges = c.privileges.unwrap_or_default();
    let seccomp = match privileges.seccomp.map(|s| s.mode).as_deref() {
        Some("unconfined") => "unconfined".to_owned(),
        Some("custom") => "custom".to_owned(),
        _ => String::new(),
    };
    let apparmor = match privileges.app_armor.map(|s| s.mode).as_deref() {
        Some("disabled") => "unconfined".to_owned(),
        _ => String::new(),
    };
    let security = ContainerSecurity {
        network_mode,
        cap_add: c
            .capability_add
            .iter()
            .flatten()
            .map(|s| capability(s))
            .collect(),
        cap_drop: c
            .capability_drop
            .iter()
            .flatten()
            .map(|s| capability(s))
            .collect(),
        mounts: c
            .mounts
            .unwrap_or_default()
            .into_iter()
            .map(|m| Mount {
                source: m.source,
                destination: m.target,
                read_only: m.read_only,
                kind: m.kind,
            })
            .collect(),
        user: c.user,
        allow_privilege_escalation: privileges.no_new_privileges.map(|n| !n),
        read_only_rootfs: c.read_only,
        seccomp_profile: seccomp,
        apparmor_profile: apparmor,
        log_driver: task.log_driver.map(|l| l.name).unwrap_or_default(),
        restart_policy: task.restart_policy.map(|r| r.condition).unwrap_or_default(),
        ..ContainerSecurity::default()
    };
    let (mode, replicas) = match spec.mode.unwrap_or_default() {
        ModeRaw {
            global: Some(_), ..
        } => (ServiceMode::Global, None),
        ModeRaw {
            global_job: Some(_),
            ..
        } => (ServiceMode::GlobalJob, None),
        ModeRaw {
            replicated_job: Some(job),
            ..
        } => (
            ServiceMode::ReplicatedJob,
            Some(job.total_completions.unwrap_or(1)),
        ),
        ModeRaw {
            replicated: Some(r),
            ..
        } => (ServiceMode::Replicated, Some(r.replicas.unwrap_or(1))),
        _ => (ServiceMode::Replicated, Some(1)),
    };
    Ok(ServiceSpec {
        id: raw.id,
        name: spec.name,
        version: raw.version.index,
        image: c.image,
        mode,
        replicas,
        networks,
        security,
        labels: spec
            .labels
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v))
            .collect(),
        created_at: parse_rfc3339(&raw.created_at).unwrap_or_default(),
        updated_at: parse_rfc3339(&raw.updated_at).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docker service inspect` of a service created with `--network host
    /// --replicas 3 --cap-add NET_ADMIN --mount type=bind,src=/etc,…,ro`
    /// on Docker 26 (trimmed of the update and rollback configs).
    const HOST_SERVICE: &str = r#"{"ID":"x7rbjuf24z0gwhg6h5lwrxgfc","Version":{"Index":19},
      "CreatedAt":"2026-12-02T15:50:58.333874281Z","UpdatedAt":"2026-12-02T15:51:01.356594904Z",
      "Spec":{"Name":"vprobe","Labels":{"team":"ops"},"TaskTemplate":{"ContainerSpec":{
        "Image":"vigil-test/busybox:latest","Args":["sleep","300"],"Init":false,
        "Mounts":[{"Type":"bind","Source":"/etc","Target":"/host-etc","ReadOnly":true}],
        "Isolation":"default","CapabilityAdd":["CAP_NET_ADMIN"]},
        "RestartPolicy":{"Condition":"any","Delay":5000000000,"MaxAttempts":0},
        "Networks":[{"Target":"ckmxcdidhju6tlp29lqwrxwiu"}],"ForceUpdate":0,"Runtime":"container"},
        "Mode":{"Replicated":{"Replicas":3}},"EndpointSpec":{"Mode":"vip"}}}"#;

    fn names(id: &str) -> Option<String> {
        (id == "ckmxcdidhju6tlp29lqwrxwiu").then(|| "host".to_owned())
    }

    #[test]
    fn a_host_network_service_reads_like_a_host_network_container() {
        let s = service_from_inspect(HOST_SERVICE, &names).unwrap();
        assert_eq!(
            (s.id.as_str(), s.name.as_str()),
            ("x7rbjuf24z0gwhg6h5lwrxgfc", "vprobe")
        );
        assert_eq!(s.version, 19);
        assert_eq!((s.mode, s.replicas), (ServiceMode::Replicated, Some(3)));
        assert_eq!(s.networks, vec!["host"]);
        assert_eq!(s.security.network_mode, "host");
        assert_eq!(s.security.cap_add, vec!["NET_ADMIN"]);
        assert_eq!(s.security.mounts[0].source, "/etc");
        assert!(s.security.mounts[0].read_only);
        assert_eq!(s.security.restart_policy, "any");
        assert_eq!(s.labels, vec![KeyValue::new("team", "ops")]);
        assert!(s.updated_at > s.created_at && s.created_at > 0);
    }

    #[test]
    fn global_mode_has_no_replicas_and_unknown_networks_keep_their_id() {
        let doc = r#"{"ID":"g1","Version":{"Index":3},"Spec":{"Name":"agent",
          "TaskTemplate":{"ContainerSpec":{"Image":"a"},"Networks":[{"Target":"n0"}]},"Mode":{"Global":{}}}}"#;
        let s = service_from_inspect(doc, &|_| None).unwrap();
        assert_eq!((s.mode, s.replicas), (ServiceMode::Global, None));
        assert_eq!(s.security.network_mode, "n0");
    }

    #[test]
    fn a_malformed_spec_is_refused_with_its_path() {
        let bad = r#"{"ID":"s1","Version":{"Index":"seven"},"Spec":{"Name":"x"}}"#;
        let err = service_from_inspect(bad, &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Version.Index"), "{err}");
        let nameless = r#"{"ID":"s1","Spec":{"TaskTemplate":{}}}"#;
        let err = service_from_inspect(nameless, &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Spec.Name"), "{err}");
        assert!(service_from_inspect("[]", &|_| None).is_err());
    }
}
