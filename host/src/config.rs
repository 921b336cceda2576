//! The TOML configuration file (`vigil run --config FILE`, `vigil config
//! check FILE`): typed sections, each validated by its own module, all
//! problems reported at once with their paths.

mod problems;

pub use problems::{InvalidConfig, Problem, Problems, Validate, join};
