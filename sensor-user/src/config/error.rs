//! Configuration errors, with the file, line and column they point at. Also used by
//! the other files the sensor reads in the same way (classification rules).

/// A configuration problem with its location.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid, with the place it went wrong.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] at byte `offset` of `text`, the contents of `origin`.
    pub fn at(origin: &str, text: &str, offset: usize, message: String) -> Self {
        let (line, column) = line_col(text, offset);
        ConfigError::Invalid {
            path: origin.to_string(),
            line,
            column,
            message,
        }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}
