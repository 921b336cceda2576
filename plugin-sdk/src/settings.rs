//! Parsing a plugin's settings (a JSON object) into a typed struct, and
//! reporting *every* problem with its JSON path as a [`ConfigError`].
//!
//! Derive `serde::Deserialize` with `#[serde(deny_unknown_fields)]` and
//! defaults for every field, then call [`parse`]. Checks that serde cannot
//! express (an empty string, a bad prefix) go through [`Problems`], so they
//! are reported together:
//!
//! ```
//! use serde::Deserialize;
//! use vigil_plugin_sdk::{settings, ConfigError};
//!
//! #[derive(Debug, Deserialize, Default)]
//! #[serde(deny_unknown_fields, default)]
//! struct Settings {
//!     /// Image prefixes never reported.
//!     allowed_images: Vec<String>,
//! }
//!
//! fn configure(json: &str) -> Result<Settings, ConfigError> {
//!     let settings: Settings = settings::parse(json)?;
//!     let mut problems = settings::Problems::new();
//!     for (i, image) in settings.allowed_images.iter().enumerate() {
//!         if image.is_empty() {
//!             problems.push(format!("allowed_images[{i}]"), "must not be empty");
//!         }
//!     }
//!     problems.into_result()?;
//!     Ok(settings)
//! }
//!
//! assert!(configure("{}").is_ok());
//! let error = configure(r#"{"allowed_images": [""]}"#).unwrap_err();
//! assert_eq!(error.problems[0].path, "allowed_images[0]");
//! let error = configure(r#"{"allowed_images": ["", 7], "colour": "red"}"#).unwrap_err();
//! let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
//! assert_eq!(paths, ["allowed_images[1]", "colour"]);
//! ```

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use crate::types::{ConfigError, ConfigProblem};

/// At most this many problems are reported; a document that bad needs
/// rewriting, not a longer list.
const MAX_PROBLEMS: usize = 64;

/// Parses `settings` (a JSON object; empty text counts as `{}`) into `T`.
///
/// Unlike a plain `serde_json::from_str`, it does not stop at the first
/// problem: after each one it drops the offending entry and tries again, so
/// the error lists every unknown key and every ill-typed value, each with its
/// path in the original document (`allowlist.images[2]`). A required field
/// that is missing is reported at its own path (`allowlist.images`).
///
/// # Errors
/// A [`ConfigError`] when the text is not JSON, not an object, or does not
/// fit `T`.
pub fn parse<T: DeserializeOwned>(settings: &str) -> Result<T, ConfigError> {
    let text = settings.trim();
    let text = if text.is_empty() { "{}" } else { text };
    let mut document: Value = serde_json::from_str(text)
        .map_err(|error| ConfigError::new("", format!("settings are not valid JSON: {error}")))?;
    if !document.is_object() {
        return Err(ConfigError::new(
            "",
            format!(
                "settings must be a JSON object, not {}",
                json_kind(&document)
            ),
        ));
    }

    let mut problems = Vec::new();
    let mut pruned = Pruned::default();
    let mut dropped: Vec<String> = Vec::new();
    while problems.len() < MAX_PROBLEMS {
        let error = match serde_path_to_error::deserialize::<_, T>(&document) {
            Ok(parsed) if problems.is_empty() => return Ok(parsed),
            Ok(_) => break,
            Err(error) => error,
        };
        let message = error.inner().to_string();
        let mut at: Vec<Segment> = error.path().iter().cloned().collect();
        if let Some(field) = quoted_after(&message, "missing field `") {
            at.push(Segment::Map {
                key: field.to_owned(),
            });
            // A field we dropped for being invalid is now "missing": already reported.
            let path = pruned.original_path(&at);
            if !dropped.contains(&path) {
                problems.push(ConfigProblem::new(path, message));
            }
            // Nothing to drop for a missing field; stop unless its parent can go.
            at.pop();
            if at.is_empty() || !pruned.remove(&mut document, &at) {
                break;
            }
            continue;
        }
        if let Some(field) = quoted_after(&message, "unknown field `")
            && !matches!(at.last(), Some(Segment::Map { key }) if key == field)
        {
            at.push(Segment::Map {
                key: field.to_owned(),
            });
        }
        let path = pruned.original_path(&at);
        problems.push(ConfigProblem::new(path.clone(), message));
        if at.is_empty() || !pruned.remove(&mut document, &at) {
            break;
        }
        dropped.push(path);
    }
    Err(ConfigError { problems })
}

/// The default [`crate::Detector::configure`]: accepts only `{}` (or empty
/// text), for plugins that take no settings.
///
/// # Errors
/// A [`ConfigError`] naming every key given.
pub fn expect_none(settings: &str) -> Result<(), ConfigError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoSettings {}

    parse::<NoSettings>(settings)
        .map(|_| ())
        .map_err(|mut error| {
            for problem in &mut error.problems {
                if !problem.path.is_empty() {
                    problem.message = "unknown setting: this plugin takes no settings".to_owned();
                }
            }
            error
        })
}

/// Collects problems found after parsing, to report them all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    problems: Vec<ConfigProblem>,
}

impl Problems {
    /// No problems yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem at a JSON path (`allowlist.images[2]`).
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem::new(path, message));
    }

    /// Adds every problem of an error (e.g. from a nested [`parse`]).
    pub fn extend(&mut self, error: ConfigError) {
        self.problems.extend(error.problems);
    }

    /// True when nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// `Ok` when nothing was recorded.
    ///
    /// # Errors
    /// A [`ConfigError`] with every recorded problem.
    pub fn into_result(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

/// The text between `prefix` and the next backtick in a serde message.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    rest.split('`').next()
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Remembers which array elements were dropped, so that paths into the pruned
/// document can be reported with the indices of the document as written.
#[derive(Default)]
struct Pruned {
    /// Array (by original path) → original indices dropped from it.
    dropped: HashMap<String, Vec<usize>>,
}

impl Pruned {
    /// The original-document path for a path into the pruned document.
    fn original_path(&self, at: &[Segment]) -> String {
        let mut path = String::new();
        for segment in at {
            match segment {
                Segment::Map { key } | Segment::Enum { variant: key } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Segment::Seq { index } => {
                    let index = self.original_index(&path, *index);
                    path.push_str(&format!("[{index}]"));
                }
                Segment::Unknown => path.push_str(if path.is_empty() { "?" } else { ".?" }),
            }
        }
        path
    }

    /// The original index of the element now at `index` in the array at `array`.
    fn original_index(&self, array: &str, index: usize) -> usize {
        let Some(dropped) = self.dropped.get(array) else {
            return index;
        };
        (0..)
            .filter(|i| !dropped.contains(i))
            .nth(index)
            .unwrap_or(index)
    }

    /// Drops the entry at `at` from the pruned document; false when it cannot.
    fn remove(&mut self, document: &mut Value, at: &[Segment]) -> bool {
        let Some((last, parents)) = at.split_last() else {
            return false;
        };
        let mut node = document;
        for segment in parents {
            node = match (segment, node) {
                (Segment::Map { key }, Value::Object(map)) => match map.get_mut(key) {
                    Some(child) => child,
                    None => return false,
                },
                (Segment::Seq { index }, Value::Array(items)) => match items.get_mut(*index) {
                    Some(child) => child,
                    None => return false,
                },
                _ => return false,
            };
        }
        match (last, node) {
            (Segment::Map { key }, Value::Object(map)) => map.remove(key).is_some(),
            (Segment::Seq { index }, Value::Array(items)) if *index < items.len() => {
                let array = self.original_path(parents);
                let original = self.original_index(&array, *index);
                items.remove(*index);
                self.dropped.entry(array).or_default().push(original);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should fail loudly")]
mod tests;
