//! The packed batch encoding (`wit/PACKED.md`): a whole batch of events as one
//! `list<u8>`, for plugins that export `on-packed-events`.
//!
//! Why: lowering `list<event>` through the canonical ABI calls the guest's
//! `realloc` once for every string and list of every event (15–80 per event),
//! and those host→guest calls, not the detection logic, were most of a
//! plugin's cost. One buffer is one `realloc` and one copy; the SDK decodes
//! it inside the guest with plain Wasm code.
//!
//! Fields are written in WIT declaration order; the SDK's decoder
//! (`plugin-sdk/src/packed.rs`) reads them in the same order. Both are checked
//! against each other by `host/tests/packed.rs`.

use super::{
    ContainerEvent, ContainerRef, ContainerSecurity, Event, EventBody, ExecInfo, FileEvent,
    FileState, KeyValue, KubernetesEvent, Mount, NetworkEvent, OwnerRef, PodContainer, PodSpec,
};

/// The format version, the first byte of every packed batch.
pub const PACKED_VERSION: u8 = 1;

/// Encodes `events` into `out` (cleared first).
pub fn encode_batch(events: &[Event], out: &mut Vec<u8>) {
    out.clear();
    out.push(PACKED_VERSION);
    len(out, events.len());
    for e in events {
        e.pack(out);
    }
}

/// Writes a length or count as u32: batches and fields are far below 4 GiB
/// (the plugin's memory cap is), so a larger one is a host bug.
fn len(out: &mut Vec<u8>, n: usize) {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_le_bytes());
}

trait Pack {
    fn pack(&self, out: &mut Vec<u8>);
}

impl Pack for String {
    fn pack(&self, out: &mut Vec<u8>) {
        len(out, self.len());
        out.extend_from_slice(self.as_bytes());
    }
}

impl Pack for bool {
    fn pack(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

macro_rules! pack_le {
    ($($t:ty),*) => {$(
        impl Pack for $t {
            fn pack(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
pack_le!(u16, u32, i32, u64);

impl<T: Pack> Pack for Option<T> {
    fn pack(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.pack(out);
            }
        }
    }
}

impl<T: Pack> Pack for Vec<T> {
    fn pack(&self, out: &mut Vec<u8>) {
        len(out, self.len());
        for v in self {
            v.pack(out);
        }
    }
}

/// Enums are their WIT case index: the Rust declarations follow the WIT
/// order (the component derives check it).
macro_rules! pack_enum {
    ($($t:ty),*) => {$(
        impl Pack for $t {
            fn pack(&self, out: &mut Vec<u8>) {
                out.push(*self as u8);
            }
        }
    )*};
}
pack_enum!(
    super::ContainerAction,
    super::ContainerRole,
    super::Protocol,
    super::Direction,
    super::FileChange
);

/// Records are their fields in WIT order.
macro_rules! pack_record {
    ($t:ty { $($f:ident),* $(,)? }) => {
        impl Pack for $t {
            fn pack(&self, out: &mut Vec<u8>) {
                $( self.$f.pack(out); )*
            }
        }
    };
}

pack_record!(KeyValue { key, value });
pack_record!(Mount {
    source,
    destination,
    read_only,
    kind
});
pack_record!(ContainerSecurity {
    network_mode,
    pid_mode,
    ipc_mode,
    userns_mode,
    cgroupns_mode,
    uts_mode,
    privileged,
    cap_add,
    cap_drop,
    devices,
    mounts,
    user,
    allow_privilege_escalation,
    read_only_rootfs,
    seccomp_profile,
    apparmor_profile,
    log_driver,
    restart_policy,
});
pack_record!(ExecInfo {
    command,
    user,
    privileged,
    tty
});
pack_record!(ContainerEvent {
    action,
    raw_action,
    id,
    name,
    image,
    image_digest,
    runtime,
    labels,
    security,
    actor,
    exit_code,
    signal,
    exec,
    network,
    lifetime_ms,
});
pack_record!(PodContainer {
    role,
    name,
    image,
    security
});
pack_record!(PodSpec {
    host_network,
    host_pid,
    host_ipc,
    service_account,
    node_name,
    containers,
});
pack_record!(OwnerRef { kind, name });
pack_record!(KubernetesEvent {
    verb,
    resource,
    subresource,
    api_group,
    namespace,
    name,
    user,
    groups,
    stage,
    response_code,
    request_uri,
    source_ips,
    user_agent,
    audit_id,
    pod,
    owner,
});
pack_record!(ContainerRef {
    id,
    name,
    image,
    pod
});
pack_record!(NetworkEvent {
    protocol,
    local_address,
    local_port,
    remote_address,
    remote_port,
    direction,
    state,
    container,
    host_network,
});
pack_record!(FileState {
    sha256,
    size,
    mode,
    uid,
    gid,
    mtime
});
pack_record!(FileEvent {
    path,
    change,
    before,
    after
});

impl Pack for EventBody {
    fn pack(&self, out: &mut Vec<u8>) {
        match self {
            Self::Container(b) => {
                out.push(0);
                b.pack(out);
            }
            Self::Kubernetes(b) => {
                out.push(1);
                b.pack(out);
            }
            Self::Network(b) => {
                out.push(2);
                b.pack(out);
            }
            Self::File(b) => {
                out.push(3);
                b.pack(out);
            }
        }
    }
}

pack_record!(Event {
    id,
    time,
    node,
    source,
    body
});
