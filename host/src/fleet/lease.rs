//! The lease that makes one `vigil fleet` active at a time, and the record
//! of fleet findings already reported, both in JetStream key-value buckets
//! (nothing home-made: the server orders the writes).
//!
//! The lease is the key `active` of a bucket whose entries expire after the
//! TTL. Taking it is a `create` (refused while the key exists); keeping it
//! is an `update` against the revision this instance wrote (refused once
//! another instance wrote, or the key expired). An instance that stops
//! renewing loses the lease at most one TTL later, and a standby's next
//! `create` succeeds.
//!
//! The record of reported findings is the bucket `<lease_bucket>_reported`
//! (entries kept a day): a fleet finding is reported only by the instance
//! whose `create` of its id succeeded, so a finding recomputed after a
//! takeover or a redelivery is not reported twice.
//!
//! The learned churn baseline is the key `baseline` of the bucket
//! `<lease_bucket>_churn` (kept until replaced: a baseline is weeks of
//! learning): the active instance writes it when it changed, an instance
//! that becomes active reads it back (see [`super::churn`]).

use std::time::Duration;

use async_nats::jetstream::{self, kv};

/// How long the ids of reported fleet findings are kept.
const REPORTED_FOR: Duration = Duration::from_secs(24 * 3600);

/// The key of the lease.
const KEY: &str = "active";

/// The key of the churn baseline in `<lease_bucket>_churn`.
const CHURN_KEY: &str = "baseline";

/// A failure of the key-value store (NATS away, bucket refused).
#[derive(Debug, thiserror::Error)]
#[error("JetStream key-value {what}: {message}")]
pub struct LeaseError {
    what: &'static str,
    message: String,
}

fn err(what: &'static str, e: impl std::fmt::Display) -> LeaseError {
    LeaseError {
        what,
        message: e.to_string(),
    }
}

/// The three buckets.
pub struct Lease {
    bucket: kv::Store,
    reported: kv::Store,
    churn: kv::Store,
    /// This instance's name, the lease's value.
    me: String,
    /// The revision this instance last wrote, while it holds the lease.
    revision: Option<u64>,
}

impl Lease {
    /// Opens (or creates) the buckets; `Duration::ZERO` keeps entries.
    pub async fn open(
        js: &jetstream::Context,
        bucket: &str,
        ttl: Duration,
        me: String,
    ) -> Result<Self, LeaseError> {
        let open = |name: String, max_age: Duration| async move {
            match js.get_key_value(&name).await {
                Ok(s) => Ok(s),
                Err(_) => {
                    // The stream a key-value bucket is, created directly:
                    // the library's `create_key_value` first asks for the
                    // account info, whose answer it cannot parse from
                    // nats-server 2.9 (Debian's).
                    js.get_or_create_stream(jetstream::stream::Config {
                        name: format!("KV_{name}"),
                        subjects: vec![format!("$KV.{name}.>")],
                        max_messages_per_subject: 1,
                        max_age,
                        duplicate_window: max_age.min(Duration::from_secs(120)),
                        discard: jetstream::stream::DiscardPolicy::New,
                        allow_rollup: true,
                        deny_delete: true,
                        allow_direct: true,
                        num_replicas: 1,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| err("bucket", e))?;
                    js.get_key_value(&name).await.map_err(|e| err("bucket", e))
                }
            }
        };
        Ok(Self {
            bucket: open(bucket.to_owned(), ttl).await?,
            reported: open(format!("{bucket}_reported"), REPORTED_FOR).await?,
            // No age limit: one key, one value (`max_messages_per_subject`).
            churn: open(format!("{bucket}_churn"), Duration::ZERO).await?,
            me,
            revision: None,
        })
    }

    /// Whether this instance holds the lease.
    pub fn held(&self) -> bool {
        self.revision.is_some()
    }

    /// Takes the lease when free, renews it when held. Returns whether it
    /// is held now; `Err` only when NATS did not answer.
    pub async fn tick(&mut self) -> Result<bool, LeaseError> {
        let value = self.me.clone().into_bytes().into();
        let r = match self.revision {
            Some(rev) => self.bucket.update(KEY, value, rev).await.map_err(|e| {
                use kv::UpdateErrorKind as K;
                match e.kind() {
                    K::WrongLastRevision => None,
                    _ => Some(err("lease renewal", e)),
                }
            }),
            None => self.bucket.create(KEY, value).await.map_err(|e| {
                use kv::CreateErrorKind as K;
                match e.kind() {
                    K::AlreadyExists => None,
                    _ => Some(err("lease", e)),
                }
            }),
        };
        match r {
            Ok(rev) => {
                self.revision = Some(rev);
                Ok(true)
            }
            Err(None) => {
                self.revision = None;
                Ok(false)
            }
            Err(Some(e)) => Err(e),
        }
    }

    /// Gives the lease up (clean shutdown): a standby takes over at once.
    pub async fn release(&mut self) {
        if let Some(rev) = self.revision.take() {
            let _ = self.bucket.delete_expect_revision(KEY, Some(rev)).await;
        }
    }

    /// Claims the report of the fleet finding `id`: `Ok(true)` for the
    /// first claim ever, `Ok(false)` when it was already reported.
    pub async fn claim(&self, id: &str) -> Result<bool, LeaseError> {
        match self
            .reported
            .create(id, self.me.clone().into_bytes().into())
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(err("report claim", e)),
        }
    }

    /// The stored churn baseline, when there is one.
    pub async fn load_churn(&self) -> Result<Option<Vec<u8>>, LeaseError> {
        self.churn
            .get(CHURN_KEY)
            .await
            .map(|v| v.map(|b| b.to_vec()))
            .map_err(|e| err("churn baseline read", e))
    }

    /// Stores the churn baseline (replacing the last one).
    pub async fn save_churn(&self, bytes: Vec<u8>) -> Result<(), LeaseError> {
        self.churn
            .put(CHURN_KEY, bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| err("churn baseline write", e))
    }
}
