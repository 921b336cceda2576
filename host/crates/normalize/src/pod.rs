//! Kubernetes pod specs (and the pod templates of workload controllers),
//! deserialised borrowing only the security-relevant fields, then
//! normalised into [`PodSpec`] so that every container of a pod reads like
//! a Docker container.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::borrowed::Str;
use vigil_core::model::{ContainerRole, ContainerSecurity, Mount, OwnerRef, PodContainer, PodSpec};

/// An object's metadata: only what attribution needs.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow)]
    pub generate_name: Option<Str<'a>>,
    #[serde(borrow)]
    pub namespace: Option<Str<'a>>,
    /// Set by the API server; trusted only from a response body.
    #[serde(borrow)]
    pub uid: Option<Str<'a>>,
    #[serde(borrow)]
    pub owner_references: Vec<OwnerRaw<'a>>,
    #[serde(borrow)]
    pub annotations: Option<BTreeMap<Str<'a>, Str<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct OwnerRaw<'a> {
    #[serde(borrow)]
    pub kind: Str<'a>,
    #[serde(borrow)]
    pub name: Str<'a>,
    pub controller: Option<bool>,
}

/// Any Kubernetes object: kind, metadata, and its spec read in the same
/// pass as a pod spec and a workload's template at once (whichever the kind
/// says applies): the spec is most of a pod's bytes, and parsing it once
/// rather than keeping it raw and parsing it again is a fifth of the
/// normalising time of a pod creation.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Object<'a> {
    #[serde(borrow)]
    pub kind: Str<'a>,
    #[serde(borrow)]
    pub metadata: ObjectMeta<'a>,
    #[serde(borrow)]
    pub spec: Option<PodSpecRaw<'a>>,
    #[serde(borrow, rename = "ephemeralContainers")]
    pub ephemeral_containers: Option<Vec<ContainerRaw<'a>>>,
}

/// [`Object`] with its spec unparsed: only to tell, when an object did
/// not parse, whether its spec is what failed (see [`spec_error`]).
#[derive(Deserialize, Default)]
#[serde(default)]
struct ObjectHead<'a> {
    #[serde(borrow)]
    kind: Str<'a>,
    #[serde(borrow)]
    metadata: ObjectMeta<'a>,
    #[serde(borrow)]
    spec: Option<&'a RawValue>,
    #[serde(borrow, rename = "ephemeralContainers")]
    ephemeral_containers: Option<Vec<ContainerRaw<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PodTemplate<'a> {
    #[serde(borrow)]
    metadata: ObjectMeta<'a>,
    #[serde(borrow)]
    spec: Option<PodSpecRaw<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JobTemplate<'a> {
    /// A job spec: only its `template` is read.
    #[serde(borrow)]
    spec: Option<PodSpecRaw<'a>>,
}

/// A pod spec, or the spec of a workload (its `template`, a CronJob's
/// `jobTemplate`): one shape for all, so that it parses before the kind is
/// known (JSON does not order `kind` before `spec`).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpecRaw<'a> {
    #[serde(borrow)]
    template: Option<Box<PodTemplate<'a>>>,
    #[serde(borrow)]
    job_template: Option<Box<JobTemplate<'a>>>,
    #[serde(borrow)]
    containers: Vec<ContainerRaw<'a>>,
    #[serde(borrow)]
    init_containers: Vec<ContainerRaw<'a>>,
    #[serde(borrow)]
    ephemeral_containers: Vec<ContainerRaw<'a>>,
    host_network: bool,
    #[serde(rename = "hostPID")]
    host_pid: bool,
    #[serde(rename = "hostIPC")]
    host_ipc: bool,
    host_users: Option<bool>,
    #[serde(borrow)]
    service_account_name: Option<Str<'a>>,
    #[serde(borrow)]
    service_account: Option<Str<'a>>,
    #[serde(borrow)]
    node_name: Option<Str<'a>>,
    #[serde(borrow)]
    volumes: Vec<VolumeRaw<'a>>,
    #[serde(borrow)]
    security_context: Option<SecurityContextRaw<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerRaw<'a> {
    #[serde(borrow)]
    name: Str<'a>,
    #[serde(borrow)]
    image: Str<'a>,
    #[serde(borrow)]
    security_context: Option<SecurityContextRaw<'a>>,
    #[serde(borrow)]
    volume_mounts: Vec<VolumeMountRaw<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SecurityContextRaw<'a> {
    privileged: Option<bool>,
    allow_privilege_escalation: Option<bool>,
    read_only_root_filesystem: Option<bool>,
    run_as_user: Option<i64>,
    run_as_group: Option<i64>,
    #[serde(borrow)]
    capabilities: Option<CapabilitiesRaw<'a>>,
    #[serde(borrow)]
    seccomp_profile: Option<ProfileRaw<'a>>,
    #[serde(borrow)]
    app_armor_profile: Option<ProfileRaw<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CapabilitiesRaw<'a> {
    #[serde(borrow)]
    add: Vec<Str<'a>>,
    #[serde(borrow)]
    drop: Vec<Str<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ProfileRaw<'a> {
    #[serde(borrow, rename = "type")]
    kind: Str<'a>,
    #[serde(borrow)]
    localhost_profile: Option<Str<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct VolumeMountRaw<'a> {
    #[serde(borrow)]
    name: Str<'a>,
    #[serde(borrow)]
    mount_path: Str<'a>,
    read_only: bool,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct VolumeRaw<'a> {
    #[serde(borrow)]
    name: Str<'a>,
    #[serde(borrow)]
    host_path: Option<HostPathRaw<'a>>,
    config_map: Option<IgnoredAny>,
    secret: Option<IgnoredAny>,
    empty_dir: Option<IgnoredAny>,
    projected: Option<IgnoredAny>,
    persistent_volume_claim: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HostPathRaw<'a> {
    #[serde(borrow)]
    path: Str<'a>,
}

/// The workload kinds whose spec holds a pod template.
const TEMPLATE_KINDS: [&str; 6] = [
    "Deployment",
    "ReplicaSet",
    "DaemonSet",
    "StatefulSet",
    "Job",
    "ReplicationController",
];

/// A normalised pod spec and the owner of the object, when the object has
/// a pod spec; `Ok(None)` for other kinds.
pub fn pod_of(obj: &Object<'_>) -> Result<Option<(PodSpec, Option<OwnerRef>)>, serde_json::Error> {
    let owner = owner_of(&obj.metadata);
    let kind: &str = &obj.kind;
    if kind == "EphemeralContainers" {
        // The older ephemeralcontainers subresource body.
        let containers = obj.ephemeral_containers.as_deref().unwrap_or_default();
        let spec = PodSpecRaw::default();
        let mut pod = normalise(&spec, &obj.metadata);
        pod.containers = containers
            .iter()
            .map(|c| container(c, ContainerRole::Ephemeral, &spec, &obj.metadata))
            .collect();
        return Ok(Some((pod, owner)));
    }
    let Some(spec) = &obj.spec else {
        return Ok(None);
    };
    if kind == "Pod" {
        return Ok(Some((normalise(spec, &obj.metadata), owner)));
    }
    if TEMPLATE_KINDS.contains(&kind) || kind == "CronJob" {
        let template = if kind == "CronJob" {
            spec.job_template
                .as_ref()
                .and_then(|j| j.spec.as_ref())
                .and_then(|s| s.template.as_deref())
        } else {
            spec.template.as_deref()
        };
        if let Some(PodTemplate {
            metadata,
            spec: Some(pod),
        }) = template
        {
            // Annotations (AppArmor) of the template apply to its pods.
            let meta = ObjectMeta {
                annotations: metadata.annotations.clone(),
                ..ObjectMeta::default()
            };
            return Ok(Some((normalise(pod, &meta), owner)));
        }
    }
    Ok(None)
}

/// Why `body`, which did not parse as an [`Object`], is a malformed pod
/// or workload (its spec is not one); `None` when it is some other thing,
/// which is not this normaliser's business.
pub fn spec_error(body: &str) -> Option<serde_json::Error> {
    let head: ObjectHead<'_> = serde_json::from_str(body).ok()?;
    let kind: &str = &head.kind;
    if kind != "Pod" && !TEMPLATE_KINDS.contains(&kind) && kind != "CronJob" {
        return None;
    }
    serde_json::from_str::<PodSpecRaw<'_>>(head.spec?.get()).err()
}

fn owner_of(meta: &ObjectMeta<'_>) -> Option<OwnerRef> {
    let o = meta
        .owner_references
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| meta.owner_references.first())?;
    Some(OwnerRef {
        kind: String::from(&*o.kind),
        name: String::from(&*o.name),
    })
}

fn normalise(spec: &PodSpecRaw<'_>, meta: &ObjectMeta<'_>) -> PodSpec {
    let containers = spec
        .containers
        .iter()
        .map(|c| container(c, ContainerRole::Main, spec, meta))
        .chain(
            spec.init_containers
                .iter()
                .map(|c| container(c, ContainerRole::Init, spec, meta)),
        )
        .chain(
            spec.ephemeral_containers
                .iter()
                .map(|c| container(c, ContainerRole::Ephemeral, spec, meta)),
        )
        .collect();
    PodSpec {
        host_network: spec.host_network,
        host_pid: spec.host_pid,
        host_ipc: spec.host_ipc,
        service_account: spec
            .service_account_name
            .as_deref()
            .or(spec.service_account.as_deref())
            .unwrap_or_default()
            .to_owned(),
        node_name: spec.node_name.as_deref().unwrap_or_default().to_owned(),
        containers,
    }
}

fn container(
    c: &ContainerRaw<'_>,
    role: ContainerRole,
    pod: &PodSpecRaw<'_>,
    meta: &ObjectMeta<'_>,
) -> PodContainer {
    let sc = c.security_context.as_ref();
    let psc = pod.security_context.as_ref();
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    let host = |on: bool| if on { "host".to_owned() } else { String::new() };
    let user = sc
        .and_then(|s| s.run_as_user)
        .or(psc.and_then(|p| p.run_as_user));
    let group = sc
        .and_then(|s| s.run_as_group)
        .or(psc.and_then(|p| p.run_as_group));
    let user = match (user, group) {
        (Some(u), Some(g)) => format!("{u}:{g}"),
        (Some(u), None) => u.to_string(),
        _ => String::new(),
    };
    let seccomp = sc
        .and_then(|s| s.seccomp_profile.as_ref())
        .or(psc.and_then(|p| p.seccomp_profile.as_ref()));
    let apparmor = sc
        .and_then(|s| s.app_armor_profile.as_ref())
        .or(psc.and_then(|p| p.app_armor_profile.as_ref()));
    let apparmor = match apparmor {
        Some(p) => profile(p),
        None => meta
            .annotations
            .as_ref()
            .and_then(|a| {
                a.get(format!("container.apparmor.security.beta.kubernetes.io/{}", c.name).as_str())
            })
            .map(|v| String::from(&**v))
            .unwrap_or_default(),
    };
    PodContainer {
        role,
        name: String::from(&*c.name),
        image: String::from(&*c.image),
        security: ContainerSecurity {
            network_mode: host(pod.host_network),
            pid_mode: host(pod.host_pid),
            ipc_mode: host(pod.host_ipc),
            // `hostUsers: false` gives the pod a user namespace of its own;
            // unset or true is the host's (the norm, so left empty like
            // Docker's default rather than flagged as `host`).
            userns_mode: if pod.host_users == Some(false) {
                "private".to_owned()
            } else {
                String::new()
            },
            cgroupns_mode: String::new(),
            uts_mode: host(pod.host_network),
            privileged: sc.and_then(|s| s.privileged).unwrap_or(false),
            cap_add: caps
                .map(|c| c.add.iter().map(|s| capability(s)).collect())
                .unwrap_or_default(),
            cap_drop: caps
                .map(|c| c.drop.iter().map(|s| capability(s)).collect())
                .unwrap_or_default(),
            devices: Vec::new(),
            mounts: c
                .volume_mounts
                .iter()
                .map(|m| mount(m, &pod.volumes))
                .collect(),
            user,
            allow_privilege_escalation: sc.and_then(|s| s.allow_privilege_escalation),
            read_only_rootfs: sc
                .and_then(|s| s.read_only_root_filesystem)
                .unwrap_or(false),
            seccomp_profile: seccomp.map(profile).unwrap_or_default(),
            apparmor_profile: apparmor,
            log_driver: String::new(),
            restart_policy: String::new(),
        },
    }
}

/// `CAP_SYS_ADMIN`, `sys_admin` and `SYS_ADMIN` all become `SYS_ADMIN`.
pub fn capability(s: &str) -> String {
    let up = s.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_owned).unwrap_or(up)
}

fn profile(p: &ProfileRaw<'_>) -> String {
    match (&*p.kind, &p.localhost_profile) {
        ("Unconfined", _) => "unconfined".into(),
        ("RuntimeDefault", _) => "runtime/default".into(),
        ("Localhost", Some(name)) => format!("localhost/{name}"),
        (other, _) => other.to_ascii_lowercase(),
    }
}

fn mount(m: &VolumeMountRaw<'_>, volumes: &[VolumeRaw<'_>]) -> Mount {
    let vol = volumes.iter().find(|v| v.name == m.name);
    let (source, kind) = match vol {
        Some(VolumeRaw {
            host_path: Some(hp),
            ..
        }) => (String::from(&*hp.path), "host-path"),
        Some(v) if v.config_map.is_some() => (String::from(&*v.name), "config-map"),
        Some(v) if v.secret.is_some() => (String::from(&*v.name), "secret"),
        Some(v) if v.empty_dir.is_some() => (String::from(&*v.name), "empty-dir"),
        Some(v) if v.projected.is_some() => (String::from(&*v.name), "projected"),
        Some(v) if v.persistent_volume_claim.is_some() => {
            (String::from(&*v.name), "persistent-volume-claim")
        }
        _ => (String::from(&*m.name), "volume"),
    };
    Mount {
        source,
        destination: String::from(&*m.mount_path),
        read_only: m.read_only,
        kind: kind.to_owned(),
    }
}
