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
use crate::{find, Settings, SETTINGS};

/// The config file read from the working directory when no `config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "ferrocorn.toml";

/// The variable holding extra command-line flags, read by the binary.
pub const CMD_ARGS_VAR: &str = "FERROCORN_CMD_ARGS";

/// `FERROCORN_*` variables that are not settings, so not reported as unknown:
/// `FERROCORN_CMD_ARGS`, `FERROCORN_FD` (listeners handed over during an upgrade) and
/// `FERROCORN_SHARED` (where the tests find the shared corpora). A new internal variable
/// must be added here, or every start would fail with "unknown variable".
pub const RESERVED_ENV_VARS: &[&str] = &[CMD_ARGS_VAR, "FERROCORN_FD", "FERROCORN_SHARED"];

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

    let env_dict = env_layer(&sources.env, &mut errors);
    let file = config_file_path(sources, &env_dict)
        .and_then(|(path, explicit)| read_file(&path, explicit, &mut errors));

    let mut figment = Figment::new();
    if let Some(file) = &file {
        figment = figment.merge(Layer {
            name: LAYER_FILE,
            dict: file.dict.clone(),
        });
    }
    figment = figment
        .merge(Layer {
            name: LAYER_ENV,
            dict: env_dict,
        })
        .merge(Layer {
            name: LAYER_CMD_ARGS,
            dict: sources.cmd_args.to_dict(),
        })
        .merge(Layer {
            name: LAYER_CLI,
            dict: sources.cli.to_dict(),
        });

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

    for (index, setting) in SETTINGS.iter().enumerate() {
        let Ok(value) = figment.find_value(setting.name) else {
            continue;
        };
        let layer = figment
            .find_metadata(setting.name)
            .map_or(LAYER_CLI, |m| match &*m.name {
                LAYER_FILE => LAYER_FILE,
                LAYER_ENV => LAYER_ENV,
                LAYER_CMD_ARGS => LAYER_CMD_ARGS,
                _ => LAYER_CLI,
            });
        let origin = match layer {
            LAYER_FILE => {
                let file = file.as_ref();
                Origin::File {
                    path: file.map(|f| f.path.clone()).unwrap_or_default(),
                    line: file.and_then(|f| f.lines.get(setting.name).copied()),
                }
            }
            LAYER_ENV => Origin::Env(setting.env_var()),
            LAYER_CMD_ARGS => Origin::CmdArgs,
            _ => Origin::Cli,
        };
        let raw = Raw::from_figment(&value);
        match setting.apply(&mut settings, &raw) {
            Ok(()) => origins[index] = origin,
            Err(reason) => errors.push(ConfigError::InvalidValue {
                setting: setting.name,
                origin,
                value: raw.to_toml_text(),
                reason,
                accepted: setting.accepted(),
            }),
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
fn config_file_path(sources: &Sources, env_dict: &Dict) -> Option<(PathBuf, bool)> {
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
        .or_else(|| {
            env_dict
                .get("config")
                .and_then(|v| v.as_str().map(String::from))
        });
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
    let table = match toml::de::DeTable::parse(&text) {
        Ok(table) => table,
        Err(err) => {
            errors.push(ConfigError::FileSyntax {
                path: path.to_path_buf(),
                line: err.span().map_or(1, |span| line_of(&text, span.start)),
                message: err.message().trim().to_string(),
            });
            return None;
        }
    };
    let values: toml::Table = match toml::from_str(&text) {
        Ok(values) => values,
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
    for (key, _) in table.get_ref().iter() {
        let name: &str = key.get_ref();
        let line = line_of(&text, key.span().start);
        let origin = Origin::File {
            path: path.to_path_buf(),
            line: Some(line),
        };
        match find(name) {
            None => errors.push(ConfigError::UnknownSetting {
                key: name.to_string(),
                origin,
                suggestion: closest(name, SETTINGS.iter().map(|s| s.name)).map(String::from),
            }),
            Some(setting) if setting.name == "config" => errors.push(ConfigError::Misplaced {
                setting: setting.name,
                origin,
                reason: "cannot be set in the config file; use -c or FERROCORN_CONFIG",
            }),
            Some(setting) => {
                layer.lines.insert(setting.name.to_string(), line);
                if let Some(value) = values.get(name) {
                    match Value::serialize(value) {
                        Ok(value) => {
                            layer.dict.insert(setting.name.to_string(), value);
                        }
                        Err(err) => errors.push(ConfigError::InvalidValue {
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
    Some(layer)
}
