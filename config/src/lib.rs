//! ferrocorn's settings registry: one declaration per setting, the validated [`Settings`]
//! every other crate reads, and the loader that fills it from the command line,
//! `FERROCORN_CMD_ARGS`, `FERROCORN_<NAME>` variables, a TOML file and defaults.
//!
//! This crate knows nothing of clap, HTTP or processes. The binary turns its command line
//! into [`Overrides`] (by iterating [`SETTINGS`] to build its parser), passes them with the
//! environment in [`Sources`], and gets a [`Loaded`] or every [`ConfigError`] at once:
//!
//! ```
//! use ferrocorn_config::{load, Overrides, Sources};
//!
//! let mut cli = Overrides::new();
//! cli.push("workers", "4");
//! let sources = Sources { cli, cwd: std::env::temp_dir(), ..Sources::default() };
//! let loaded = load(&sources).expect("valid settings");
//! assert_eq!(loaded.settings.workers, 4);
//! assert_eq!(loaded.origin("workers").unwrap().to_string(), "cli");
//! ```
//!
//! Field names are gunicorn's setting names where gunicorn has the setting: the worker and
//! the arbiter read these fields, so renaming one is a change to both.

mod bind;
pub mod docs;
mod error;
mod kinds;
mod load;
mod net;
pub mod registry;
mod settings;

pub use bind::{parse_bind, DEFAULT_PORT};
pub use error::{closest, edit_distance, ConfigError, Origin};
pub use kinds::{cipher_suite_names, Arity, CipherList, StatsdAddress, DEFAULT_STATSD_PORT};
pub use load::{
    load, Loaded, Overrides, Sources, CMD_ARGS_VAR, DEFAULT_CONFIG_FILE, RESERVED_ENV_VARS,
};
pub use net::{IpAllowList, IpNet};
pub use registry::{CliForm, Section, Setting};
pub use settings::{
    AsgiLifespan, AsgiLoop, BindAddress, CertReqs, HeaderMap, LogFormat, LogLevel, MemoryMetric,
    ProxyProtocol, ReloadStrategy, RequestLimits, Settings, TlsVersion, WorkerClass,
    DEFAULT_ACCESS_LOG_FORMAT, DEFAULT_FIELD_SIZE, SETTINGS,
};

/// The declaration of the setting called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}
