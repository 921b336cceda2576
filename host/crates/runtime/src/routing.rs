//! One batch routed to the plugins that want its events, by their
//! subscriptions (evaluated natively, [`vigil_core::subscription`]), and
//! encoded once for all of them.
//!
//! Why: encoding a batch for each plugin multiplied the most expensive part
//! of a call by the number of plugins, and a plugin that dropped an event
//! had paid for it anyway. Here an event that no plugin taking packed
//! batches wants is never encoded; each such plugin gets either the shared
//! buffer itself (it wants every event, as is) or one assembled by copying
//! already encoded events; a plugin that wants nothing of a batch is not
//! called at all.

use std::sync::Arc;

use vigil_core::model::packed::PackedEvents;
use vigil_core::model::{Event, ProcessEvent, ServiceEvent};
use vigil_core::subscription::{Delivery, Subscription};

/// What one plugin gets of a routed batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Pick {
    /// Nothing: the plugin is not called for this batch.
    #[default]
    Nothing,
    /// Every event, as is.
    All,
    /// These events (indices into the batch, in order), each with its pod
    /// spec left out when its flag is true.
    Some(Vec<(u32, bool)>),
}

/// A batch with each plugin's [`Pick`] and the packed encoding of every
/// event a packed plugin picked. Shared (in an `Arc`) by the workers of
/// `vigil run`.
#[derive(Debug)]
pub struct RoutedBatch {
    events: Arc<Vec<Event>>,
    packed: PackedEvents,
    picks: Vec<Pick>,
}

/// How a plugin is routed: its subscription, and whether it takes packed
/// batches (then its picks are encoded).
#[derive(Clone, Copy, Debug)]
pub struct Route<'a> {
    pub subscription: &'a Subscription,
    pub packed: bool,
}

impl RoutedBatch {
    /// Routes `events` to the plugins of `routes` (pick `i` is for
    /// `routes[i]`), reusing `packed`'s buffer.
    pub fn route(events: Arc<Vec<Event>>, routes: &[Route<'_>], mut packed: PackedEvents) -> Self {
        let mut encode = vec![false; events.len()];
        let picks: Vec<Pick> = routes
            .iter()
            .map(|route| {
                let pick = pick(&events, route.subscription);
                if route.packed {
                    match &pick {
                        Pick::Nothing => {}
                        Pick::All => encode.iter_mut().for_each(|e| *e = true),
                        Pick::Some(some) => {
                            for &(i, _) in some {
                                encode[i as usize] = true;
                            }
                        }
                    }
                }
                pick
            })
            .collect();
        if encode.iter().any(|e| *e) {
            packed.encode(&events, |i| encode[i]);
        } else {
            packed.encode(&[], |_| false);
        }
        Self {
            events,
            packed,
            picks,
        }
    }

    /// The batch's events, all of them.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// What plugin `index` (of the routes) gets.
    pub fn pick(&self, index: usize) -> &Pick {
        self.picks.get(index).unwrap_or(&Pick::Nothing)
    }

    /// The shared packed encoding.
    pub fn packed(&self) -> &PackedEvents {
        &self.packed
    }

    /// Takes the routed batch apart to reuse its buffers: the events (when
    /// no one else holds them) and the packed encoding.
    pub fn recycle(self) -> (Option<Vec<Event>>, PackedEvents) {
        (Arc::try_unwrap(self.events).ok(), self.packed)
    }
}

/// Which events of `events` a subscription picks. No allocation for the
/// common cases: every event, or none.
fn pick(events: &[Event], subscription: &Subscription) -> Pick {
    let mut some: Option<Vec<(u32, bool)>> = None;
    for (i, e) in events.iter().enumerate() {
        let delivery = subscription.delivery(e);
        if delivery == Delivery::Whole && some.is_none() {
            continue;
        }
        // The first event not delivered whole: from here on, list.
        let list = some.get_or_insert_with(|| (0..i as u32).map(|j| (j, false)).collect());
        match delivery {
            Delivery::Skip => {}
            Delivery::Whole => list.push((i as u32, false)),
            Delivery::WithoutPod => list.push((i as u32, true)),
        }
    }
    match some {
        None if events.is_empty() => Pick::Nothing,
        None => Pick::All,
        Some(list) if list.is_empty() => Pick::Nothing,
        Some(list) => Pick::Some(list),
    }
}

/// What one plugin gets of a batch of Docker Swarm events (WIT 0.1.3), by
/// its subscription: `None` when nothing (the plugin is not called), the
/// shared batch when everything, else a copy of the events it wants. Swarm
/// events are few (a service's updates, not its containers'), so they are
/// neither packed nor indexed.
pub fn pick_services(
    batch: &Arc<Vec<ServiceEvent>>,
    subscription: &Subscription,
) -> Option<Arc<Vec<ServiceEvent>>> {
    subscription.services()?;
    pick_side(batch, |e| subscription.wants_service(e))
}

/// What one plugin gets of a batch of process events (WIT 0.1.3), by its
/// subscription: as [`pick_services`], `None` when nothing, the shared
/// batch when everything, else a copy of the events it wants. Neither
/// packed nor indexed: a plugin's binary filter keeps its copies small.
pub fn pick_processes(
    batch: &Arc<Vec<ProcessEvent>>,
    subscription: &Subscription,
) -> Option<Arc<Vec<ProcessEvent>>> {
    subscription.processes()?;
    pick_side(batch, |e| subscription.wants_process(e))
}

/// The events of `batch` that `wants`: `None` when none, the shared batch
/// when all of them, else a copy of those.
fn pick_side<T: Clone>(batch: &Arc<Vec<T>>, wants: impl Fn(&T) -> bool) -> Option<Arc<Vec<T>>> {
    let wanted = batch.iter().filter(|e| wants(e)).count();
    if wanted == 0 {
        None
    } else if wanted == batch.len() {
        Some(batch.clone())
    } else {
        Some(Arc::new(
            batch.iter().filter(|e| wants(e)).cloned().collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::model::{EventKind, ServiceFilter, SwarmObject};

    fn swarm(object: SwarmObject) -> ServiceEvent {
        ServiceEvent {
            object,
            action: "update".into(),
            ..Default::default()
        }
    }

    #[test]
    fn swarm_events_reach_only_plugins_that_want_them() {
        let batch = Arc::new(vec![swarm(SwarmObject::Service), swarm(SwarmObject::Node)]);
        let kinds = [EventKind::Container];
        // No `services` export: never called.
        assert!(pick_services(&batch, &Subscription::everything(&kinds)).is_none());
        // Every Swarm event: the shared batch itself.
        let all = Subscription::everything(&kinds)
            .with_services(&kinds, ServiceFilter::default())
            .unwrap();
        assert!(Arc::ptr_eq(&pick_services(&batch, &all).unwrap(), &batch));
        // Services only: a copy of those.
        let services = Subscription::everything(&kinds)
            .with_services(
                &kinds,
                ServiceFilter {
                    objects: vec![SwarmObject::Service],
                    actions: vec![],
                },
            )
            .unwrap();
        let picked = pick_services(&batch, &services).unwrap();
        assert_eq!(*picked, vec![swarm(SwarmObject::Service)]);
        // Secrets only: nothing of this batch, not called.
        let secrets = Subscription::everything(&kinds)
            .with_services(
                &kinds,
                ServiceFilter {
                    objects: vec![SwarmObject::Secret],
                    actions: vec![],
                },
            )
            .unwrap();
        assert!(pick_services(&batch, &secrets).is_none());
    }

    fn exec(binary: &str) -> ProcessEvent {
        ProcessEvent {
            binary: binary.into(),
            ..Default::default()
        }
    }

    #[test]
    fn process_events_reach_only_plugins_that_want_them() {
        use vigil_core::model::ProcessFilter;
        let batch = Arc::new(vec![exec("/bin/sh"), exec("/usr/bin/python3")]);
        let kinds = [EventKind::Container];
        // No `processes` export: never called.
        assert!(pick_processes(&batch, &Subscription::everything(&kinds)).is_none());
        // Every process event: the shared batch itself.
        let all = Subscription::everything(&kinds)
            .with_processes(&kinds, ProcessFilter::default())
            .unwrap();
        assert!(Arc::ptr_eq(&pick_processes(&batch, &all).unwrap(), &batch));
        // Shells only: a copy of those.
        let shells = Subscription::everything(&kinds)
            .with_processes(
                &kinds,
                ProcessFilter {
                    binaries: vec!["sh".into()],
                    containers_only: false,
                    writes: false,
                },
            )
            .unwrap();
        assert_eq!(
            *pick_processes(&batch, &shells).unwrap(),
            vec![exec("/bin/sh")]
        );
        // Containers only: these are the host's, not called.
        let containers = Subscription::everything(&kinds)
            .with_processes(
                &kinds,
                ProcessFilter {
                    binaries: vec![],
                    containers_only: true,
                    writes: false,
                },
            )
            .unwrap();
        assert!(pick_processes(&batch, &containers).is_none());
    }
}
