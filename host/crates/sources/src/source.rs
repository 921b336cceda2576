//! The source extension point: the [`Source`] trait every live source's
//! config implements, and what starting one gives back ([`RunningSource`]).
//!
//! A source is its module plus one line of the registry in `lib.rs`
//! (`sources! { … }`), which generates `SourcesConfig` (the `[sources]`
//! table), its validation, the start loop, the restart check of a reload and
//! the summary of `vigil config check`. Nothing else names the source.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};
use vigil_core::metrics::Registry;
use vigil_core::model::Batch;
use vigil_core::validate::{InvalidConfig, Problems};

use crate::SourceContext;

/// A live source, implemented by its `[sources.KEY]` config section.
///
/// Two phases, as every config of Vigil: [`Source::check`] validates the
/// section (every problem at once, with its dotted path) into the source's
/// settings; [`Source::start`] starts it from those settings on this
/// machine, or says why it is off here (no socket, no kubeconfig …).
pub trait Source:
    Clone + Default + PartialEq + Serialize + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
    /// The key of its table, `[sources.KEY]`.
    const KEY: &'static str;
    /// Its name in log lines (`docker: on`, `file-integrity: off (…)`).
    const NAME: &'static str;
    /// The validated configuration the source runs with.
    type Settings;

    /// Whether the operator wants it. A source that is off is neither
    /// validated nor started: its defaults may be incomplete on purpose
    /// (no `listen`, no `path`).
    fn enabled(&self) -> bool;

    /// Why it is off when not [`enabled`](Source::enabled), for the log.
    fn disabled_reason(&self) -> String {
        format!("sources.{}.enabled = false", Self::KEY)
    }

    /// Its state for `vigil config check` (`on`, `off`, or `auto` for a
    /// source that decides on the machine it runs on).
    fn state(&self) -> &'static str {
        if self.enabled() { "on" } else { "off" }
    }

    /// Protections the operator turned off on purpose in this section
    /// (`FIELD = VALUE: why it matters`), shown by `vigil config check`;
    /// the source also warns about them when it starts.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// Checks every field, pushing each problem at `at.FIELD`; the settings
    /// when there was none.
    fn check(&self, at: &str, problems: &mut Problems) -> Option<Self::Settings>;

    /// Starts the source (inside the Tokio runtime), logging `NAME: on (…)`
    /// with what it watches; or why it cannot run here.
    fn start(settings: Self::Settings, starter: &Starter<'_>) -> Result<Vec<SourceTask>, Off>;

    /// [`Source::check`] on its own, problems rooted at `KEY` (for tests and
    /// tools that hold one section).
    fn validated(&self) -> Result<Self::Settings, InvalidConfig> {
        let mut problems = Problems::default();
        let settings = self.check(Self::KEY, &mut problems);
        problems.into_result()?;
        settings.ok_or_else(|| InvalidConfig(Vec::new()))
    }
}

/// Why a wanted source is not running.
#[derive(Debug)]
pub enum Off {
    /// This machine does not offer it (logged at info: expected on many
    /// machines, e.g. no Docker socket).
    Unavailable(String),
    /// It was asked for and failed to start (logged at error: the operator
    /// expects its events).
    Failed(String),
}

/// One task or thread of a running source.
pub enum SourceTask {
    /// A task on the host's Tokio runtime.
    Task(tokio::task::JoinHandle<()>),
    /// A thread of its own (blocking I/O: inotify, netlink).
    Thread(std::thread::JoinHandle<()>),
}

/// What a source gets to start: contexts for the pipeline, all stopped by
/// the same switch.
pub struct Starter<'a> {
    node: &'a Arc<str>,
    tx: &'a mpsc::Sender<Batch>,
    registry: &'a Registry,
    stopped: watch::Receiver<bool>,
}

impl Starter<'_> {
    /// A context whose events are counted under `metrics_name` (a source
    /// with two parts, like the network poller and conntrack, asks twice).
    pub fn context(&self, metrics_name: &str) -> SourceContext {
        SourceContext::new(
            self.node.clone(),
            self.tx.clone(),
            self.registry.source(metrics_name),
            self.stopped.clone(),
        )
    }
}

/// A started source.
pub struct RunningSource {
    /// Its `[sources.*]` key.
    pub key: &'static str,
    /// Its name in logs.
    pub name: &'static str,
    stop: watch::Sender<bool>,
    /// Every task and thread of the source, ended by one `stop`.
    done: Vec<SourceTask>,
}

impl RunningSource {
    /// Stops the source and waits until it has ended (its socket closed,
    /// its last events handed to the pipeline), so that a restart can bind
    /// the same address or open the same baseline.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for done in self.done {
            match done {
                SourceTask::Task(h) => {
                    let _ = h.await;
                }
                SourceTask::Thread(h) => {
                    let _ = tokio::task::spawn_blocking(move || h.join()).await;
                }
            }
        }
    }
}

/// Starts one source when it is on and usable here, logging why not
/// otherwise. Must be called inside the Tokio runtime.
pub fn start<S: Source>(
    config: &S,
    node: &Arc<str>,
    tx: &mpsc::Sender<Batch>,
    registry: &Registry,
) -> Option<RunningSource> {
    if !config.enabled() {
        tracing::info!("{}: off ({})", S::NAME, config.disabled_reason());
        return None;
    }
    let mut problems = Problems::default();
    let settings = config.check(&format!("sources.{}", S::KEY), &mut problems);
    let Some(settings) = settings.filter(|_| problems.is_empty()) else {
        // The config was validated before; only a caller that skipped
        // validation gets here.
        let why = problems.into_result().err().map(|e| e.to_string());
        tracing::error!("{}: off ({})", S::NAME, why.unwrap_or_default());
        return None;
    };
    let (stop, stopped) = watch::channel(false);
    let starter = Starter {
        node,
        tx,
        registry,
        stopped,
    };
    match S::start(settings, &starter) {
        Ok(done) => Some(RunningSource {
            key: S::KEY,
            name: S::NAME,
            stop,
            done,
        }),
        Err(Off::Unavailable(why)) => {
            tracing::info!("{}: off ({why})", S::NAME);
            None
        }
        Err(Off::Failed(why)) => {
            tracing::error!("{}: off ({why})", S::NAME);
            None
        }
    }
}

/// The registry of sources: one line per source generates `SourcesConfig`
/// and everything that walks over the sources. Each line names the cargo
/// feature that builds the source.
macro_rules! sources {
    ($($(#[doc = $doc:literal])* [$feature:literal] $key:ident: $config:ty,)+) => {
        /// `[sources]`: one table per live source, each the source's own
        /// config (whose field docs are the user docs).
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct SourcesConfig {
            $($(#[doc = $doc])* #[cfg(feature = $feature)] pub $key: $config,)+
        }

        /// The `[sources.*]` keys of the sources built in, in start order.
        #[allow(clippy::vec_init_then_push, reason = "each push is behind its source's feature")]
        pub fn source_keys() -> Vec<&'static str> {
            #[allow(unused_mut, reason = "a build may configure every source out")]
            let mut keys = Vec::new();
            $(#[cfg(feature = $feature)] keys.push(<$config as $crate::Source>::KEY);)+
            keys
        }

        impl vigil_core::validate::Validate for SourcesConfig {
            fn validate(&self, path: &str, problems: &mut vigil_core::validate::Problems) {
                let _ = (path, &problems);
                $(
                    #[cfg(feature = $feature)]
                    if $crate::Source::enabled(&self.$key) {
                        let _ = $crate::Source::check(
                            &self.$key,
                            &vigil_core::validate::join(path, <$config as $crate::Source>::KEY),
                            problems,
                        );
                    }
                )+
            }
        }

        impl SourcesConfig {
            /// Whether the source `key` must be restarted to go from `self` to `new`.
            pub fn changed(&self, key: &str, new: &Self) -> bool {
                $(
                    #[cfg(feature = $feature)]
                    if key == <$config as $crate::Source>::KEY {
                        return self.$key != new.$key;
                    }
                )+
                let _ = (key, new);
                false
            }

            /// Starts the source `key` when it is on and usable here.
            pub fn start_one(
                &self,
                key: &str,
                node: &std::sync::Arc<str>,
                tx: &tokio::sync::mpsc::Sender<vigil_core::model::Batch>,
                registry: &vigil_core::metrics::Registry,
            ) -> Option<$crate::RunningSource> {
                $(
                    #[cfg(feature = $feature)]
                    if key == <$config as $crate::Source>::KEY {
                        return $crate::source::start(&self.$key, node, tx, registry);
                    }
                )+
                let _ = (key, node, tx, registry);
                None
            }

            /// Starts every source that is on and usable here, logging why
            /// the others are off. Must be called inside the Tokio runtime.
            pub fn start_all(
                &self,
                node: &std::sync::Arc<str>,
                tx: &tokio::sync::mpsc::Sender<vigil_core::model::Batch>,
                registry: &vigil_core::metrics::Registry,
            ) -> Vec<$crate::RunningSource> {
                source_keys()
                    .into_iter()
                    .filter_map(|key| self.start_one(key, node, tx, registry))
                    .collect()
            }

            /// The warnings of every enabled source, as `sources.KEY.FIELD …` lines.
            #[allow(clippy::vec_init_then_push, reason = "each push is behind its source's feature")]
            pub fn warnings(&self) -> Vec<String> {
                #[allow(unused_mut, reason = "a build may configure every source out")]
                let mut out = Vec::new();
                $(
                    #[cfg(feature = $feature)]
                    if $crate::Source::enabled(&self.$key) {
                        for w in $crate::Source::warnings(&self.$key) {
                            out.push(format!("sources.{}.{w}", <$config as $crate::Source>::KEY));
                        }
                    }
                )+
                out
            }

            /// Each source's key and state (`on`, `off`, `auto`), in start order.
            #[allow(clippy::vec_init_then_push, reason = "each push is behind its source's feature")]
            pub fn states(&self) -> Vec<(&'static str, &'static str)> {
                #[allow(unused_mut, reason = "a build may configure every source out")]
                let mut states = Vec::new();
                $(
                    #[cfg(feature = $feature)]
                    states.push((<$config as $crate::Source>::KEY, $crate::Source::state(&self.$key)));
                )+
                states
            }
        }
    };
}
pub(crate) use sources;
