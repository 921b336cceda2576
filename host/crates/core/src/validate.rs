//! Validation that reports every problem at once, each with the dotted path
//! of the setting it is about (`outputs.webhook[0].url: …`), so an operator
//! fixes a config file in one pass instead of one error per run.

use std::fmt;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the setting, e.g. `outputs.file[1].max_bytes`.
    pub path: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The problems found so far.
#[derive(Debug, Default, Clone)]
pub struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    /// Records a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.list.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// How many problems were found so far (a section compares it before
    /// and after checking itself).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// No problem found.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The problems, in the order found.
    pub fn list(&self) -> &[Problem] {
        &self.list
    }

    /// `Ok` when empty, else every problem as one error.
    pub fn into_result(self) -> Result<(), InvalidConfig> {
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(InvalidConfig(self.list))
        }
    }
}

/// Joins a parent path and a child key: `join("outputs", "file")` is
/// `outputs.file`; an empty parent gives the key alone.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// A config section that checks its own values (what serde's types cannot
/// express: ranges, URLs, mutually exclusive options, files that must exist).
pub trait Validate {
    /// Pushes every problem of `self`, found at `path`, onto `problems`.
    fn validate(&self, path: &str, problems: &mut Problems);
}

/// A config with problems; displays one line per problem.
#[derive(Debug, Clone, thiserror::Error)]
pub struct InvalidConfig(pub Vec<Problem>);

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in the configuration", self.0.len())?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_problem_with_its_path() {
        let mut p = Problems::default();
        p.push(join("outputs", "file[0].path"), "must be absolute");
        p.push(join("", "admin.listen"), "not an address");
        let err = p.into_result().unwrap_err();
        assert_eq!(
            err.to_string(),
            "2 problem(s) in the configuration\n  outputs.file[0].path: must be absolute\n  admin.listen: not an address"
        );
    }
}
