//! Configuration errors with the key, line and column they are about.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `connectors[0].allowed_hosts`.
    pub key: String,
    /// Byte range in the source, when the problem is tied to a place.
    pub span: Option<Range<usize>>,
    pub message: String,
}

impl ConfigError {
    pub fn new(
        key: impl Into<String>,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            key: key.into(),
            span,
            message: message.into(),
        }
    }
}

/// Every problem found in one file, printed all at once by `crossgate check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigReport {
    pub source_name: String,
    source: String,
    pub errors: Vec<ConfigError>,
}

impl ConfigReport {
    pub fn new(source_name: &str, source: &str, mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_key(|e| e.span.as_ref().map_or(usize::MAX, |s| s.start));
        ConfigReport {
            source_name: source_name.to_owned(),
            source: source.to_owned(),
            errors,
        }
    }

    /// 1-based line and column of a byte offset.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.source[..offset.min(self.source.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

impl fmt::Display for ConfigReport {
    /// One line per error: `file:line:column: key: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in &self.errors {
            match &error.span {
                Some(span) => {
                    let (line, col) = self.line_col(span.start);
                    write!(f, "{}:{line}:{col}: ", self.source_name)?;
                }
                None => write!(f, "{}: ", self.source_name)?,
            }
            if error.key.is_empty() {
                writeln!(f, "{}", error.message)?;
            } else {
                writeln!(f, "{}: {}", error.key, error.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigReport {}
