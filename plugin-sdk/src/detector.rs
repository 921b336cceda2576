//! The [`Detector`] trait a plugin implements, and [`export_detector!`], which
//! turns an implementation into the component's exports on wasm32.

use crate::bindings;
use crate::types::{
    ConfigError, Event, Finding, FindingEvent, Heartbeat, PluginInfo, ProcessEvent, ProcessFilter,
    ServiceEvent, ServiceFilter, SubscriptionSet, Timestamp,
};
use crate::view::EventView;

/// A detector: the one trait a plugin implements.
///
/// The host calls [`describe`](Detector::describe) once at load, then
/// [`configure`](Detector::configure) once with the operator's settings, then
/// [`on_events`](Detector::on_events) for every batch of the event kinds the
/// plugin subscribed to, and [`on_tick`](Detector::on_tick) periodically.
///
/// Inside a component there is exactly one instance, created with
/// [`Default`] on the first call that needs it and kept for the instance's
/// life. Natively (in tests, or when the host links a plugin as a library)
/// you create and drive instances yourself.
///
/// Keep detection logic free of [`crate::host`] calls where you can: it is
/// then plain, deterministic Rust that the host can also call natively.
pub trait Detector: Default + 'static {
    /// The plugin's name, version, subscriptions and settings
    /// (see [`PluginInfo::builder`]).
    fn describe() -> PluginInfo;

    /// Applies the operator's settings: a JSON object, `{}` (or empty) when
    /// none were given. Refuse bad settings with every problem at once; see
    /// [`crate::settings::parse`].
    ///
    /// The default accepts only an empty object, for plugins without settings.
    ///
    /// # Errors
    /// A [`ConfigError`] listing every problem with the settings; the host then
    /// does not start the plugin.
    fn configure(&mut self, settings: &str) -> Result<(), ConfigError> {
        crate::settings::expect_none(settings)
    }

    /// What the plugin reads of the event kinds it subscribes to: the host
    /// evaluates these filters before it encodes anything, so events the
    /// plugin would skip cost it nothing (see [`SubscriptionSet`]). Called
    /// once at load, after [`configure`](Detector::configure), so it may
    /// follow the settings.
    ///
    /// The default is every event of the plugin's kinds. A filter must never
    /// hide an event `on_events` would act on: the host checks the filters,
    /// not their relation to the detection logic, so test both together.
    fn subscriptions(&self) -> SubscriptionSet {
        SubscriptionSet::everything()
    }

    /// Examines a batch of events, oldest first, and returns the findings.
    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding>;

    /// The same, on events read in place from the host's packed batch
    /// ([`crate::view`]): strings borrowed from the buffer, lists read when
    /// iterated, nothing copied. This is what a component's
    /// `on-packed-events` calls.
    ///
    /// Implement it for speed, and then implement
    /// [`on_events`](Detector::on_events) as
    /// `self.on_event_views(&views_of(batch))` so that both take the same
    /// path ([`crate::view::views_of`]). The default hands
    /// [`on_events`](Detector::on_events) owned copies of the events.
    fn on_event_views(&mut self, batch: &[EventView<'_>]) -> Vec<Finding> {
        // In the arena, like the decode of the owned events it replaces:
        // the copies die before this returns.
        let owned =
            crate::arena::in_arena(|| batch.iter().map(EventView::to_event).collect::<Vec<_>>());
        let findings = self.on_events(&owned);
        crate::arena::discard(owned);
        findings
    }

    /// Called periodically (and at the end of a replay) with the current time,
    /// for windows and baselines that conclude without a new event. During
    /// the final tick of a replay [`crate::host::clock::input_ended`] is
    /// true: nothing follows, so report what you hold back. The default
    /// returns nothing.
    fn on_tick(&mut self, now: Timestamp) -> Vec<Finding> {
        let _ = now;
        Vec::new()
    }

    /// Examines a batch of the *other* plugins' findings, oldest first
    /// (WIT 0.1.2, `correlate`), and returns new findings: correlation
    /// rules. Called only when the plugin is exported with
    /// `export_detector!(T, findings)`; the default returns nothing.
    ///
    /// Each [`FindingEvent`] carries the reporting plugin's name as the host
    /// knows it, the time, the node, its depth and the host's verdict on
    /// each entity. Only the entities the host verified
    /// ([`FindingEvent::verified_entities`]) are verified again when your
    /// findings name them.
    fn on_findings(&mut self, batch: &[FindingEvent]) -> Vec<Finding> {
        let _ = batch;
        Vec::new()
    }

    /// Which Docker Swarm events the plugin reads (WIT 0.1.3, `services`):
    /// the host evaluates the filter before calling
    /// [`on_service_events`](Detector::on_service_events). Called once at
    /// load, after [`configure`](Detector::configure), only when the plugin
    /// is exported with `export_detector!(T, services)`. The default is
    /// every Swarm event.
    fn service_filter(&self) -> ServiceFilter {
        ServiceFilter::everything()
    }

    /// Examines a batch of Docker Swarm events (services with their spec,
    /// nodes, secrets, configs), oldest first, as a swarm manager sees them
    /// (WIT 0.1.3, `services`). Called only when the plugin is exported
    /// with `export_detector!(T, services)`, subscribes to `container`
    /// events and its policy grants them; the default returns nothing.
    fn on_service_events(&mut self, batch: &[ServiceEvent]) -> Vec<Finding> {
        let _ = batch;
        Vec::new()
    }

    /// Which process events the plugin reads (WIT 0.1.3, `processes`): the
    /// host evaluates the filter before calling
    /// [`on_process_events`](Detector::on_process_events). Called once at
    /// load, after [`configure`](Detector::configure), only when the plugin
    /// is exported with `export_detector!(T, processes)`. The default is
    /// every `exec` event (writes to watched files need
    /// [`ProcessFilter::writes`]).
    fn process_filter(&self) -> ProcessFilter {
        ProcessFilter::everything()
    }

    /// Examines a batch of process events (programs executed, and writes
    /// to watched files when the filter asks for them, each with its
    /// container), oldest first (WIT 0.1.3, `processes`). Called only
    /// when the plugin is exported with `export_detector!(T, processes)`,
    /// subscribes to `container` events and its policy grants them; the
    /// default returns nothing.
    fn on_process_events(&mut self, batch: &[ProcessEvent]) -> Vec<Finding> {
        let _ = batch;
        Vec::new()
    }

    /// Examines a batch of the nodes' heartbeats, oldest first, as `vigil
    /// fleet` reads them (WIT 0.1.3, `fleet`), and returns findings about
    /// the fleet: fleet rules such as "a node runs with a source off" or "a
    /// node runs another Vigil version". Called only in `vigil fleet`, and
    /// only when the plugin is exported with `export_detector!(T,
    /// heartbeats)`; a plugin on a node never receives heartbeats. The
    /// default returns nothing.
    ///
    /// A [`Heartbeat`]'s `node` is the node its NATS subject names (the
    /// fleet skips one that speaks for another node); everything else is
    /// that node's own word. After a takeover, the new active instance
    /// hands the last heartbeat of every node again: report each situation
    /// with the same rule, entities and event ids, and the fleet reports it
    /// once.
    fn on_heartbeats(&mut self, batch: &[Heartbeat]) -> Vec<Finding> {
        let _ = batch;
        Vec::new()
    }
}

/// Where [`export_detector!`] keeps the component's one detector instance.
/// Implemented by the macro for a type private to the plugin crate.
#[doc(hidden)]
pub trait Singleton: 'static {
    /// The plugin's detector.
    type Detector: Detector;
    /// Runs `f` on the instance, creating it with `Default` first if needed.
    fn with<R>(f: impl FnOnce(&mut Self::Detector) -> R) -> R;
}

impl<S: Singleton> bindings::Guest for S {
    // Each body runs between `enter_export` and `leave_export`, and drops its
    // arguments before leaving: see `crate::arena` for why.
    fn describe() -> PluginInfo {
        crate::arena::enter_export();
        let info = S::Detector::describe();
        crate::arena::leave_export();
        info
    }

    fn configure(settings: String) -> Result<(), ConfigError> {
        crate::arena::enter_export();
        let result = S::with(|detector| detector.configure(&settings));
        drop(settings);
        crate::arena::leave_export();
        result
    }

    fn on_events(batch: Vec<Event>) -> Vec<Finding> {
        crate::arena::enter_export();
        let findings = S::with(|detector| detector.on_events(&batch));
        drop(batch);
        crate::arena::leave_export();
        findings
    }

    fn on_packed_events(batch: Vec<u8>) -> Vec<Finding> {
        crate::arena::enter_export();
        // The host encodes what it would otherwise lower, so a refusal is a
        // host bug: trap (the host counts and logs the fault) rather than
        // run the detector on a guess.
        // Views into `batch`, checked whole before the detector sees one;
        // their list is in the arena: it dies with this body, like `batch`.
        let events = match crate::arena::in_arena(|| crate::view::decode_views(&batch)) {
            Ok(events) => events,
            Err(e) => panic!("{e}"),
        };
        let findings = S::with(|detector| detector.on_event_views(&events));
        crate::arena::discard(events);
        drop(batch);
        crate::arena::leave_export();
        findings
    }

    fn subscriptions() -> SubscriptionSet {
        crate::arena::enter_export();
        let set = S::with(|detector| detector.subscriptions());
        crate::arena::leave_export();
        set
    }

    fn on_tick(now: Timestamp) -> Vec<Finding> {
        crate::arena::enter_export();
        let findings = S::with(|detector| detector.on_tick(now));
        crate::arena::leave_export();
        findings
    }
}

// The side exports, one fragment world each (see `crate::bindings`): each
// body runs between `enter_export` and `leave_export` like those above.

impl<S: Singleton> bindings::correlate_export::exports::vigil::detector::correlate::Guest for S {
    fn on_findings(batch: Vec<FindingEvent>) -> Vec<Finding> {
        crate::arena::enter_export();
        let findings = S::with(|detector| detector.on_findings(&batch));
        drop(batch);
        crate::arena::leave_export();
        findings
    }
}

impl<S: Singleton> bindings::correlate_export::exports::vigil::detector::packed_correlate::Guest
    for S
{
    fn on_packed_findings(batch: Vec<u8>) -> Vec<Finding> {
        crate::arena::enter_export();
        // As `on_packed_events`: a refusal is a host bug, so trap.
        let fed = match crate::arena::in_arena(|| crate::packed::decode_findings(&batch)) {
            Ok(fed) => fed,
            Err(e) => panic!("{e}"),
        };
        drop(batch);
        let findings = S::with(|detector| detector.on_findings(&fed));
        crate::arena::discard(fed);
        crate::arena::leave_export();
        findings
    }
}

impl<S: Singleton> bindings::services_export::exports::vigil::detector::services::Guest for S {
    fn service_subscription() -> ServiceFilter {
        crate::arena::enter_export();
        let filter = S::with(|detector| detector.service_filter());
        crate::arena::leave_export();
        filter
    }

    fn on_service_events(batch: Vec<ServiceEvent>) -> Vec<Finding> {
        crate::arena::enter_export();
        let findings = S::with(|detector| detector.on_service_events(&batch));
        drop(batch);
        crate::arena::leave_export();
        findings
    }
}

impl<S: Singleton> bindings::processes_export::exports::vigil::detector::processes::Guest for S {
    fn process_subscription() -> ProcessFilter {
        crate::arena::enter_export();
        let filter = S::with(|detector| detector.process_filter());
        crate::arena::leave_export();
        filter
    }

    fn on_process_events(batch: Vec<ProcessEvent>) -> Vec<Finding> {
        crate::arena::enter_export();
        let findings = S::with(|detector| detector.on_process_events(&batch));
        drop(batch);
        crate::arena::leave_export();
        findings
    }
}

impl<S: Singleton> bindings::fleet_export::exports::vigil::detector::fleet::Guest for S {
    fn on_heartbeats(batch: Vec<Heartbeat>) -> Vec<Finding> {
        crate::arena::enter_export();
        let findings = S::with(|detector| detector.on_heartbeats(&batch));
        drop(batch);
        crate::arena::leave_export();
        findings
    }
}

/// Exports a [`Detector`] as the component's `describe`, `configure`,
/// `on-events`, `on-packed-events` (the packed fast path, decoded here),
/// `subscriptions` and `on-tick`.
///
/// Write it once, at the top level of the plugin crate:
/// `vigil_plugin_sdk::export_detector!(MyDetector);`
///
/// `vigil_plugin_sdk::export_detector!(MyDetector, findings);` also exports
/// `correlate` and its packed fast path `packed-correlate` (the world
/// `packed-correlator`, WIT 0.1.2 and 0.1.5): the host then hands the plugin
/// the other plugins' findings through [`Detector::on_findings`]. A plugin
/// receives findings only when exported so.
///
/// `vigil_plugin_sdk::export_detector!(MyDetector, services);` also exports
/// `services` (the world `packed-service-detector`, WIT 0.1.3): the host
/// then hands the plugin the Docker Swarm events of a manager node that
/// [`Detector::service_filter`] selects, through
/// [`Detector::on_service_events`]. A plugin receives them only when
/// exported so (and subscribed to `container` events).
///
/// `vigil_plugin_sdk::export_detector!(MyDetector, processes);` also
/// exports `processes` (the world `packed-process-detector`, WIT 0.1.3):
/// the host then hands the plugin the process events (every `exec`, with
/// its container) that [`Detector::process_filter`] selects, through
/// [`Detector::on_process_events`]. A plugin receives them only when
/// exported so (and subscribed to `container` events).
///
/// The extra exports combine, named in this order: `findings, services`
/// (world `packed-service-correlator`), `findings, processes`
/// (`packed-process-correlator`), `services, processes`
/// (`packed-service-process-detector`), and `findings, services,
/// processes` (`packed-service-process-correlator`), each giving the plugin
/// every kind it names:
///
/// ```
/// use vigil_plugin_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct Watcher;
///
/// impl Detector for Watcher {
///     fn describe() -> PluginInfo {
///         PluginInfo::builder("watcher", "0.1.0")
///             .subscribe(EventKind::Container)
///             .build()
///     }
///     fn on_events(&mut self, _batch: &[Event]) -> Vec<Finding> {
///         Vec::new()
///     }
///     fn on_process_events(&mut self, _batch: &[ProcessEvent]) -> Vec<Finding> {
///         Vec::new()
///     }
///     fn on_findings(&mut self, _batch: &[FindingEvent]) -> Vec<Finding> {
///         Vec::new()
///     }
/// }
///
/// vigil_plugin_sdk::export_detector!(Watcher, findings, processes);
/// ```
///
/// `heartbeats` adds the `fleet` export (WIT 0.1.3): a fleet rule. In
/// `vigil fleet` the host hands the plugin every node's heartbeat through
/// [`Detector::on_heartbeats`]; a plugin receives heartbeats only when
/// exported so, and only in `vigil fleet`. `findings, heartbeats` (world
/// `packed-fleet-correlator`) is a fleet rule on both.
///
/// It expands to the exports only when compiling for `wasm32`. On native
/// targets it only checks that the type implements [`Detector`] and exports
/// nothing, so several plugins can be linked into one native test binary
/// without their symbols colliding.
#[macro_export]
macro_rules! export_detector {
    ($detector:ty $(,)?) => {
        $crate::export_detector!(@singleton $detector, []);
    };
    ($detector:ty, findings $(,)?) => {
        $crate::export_detector!(@singleton $detector, [correlate_export]);
    };
    ($detector:ty, services $(,)?) => {
        $crate::export_detector!(@singleton $detector, [services_export]);
    };
    ($detector:ty, processes $(,)?) => {
        $crate::export_detector!(@singleton $detector, [processes_export]);
    };
    ($detector:ty, heartbeats $(,)?) => {
        $crate::export_detector!(@singleton $detector, [fleet_export]);
    };
    ($detector:ty, findings, heartbeats $(,)?) => {
        $crate::export_detector!(@singleton $detector, [correlate_export fleet_export]);
    };
    ($detector:ty, findings, services $(,)?) => {
        $crate::export_detector!(@singleton $detector, [correlate_export services_export]);
    };
    ($detector:ty, findings, processes $(,)?) => {
        $crate::export_detector!(@singleton $detector, [correlate_export processes_export]);
    };
    ($detector:ty, services, processes $(,)?) => {
        $crate::export_detector!(@singleton $detector, [services_export processes_export]);
    };
    ($detector:ty, findings, services, processes $(,)?) => {
        $crate::export_detector!(
            @singleton $detector,
            [correlate_export services_export processes_export]
        );
    };
    (@singleton $detector:ty, [$($fragment:ident)*]) => {
        const _: fn() = || {
            fn implements_detector<D: $crate::Detector>() {}
            implements_detector::<$detector>();
        };

        #[cfg(target_arch = "wasm32")]
        #[allow(
            unsafe_code,
            reason = "the component ABI exports generated by wit-bindgen"
        )]
        const _: () = {
            struct VigilExportedDetector;

            ::std::thread_local! {
                // A component instance is single-threaded and never re-entered,
                // so the RefCell is never contended.
                static VIGIL_DETECTOR: ::core::cell::RefCell<::core::option::Option<$detector>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            impl $crate::__private::Singleton for VigilExportedDetector {
                type Detector = $detector;

                fn with<R>(f: impl ::core::ops::FnOnce(&mut $detector) -> R) -> R {
                    VIGIL_DETECTOR.with(|cell| {
                        let mut slot = cell.borrow_mut();
                        f(
                            slot.get_or_insert_with(
                                <$detector as ::core::default::Default>::default,
                            ),
                        )
                    })
                }
            }

            // `packed-detector`, then one fragment world per extra export:
            // the component tooling unions their worlds into the packed
            // world of the combination.
            $crate::__private::bindings::export!(
                VigilExportedDetector with_types_in $crate::__private::bindings
            );
            $(
                $crate::__private::bindings::$fragment::export!(
                    VigilExportedDetector with_types_in $crate::__private::bindings::$fragment
                );
            )*
        };
    };
    ($detector:ty, $($other:tt)*) => {
        ::core::compile_error!(
            "export_detector!: after the type, name the extra exports in this order, each at most once: `findings`, `services`, `processes`; or `heartbeats`, alone or after `findings` (e.g. `export_detector!(T, findings, processes)`)"
        );
    };
}
