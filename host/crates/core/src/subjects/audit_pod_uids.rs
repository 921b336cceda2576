//! Pod uids read from Kubernetes audit events, by event id.
//!
//! A pod create's `ResponseComplete` audit event carries the pod as the API
//! server persisted it, uid included (`responseObject.metadata.uid`), but
//! the WIT `kubernetes-event` has no field for it (its `audit-id` is the
//! request's, and a record cannot grow a field without breaking the
//! contract). The audit normaliser notes the uid here under the event's id;
//! each plugin's [`SubjectWindow`](super::SubjectWindow) takes it when it
//! records that event, so a finding citing the create verifies its pod
//! *with* the uid, and the response stage can check the pod it acts on by
//! uid (issue 10).
//!
//! Bounded: the latest [`CAP`] events; an older one is dropped (its pod then
//! verifies without a uid, and the response stage does not act on it).
//! Process-wide, because the normaliser and the plugin runners share no
//! other channel than the event itself.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Audit events whose pod uid is remembered.
pub const CAP: usize = 4096;

#[derive(Default)]
struct Table {
    by_event: HashMap<Box<str>, Box<str>>,
    order: VecDeque<Box<str>>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn table() -> MutexGuard<'static, Option<Table>> {
    // A panic elsewhere while holding it leaves a consistent map.
    TABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Notes that audit event `event_id` was about a pod with uid `uid`.
pub fn note(event_id: &str, uid: &str) {
    if event_id.is_empty() || uid.is_empty() {
        return;
    }
    let mut guard = table();
    let t = guard.get_or_insert_with(Table::default);
    if t.by_event.insert(event_id.into(), uid.into()).is_none() {
        t.order.push_back(event_id.into());
    }
    while t.order.len() > CAP {
        if let Some(old) = t.order.pop_front() {
            t.by_event.remove(&old);
        }
    }
}

/// The pod uid noted for audit event `event_id`.
pub fn of(event_id: &str) -> Option<String> {
    table()
        .as_ref()
        .and_then(|t| t.by_event.get(event_id))
        .map(|u| u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_kept_for_the_latest_events_only() {
        note("k8s-audit:test-a:ResponseComplete", "uid-a");
        assert_eq!(
            of("k8s-audit:test-a:ResponseComplete").as_deref(),
            Some("uid-a")
        );
        for i in 0..CAP {
            note(&format!("k8s-audit:fill-{i}:ResponseComplete"), "u");
        }
        assert_eq!(of("k8s-audit:test-a:ResponseComplete"), None);
        assert!(table().as_ref().is_some_and(|t| t.by_event.len() <= CAP));
    }
}
