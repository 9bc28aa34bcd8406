//! What can be wrong with a configuration file.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where in the file: `mqtt.url`, `cameras[1].detect_fps`, `cameras`; empty for a TOML
    /// syntax error.
    pub key: String,
    /// 1-based line, when the key (or its table) is in the file.
    pub line: Option<usize>,
    /// What is wrong, with the offending value (never a password) and what is allowed.
    pub message: String,
}

impl Problem {
    /// `FILE:LINE: KEY: MESSAGE` (`:LINE` left out when unknown, `KEY: ` when empty).
    pub fn display_in<'a>(&'a self, path: &'a Path) -> impl fmt::Display + 'a {
        ProblemLine {
            problem: self,
            path,
        }
    }
}

struct ProblemLine<'a> {
    problem: &'a Problem,
    path: &'a Path,
}

impl fmt::Display for ProblemLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.problem.line {
            write!(f, ":{line}")?;
        }
        if !self.problem.key.is_empty() {
            write!(f, ": {}", self.problem.key)?;
        }
        write!(f, ": {}", self.problem.message)
    }
}

/// A configuration file that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Display: `FILE: cannot read`; the cause is the source (print with `{:#}` to see it).
    #[error("{}: cannot read", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Display: one line per problem, `FILE:LINE: KEY: MESSAGE`, in line order.
    #[error("{}", render(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// Every problem found (none for [`ConfigError::Read`]).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }

    /// One line per problem (`FILE:LINE: KEY: MESSAGE`), as `watchpost config validate` prints
    /// them; the error itself for a file that cannot be read.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid { path, problems } => problems
                .iter()
                .map(|p| p.display_in(path).to_string())
                .collect(),
            ConfigError::Read { .. } => vec![self.to_string()],
        }
    }

    /// The configuration file at fault.
    pub fn path(&self) -> &Path {
        match self {
            ConfigError::Read { path, .. } | ConfigError::Invalid { path, .. } => path,
        }
    }
}

fn render(path: &Path, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.display_in(path).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_one_line_each() {
        let err = ConfigError::Invalid {
            path: PathBuf::from("/etc/watchpost/watchpost.toml"),
            problems: vec![
                Problem {
                    key: "cameras[1].detect_fps".into(),
                    line: Some(14),
                    message: "must be > 0 and <= 60, got 0".into(),
                },
                Problem {
                    key: "cameras".into(),
                    line: None,
                    message: "at least one camera is needed".into(),
                },
                Problem {
                    key: String::new(),
                    line: Some(3),
                    message: "duplicate key".into(),
                },
            ],
        };
        assert_eq!(
            err.to_string(),
            "/etc/watchpost/watchpost.toml:14: cameras[1].detect_fps: must be > 0 and <= 60, got 0\n\
             /etc/watchpost/watchpost.toml: cameras: at least one camera is needed\n\
             /etc/watchpost/watchpost.toml:3: duplicate key"
        );
        assert_eq!(err.problems().len(), 3);
        assert_eq!(err.path(), Path::new("/etc/watchpost/watchpost.toml"));
    }

    #[test]
    fn read_error_does_not_repeat_its_cause() {
        let err = ConfigError::Read {
            path: PathBuf::from("x.toml"),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(err.to_string(), "x.toml: cannot read");
        assert_eq!(
            format!("{:#}", anyhow::Error::new(err)),
            "x.toml: cannot read: gone"
        );
    }
}
