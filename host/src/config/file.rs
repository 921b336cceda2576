//! Reading and parsing the file: every TOML syntax error at once, then the
//! typed sections (serde stops at its first type error; its path and line
//! are given). Validation is a separate step ([`super::VigilConfig::check`])
//! so that command-line flags can be applied in between.

use std::path::{Path, PathBuf};

use super::{InvalidConfig, Problem, VigilConfig};

/// Why a config file could not be turned into a [`VigilConfig`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong type or an unknown key.
    #[error("{path}: {problems}")]
    Parse {
        path: PathBuf,
        problems: InvalidConfig,
    },
}

impl ConfigFileError {
    /// The problems found, when the file was read.
    pub fn problems(&self) -> Option<&[Problem]> {
        match self {
            Self::Read { .. } => None,
            Self::Parse { problems, .. } => Some(&problems.0),
        }
    }
}

/// Reads and parses a config file (not validated yet).
pub fn load_file(path: &Path) -> Result<VigilConfig, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|problems| ConfigFileError::Parse {
        path: path.to_owned(),
        problems,
    })
}

/// Parses config text (not validated yet).
pub fn parse(text: &str) -> Result<VigilConfig, InvalidConfig> {
    let (table, errors) = toml::de::DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        // The recovering parser can report one spot twice; in file order, once.
        let mut found: Vec<(usize, String)> = errors
            .iter()
            .map(|e| (e.span().map_or(0, |s| s.start), located(text, e)))
            .collect();
        found.sort();
        found.dedup();
        return Err(InvalidConfig(
            found
                .into_iter()
                .map(|(_, message)| Problem {
                    path: "(syntax)".into(),
                    message,
                })
                .collect(),
        ));
    }
    let de = toml::de::Deserializer::from(table);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        InvalidConfig(vec![Problem {
            // `.` is serde_path_to_error's name for the root.
            path: if path == "." { "(root)".into() } else { path },
            message: located(text, &inner),
        }])
    })
}

/// The error's message with its line and column.
fn located(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("{message} (line {line}, column {column})")
        }
        None => message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}
