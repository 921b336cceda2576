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
    ContainerEvent, ContainerRef, ContainerSecurity, Entity, Event, EventBody, ExecInfo, FileEvent,
    FileState, Finding, FindingEvent, KeyValue, KubernetesEvent, Mount, NetworkEvent, OwnerRef,
    PodContainer, PodSpec,
};

/// The format version, the first byte of every packed batch.
pub const PACKED_VERSION: u8 = 1;

/// Where one event lies in a [`PackedEvents`] buffer, and its `pod` option
/// for a Kubernetes event.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
    pod: Option<(usize, usize)>,
}

/// The events of one batch encoded once for every plugin that gets them
/// (the host then copies the bytes, never re-encodes): only the events some
/// plugin wants are encoded, each plugin's batch is either the whole buffer
/// (every event wanted, as is) or assembled from the encoded events.
#[derive(Debug, Default)]
pub struct PackedEvents {
    /// A batch header, then the encoded events in batch order.
    buf: Vec<u8>,
    /// Per event of the batch: where it was encoded, if it was.
    spans: Vec<Option<Span>>,
    /// Whether every event of the batch was encoded: `buf` is then itself a
    /// complete packed batch.
    whole: bool,
}

impl PackedEvents {
    /// Encodes the events of `events` for which `wanted(index)` is true,
    /// replacing what was encoded before (the buffer is reused).
    pub fn encode(&mut self, events: &[Event], mut wanted: impl FnMut(usize) -> bool) {
        self.buf.clear();
        self.spans.clear();
        self.buf.push(PACKED_VERSION);
        len(&mut self.buf, 0);
        let mut count = 0;
        for (i, e) in events.iter().enumerate() {
            if !wanted(i) {
                self.spans.push(None);
                continue;
            }
            count += 1;
            let start = self.buf.len();
            let pod = pack_event(e, &mut self.buf);
            self.spans.push(Some(Span {
                start,
                end: self.buf.len(),
                pod,
            }));
        }
        self.buf[1..5].copy_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes());
        self.whole = count == events.len();
    }

    /// The whole batch, packed, when every event of it was encoded.
    pub fn whole(&self) -> Option<&[u8]> {
        self.whole.then_some(self.buf.as_slice())
    }

    /// Whether the event at `index` was encoded.
    pub fn has(&self, index: usize) -> bool {
        self.spans.get(index).is_some_and(Option::is_some)
    }

    /// Writes into `out` (cleared first) the packed batch of the events at
    /// `picks` (batch indices, in order), each with its pod spec left out
    /// when its flag is true. An index that was not encoded is skipped: a
    /// host bug, which the decoder's count check would otherwise turn into
    /// a trap; it is debug-asserted.
    pub fn assemble(&self, picks: &[(u32, bool)], out: &mut Vec<u8>) {
        out.clear();
        out.push(PACKED_VERSION);
        len(out, 0);
        let mut count = 0usize;
        for &(index, without_pod) in picks {
            let Some(Some(span)) = self.spans.get(index as usize) else {
                debug_assert!(false, "event {index} was not encoded");
                continue;
            };
            count += 1;
            match span.pod {
                Some((pod_start, pod_end)) if without_pod => {
                    out.extend_from_slice(&self.buf[span.start..pod_start]);
                    out.push(0);
                    out.extend_from_slice(&self.buf[pod_end..span.end]);
                }
                _ => out.extend_from_slice(&self.buf[span.start..span.end]),
            }
        }
        out[1..5].copy_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes());
    }
}

/// Packs one event; returns where the `pod` option of a Kubernetes body lies.
fn pack_event(e: &Event, out: &mut Vec<u8>) -> Option<(usize, usize)> {
    e.id.pack(out);
    e.time.pack(out);
    e.node.pack(out);
    e.source.pack(out);
    if let EventBody::Kubernetes(k) = &e.body {
        out.push(1);
        Some(pack_kubernetes(k, out))
    } else {
        e.body.pack(out);
        None
    }
}

/// Encodes `events` into `out` (cleared first).
pub fn encode_batch(events: &[Event], out: &mut Vec<u8>) {
    encode_list(events, out);
}

/// Encodes `findings` into `out` (cleared first): the batch of
/// `packed-correlate.on-packed-findings` (WIT 0.1.5), the version byte then
/// the `list<finding-event>` that `correlate.on-findings` would receive.
/// Why: lowering that list calls the guest's `realloc` for every string and
/// list of every finding (about 34 for a typical one).
pub fn encode_findings(findings: &[FindingEvent], out: &mut Vec<u8>) {
    encode_list(findings, out);
}

/// A batch of either kind into `out` (cleared first): the version byte,
/// then the `list<T>`.
fn encode_list<T: Pack>(items: &[T], out: &mut Vec<u8>) {
    out.clear();
    out.push(PACKED_VERSION);
    len(out, items.len());
    for item in items {
        item.pack(out);
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
    super::FileChange,
    super::Severity,
    super::EntityKind,
    super::EntityVerdict
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
impl Pack for KubernetesEvent {
    fn pack(&self, out: &mut Vec<u8>) {
        pack_kubernetes(self, out);
    }
}

/// Packs a Kubernetes event in WIT order; returns where its `pod` option lies
/// in `out`, so that it can be left out when copied for a plugin that does
/// not read it.
fn pack_kubernetes(k: &KubernetesEvent, out: &mut Vec<u8>) -> (usize, usize) {
    k.verb.pack(out);
    k.resource.pack(out);
    k.subresource.pack(out);
    k.api_group.pack(out);
    k.namespace.pack(out);
    k.name.pack(out);
    k.user.pack(out);
    k.groups.pack(out);
    k.stage.pack(out);
    k.response_code.pack(out);
    k.request_uri.pack(out);
    k.source_ips.pack(out);
    k.user_agent.pack(out);
    k.audit_id.pack(out);
    let pod_start = out.len();
    k.pod.pack(out);
    let pod_end = out.len();
    k.owner.pack(out);
    (pod_start, pod_end)
}
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

pack_record!(Entity { kind, id, name });
pack_record!(Finding {
    rule_id,
    title,
    severity,
    summary,
    techniques,
    entities,
    evidence,
    event_ids,
});
pack_record!(FindingEvent {
    id,
    plugin,
    plugin_version,
    time,
    node,
    depth,
    finding,
    verdicts,
});

pack_record!(Event {
    id,
    time,
    node,
    source,
    body
});
