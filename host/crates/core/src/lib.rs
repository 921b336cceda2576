//! The bottom of Vigil's host: what every other crate shares and nothing
//! else. The event model mirrored on the WIT contract and the finding
//! record, time, config validation (`Problems` with dotted paths), the
//! metrics registry, glob patterns, error chains, private files and
//! directories (`fsperm`), escaping of untrusted text for logs and
//! terminals (`text`), the subjects a plugin was shown and of each event
//! (`subjects`), the bounded per-entity history (`timeline`) and the Docker
//! Engine client. It depends on no other Vigil crate.

pub mod docker;
pub mod error;
pub mod finding_record;
pub mod fsperm;
pub mod glob;
pub mod metrics;
pub mod model;
pub mod subjects;
pub mod subscription;
pub mod text;
pub mod time;
pub mod timeline;
pub mod validate;

/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = "vigil:detector@0.1.5";

/// The instance name of the WIT `types` interface.
pub const WIT_TYPES_INTERFACE: &str = "vigil:detector/types@0.1.5";
