//! The [`Detector`] trait a plugin implements, and [`export_detector!`], which
//! turns an implementation into the component's exports on wasm32.

use crate::bindings;
use crate::types::{
    ConfigError, Event, Finding, FindingEvent, PluginInfo, SubscriptionSet, Timestamp,
};

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

    /// Called periodically (and at the end of a replay) with the current time,
    /// for windows and baselines that conclude without a new event. The
    /// default returns nothing.
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
        let events = match crate::packed::decode_batch(&batch) {
            Ok(events) => events,
            Err(e) => panic!("{e}"),
        };
        drop(batch);
        let findings = S::with(|detector| detector.on_events(&events));
        drop(events);
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

impl<S: Singleton> bindings::correlator::Guest for S {
    fn describe() -> PluginInfo {
        <S as bindings::Guest>::describe()
    }

    fn configure(settings: String) -> Result<(), ConfigError> {
        <S as bindings::Guest>::configure(settings)
    }

    fn on_events(batch: Vec<Event>) -> Vec<Finding> {
        <S as bindings::Guest>::on_events(batch)
    }

    fn on_packed_events(batch: Vec<u8>) -> Vec<Finding> {
        <S as bindings::Guest>::on_packed_events(batch)
    }

    fn subscriptions() -> SubscriptionSet {
        <S as bindings::Guest>::subscriptions()
    }

    fn on_tick(now: Timestamp) -> Vec<Finding> {
        <S as bindings::Guest>::on_tick(now)
    }
}

impl<S: Singleton> bindings::correlator::exports::vigil::detector::correlate::Guest for S {
    fn on_findings(batch: Vec<FindingEvent>) -> Vec<Finding> {
        crate::arena::enter_export();
        let findings = S::with(|detector| detector.on_findings(&batch));
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
/// `correlate` (the world `packed-correlator`, WIT 0.1.2): the host then
/// hands the plugin the other plugins' findings through
/// [`Detector::on_findings`]. A plugin receives findings only when exported
/// so.
///
/// It expands to the exports only when compiling for `wasm32`. On native
/// targets it only checks that the type implements [`Detector`] and exports
/// nothing, so several plugins can be linked into one native test binary
/// without their symbols colliding.
#[macro_export]
macro_rules! export_detector {
    ($detector:ty $(,)?) => {
        $crate::export_detector!(@singleton $detector, [export], []);
    };
    ($detector:ty, findings $(,)?) => {
        $crate::export_detector!(@singleton $detector, [correlator::export_correlator], [::correlator]);
    };
    (@singleton $detector:ty, [$($export:tt)+], [$($module:tt)*]) => {
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

            $crate::__private::bindings::$($export)+!(
                VigilExportedDetector with_types_in $crate::__private::bindings$($module)*
            );
        };
    };
}
