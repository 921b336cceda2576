//! The plugin runtime: one engine, plugins validated and precompiled once,
//! instantiated through `InstancePre`, each call bounded in time, memory
//! and output. A plugin fault is contained, counted and logged; it never
//! stops the host or another plugin.
//!
//! The crate also holds what runs plugins around that core: their persisted
//! state ([`state`]), the threat-intel feeds answered to them ([`intel`]),
//! the plugin set a host loads ([`plugin_set`], [`builtin`]), and the two
//! ways events reach them: in-line for `vigil replay` ([`dispatch`]) and one
//! worker thread per plugin for `vigil run` ([`workers`]).

pub mod builtin;
pub mod dispatch;
pub mod feed;
pub mod intel;
pub mod internal_events;
pub mod plugin_set;
pub mod routing;
pub mod signature;
pub mod state;
pub mod workers;

mod bindings;
mod cache;
mod engine;
mod host_state;
mod limits;
mod runner;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, HasSelf, Linker};
use wasmtime::{Engine, Store};

pub use cache::{CompileSource, CompileStats, ComponentCache, digest};
pub use engine::{ActiveCall, Allocator, EngineSettings, Epochs, HasStore};
pub use host_state::{Clock, ReplayClock, SharedIntel};
pub use limits::{MemoryCapExceeded, PluginLimits};
pub use runner::{CallOutcome, Fault, PluginRunner};

use crate::state::{PluginState, StateBounds};
use bindings::{Detector, DetectorPre};
use host_state::HostState;
use vigil_core::model::{EventKind, PluginInfo};
use vigil_core::text::escape_control;

/// The only interfaces a plugin may import, at one of
/// [`COMPATIBLE_VERSIONS`] (anything else is refused, naming the import).
pub const ALLOWED_INTERFACES: [&str; 5] = [
    "vigil:detector/types",
    "vigil:detector/log",
    "vigil:detector/state",
    "vigil:detector/clock",
    "vigil:detector/threat-intel",
];

/// WIT versions whose plugins this host runs: 0.1.1 to 0.1.5 only added
/// worlds, types, optional exports and host functions (0.1.4:
/// `clock.input-ended`; 0.1.5: the `packed-correlate` export), so
/// wasmtime's semver matching links older imports to the current host (an
/// older plugin simply does not import what it does not know).
pub const COMPATIBLE_VERSIONS: [&str; 6] = ["0.1.0", "0.1.1", "0.1.2", "0.1.3", "0.1.4", "0.1.5"];

/// The export of the `packed-detector` world (`wit/PACKED.md`).
const PACKED_EXPORT: &str = "on-packed-events";

/// The optional export of what a plugin reads of its kinds (WIT 0.1.2).
const SUBSCRIPTIONS_EXPORT: &str = "subscriptions";
/// The interface a plugin exports to receive other plugins' findings
/// (`correlate`, WIT 0.1.2), without its version, and its one function.
const CORRELATE_EXPORT: &str = "vigil:detector/correlate";
const ON_FINDINGS: &str = "on-findings";
/// The interface of the packed fast path of `correlate` (WIT 0.1.5),
/// without its version, and its one function.
const PACKED_CORRELATE_EXPORT: &str = "vigil:detector/packed-correlate";
const ON_PACKED_FINDINGS: &str = "on-packed-findings";
/// The interface a plugin exports to receive Docker Swarm events
/// (`services`, WIT 0.1.3), without its version, and its two functions.
const SERVICES_EXPORT: &str = "vigil:detector/services";
const SERVICE_SUBSCRIPTION: &str = "service-subscription";
const ON_SERVICE_EVENTS: &str = "on-service-events";
/// The interface a plugin exports to receive process events (`processes`,
/// WIT 0.1.3), without its version, and its two functions.
const PROCESSES_EXPORT: &str = "vigil:detector/processes";
const PROCESS_SUBSCRIPTION: &str = "process-subscription";
const ON_PROCESS_EVENTS: &str = "on-process-events";
/// The interface a fleet rule exports to receive the nodes' heartbeats
/// (`fleet`, WIT 0.1.3), without its version, and its one function.
const FLEET_EXPORT: &str = "vigil:detector/fleet";
const ON_HEARTBEATS: &str = "on-heartbeats";

/// Whether a plugin may import this interface instance name.
pub fn import_allowed(name: &str) -> bool {
    name.split_once('@').is_some_and(|(iface, version)| {
        ALLOWED_INTERFACES.contains(&iface) && COMPATIBLE_VERSIONS.contains(&version)
    })
}

fn allowed_imports_list() -> String {
    format!(
        "{} at version {}",
        ALLOWED_INTERFACES.join(", "),
        COMPATIBLE_VERSIONS.join(" or ")
    )
}

/// The engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine configuration.
    #[error("cannot build the Wasm engine: {0}")]
    Engine(String),
    /// The host functions could not be linked.
    #[error("cannot link host functions: {0}")]
    Link(String),
}

/// Why a plugin was not loaded. Each names the plugin; the host goes on
/// without it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file's signature is missing or wrong (`[plugins] trusted_keys`,
    /// `require_signature`); the message names the file and the key id.
    #[error(transparent)]
    Signature(#[from] signature::SignatureError),
    /// The compile cache is unusable.
    #[error("plugin cache {dir} refused: {reason}")]
    Cache { dir: PathBuf, reason: String },
    /// The bytes are not a valid component for this engine.
    #[error("plugin {plugin}: not a valid Wasm component: {reason}")]
    Compile { plugin: String, reason: String },
    /// The component imports something the host does not provide.
    #[error(
        "plugin {plugin} refused: it imports `{import}`, which Vigil does not provide (plugins may import only {allowed})"
    )]
    ForbiddenImport {
        plugin: String,
        import: String,
        allowed: String,
    },
    /// The component does not match the `detector` world.
    #[error("plugin {plugin}: does not implement the vigil:detector world: {reason}")]
    World { plugin: String, reason: String },
    /// Instantiation or `describe` failed.
    #[error("plugin {plugin}: failed to start: {reason}")]
    Start { plugin: String, reason: String },
    /// `describe` returned something unusable.
    #[error("plugin {plugin}: invalid description: {reason}")]
    Describe { plugin: String, reason: String },
    /// `configure` refused the settings.
    #[error("plugin {plugin} refused its settings: {error}")]
    Settings {
        plugin: String,
        error: vigil_core::model::ConfigError,
    },
    /// The plugin's persisted state could not be loaded.
    #[error("plugin {plugin}: {source}")]
    State {
        plugin: String,
        #[source]
        source: crate::state::StateStoreError,
    },
    /// The selection refused the plugin before it ran: its file, its name,
    /// its digest, or a settings/policy entry naming no plugin.
    #[error(transparent)]
    Selection(#[from] plugin_set::SelectionError),
    /// `describe()` gave another name than the one the operator gave the
    /// plugin (the built-in's name, or the file's name without `.wasm`).
    #[error(
        "plugin {origin} refused: it calls itself {claimed:?}, but the name it was given is {expected:?} (a built-in's name, or the file name without `.wasm`)"
    )]
    Identity {
        origin: String,
        expected: String,
        claimed: String,
    },
    /// The operator's policy leaves the plugin nothing to receive.
    #[error("plugin {plugin} refused: {reason}")]
    Policy { plugin: String, reason: String },
    /// Its `subscriptions` export returned filters the host refuses.
    #[error("plugin {plugin} refused its own subscriptions")]
    Subscription {
        plugin: String,
        #[source]
        source: vigil_core::subscription::SubscriptionError,
    },
}

/// Where a plugin came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginOrigin {
    /// Embedded in the `vigil` binary.
    Builtin(&'static str),
    /// Loaded from a file.
    File(PathBuf),
}

impl std::fmt::Display for PluginOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Builtin(n) => write!(f, "builtin:{n}"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Who a plugin is: decided by the operator before the plugin runs, never
/// taken from what the plugin says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The built-in's name or the file's name without `.wasm`:
    /// `describe().name` must be exactly this, else the plugin is refused
    /// before anything of that name (state, logs, findings) is its.
    Named(String),
    /// Whatever `describe()` says. Only for the author tools that run one
    /// file (`vigil plugin test`, `vigil plugin inspect`): such a plugin's
    /// state is never persisted.
    Described,
}

/// What to load.
#[derive(Clone, Debug)]
pub struct PluginSpec {
    pub origin: PluginOrigin,
    /// The name the plugin must have.
    pub identity: Identity,
    pub bytes: Arc<[u8]>,
    /// The settings JSON passed to `configure`.
    pub settings: String,
    pub limits: PluginLimits,
    /// What the operator grants it.
    pub policy: plugin_set::PluginPolicy,
}

/// What every plugin of a host shares: the clock, threat intel, and where
/// state is persisted.
#[derive(Clone)]
pub struct RunContext {
    pub clock: Clock,
    pub intel: SharedIntel,
    /// Directory for persisted plugin state; `None` keeps state in memory.
    pub state_dir: Option<PathBuf>,
}

/// A validated, precompiled plugin, ready to instantiate.
pub struct LoadedPlugin {
    pub info: PluginInfo,
    pub origin: PluginOrigin,
    pub digest: String,
    pub imports: Vec<String>,
    pub compile: CompileStats,
    pub settings: String,
    pub limits: PluginLimits,
    /// The event kinds it receives: those it subscribes to that its policy
    /// allows.
    pub kinds: Vec<EventKind>,
    /// Whether its findings may trigger the response stage.
    pub may_respond: bool,
    pre: DetectorPre<HostState>,
    /// `on-packed-events`, when the plugin exports it (the fast path).
    packed: Option<ComponentExportIndex>,
    /// `subscriptions`, when the plugin exports it (WIT 0.1.2).
    subscriptions: Option<ComponentExportIndex>,
    /// `correlate.on-findings`, when the plugin exports it and its policy
    /// lets it receive other plugins' findings.
    on_findings: Option<ComponentExportIndex>,
    /// `packed-correlate.on-packed-findings` (WIT 0.1.5), the fast path
    /// the host calls instead of `on_findings`: only when that one is set
    /// too (exported and granted).
    packed_findings: Option<ComponentExportIndex>,
    /// The `services` export (`service-subscription`, `on-service-events`),
    /// when the plugin has one (WIT 0.1.3).
    services: Option<ServicesExport>,
    /// The `processes` export (`process-subscription`, `on-process-events`),
    /// when the plugin has one (WIT 0.1.3).
    processes: Option<ServicesExport>,
    /// `fleet.on-heartbeats`, when the plugin exports it (WIT 0.1.3): only
    /// `vigil fleet` calls it.
    on_heartbeats: Option<ComponentExportIndex>,
}

/// The functions of a plugin's `services` export (WIT 0.1.3), or of its
/// `processes` export (WIT 0.1.3), which has the same shape: a filter read
/// at load and a batch call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServicesExport {
    pub(crate) subscription: ComponentExportIndex,
    pub(crate) on_events: ComponentExportIndex,
}

impl LoadedPlugin {
    /// Whether the plugin exports the `services` interface (Docker Swarm
    /// events, WIT 0.1.3). Whether it receives them also depends on its
    /// policy: see [`PluginRunner::subscription`].
    pub fn exports_services(&self) -> bool {
        self.services.is_some()
    }

    /// Whether the plugin exports the `processes` interface (process
    /// events, WIT 0.1.3). Whether it receives them also depends on its
    /// policy: see [`PluginRunner::subscription`].
    pub fn exports_processes(&self) -> bool {
        self.processes.is_some()
    }

    /// Whether the plugin exports the `fleet` interface (the nodes'
    /// heartbeats, WIT 0.1.3). Only `vigil fleet` hands them on.
    pub fn takes_heartbeats(&self) -> bool {
        self.on_heartbeats.is_some()
    }

    /// Whether batches go to the plugin packed (`wit/PACKED.md`).
    pub fn takes_packed(&self) -> bool {
        self.packed.is_some()
    }

    /// Whether the plugin receives the findings of the other plugins: it
    /// exports `correlate` and its policy does not withhold them.
    pub fn takes_findings(&self) -> bool {
        self.on_findings.is_some()
    }

    /// Whether findings go to the plugin packed (`packed-correlate`, WIT
    /// 0.1.5); only when it [takes findings](Self::takes_findings).
    pub fn takes_packed_findings(&self) -> bool {
        self.packed_findings.is_some()
    }
}

/// The runtime: engine, linker, cache and epoch ticker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<ComponentCache>,
    epochs: Epochs,
}

impl Runtime {
    /// Builds the engine and the linker of host functions.
    pub fn new(settings: &EngineSettings, cache_dir: Option<&Path>) -> Result<Self, RuntimeError> {
        let engine = engine::build_engine(settings)?;
        let mut linker = Linker::new(&engine);
        Detector::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError::Link(e.to_string()))?;
        let cache = match cache_dir.map(ComponentCache::open).transpose() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "plugin compile cache disabled");
                None
            }
        };
        // Without its ticker no plugin call could be interrupted: no runtime.
        let epochs = Epochs::start(&engine, settings.epoch_tick)
            .map_err(|e| RuntimeError::Engine(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Self {
            engine,
            linker,
            cache,
            epochs,
        })
    }

    /// The engine (for tools and benchmarks).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The epoch ticker (its tick count, for tests and metrics).
    pub fn epochs(&self) -> &Epochs {
        &self.epochs
    }

    /// Lists a component's imports without instantiating it.
    pub fn imports(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Vec<String>, CompileStats), LoadError> {
        let digest = digest(bytes);
        let (component, stats) =
            cache::compile(&self.engine, self.cache.as_ref(), name, bytes, &digest)?;
        Ok((component_imports(&self.engine, &component), stats))
    }

    /// Validates, compiles (or loads from cache) and pre-instantiates a plugin,
    /// reads its description, and returns a runner configured with its
    /// settings. Any failure names the plugin and the reason.
    pub fn load(&self, spec: PluginSpec, ctx: &RunContext) -> Result<PluginRunner, LoadError> {
        let label = spec.origin.to_string();
        let digest = digest(&spec.bytes);
        let (component, compile) = cache::compile(
            &self.engine,
            self.cache.as_ref(),
            &label,
            &spec.bytes,
            &digest,
        )?;
        let imports = component_imports(&self.engine, &component);
        if let Some(bad) = imports.iter().find(|i| !import_allowed(i)) {
            return Err(LoadError::ForbiddenImport {
                plugin: label,
                import: bad.clone(),
                allowed: allowed_imports_list(),
            });
        }
        let packed = component.get_export_index(None, PACKED_EXPORT);
        let subscriptions = component.get_export_index(None, SUBSCRIPTIONS_EXPORT);
        let on_findings = interface_func(&self.engine, &component, CORRELATE_EXPORT, ON_FINDINGS);
        let packed_findings = interface_func(
            &self.engine,
            &component,
            PACKED_CORRELATE_EXPORT,
            ON_PACKED_FINDINGS,
        );
        let on_heartbeats = interface_func(&self.engine, &component, FLEET_EXPORT, ON_HEARTBEATS);
        let services = side_export(
            &self.engine,
            &component,
            SERVICES_EXPORT,
            [SERVICE_SUBSCRIPTION, ON_SERVICE_EVENTS],
        );
        let processes = side_export(
            &self.engine,
            &component,
            PROCESSES_EXPORT,
            [PROCESS_SUBSCRIPTION, ON_PROCESS_EVENTS],
        );
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(DetectorPre::new)
            .map_err(|e| LoadError::World {
                plugin: label.clone(),
                reason: runner::error_reason(&e),
            })?;

        // Describe in a throwaway instance, logging under the plugin's
        // origin (its file), so that what it claims to be is checked before
        // anything of that name (state, log attribution) is given to it.
        let scratch = Arc::new(Mutex::new(PluginState::in_memory(bounds(&spec.limits))));
        let mut store = self.store(&pre, label.clone().into(), scratch, ctx, &spec.limits);
        // One deadline covers the instantiation and `describe`.
        let info = self
            .epochs
            .bounded(&mut store, spec.limits.deadline_ms, |store| {
                let bindings = pre.instantiate(&mut *store).map_err(|e| LoadError::Start {
                    plugin: label.clone(),
                    reason: runner::error_reason(&e),
                })?;
                bindings
                    .call_describe(&mut *store)
                    .map_err(|e| LoadError::Start {
                        plugin: label.clone(),
                        reason: format!("describe: {}", runner::error_reason(&e)),
                    })
            })?;
        drop(store);
        let mut info = info;
        let side_input = on_findings.is_some() || on_heartbeats.is_some();
        let changed =
            validate_info(&mut info, side_input).map_err(|reason| LoadError::Describe {
                plugin: label.clone(),
                reason,
            })?;
        if let Identity::Named(name) = &spec.identity
            && *name != info.name
        {
            return Err(LoadError::Identity {
                origin: label,
                expected: name.clone(),
                claimed: info.name,
            });
        }
        let on_findings = granted_findings(&spec, &info, &label, on_findings);
        // Without `correlate` (or without the grant) the packed path is
        // nothing: it is only ever another way to make the same call.
        let packed_findings = packed_findings.filter(|_| on_findings.is_some());
        let kinds = granted_kinds(
            &spec,
            &info,
            &label,
            on_findings.is_some() || on_heartbeats.is_some(),
        )?;
        let may_respond = spec
            .policy
            .may_respond(matches!(spec.origin, PluginOrigin::Builtin(_)));
        if !changed.is_empty() {
            tracing::warn!(
                plugin = info.name.as_str(),
                origin = %label,
                fields = %changed.join(","),
                "plugin description has control characters or text over its bound: escaped and cut"
            );
        }

        let state = match (&ctx.state_dir, &spec.identity) {
            (Some(dir), Identity::Named(name)) => {
                PluginState::persisted(dir, name, bounds(&spec.limits)).map_err(|source| {
                    LoadError::State {
                        plugin: name.clone(),
                        source,
                    }
                })?
            }
            _ => PluginState::in_memory(bounds(&spec.limits)),
        };
        let plugin = Arc::new(LoadedPlugin {
            info,
            origin: spec.origin,
            digest,
            imports,
            compile,
            settings: spec.settings,
            limits: spec.limits,
            kinds,
            may_respond,
            pre,
            packed,
            subscriptions,
            on_findings,
            packed_findings,
            services,
            processes,
            on_heartbeats,
        });
        let mut runner = PluginRunner::new(
            self.engine.clone(),
            self.epochs.clone(),
            plugin,
            Arc::new(Mutex::new(state)),
            ctx.clone(),
        );
        runner.start()?;
        Ok(runner)
    }

    fn store(
        &self,
        pre: &DetectorPre<HostState>,
        plugin: Arc<str>,
        state: Arc<Mutex<PluginState>>,
        ctx: &RunContext,
        limits: &PluginLimits,
    ) -> Store<HostState> {
        new_store(pre.engine(), plugin, state, ctx, limits)
    }
}

/// A store for one plugin instance. Its epoch deadline is left expired
/// (wasmtime's default): every entry into the guest goes through
/// [`Epochs::bounded`], and one that does not traps at once.
fn new_store(
    engine: &Engine,
    plugin: Arc<str>,
    state: Arc<Mutex<PluginState>>,
    ctx: &RunContext,
    limits: &PluginLimits,
) -> Store<HostState> {
    let data = HostState {
        plugin,
        limiter: limits::MemoryLimiter::new(limits.memory_bytes),
        state,
        clock: ctx.clock.clone(),
        intel: ctx.intel.clone(),
        log_budget: limits.max_log_records_per_call,
        logs_dropped: 0,
        state_refusals: 0,
    };
    let mut store = Store::new(engine, data);
    store.limiter(|s| &mut s.limiter);
    store.epoch_deadline_trap();
    store
}

/// The kinds a plugin receives: what it subscribes to, narrowed by its
/// policy (the narrowing logged); none at all refuses it.
fn granted_kinds(
    spec: &PluginSpec,
    info: &PluginInfo,
    origin: &str,
    side_input: bool,
) -> Result<Vec<EventKind>, LoadError> {
    let (kept, dropped) = spec.policy.narrow(&info.subscribes);
    let names = |ks: &[EventKind]| {
        ks.iter()
            .map(|k| plugin_set::policy::kind_name(*k))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // A correlating plugin or a fleet rule may want findings or heartbeats
    // only: nothing to refuse then.
    if kept.is_empty() && !(side_input && info.subscribes.is_empty()) {
        return Err(LoadError::Policy {
            plugin: info.name.clone(),
            reason: format!(
                "it subscribes to {} only, none of which plugins.policy.{}.kinds allows",
                names(&info.subscribes),
                info.name
            ),
        });
    }
    if !dropped.is_empty() {
        tracing::warn!(
            plugin = %info.name,
            origin,
            withheld = %names(&dropped),
            receives = %names(&kept),
            "plugin subscribes to event kinds its plugins.policy.<name>.kinds does not allow: it will not receive them"
        );
    }
    Ok(kept)
}

/// `on-findings` of the plugin's `correlate` export, when its policy grants
/// it other plugins' findings (a withholding is logged).
fn granted_findings(
    spec: &PluginSpec,
    info: &PluginInfo,
    origin: &str,
    export: Option<ComponentExportIndex>,
) -> Option<ComponentExportIndex> {
    let export = export?;
    if spec.policy.findings_granted() {
        return Some(export);
    }
    tracing::warn!(
        plugin = %info.name,
        origin,
        "plugin exports `correlate` but plugins.policy.<name> withholds other plugins' findings: it will not receive them"
    );
    None
}

/// The index of function `func` in the component's export of interface
/// `iface` (`correlate`, `fleet`) at a version this host runs, if it
/// exports one.
fn interface_func(
    engine: &Engine,
    component: &Component,
    iface: &str,
    func: &str,
) -> Option<ComponentExportIndex> {
    let ty = component.component_type();
    let name = ty.exports(engine).find_map(|(name, _)| {
        let (exported, version) = name.split_once('@')?;
        (exported == iface && COMPATIBLE_VERSIONS.contains(&version)).then_some(name)
    })?;
    let instance = component.get_export_index(None, name)?;
    component.get_export_index(Some(&instance), func)
}

/// The two functions (filter, batch call) of the component's export of
/// interface `iface` (`services`, `processes`) at a version this host runs,
/// if it exports one with both.
fn side_export(
    engine: &Engine,
    component: &Component,
    iface: &str,
    [subscription, on_events]: [&str; 2],
) -> Option<ServicesExport> {
    let ty = component.component_type();
    let name = ty.exports(engine).find_map(|(name, _)| {
        let (exported, version) = name.split_once('@')?;
        (exported == iface && COMPATIBLE_VERSIONS.contains(&version)).then_some(name)
    })?;
    let instance = component.get_export_index(None, name)?;
    Some(ServicesExport {
        subscription: component.get_export_index(Some(&instance), subscription)?,
        on_events: component.get_export_index(Some(&instance), on_events)?,
    })
}

fn bounds(limits: &PluginLimits) -> StateBounds {
    StateBounds {
        quota_bytes: limits.state_quota_bytes,
        max_value_bytes: limits.state_max_value_bytes,
        max_key_bytes: limits.state_max_key_bytes,
    }
}

fn component_imports(engine: &Engine, component: &Component) -> Vec<String> {
    let ty = component.component_type();
    let mut out: Vec<String> = ty
        .imports(engine)
        .map(|(name, item)| match item.ty {
            ComponentItem::ComponentInstance(_) => name.to_owned(),
            ComponentItem::ComponentFunc(_) => format!("{name} (function)"),
            ComponentItem::CoreFunc(_) => format!("{name} (core function)"),
            ComponentItem::Module(_) => format!("{name} (module)"),
            ComponentItem::Component(_) => format!("{name} (component)"),
            _ => name.to_owned(),
        })
        .collect();
    out.sort();
    out
}

/// Bounds of what `describe` returns, in bytes of escaped text.
const INFO_VERSION_BYTES: usize = 64;
const INFO_DESCRIPTION_BYTES: usize = 1024;
/// A setting's name, kind, default value (a JSON document: the built-ins'
/// lists of paths take a few hundred bytes) and description.
const INFO_SETTING_BYTES: [usize; 4] = [128, 256, 4096, 1024];
const INFO_SETTINGS: usize = 64;

/// Refuses a description the host cannot use (a bad name, no
/// subscription) and makes the rest safe to print: control characters in
/// the version, description and settings are escaped and each is cut to its
/// bound (see [`vigil_core::text::escape_control`]). The plugin still
/// runs: a long description is no reason to lose a detector. Returns which
/// fields were changed, for a warning.
/// `side_input`: the plugin exports `correlate` or `fleet`, so it may
/// subscribe to no event kind.
fn validate_info(info: &mut PluginInfo, side_input: bool) -> Result<Vec<&'static str>, String> {
    let valid_name = !info.name.is_empty()
        && info.name.len() <= 64
        && info
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid_name {
        return Err(format!(
            "name \"{}\" must be 1-64 characters of a-z, 0-9, '-' or '_'",
            escape_control(&info.name, 80)
        ));
    }
    if info.subscribes.is_empty() && !side_input {
        return Err(
            "it subscribes to no event kind (and exports neither `correlate` nor `fleet`)".into(),
        );
    }
    let mut changed = Vec::new();
    if sanitize(&mut info.version, INFO_VERSION_BYTES) {
        changed.push("version");
    }
    if sanitize(&mut info.description, INFO_DESCRIPTION_BYTES) {
        changed.push("description");
    }
    let mut settings_changed = info.settings.len() > INFO_SETTINGS;
    info.settings.truncate(INFO_SETTINGS);
    for s in &mut info.settings {
        let texts = [
            &mut s.name,
            &mut s.kind,
            &mut s.default_value,
            &mut s.description,
        ];
        for (text, max) in texts.into_iter().zip(INFO_SETTING_BYTES) {
            settings_changed |= sanitize(text, max);
        }
    }
    if settings_changed {
        changed.push("settings");
    }
    Ok(changed)
}

/// Escapes and bounds `text` in place; true when it changed.
fn sanitize(text: &mut String, max: usize) -> bool {
    let clean = match escape_control(text, max) {
        std::borrow::Cow::Borrowed(_) => return false,
        std::borrow::Cow::Owned(clean) => clean,
    };
    *text = clean;
    true
}
