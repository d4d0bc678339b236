//! Loading: the four sources merged with figment, then every value validated.
//!
//! Priority, highest first: the command line, `FERROCORN_CMD_ARGS`, `FERROCORN_<NAME>`
//! variables, the config file, the default (which `WEB_CONCURRENCY` and `PORT` adjust).
//! Everything the loader reads is passed in [`Sources`]; it touches no global state except
//! reading the config file, so tests are hermetic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

use crate::error::{closest, ConfigError, Origin};
use crate::kinds::{Arity, Raw};
use crate::{find, Setting, Settings, SETTINGS};

/// The config file read from the working directory when no `config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "ferrocorn.toml";

/// The variable holding extra command-line flags, read by the binary.
pub const CMD_ARGS_VAR: &str = "FERROCORN_CMD_ARGS";

/// `FERROCORN_*` variables that are not settings, so not reported as unknown:
/// `FERROCORN_CMD_ARGS`, `FERROCORN_FD` and `FERROCORN_METRICS_FD` (listeners handed over
/// during an upgrade) and `FERROCORN_SHARED` (where the tests find the shared corpora). A
/// new internal variable must be added here, or every start would fail with "unknown
/// variable".
pub const RESERVED_ENV_VARS: &[&str] = &[
    CMD_ARGS_VAR,
    "FERROCORN_FD",
    "FERROCORN_METRICS_FD",
    "FERROCORN_SHARED",
];

const ENV_PREFIX: &str = "FERROCORN_";

/// Values given on the command line (or in `FERROCORN_CMD_ARGS`) for some settings, by
/// setting name, as raw text: one entry per occurrence of the flag, `"true"` for a switch.
/// The binary builds it from its argument parser; the loader validates it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Overrides {
    values: BTreeMap<String, Vec<String>>,
}

impl Overrides {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one occurrence of `name`'s flag with `value`.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.values
            .entry(name.to_string())
            .or_default()
            .push(value.into());
    }

    /// Whether `name` was given.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The occurrences of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.values.get(name).map(Vec::as_slice)
    }

    /// Whether nothing was given.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The overrides as a figment dictionary: a list for repeatable settings, else the
    /// last occurrence (a later flag overrides an earlier one, as in gunicorn).
    fn to_dict(&self) -> Dict {
        let mut dict = Dict::new();
        for (name, values) in &self.values {
            let repeatable = find(name).is_some_and(|s| s.arity() == Arity::Many);
            let value = if repeatable {
                Value::from(values.clone())
            } else {
                Value::from(values.last().cloned().unwrap_or_default())
            };
            dict.insert(name.clone(), value);
        }
        dict
    }
}

/// Everything loading reads, passed explicitly.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Parsed from the command line.
    pub cli: Overrides,
    /// Parsed from the `FERROCORN_CMD_ARGS` variable.
    pub cmd_args: Overrides,
    /// The process environment (variables that are not ferrocorn's are ignored).
    pub env: BTreeMap<String, String>,
    /// The directory relative paths (the config file) are resolved against.
    pub cwd: PathBuf,
}

/// The validated settings and where each value came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The settings.
    pub settings: Settings,
    /// The origin of each setting, in the order of [`SETTINGS`].
    origins: Vec<Origin>,
}

impl Loaded {
    /// Where `name`'s value came from; `None` for a name that is not a setting.
    pub fn origin(&self, name: &str) -> Option<&Origin> {
        let index = SETTINGS.iter().position(|s| s.name == name)?;
        self.origins.get(index)
    }

    /// Where `name`'s value came from, as configuration errors say it (`cli --certfile`,
    /// `env FERROCORN_CERTFILE`, `file PATH line N`, `default`), for a value judged after
    /// loading (a file a setting names); `None` for a name that is not a setting.
    pub fn source_of(&self, name: &str) -> Option<String> {
        let index = SETTINGS.iter().position(|s| s.name == name)?;
        Some(self.origins.get(index)?.precise(SETTINGS.get(index)))
    }

    /// Every setting, one per line, as `name = value  # source`, value in TOML.
    pub fn print_config(&self) -> String {
        let mut out = String::new();
        for (setting, origin) in SETTINGS.iter().zip(&self.origins) {
            let value = setting.value_in(&self.settings);
            let _ = writeln!(out, "{} = {}  # {}", setting.name, value, origin);
        }
        out
    }
}

impl Settings {
    /// Loads and validates the settings from `sources`; see [`load`].
    pub fn load(sources: &Sources) -> Result<Settings, Vec<ConfigError>> {
        load(sources).map(|loaded| loaded.settings)
    }

    /// The mode of the files ferrocorn creates (the error and access logs, the pidfile):
    /// 0o644 less `umask`, so a mask can make them private but never writable by others
    /// (gunicorn's `umask = 0`, common in its configurations, is about the socket). The
    /// process's inherited umask may narrow a log file's mode further.
    pub fn created_file_mode(&self) -> u32 {
        0o644 & !self.umask
    }
}

/// One source as a figment provider, named so that a value's metadata says which layer
/// it came from.
struct Layer {
    name: &'static str,
    dict: Dict,
}

const LAYER_FILE: &str = "file";
const LAYER_ENV: &str = "env";
const LAYER_CMD_ARGS: &str = "cmd_args";
const LAYER_CLI: &str = "cli";

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// The config file as read: its values, and the line of each key.
struct FileLayer {
    path: PathBuf,
    dict: Dict,
    lines: BTreeMap<String, usize>,
}

/// Loads the settings: merges the sources, validates every value, and collects every
/// error (unknown file keys and variables, unreadable or invalid file, bad values) before
/// failing. Nothing is half-applied: on error no `Settings` is returned.
pub fn load(sources: &Sources) -> Result<Loaded, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut settings = Settings::default();
    let mut origins = vec![Origin::Default; SETTINGS.len()];

    apply_conventional_defaults(&sources.env, &mut settings, &mut origins, &mut errors);

    let file = config_file_path(sources)
        .and_then(|(path, explicit)| read_file(&path, explicit, &mut errors));
    let env_dict = env_layer(&sources.env, &mut errors);

    // The layers, lowest priority first.
    let layers = [
        (
            LAYER_FILE,
            file.as_ref().map(|f| f.dict.clone()).unwrap_or_default(),
        ),
        (LAYER_ENV, env_dict),
        (LAYER_CMD_ARGS, sources.cmd_args.to_dict()),
        (LAYER_CLI, sources.cli.to_dict()),
    ];
    let origin_in = |layer: &str, setting: &Setting| match layer {
        LAYER_FILE => Origin::File {
            path: file.as_ref().map(|f| f.path.clone()).unwrap_or_default(),
            line: file
                .as_ref()
                .and_then(|f| f.lines.get(setting.name).copied()),
        },
        LAYER_ENV => Origin::Env(setting.env_var()),
        LAYER_CMD_ARGS => Origin::CmdArgs,
        _ => Origin::Cli,
    };

    unknown_overrides(sources, &mut errors);

    // Every value is validated, also one that a higher source overrides: a broken file
    // or variable is reported now, not when the flag that hid it goes away.
    let mut valid = true;
    for setting in SETTINGS {
        for (layer, dict) in &layers {
            let Some(value) = dict.get(setting.name) else {
                continue;
            };
            let raw = Raw::from_figment(value);
            if let Err(reason) = setting.apply(&mut Settings::default(), &raw) {
                valid = false;
                errors.push(ConfigError::InvalidValue {
                    setting: setting.name,
                    origin: origin_in(layer, setting),
                    value: raw.to_toml_text(),
                    reason,
                    accepted: setting.accepted(),
                });
            }
        }
    }

    if valid {
        let figment = layers
            .into_iter()
            .fold(Figment::new(), |figment, (name, dict)| {
                figment.merge(Layer { name, dict })
            });
        for (index, setting) in SETTINGS.iter().enumerate() {
            let Ok(value) = figment.find_value(setting.name) else {
                continue;
            };
            // Each layer's metadata is named after it: that says where the value came from.
            let layer = figment
                .find_metadata(setting.name)
                .map_or(LAYER_CLI, |m| &*m.name);
            let raw = Raw::from_figment(&value);
            match setting.apply(&mut settings, &raw) {
                Ok(()) => origins[index] = origin_in(layer, setting),
                // Cannot fail (every layer's value passed the same check above); reported
                // rather than dropped all the same.
                Err(reason) => errors.push(ConfigError::InvalidValue {
                    setting: setting.name,
                    origin: origin_in(layer, setting),
                    value: raw.to_toml_text(),
                    reason,
                    accepted: setting.accepted(),
                }),
            }
        }
    }

    // `config` names the file that was read, absolute so that a reload after `chdir`
    // reads the same file.
    settings.config = file.as_ref().map(|f| f.path.clone());

    if errors.is_empty() {
        Ok(Loaded { settings, origins })
    } else {
        Err(errors)
    }
}

/// Reports the names given on the command line or in `FERROCORN_CMD_ARGS` that are no
/// setting, with the closest setting's name.
fn unknown_overrides(sources: &Sources, errors: &mut Vec<ConfigError>) {
    for (overrides, origin) in [
        (&sources.cli, Origin::Cli),
        (&sources.cmd_args, Origin::CmdArgs),
    ] {
        for key in overrides.values.keys().filter(|key| find(key).is_none()) {
            errors.push(ConfigError::UnknownSetting {
                key: key.clone(),
                origin: origin.clone(),
                suggestion: closest(key, SETTINGS.iter().map(|s| s.name)).map(String::from),
            });
        }
    }
}

/// gunicorn's conventions: `WEB_CONCURRENCY` is the default `workers`, `PORT` makes the
/// default bind `0.0.0.0:$PORT`.
fn apply_conventional_defaults(
    env: &BTreeMap<String, String>,
    settings: &mut Settings,
    origins: &mut [Origin],
    errors: &mut Vec<ConfigError>,
) {
    for (var, setting_name) in [("WEB_CONCURRENCY", "workers"), ("PORT", "bind")] {
        let Some(text) = env.get(var) else { continue };
        let Some(index) = SETTINGS.iter().position(|s| s.name == setting_name) else {
            continue;
        };
        let setting = &SETTINGS[index];
        let text = if setting_name == "bind" {
            // Only a port: refuse anything parse_bind would read as another form.
            match text.trim().parse::<u16>() {
                Ok(port) => format!("0.0.0.0:{port}"),
                Err(_) => {
                    errors.push(ConfigError::InvalidValue {
                        setting: setting.name,
                        origin: Origin::DefaultFromEnv(var),
                        value: Raw::Str(text.clone()).to_toml_text(),
                        reason: "not a port number".to_string(),
                        accepted: "a port from 0 to 65535".to_string(),
                    });
                    continue;
                }
            }
        } else {
            text.clone()
        };
        let raw = Raw::Str(text);
        match setting.apply(settings, &raw) {
            Ok(()) => origins[index] = Origin::DefaultFromEnv(var),
            Err(reason) => errors.push(ConfigError::InvalidValue {
                setting: setting.name,
                origin: Origin::DefaultFromEnv(var),
                value: raw.to_toml_text(),
                reason,
                accepted: setting.accepted(),
            }),
        }
    }
}

/// The `FERROCORN_<NAME>` variables as a dictionary by setting name; other `FERROCORN_*`
/// variables (but the reserved ones) are errors.
fn env_layer(env: &BTreeMap<String, String>, errors: &mut Vec<ConfigError>) -> Dict {
    let mut dict = Dict::new();
    for (var, value) in env {
        if !var.starts_with(ENV_PREFIX) || RESERVED_ENV_VARS.contains(&var.as_str()) {
            continue;
        }
        match SETTINGS.iter().find(|s| s.env_var() == *var) {
            Some(setting) => {
                dict.insert(setting.name.to_string(), Value::from(value.clone()));
            }
            None => {
                let names: Vec<String> = SETTINGS.iter().map(|s| s.env_var()).collect();
                errors.push(ConfigError::UnknownSetting {
                    key: var.clone(),
                    origin: Origin::Env(var.clone()),
                    suggestion: closest(var, names.iter().map(String::as_str)).map(String::from),
                });
            }
        }
    }
    dict
}

/// Which config file to read: `config` from the command line, `FERROCORN_CMD_ARGS` or
/// the environment (explicit: it must exist), else `ferrocorn.toml` in `cwd` if it exists.
/// A bad `config` value is reported by the main validation pass, not here.
fn config_file_path(sources: &Sources) -> Option<(PathBuf, bool)> {
    let given = sources
        .cli
        .get("config")
        .and_then(|v| v.last().cloned())
        .or_else(|| {
            sources
                .cmd_args
                .get("config")
                .and_then(|v| v.last().cloned())
        })
        .or_else(|| sources.env.get("FERROCORN_CONFIG").cloned());
    match given {
        Some(path) if path.trim().is_empty() => None,
        Some(path) => Some((sources.cwd.join(path.trim()), true)),
        None => {
            let default = sources.cwd.join(DEFAULT_CONFIG_FILE);
            default.is_file().then_some((default, false))
        }
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Reads and checks the config file; errors go to `errors`. `None` when it cannot be used.
fn read_file(path: &Path, explicit: bool, errors: &mut Vec<ConfigError>) -> Option<FileLayer> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            if explicit || err.kind() != std::io::ErrorKind::NotFound {
                errors.push(ConfigError::ReadFile {
                    path: path.to_path_buf(),
                    reason: err.to_string(),
                });
            }
            return None;
        }
    };
    // The spanned table gives each key's line; the plain one its typed value. Both parse
    // the same text, so one error mapping serves.
    let parsed = toml::de::DeTable::parse(&text)
        .and_then(|table| Ok((table, toml::from_str::<toml::Table>(&text)?)));
    let (table, values) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            errors.push(ConfigError::FileSyntax {
                path: path.to_path_buf(),
                line: err.span().map_or(1, |span| line_of(&text, span.start)),
                message: err.message().trim().to_string(),
            });
            return None;
        }
    };
    let mut layer = FileLayer {
        path: path.to_path_buf(),
        dict: Dict::new(),
        lines: BTreeMap::new(),
    };
    // Keys come in name order; report their errors in line order.
    let mut key_errors: Vec<ConfigError> = Vec::new();
    for (key, _) in table.get_ref().iter() {
        let name: &str = key.get_ref();
        let line = line_of(&text, key.span().start);
        let origin = Origin::File {
            path: path.to_path_buf(),
            line: Some(line),
        };
        match find(name) {
            None => key_errors.push(ConfigError::UnknownSetting {
                key: name.to_string(),
                origin,
                suggestion: closest(name, SETTINGS.iter().map(|s| s.name)).map(String::from),
            }),
            // What `--print-config` writes for this very file (nothing, or its own path)
            // is accepted, so that its output can be loaded back; any other file is not
            // read from here.
            Some(setting) if setting.name == "config" => {
                if !names_this_file(values.get(name), path) {
                    key_errors.push(ConfigError::Misplaced {
                        setting: setting.name,
                        origin,
                        reason: "cannot be set in the config file; use -c or FERROCORN_CONFIG",
                    });
                }
            }
            Some(setting) => {
                layer.lines.insert(setting.name.to_string(), line);
                if let Some(value) = values.get(name) {
                    match Value::serialize(value) {
                        Ok(value) => {
                            layer.dict.insert(setting.name.to_string(), value);
                        }
                        Err(err) => key_errors.push(ConfigError::InvalidValue {
                            setting: setting.name,
                            origin,
                            value: value.to_string(),
                            reason: err.to_string(),
                            accepted: setting.accepted(),
                        }),
                    }
                }
            }
        }
    }
    key_errors.sort_by_key(|err| match err {
        ConfigError::UnknownSetting { origin, .. }
        | ConfigError::InvalidValue { origin, .. }
        | ConfigError::Misplaced { origin, .. } => match origin {
            Origin::File { line, .. } => *line,
            _ => None,
        },
        _ => None,
    });
    errors.extend(key_errors);
    Some(layer)
}

/// Whether a `config` value in the file at `path` is empty or names that same file.
fn names_this_file(value: Option<&toml::Value>, path: &Path) -> bool {
    match value.and_then(toml::Value::as_str) {
        Some("") => true,
        Some(named) => {
            let named = path.parent().unwrap_or(Path::new("")).join(named);
            matches!(
                (std::fs::canonicalize(named), std::fs::canonicalize(path)),
                (Ok(a), Ok(b)) if a == b
            )
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::{BindAddress, LogLevel};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "ferrocorn-config-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn sources(dir: &TempDir) -> Sources {
        Sources {
            cwd: dir.0.clone(),
            ..Sources::default()
        }
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn messages(errors: Vec<ConfigError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    /// Loads `text` as the `ferrocorn.toml` of a fresh directory, which must fail: the
    /// file's path and the error messages.
    fn file_errors(text: &str) -> (PathBuf, Vec<String>) {
        let dir = TempDir::new();
        let path = dir.write(DEFAULT_CONFIG_FILE, text);
        let errors = messages(load(&sources(&dir)).unwrap_err());
        (path, errors)
    }

    /// Bug: files ferrocorn creates took the process umask the `umask` setting set for the
    /// whole process (0 by default): world-writable logs.
    #[test]
    fn bug_created_files_are_never_writable_by_others() {
        let mode = |umask| {
            Settings {
                umask,
                ..Settings::default()
            }
            .created_file_mode()
        };
        assert_eq!(mode(0), 0o644);
        assert_eq!(mode(0o002), 0o644);
        assert_eq!(mode(0o077), 0o600);
    }

    #[test]
    fn nothing_given_gives_the_defaults() {
        let dir = TempDir::new();
        let loaded = load(&sources(&dir)).unwrap();
        assert_eq!(loaded.settings, Settings::default());
        assert!(SETTINGS
            .iter()
            .all(|s| loaded.origin(s.name) == Some(&Origin::Default)));
    }

    #[test]
    fn the_file_in_the_working_directory_is_read_with_typed_values() {
        let dir = TempDir::new();
        let path = dir.write(
            DEFAULT_CONFIG_FILE,
            "# comment\nworkers = 4\nbind = [\"127.0.0.1:0\", \"unix:/tmp/s\"]\n\
             timeout = 2.5\nreuse_port = true\numask = 0o27\nloglevel = \"debug\"\n\
             forwarded_allow_ips = \"*\"\n",
        );
        let loaded = load(&sources(&dir)).unwrap();
        let s = &loaded.settings;
        assert_eq!(s.workers, 4);
        assert_eq!(s.bind.len(), 2);
        assert_eq!(s.timeout, Duration::from_millis(2500));
        assert!(s.reuse_port);
        assert_eq!(s.umask, 0o27);
        assert_eq!(s.loglevel, LogLevel::Debug);
        assert_eq!(s.forwarded_allow_ips.items(), ["*"]);
        assert_eq!(s.config.as_deref(), Some(path.as_path()));
        assert_eq!(
            loaded.origin("workers"),
            Some(&Origin::File {
                path: path.clone(),
                line: Some(2)
            })
        );
    }

    #[test]
    fn source_of_names_a_value_as_errors_do() {
        let dir = TempDir::new();
        let path = dir.write(DEFAULT_CONFIG_FILE, "workers = 2\n\ncertfile = \"c.pem\"\n");
        let mut sources = sources(&dir);
        sources.env = env(&[("FERROCORN_KEYFILE", "k.pem")]);
        let loaded = load(&sources).unwrap();
        let file = format!("file {} line 3", path.display());
        assert_eq!(loaded.source_of("certfile").as_deref(), Some(file.as_str()));
        assert_eq!(
            loaded.source_of("keyfile").as_deref(),
            Some("env FERROCORN_KEYFILE")
        );
        assert_eq!(loaded.source_of("ca_certs").as_deref(), Some("default"));
        assert_eq!(loaded.source_of("no_such_setting"), None);
    }

    #[test]
    fn an_explicit_file_is_resolved_against_the_working_directory() {
        let dir = TempDir::new();
        dir.write(DEFAULT_CONFIG_FILE, "workers = 4\n");
        let path = dir.write("other.toml", "workers = 5\n");
        let mut sources = sources(&dir);
        sources.env = env(&[("FERROCORN_CONFIG", "other.toml")]);
        let settings = Settings::load(&sources).unwrap();
        assert_eq!(settings.workers, 5);
        assert_eq!(settings.config, Some(path));
    }

    #[test]
    fn a_missing_explicit_file_is_an_error_a_missing_default_one_is_not() {
        let dir = TempDir::new();
        let mut sources = sources(&dir);
        sources.cli.push("config", "absent.toml");
        let errors = messages(load(&sources).unwrap_err());
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with(&format!(
                "file {}: cannot read:",
                dir.0.join("absent.toml").display()
            )),
            "{errors:?}"
        );
    }

    #[test]
    fn an_unknown_file_key_names_the_file_line_and_the_closest_setting() {
        let (path, errors) =
            file_errors("workers = 2\n\nwokers = 3\nmax-requests = 10\ncompletely_unrelated = 1\n");
        let p = path.display();
        assert_eq!(
            errors,
            [
                format!("file {p} line 3: unknown setting wokers; did you mean workers?"),
                format!(
                    "file {p} line 4: unknown setting max-requests; did you mean max_requests?"
                ),
                format!("file {p} line 5: unknown setting completely_unrelated"),
            ]
        );
    }

    #[test]
    fn a_bad_value_in_the_file_names_its_line() {
        let (path, errors) =
            file_errors("backlog = 10\nworkers = \"many\"\nthreads = 0\nbind = 8000\n");
        let p = path.display();
        assert_eq!(
            errors,
            [
                format!(
                    "file {p} line 4: invalid value 8000 for bind: not a string or an array \
                     (an integer); expected one or more of HOST:PORT, [IPV6]:PORT, HOST \
                     (port 8000), unix:PATH, fd://N"
                ),
                format!(
                    "file {p} line 2: invalid value \"many\" for workers: not an integer; \
                     expected an integer from 1 to 1024"
                ),
                format!(
                    "file {p} line 3: invalid value 0 for threads: below the minimum 1; \
                     expected an integer from 1 to 1024"
                ),
            ]
        );
    }

    #[test]
    fn invalid_toml_names_the_line() {
        let (path, errors) = file_errors("workers = 2\nbind = [\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with(&format!("file {} line 2: invalid TOML:", path.display())),
            "{errors:?}"
        );
    }

    #[test]
    fn config_cannot_be_set_in_the_file() {
        let dir = TempDir::new();
        dir.write(DEFAULT_CONFIG_FILE, "config = \"other.toml\"\n");
        let errors = load(&sources(&dir)).unwrap_err();
        assert!(matches!(
            &errors[..],
            [ConfigError::Misplaced {
                setting: "config",
                ..
            }]
        ));
    }

    /// Bug: `ferrocorn --print-config > ferrocorn.toml` wrote a file that could not be
    /// loaded: its `config = ...` line was refused as "cannot be set in the config file".
    #[test]
    fn bug_print_config_output_loads_back() {
        let dir = TempDir::new();
        let mut given = sources(&dir);
        given.env = env(&[("FERROCORN_WORKERS", "3"), ("FERROCORN_KEEPALIVE", "7")]);
        let printed = load(&given).unwrap().print_config();
        assert!(printed.contains("config = \"\""), "{printed}");
        dir.write(DEFAULT_CONFIG_FILE, &printed);
        let loaded = load(&sources(&dir)).unwrap();
        assert_eq!(loaded.settings.workers, 3);
        assert_eq!(loaded.settings.keepalive, Duration::from_secs(7));
        // Printed again, the file names itself; that loads back too.
        let printed = loaded.print_config();
        dir.write(DEFAULT_CONFIG_FILE, &printed);
        assert_eq!(load(&sources(&dir)).unwrap().settings.workers, 3);
    }

    #[test]
    fn an_unknown_ferrocorn_variable_is_an_error_and_others_are_ignored() {
        let dir = TempDir::new();
        let mut sources = sources(&dir);
        sources.env = env(&[
            ("FERROCORN_WOKERS", "3"),
            ("FERROCORN_FD", "3,4"),
            ("FERROCORN_SHARED", "/x"),
            ("FERROCORN_CMD_ARGS", "--workers 2"),
            ("HOME", "/root"),
            ("WORKERS", "x"),
        ]);
        let errors = load(&sources).unwrap_err();
        assert_eq!(
            messages(errors.clone()),
            ["env: unknown variable FERROCORN_WOKERS; did you mean FERROCORN_WORKERS?"]
        );
        assert!(errors[0].is_unknown_setting());
    }

    #[test]
    fn a_bad_variable_value_names_the_variable() {
        let dir = TempDir::new();
        let mut sources = sources(&dir);
        sources.env = env(&[
            ("FERROCORN_LOGLEVEL", "loud"),
            ("FERROCORN_KEEPALIVE", "-1"),
        ]);
        let errors = load(&sources).unwrap_err();
        assert!(errors.iter().all(ConfigError::is_invalid_value));
        assert_eq!(
            messages(errors),
            [
                "env FERROCORN_KEEPALIVE: invalid value \"-1\" for keepalive: negative; \
                 expected a number of seconds from 0 to 31536000",
                "env FERROCORN_LOGLEVEL: invalid value \"loud\" for loglevel: not one of the \
                 choices; expected one of debug, info, warning, error, critical",
            ]
        );
    }

    #[test]
    fn a_bad_command_line_value_names_the_flag() {
        let dir = TempDir::new();
        let mut sources = sources(&dir);
        sources.cli.push("bind", "127.0.0.1:99999");
        sources.cmd_args.push("workers", "2000");
        let errors = messages(load(&sources).unwrap_err());
        assert_eq!(
            errors,
            [
                "cli --bind: invalid value [\"127.0.0.1:99999\"] for bind: port 99999 is above \
                 the maximum 65535; expected one or more of HOST:PORT, [IPV6]:PORT, HOST \
                 (port 8000), unix:PATH, fd://N",
                "env FERROCORN_CMD_ARGS --workers: invalid value \"2000\" for workers: above \
                 the maximum 1024; expected an integer from 1 to 1024",
            ]
        );
    }

    #[test]
    fn a_bad_value_is_reported_even_when_a_higher_source_overrides_it() {
        let dir = TempDir::new();
        let path = dir.write(DEFAULT_CONFIG_FILE, "workers = \"x\"\n");
        let mut sources = sources(&dir);
        sources.env = env(&[("FERROCORN_WORKERS", "0")]);
        sources.cli.push("workers", "2");
        assert_eq!(
            messages(load(&sources).unwrap_err()),
            [
                format!(
                    "file {} line 1: invalid value \"x\" for workers: not an integer; \
                     expected an integer from 1 to 1024",
                    path.display()
                ),
                "env FERROCORN_WORKERS: invalid value \"0\" for workers: below the minimum 1; \
                 expected an integer from 1 to 1024"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn an_unknown_override_name_is_an_error() {
        let dir = TempDir::new();
        let mut sources = sources(&dir);
        sources.cli.push("wrokers", "2");
        assert_eq!(
            messages(load(&sources).unwrap_err()),
            ["cli: unknown flag wrokers; did you mean workers?"]
        );
    }

    #[test]
    fn every_error_is_collected() {
        let dir = TempDir::new();
        dir.write(DEFAULT_CONFIG_FILE, "typo = 1\nworkers = 0\n");
        let mut sources = sources(&dir);
        sources.env = env(&[("FERROCORN_NOPE", "1"), ("FERROCORN_THREADS", "x")]);
        sources.cli.push("backlog", "0");
        assert_eq!(load(&sources).unwrap_err().len(), 5);
    }

    #[test]
    fn web_concurrency_and_port_change_the_defaults_only() {
        let dir = TempDir::new();
        let mut sources = sources(&dir);
        sources.env = env(&[("WEB_CONCURRENCY", "6"), ("PORT", "5000")]);
        let loaded = load(&sources).unwrap();
        assert_eq!(loaded.settings.workers, 6);
        assert_eq!(
            loaded.settings.bind,
            [BindAddress::Tcp {
                host: "0.0.0.0".into(),
                port: 5000
            }]
        );
        assert_eq!(
            loaded.origin("workers"),
            Some(&Origin::DefaultFromEnv("WEB_CONCURRENCY"))
        );
        dir.write(DEFAULT_CONFIG_FILE, "workers = 2\nbind = \"127.0.0.1:1\"\n");
        let loaded = load(&sources).unwrap();
        assert_eq!(loaded.settings.workers, 2);
        assert_eq!(loaded.settings.bind.len(), 1);
        assert_eq!(loaded.settings.bind[0].to_string(), "127.0.0.1:1");

        sources.env = env(&[("WEB_CONCURRENCY", "0"), ("PORT", "http")]);
        std::fs::remove_file(dir.0.join(DEFAULT_CONFIG_FILE)).unwrap();
        assert_eq!(
            messages(load(&sources).unwrap_err()),
            [
                "env WEB_CONCURRENCY: invalid value \"0\" for workers: below the minimum 1; \
                 expected an integer from 1 to 1024",
                "env PORT: invalid value \"http\" for bind: not a port number; expected a port \
                 from 0 to 65535",
            ]
        );
    }

    #[test]
    fn print_config_shows_every_setting_with_its_source() {
        let dir = TempDir::new();
        let path = dir.write(DEFAULT_CONFIG_FILE, "threads = 3\n");
        let mut sources = sources(&dir);
        sources.env = env(&[("FERROCORN_BACKLOG", "64")]);
        sources.cmd_args.push("timeout", "9");
        sources.cli.push("bind", "[::1]:0");
        sources.cli.push("bind", "unix:/tmp/a b.sock");
        let text = load(&sources).unwrap().print_config();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), SETTINGS.len());
        assert!(lines.contains(&"workers = 1  # default"));
        assert!(lines.contains(&format!("threads = 3  # file {}", path.display()).as_str()));
        assert!(lines.contains(&"backlog = 64  # env FERROCORN_BACKLOG"));
        assert!(lines.contains(&"timeout = 9  # env FERROCORN_CMD_ARGS"));
        assert!(lines.contains(&"bind = [\"[::1]:0\", \"unix:/tmp/a b.sock\"]  # cli"));
        // Every value is valid TOML that loads back to the same settings.
        let values: String = lines
            .iter()
            .filter(|l| !l.starts_with("config ="))
            .map(|l| format!("{}\n", l.rsplit_once("  # ").unwrap().0))
            .collect();
        let again = TempDir::new();
        again.write(DEFAULT_CONFIG_FILE, &values);
        let reloaded = load(&Sources {
            cwd: again.0.clone(),
            ..Sources::default()
        })
        .unwrap();
        let mut expected = load(&sources).unwrap().settings;
        expected.config = reloaded.settings.config.clone();
        assert_eq!(reloaded.settings, expected);
    }

    /// The sources in priority order, lowest first, as the property test assigns them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Layer {
        File,
        Env,
        CmdArgs,
        Cli,
    }

    const LAYERS: [Layer; 4] = [Layer::File, Layer::Env, Layer::CmdArgs, Layer::Cli];

    /// For every setting but `config`: which layers give it a value (bit per layer) and
    /// which sample each one gives.
    fn assignments() -> impl Strategy<Value = Vec<(u8, [usize; 4])>> {
        proptest::collection::vec((0u8..16, [0usize..3, 0..3, 0..3, 0..3]), SETTINGS.len())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The priority law: every setting takes the value of the highest source that
        /// gives one (cli > FERROCORN_CMD_ARGS > FERROCORN_<NAME> > file > default).
        #[test]
        fn the_highest_source_present_wins(assignment in assignments(), explicit_file in any::<bool>()) {
            let dir = TempDir::new();
            let mut sources = sources(&dir);
            let mut file = String::new();
            let mut expected = Settings::default();
            let mut expected_origins = vec![Origin::Default; SETTINGS.len()];
            let file_name = if explicit_file { "chosen.toml" } else { DEFAULT_CONFIG_FILE };
            let file_path = dir.0.join(file_name);
            if explicit_file {
                sources.cli.push("config", file_name);
            }
            for ((index, setting), (mask, picks)) in
                SETTINGS.iter().enumerate().zip(&assignment)
            {
                if setting.name == "config" {
                    continue;
                }
                let samples = setting.samples();
                for (bit, layer) in LAYERS.iter().enumerate() {
                    if mask & (1 << bit) == 0 {
                        continue;
                    }
                    let sample = samples[picks[bit] % samples.len()].clone();
                    let mut value = Settings::default();
                    setting.apply(&mut value, &Raw::Str(sample.clone())).unwrap();
                    // Layers come lowest first: each present one overrides the last.
                    setting.apply(&mut expected, &Raw::Str(sample.clone())).unwrap();
                    expected_origins[index] = match layer {
                        Layer::File => {
                            // Typed TOML, as a person would write it.
                            let toml = setting.value_in(&value);
                            file.push_str(&format!("{} = {toml}\n", setting.name));
                            Origin::File {
                                path: file_path.clone(),
                                line: Some(file.lines().count()),
                            }
                        }
                        Layer::Env => {
                            sources.env.insert(setting.env_var(), sample);
                            Origin::Env(setting.env_var())
                        }
                        Layer::CmdArgs => {
                            sources.cmd_args.push(setting.name, sample);
                            Origin::CmdArgs
                        }
                        Layer::Cli => {
                            sources.cli.push(setting.name, sample);
                            Origin::Cli
                        }
                    };
                }
            }
            if explicit_file || !file.is_empty() {
                dir.write(file_name, &file);
                expected.config = Some(file_path.clone());
            }
            if explicit_file {
                expected_origins[SETTINGS.iter().position(|s| s.name == "config").unwrap()] =
                    Origin::Cli;
            }
            let loaded = load(&sources).map_err(messages).unwrap();
            for (setting, origin) in SETTINGS.iter().zip(&expected_origins) {
                prop_assert_eq!(
                    setting.value_in(&loaded.settings),
                    setting.value_in(&expected),
                    "value of {}", setting.name
                );
                prop_assert_eq!(loaded.origin(setting.name), Some(origin), "origin of {}", setting.name);
            }
            prop_assert_eq!(loaded.settings, expected);
        }
    }
}
