//! Configuration errors: the file, the line and column, and what was expected.

use std::fmt;
use std::path::Path;

use super::Source;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file (or "the embedded default").
    pub file: String,
    /// Where in it, 1-based, when known.
    pub position: Option<(usize, usize)>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "{}:{line}:{column}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl ConfigError {
    /// An error at a known position.
    pub fn at(file: &Path, line: usize, column: usize, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.display().to_string(),
            position: Some((line, column)),
            message: message.into(),
        }
    }

    /// An error about the file as a whole.
    pub fn io(file: &Path, what: &str, e: &std::io::Error) -> ConfigError {
        ConfigError {
            file: file.display().to_string(),
            position: None,
            message: format!("{what}: {e}"),
        }
    }

    /// An error with no position (a command-line override, say).
    pub fn plain(source: &Source, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: source.to_string(),
            position: None,
            message: message.into(),
        }
    }

    /// An error at `position` if known.
    pub fn maybe_at(file: &Path, position: Option<(usize, usize)>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.display().to_string(),
            position,
            message: message.into(),
        }
    }
}

/// A validation failure below the parser: the key path it concerns (`["servers", "github",
/// "lifetime"]`) is located in the text afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Keys from the document's root to the offending value.
    pub path: Vec<String>,
    /// What is wrong.
    pub message: String,
}

impl Invalid {
    /// A failure at `path`.
    pub fn new(path: &[&str], message: impl Into<String>) -> Invalid {
        Invalid {
            path: path.iter().map(|s| s.to_string()).collect(),
            message: message.into(),
        }
    }

    /// The same failure, under `prefix`.
    pub fn under(mut self, prefix: &[&str]) -> Invalid {
        let mut path: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
        path.append(&mut self.path);
        self.path = path;
        self
    }

    /// As a [`ConfigError`] for `file`, located in `text`.
    pub fn into_error(self, file: &Path, text: &str) -> ConfigError {
        let keys: Vec<&str> = self.path.iter().map(String::as_str).collect();
        ConfigError::maybe_at(file, super::locate::key_path(text, &keys), self.message)
    }
}
