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

use vigil_core::model::Event;
use vigil_core::model::packed::PackedEvents;
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
