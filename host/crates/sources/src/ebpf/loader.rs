//! Loading the kernel programs with libbpf (CO-RE relocation against the
//! running kernel's BTF), attaching them, and reading what they hand over:
//! the ring buffer's records and the drop counters.
//!
//! libbpf's objects are not `Send`: everything here lives on the source's
//! own thread, from load to drop (which detaches the programs).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use libbpf_rs::{Link, MapCore, MapFlags, Object, ObjectBuilder, RingBuffer, RingBufferBuilder};

use super::EbpfError;
use super::wire::{self, Record, WireError};

/// The object built from `bpf/vigil.bpf.c` by build.rs.
#[cfg(vigil_bpf_object)]
const OBJECT: Option<&[u8]> = Some(include_bytes!(concat!(env!("OUT_DIR"), "/vigil.bpf.o")));
#[cfg(not(vigil_bpf_object))]
const OBJECT: Option<&[u8]> = None;

/// Where the kernel publishes its own BTF; CO-RE needs it.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Records decoded by the ring buffer's callback, taken after each poll.
type Records = Rc<RefCell<Vec<Result<Record, WireError>>>>;

/// The loaded and attached programs.
pub struct Kernel {
    // Declared first so that it is dropped before the maps it reads.
    ring: RingBuffer<'static>,
    records: Records,
    _links: Vec<Link>,
    object: Object,
}

impl Kernel {
    /// Loads the object with the ring buffer and in-flight map sized as
    /// configured, and attaches every program.
    pub fn load(ring_buffer_bytes: u32, max_pending: u32) -> Result<Self, EbpfError> {
        let bytes = OBJECT.ok_or(EbpfError::NoPrograms)?;
        route_libbpf_logs();
        let mut open = ObjectBuilder::default()
            .open_memory(bytes)
            .map_err(EbpfError::Open)?;
        for mut map in open.maps_mut() {
            let size = match map.name().to_str() {
                Some("events") => ring_buffer_bytes,
                Some("pending") => max_pending,
                _ => continue,
            };
            map.set_max_entries(size).map_err(EbpfError::Open)?;
        }
        let object = open.load().map_err(EbpfError::Load)?;
        let mut links = Vec::new();
        for prog in object.progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            links.push(
                prog.attach()
                    .map_err(|source| EbpfError::Attach { name, source })?,
            );
        }
        let records: Records = Rc::default();
        let sink = records.clone();
        let ring = {
            let events = object
                .maps()
                .find(|m| m.name() == "events")
                .ok_or(EbpfError::MissingMap("events"))?;
            let mut builder = RingBufferBuilder::new();
            builder
                .add(&events, move |data: &[u8]| {
                    sink.borrow_mut().push(wire::decode(data));
                    0
                })
                .map_err(EbpfError::Ring)?;
            builder.build().map_err(EbpfError::Ring)?
        };
        Ok(Self {
            ring,
            records,
            _links: links,
            object,
        })
    }

    /// Waits up to `timeout` for records and returns those that arrived.
    pub fn poll(&self, timeout: Duration) -> Result<Vec<Result<Record, WireError>>, EbpfError> {
        match self.ring.poll(timeout) {
            // A signal (SIGHUP: a reload) woke the wait: nothing wrong.
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => {}
            r => r.map_err(EbpfError::Poll)?,
        }
        Ok(std::mem::take(&mut *self.records.borrow_mut()))
    }

    /// The kernel's counters (indexed as [`wire::counter`]), summed over
    /// CPUs.
    pub fn counters(&self) -> Result<[u64; wire::counter::COUNT as usize], EbpfError> {
        let map = self
            .object
            .maps()
            .find(|m| m.name() == "counters")
            .ok_or(EbpfError::MissingMap("counters"))?;
        let mut out = [0u64; wire::counter::COUNT as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            let key = (i as u32).to_ne_bytes();
            let per_cpu = map
                .lookup_percpu(&key, MapFlags::ANY)
                .map_err(EbpfError::Counters)?
                .unwrap_or_default();
            *slot = per_cpu
                .iter()
                .filter_map(|v| Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?)))
                .sum();
        }
        Ok(out)
    }
}

/// libbpf prints to stderr by default; its messages (the verifier's log
/// when a program is refused) go to the log instead.
fn route_libbpf_logs() {
    fn print(level: libbpf_rs::PrintLevel, msg: String) {
        let msg = msg.trim_end();
        match level {
            libbpf_rs::PrintLevel::Warn => {
                tracing::warn!(source = super::SOURCE, "libbpf: {msg}");
            }
            _ => tracing::debug!(source = super::SOURCE, "libbpf: {msg}"),
        }
    }
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, print)));
}
