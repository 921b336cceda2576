//! The generated host side of the WIT world `vigil:detector/detector`.
//!
//! Kept private to the runtime: the rest of the host speaks `vigil_core::model`,
//! which `with` maps the WIT `types` interface onto, so events are lowered
//! into plugins straight from the host's own structs.

wasmtime::component::bindgen!({
    path: "../../../wit",
    world: "detector",
    with: {
        "vigil:detector/types": vigil_core::model,
    },
});

pub use self::vigil::detector::clock::Host as ClockHost;
pub use self::vigil::detector::log::{Host as LogHost, Level};
pub use self::vigil::detector::state::{Host as StateHost, StateError};
pub use self::vigil::detector::threat_intel::{Host as ThreatIntelHost, IpMatch};
