//! Config errors that point at the offending spot: `FILE:LINE:COL: message`.

use std::fmt::{self, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column; zero when the error has no position (e.g. unreadable file).
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ConfigError {
    pub fn without_position(file: &Path, message: impl Into<String>) -> Self {
        ConfigError { file: file.to_path_buf(), line: 0, column: 0, message: message.into() }
    }

    /// An error at `span` (byte offsets) of `source`.
    pub fn at(file: &Path, source: &str, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        let (line, column) = match span {
            Some(span) => line_and_column(source, span.start),
            None => (0, 0),
        };
        ConfigError { file: file.to_path_buf(), line, column, message: message.into() }
    }
}

fn line_and_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.file.display())?;
        } else {
            write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        }
        // Messages quote the config's values (`unknown variant "..."`), and a TOML string
        // may hold "\n": escape control characters so an error stays one line.
        for c in self.message.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_debug())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let src = "a = 1\nbb = 2\n";
        assert_eq!(line_and_column(src, 0), (1, 1));
        assert_eq!(line_and_column(src, 6), (2, 1));
        assert_eq!(line_and_column(src, 11), (2, 6));
    }

    #[test]
    fn quoted_control_characters_do_not_break_the_line() {
        // Found by the config fuzz target: `on_error = "conti\nue"`.
        let error = ConfigError::at(Path::new("s.toml"), "x", Some(0..1), "unknown variant `conti\nue`");
        assert_eq!(error.to_string(), "s.toml:1:1: unknown variant `conti\\nue`");
    }
}
