//! The registry's machinery: [`Setting`], one entry per setting, and the
//! `declare_settings!` macro that turns the single list in `settings.rs` into the
//! `Settings` struct, its `Default` and the [`SETTINGS`](crate::SETTINGS) table.

use crate::kinds::{Arity, Raw};
use crate::Settings;

/// The group a setting is listed under in `--help` and `docs/settings.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Server,
    Workers,
    Timeouts,
    Limits,
    Process,
    Proxy,
    Logging,
    Http,
    Python,
    Metrics,
    Tls,
}

impl Section {
    /// Every section, in the order they are listed.
    pub const ALL: [Section; 11] = [
        Section::Server,
        Section::Workers,
        Section::Timeouts,
        Section::Limits,
        Section::Process,
        Section::Proxy,
        Section::Logging,
        Section::Http,
        Section::Python,
        Section::Metrics,
        Section::Tls,
    ];

    /// The section's heading.
    pub fn title(self) -> &'static str {
        match self {
            Section::Server => "Server",
            Section::Workers => "Workers",
            Section::Timeouts => "Timeouts",
            Section::Limits => "Request limits",
            Section::Process => "Process",
            Section::Proxy => "Proxies",
            Section::Logging => "Logging",
            Section::Http => "HTTP parser compatibility",
            Section::Python => "Python applications",
            Section::Metrics => "Metrics and health",
            Section::Tls => "TLS",
        }
    }
}

/// How a setting appears on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CliForm {
    /// `-s`/`--long` (and `--alias`, accepted but not shown), with the placeholder shown
    /// for its value (unused by switches).
    Flag {
        short: Option<char>,
        long: &'static str,
        alias: Option<&'static str>,
        value_name: &'static str,
    },
    /// A positional argument (only `APP`).
    Positional { value_name: &'static str },
}

/// A flag with a long name, an optional short one, and its value placeholder.
pub const fn flag(short: Option<char>, long: &'static str, value_name: &'static str) -> CliForm {
    CliForm::Flag {
        short,
        long,
        alias: None,
        value_name,
    }
}

/// A flag that also answers to a second long name (gunicorn's `--log-file`).
pub const fn flag_with_alias(
    short: Option<char>,
    long: &'static str,
    alias: &'static str,
    value_name: &'static str,
) -> CliForm {
    CliForm::Flag {
        short,
        long,
        alias: Some(alias),
        value_name,
    }
}

/// The positional argument.
pub const fn positional(value_name: &'static str) -> CliForm {
    CliForm::Positional { value_name }
}

/// One setting's declaration: everything the command line, the environment, the config
/// file, `--help` and the docs need to know about it.
#[derive(Debug)]
pub struct Setting {
    /// The setting's name: its config-file key and the field of [`Settings`].
    pub name: &'static str,
    /// Where it is listed.
    pub section: Section,
    /// How it is given on the command line.
    pub cli: CliForm,
    /// The documentation: the first sentence is the summary shown by `-h`.
    pub doc: &'static str,
    pub(crate) apply: fn(&mut Settings, &Raw) -> Result<(), String>,
    pub(crate) show: fn(&Settings) -> toml::Value,
    pub(crate) accepted: fn() -> String,
    pub(crate) arity: fn() -> Arity,
    pub(crate) samples: fn() -> Vec<String>,
}

impl Setting {
    /// The environment variable that sets it: `FERROCORN_` and the upper-cased name.
    pub fn env_var(&self) -> String {
        format!("FERROCORN_{}", self.name.to_ascii_uppercase())
    }

    /// The first sentence of the documentation, for `-h`.
    pub fn summary(&self) -> String {
        let text = self.doc_text();
        match text.find(". ") {
            Some(end) => text[..=end].to_string(),
            None => text,
        }
    }

    /// The documentation as one paragraph (doc-comment lines joined).
    pub fn doc_text(&self) -> String {
        self.doc
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
            .trim()
            .to_string()
    }

    /// What the setting accepts, in words.
    pub fn accepted(&self) -> String {
        (self.accepted)()
    }

    /// How the setting is given on the command line.
    pub fn arity(&self) -> Arity {
        (self.arity)()
    }

    /// A few distinct valid values, as command-line text.
    pub fn samples(&self) -> Vec<String> {
        (self.samples)()
    }

    /// Whether `text` is a valid value of this setting (for an optional value on the
    /// command line: is the next argument its value, or something else?).
    pub fn accepts(&self, text: &str) -> bool {
        (self.apply)(&mut Settings::default(), &Raw::Str(text.to_string())).is_ok()
    }

    /// This setting's value in `settings`, as TOML.
    pub fn value_in(&self, settings: &Settings) -> toml::Value {
        (self.show)(settings)
    }

    /// Parses `raw` and stores it in `settings`; fails with a short reason.
    pub(crate) fn apply(&self, settings: &mut Settings, raw: &Raw) -> Result<(), String> {
        (self.apply)(settings, raw)
    }

    /// The flags as `--help` shows them: `-w, --workers` or `APP`.
    pub fn flags_text(&self) -> String {
        match self.cli {
            CliForm::Flag {
                short: Some(short),
                long,
                ..
            } => format!("-{short}, --{long}"),
            CliForm::Flag { long, .. } => format!("--{long}"),
            CliForm::Positional { value_name } => value_name.to_string(),
        }
    }

    /// How an error names the command-line form: `--workers` or `APP`.
    pub fn cli_name(&self) -> String {
        match self.cli {
            CliForm::Flag { long, .. } => format!("--{long}"),
            CliForm::Positional { value_name } => value_name.to_string(),
        }
    }
}

/// Declares every setting once. Each entry is a doc comment, `name: Type = default;` and
/// `section, command-line form, kind;`. The macro writes the `Settings` struct (fields in
/// declaration order), its `Default`, and `SETTINGS`. The kind's output type must be the
/// field's type, or the entry does not compile.
macro_rules! declare_settings {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $ty:ty = $default:expr;
            $section:ident, $cli:expr, $kind:expr;
    )*) => {
        /// Every setting, validated. `Default` holds the value used when no source sets
        /// one. Field names are gunicorn's setting names where gunicorn has the setting;
        /// each field is declared (with its flags, variable, kind and doc) in
        /// `config/src/settings.rs`, see `docs/settings.md`.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Settings {
            $( $(#[doc = $doc])+ pub $name: $ty, )*
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { $( $name: $default, )* }
            }
        }

        /// Every setting's declaration, in the order of `--help` and the docs.
        pub static SETTINGS: &[$crate::registry::Setting] = &[
            $( $crate::registry::Setting {
                name: stringify!($name),
                section: $crate::registry::Section::$section,
                cli: $cli,
                doc: concat!($($doc, "\n"),+),
                apply: |settings, raw| {
                    settings.$name = $crate::kinds::Kind::parse(&$kind, raw)?;
                    Ok(())
                },
                show: |settings| $crate::kinds::Kind::to_toml(&$kind, &settings.$name),
                accepted: || $crate::kinds::Kind::accepted(&$kind),
                arity: || $crate::kinds::Kind::arity(&$kind),
                samples: || $crate::kinds::Kind::samples(&$kind),
            }, )*
        ];
    };
}

pub(crate) use declare_settings;
