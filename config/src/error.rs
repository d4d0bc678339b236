//! Configuration errors, where each value came from ([`Origin`]), and the typo suggestions.

use std::fmt;
use std::path::PathBuf;

use crate::registry::Setting;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// A default taken from a conventional variable (`WEB_CONCURRENCY`, `PORT`).
    DefaultFromEnv(&'static str),
    /// The config file; `line` (1-based) when the key was found in it.
    File { path: PathBuf, line: Option<usize> },
    /// A `FERROCORN_<NAME>` variable.
    Env(String),
    /// A flag in the `FERROCORN_CMD_ARGS` variable.
    CmdArgs,
    /// The command line.
    Cli,
}

impl fmt::Display for Origin {
    /// The form `--print-config` shows: `default`, `file PATH`, `env NAME`, `cli`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::DefaultFromEnv(var) => write!(f, "env {var}"),
            Origin::File { path, .. } => write!(f, "file {}", path.display()),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::CmdArgs => f.write_str("env FERROCORN_CMD_ARGS"),
            Origin::Cli => f.write_str("cli"),
        }
    }
}

impl Origin {
    /// The origin with the detail an error message needs: the file line, the flag.
    pub(crate) fn precise(&self, setting: Option<&Setting>) -> String {
        match (self, setting) {
            (
                Origin::File {
                    path,
                    line: Some(line),
                },
                _,
            ) => {
                format!("file {} line {line}", path.display())
            }
            (Origin::CmdArgs | Origin::Cli, Some(setting)) => {
                format!("{self} {}", setting.cli_name())
            }
            _ => self.to_string(),
        }
    }
}

/// One configuration error. Loading collects every error it finds before failing, so the
/// user fixes them all in one go; the binary prints one line per error and exits with 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A file key, a `FERROCORN_*` variable or a flag that names no setting. `key` is as
    /// written (`wokers`, `FERROCORN_WOKERS`, `--wokers`); `suggestion` is the closest
    /// valid name in the same form.
    UnknownSetting {
        key: String,
        origin: Origin,
        suggestion: Option<String>,
    },
    /// A value of the wrong type or out of range.
    InvalidValue {
        setting: &'static str,
        origin: Origin,
        /// The value as given, in TOML syntax.
        value: String,
        /// What is wrong with it, in a few words.
        reason: String,
        /// What the setting accepts.
        accepted: String,
    },
    /// A setting given where it cannot be (`config` inside the config file).
    Misplaced {
        setting: &'static str,
        origin: Origin,
        reason: &'static str,
    },
    /// The config file could not be read.
    ReadFile { path: PathBuf, reason: String },
    /// The config file is not valid TOML.
    FileSyntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// The command line (or `FERROCORN_CMD_ARGS`) could not be parsed for another reason
    /// than an unknown flag (a missing value, a stray argument); `message` comes from the
    /// argument parser.
    Usage { origin: Origin, message: String },
}

impl ConfigError {
    /// Whether this error is about a name that matches no setting.
    pub fn is_unknown_setting(&self) -> bool {
        matches!(self, ConfigError::UnknownSetting { .. })
    }

    /// Whether this error is about a bad value for a known setting.
    pub fn is_invalid_value(&self) -> bool {
        matches!(self, ConfigError::InvalidValue { .. })
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownSetting {
                key,
                origin,
                suggestion,
            } => {
                let what = match origin {
                    Origin::Cli | Origin::CmdArgs => "unknown flag",
                    Origin::Env(_) => "unknown variable",
                    _ => "unknown setting",
                };
                let location = match origin {
                    Origin::Env(_) => "env".to_string(),
                    other => other.precise(None),
                };
                write!(f, "{location}: {what} {key}")?;
                if let Some(suggestion) = suggestion {
                    write!(f, "; did you mean {suggestion}?")?;
                }
                Ok(())
            }
            ConfigError::InvalidValue {
                setting,
                origin,
                value,
                reason,
                accepted,
            } => {
                let decl = crate::find(setting);
                write!(
                    f,
                    "{}: invalid value {value} for {setting}: {reason}; expected {accepted}",
                    origin.precise(decl)
                )
            }
            ConfigError::Misplaced {
                setting,
                origin,
                reason,
            } => write!(
                f,
                "{}: {setting} {reason}",
                origin.precise(crate::find(setting))
            ),
            ConfigError::ReadFile { path, reason } => {
                write!(f, "file {}: cannot read: {reason}", path.display())
            }
            ConfigError::FileSyntax {
                path,
                line,
                message,
            } => write!(
                f,
                "file {} line {line}: invalid TOML: {message}",
                path.display()
            ),
            ConfigError::Usage { origin, message } => write!(f, "{origin}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The number of single-character insertions, deletions and substitutions that turn `a`
/// into `b` (Levenshtein distance), on characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidate closest to `word` (ignoring case, and `-` against `_`), if it is close
/// enough to be a typo: at most 2 edits, or a third of the word's length for long words.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let normal = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let word_n = normal(word);
    let limit = (word_n.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word_n, &normal(c)), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("wokers", "workers"), 1);
        assert_eq!(edit_distance("workres", "workers"), 2);
    }

    #[test]
    fn closest_suggests_only_near_names() {
        let names = ["workers", "worker_connections", "bind", "backlog"];
        assert_eq!(closest("wokers", names), Some("workers"));
        assert_eq!(closest("WORKERS", names), Some("workers"));
        assert_eq!(
            closest("worker-connections", names),
            Some("worker_connections")
        );
        assert_eq!(closest("bnid", names), Some("bind"));
        assert_eq!(closest("zzzzzzzz", names), None);
    }

    #[test]
    fn messages_name_the_source_the_value_and_what_is_accepted() {
        let err = ConfigError::InvalidValue {
            setting: "workers",
            origin: Origin::Cli,
            value: "\"0\"".to_string(),
            reason: "below the minimum 1".to_string(),
            accepted: "an integer from 1 to 1024".to_string(),
        };
        assert_eq!(
            err.to_string(),
            "cli --workers: invalid value \"0\" for workers: below the minimum 1; \
             expected an integer from 1 to 1024"
        );
        let err = ConfigError::UnknownSetting {
            key: "wokers".to_string(),
            origin: Origin::File {
                path: "/etc/f.toml".into(),
                line: Some(3),
            },
            suggestion: Some("workers".to_string()),
        };
        assert_eq!(
            err.to_string(),
            "file /etc/f.toml line 3: unknown setting wokers; did you mean workers?"
        );
    }
}
