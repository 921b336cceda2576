//! The source's thread: loads the programs, then polls the ring buffer,
//! turns each record into a `network` event (a connect) or a process event
//! (an exec) and hands them to the pipeline, and once a second turns the
//! kernel's counters into metrics.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vigil_core::model::{
    ContainerRef, Direction, Event, EventBody, NetworkEvent, PROCESS_EXEC, ProcessEvent,
};
use vigil_core::time::wall_now;

use super::cgroups::{Cgroups, Owner};
use super::internal_events::{EbpfAttributionMissed, EbpfKernelDrops, EbpfRecordRejected};
use super::loader::Kernel;
use super::wire::{self, Connect, Exec, Record};
use super::{EbpfError, EbpfSettings, POLL_TIMEOUT, SOURCE};
use crate::SourceContext;
use crate::network::attribution::ContainerNames;
use crate::network::procfs;

/// How often the kernel's counters are read.
const COUNTERS_EVERY: Duration = Duration::from_secs(1);

/// Events handed to the pipeline at once.
const CHUNK: usize = 512;

/// Starts the thread and waits until the programs are loaded and attached
/// (or refused: the error says why the source is off).
pub fn start(
    settings: EbpfSettings,
    cgroup_root: PathBuf,
    ctx: SourceContext,
) -> Result<std::thread::JoinHandle<()>, EbpfError> {
    let rt = tokio::runtime::Handle::current();
    let (loaded_tx, loaded_rx) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name("vigil-ebpf".into())
        .spawn(move || {
            let kernel = match Kernel::load(settings.ring_buffer_bytes, settings.max_pending_connects) {
                Ok(kernel) => {
                    let _ = loaded_tx.send(Ok(()));
                    kernel
                }
                Err(e) => {
                    let _ = loaded_tx.send(Err(e));
                    return;
                }
            };
            tracing::info!(
                "ebpf: on (connect of TCP and UDP over IPv4 and IPv6, and exec, from raw tracepoints, ring buffer {} bytes, containers by cgroup v2 id under {})",
                settings.ring_buffer_bytes,
                cgroup_root.display()
            );
            let attribution = Attribution::new(&settings, cgroup_root);
            run(&kernel, attribution, &ctx, &rt);
        })
        .map_err(EbpfError::Spawn)?;
    match loaded_rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(EbpfError::Vanished)
        }
    }
}

/// Who made a connect or an exec: the container (named) or the host.
pub struct Attribution {
    cgroups: Cgroups,
    names: ContainerNames,
    host_netns: Option<u64>,
    include_host: bool,
}

impl Attribution {
    pub fn new(settings: &EbpfSettings, cgroup_root: PathBuf) -> Self {
        Self {
            cgroups: Cgroups::new(cgroup_root, 65_536),
            names: ContainerNames::new(
                &settings.containers,
                settings.max_cached_containers,
                SOURCE,
            ),
            // The host's network namespace is init's (Vigil runs in the
            // host's PID namespace; its own pod may have a namespace of its
            // own): a container sharing it is host-networked.
            host_netns: procfs::netns(&settings.proc_root, "1")
                .or_else(|| procfs::netns(&settings.proc_root, "self")),
            include_host: settings.include_host,
        }
    }

    /// The event for `c`, or `None` when it belongs to the host and host
    /// events are not wanted. `missed` is set when no owner was found.
    pub fn event(&mut self, c: &Connect, missed: &mut bool) -> Option<NetworkEvent> {
        let container = self.container(c.cgroup_id, missed).map(|(c, _)| c);
        if container.is_none() && !self.include_host {
            return None;
        }
        let host_network =
            container.is_some() && self.host_netns.is_some_and(|n| n == u64::from(c.netns));
        Some(NetworkEvent {
            protocol: c.protocol,
            local_address: c.local.to_string(),
            local_port: c.local_port,
            remote_address: c.remote.to_string(),
            remote_port: c.remote_port,
            direction: Direction::Outbound,
            state: wire::state(c.ret),
            container,
            host_network,
        })
    }
}

impl Attribution {
    /// The process event for `x` (without id, time, node and source), or
    /// `None` when it belongs to the host and host events are not wanted.
    /// `missed` is set when no owner was found.
    pub fn process(&mut self, x: &Exec, missed: &mut bool) -> Option<ProcessEvent> {
        let (container, container_tty) = match self.container(x.cgroup_id, missed) {
            Some((c, tty)) => (Some(c), tty),
            None if self.include_host => (None, None),
            None => return None,
        };
        Some(ProcessEvent {
            action: PROCESS_EXEC.to_owned(),
            pid: x.pid,
            namespace_pid: x.namespace_pid,
            parent_pid: x.parent_pid,
            parent_name: x.parent_name.clone(),
            uid: x.uid,
            binary: x.binary.clone(),
            args: x.args.clone(),
            args_truncated: x.args_truncated,
            container,
            container_tty,
            ..ProcessEvent::default()
        })
    }

    /// The container of cgroup `id` with its terminal setting, `None` for
    /// the host or an unknown cgroup (then `missed` is set).
    fn container(&mut self, id: u64, missed: &mut bool) -> Option<(ContainerRef, Option<bool>)> {
        match self.cgroups.owner(id) {
            Owner::Container(id) => Some(self.names.get_with_tty(&id)),
            Owner::Host => None,
            Owner::Unknown => {
                *missed = true;
                None
            }
        }
    }
}

fn run(
    kernel: &Kernel,
    mut attribution: Attribution,
    ctx: &SourceContext,
    rt: &tokio::runtime::Handle,
) {
    let mut last = [0u64; wire::counter::COUNT as usize];
    let mut counted_at = Instant::now();
    loop {
        if *ctx.shutdown.borrow() {
            return;
        }
        let records = match kernel.poll(POLL_TIMEOUT) {
            Ok(records) => records,
            Err(e) => {
                // EINTR and the like: logged, and the loop goes on.
                tracing::warn!(source = SOURCE, error = %vigil_core::error::chain(&e), "ebpf: poll failed");
                std::thread::sleep(POLL_TIMEOUT);
                Vec::new()
            }
        };
        vigil_core::metrics::PluginMetrics::add(
            &ctx.metrics.counters.received,
            records.len() as u64,
        );
        let time = wall_now();
        let mut events = Vec::with_capacity(records.len());
        let mut processes = Vec::new();
        for record in records {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    EbpfRecordRejected { error: &e }.emit(&ctx.metrics);
                    continue;
                }
            };
            let mut missed = false;
            match &record {
                Record::Connect(connect) => {
                    let event = attribution.event(connect, &mut missed);
                    events.extend(event.map(|body| Event {
                        id: ctx.next_id(),
                        time,
                        node: ctx.node.to_string(),
                        source: SOURCE.to_owned(),
                        body: EventBody::Network(body),
                    }));
                }
                Record::Exec(exec) => {
                    let event = attribution.process(exec, &mut missed);
                    processes.extend(event.map(|p| ProcessEvent {
                        id: ctx.next_id(),
                        time,
                        node: ctx.node.to_string(),
                        source: SOURCE.to_owned(),
                        ..p
                    }));
                }
            }
            if missed {
                EbpfAttributionMissed { record: &record }.emit(&ctx.metrics);
            }
        }
        while !events.is_empty() {
            let rest = events.split_off(events.len().min(CHUNK));
            if !rt.block_on(ctx.send(events)) {
                return;
            }
            events = rest;
        }
        while !processes.is_empty() {
            let rest = processes.split_off(processes.len().min(CHUNK));
            if !rt.block_on(ctx.send_processes(processes)) {
                return;
            }
            processes = rest;
        }
        if counted_at.elapsed() >= COUNTERS_EVERY {
            counted_at = Instant::now();
            match kernel.counters() {
                Ok(now) => {
                    EbpfKernelDrops::since(&last, &now).emit(&ctx.metrics);
                    last = now;
                }
                Err(e) => {
                    tracing::warn!(source = SOURCE, error = %vigil_core::error::chain(&e), "ebpf: cannot read the kernel counters");
                }
            }
        }
    }
}
