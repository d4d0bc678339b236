//! Value kinds: how one setting's raw value (a TOML value from the file, or text from the
//! command line and the environment) is checked and turned into its typed field.
//!
//! Each declaration in `settings.rs` names one kind; the kind's `Out` type must be the
//! field's type, so a mismatch between a declaration and its field does not compile.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use crate::ProxyProtocol;

/// A raw value as a source gave it, before validation.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// Text: every value from the command line and the environment, or a TOML string.
    Str(String),
    /// A TOML integer.
    Int(i128),
    /// A TOML float.
    Float(f64),
    /// A TOML boolean.
    Bool(bool),
    /// A TOML array, or a flag given several times on the command line.
    List(Vec<Raw>),
    /// Anything else (a table, a date): never accepted; holds its TOML rendering.
    Other(String),
}

impl Raw {
    /// Converts a figment value (what the merged sources hold) into a `Raw`.
    pub(crate) fn from_figment(value: &figment::value::Value) -> Raw {
        use figment::value::{Num, Value};
        match value {
            Value::String(_, s) => Raw::Str(s.clone()),
            Value::Char(_, c) => Raw::Str(c.to_string()),
            Value::Bool(_, b) => Raw::Bool(*b),
            Value::Num(_, n) => match *n {
                Num::F32(f) => Raw::Float(f64::from(f)),
                Num::F64(f) => Raw::Float(f),
                Num::U128(u) => i128::try_from(u).map_or(Raw::Other(u.to_string()), Raw::Int),
                other => other
                    .to_i128()
                    .or_else(|| other.to_u128().and_then(|u| i128::try_from(u).ok()))
                    .map_or(Raw::Other(format!("{other:?}")), Raw::Int),
            },
            Value::Array(_, items) => Raw::List(items.iter().map(Raw::from_figment).collect()),
            Value::Empty(..) => Raw::Other("nothing".to_string()),
            Value::Dict(..) => Raw::Other("a table".to_string()),
        }
    }

    /// The value as it is shown in an error message: TOML syntax.
    pub fn to_toml_text(&self) -> String {
        match self {
            Raw::Str(s) => toml::Value::String(s.clone()).to_string(),
            Raw::Int(i) => i.to_string(),
            Raw::Float(f) => toml::Value::Float(*f).to_string(),
            Raw::Bool(b) => b.to_string(),
            Raw::List(items) => {
                let inner: Vec<String> = items.iter().map(Raw::to_toml_text).collect();
                format!("[{}]", inner.join(", "))
            }
            Raw::Other(s) => s.clone(),
        }
    }
}

/// How a setting is given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// A switch without a value: present means `true`.
    Switch,
    /// One value; given twice, the last one wins.
    One,
    /// Repeatable: every occurrence adds to a list.
    Many,
    /// An optional value: the flag alone means `bare`; a value follows as `--flag=VALUE`, or
    /// as the next argument when that is a valid value (gunicorn's `nargs="?"` with a
    /// `const`), so that `--flag APP` leaves `APP` alone.
    Optional {
        /// What the flag alone stands for.
        bare: &'static str,
    },
}

/// A kind of value: parses a [`Raw`] into `Out`, and shows `Out` back as TOML.
pub trait Kind {
    /// The field type this kind produces.
    type Out;
    /// Parses and validates `raw`. The error says what is wrong in a few words
    /// ("not an integer", "above the maximum 65535"); the caller adds the setting, the
    /// source, the value and [`Kind::accepted`].
    fn parse(&self, raw: &Raw) -> Result<Self::Out, String>;
    /// What this kind accepts, for error messages and docs ("an integer from 1 to 65535").
    fn accepted(&self) -> String;
    /// `value` as TOML, such that parsing it back gives `value` again.
    fn to_toml(&self, value: &Self::Out) -> toml::Value;
    /// How the setting is given on the command line.
    fn arity(&self) -> Arity {
        Arity::One
    }
    /// A few distinct valid values as text (the form the command line takes), for the
    /// docs and the property tests.
    fn samples(&self) -> Vec<String>;
}

/// A single value: a one-element list (a flag given once) counts as its element.
fn single(raw: &Raw) -> Result<&Raw, String> {
    match raw {
        Raw::List(items) if items.len() == 1 => Ok(&items[0]),
        Raw::List(items) => Err(format!("{} values where one is expected", items.len())),
        other => Ok(other),
    }
}

/// An unsigned integer between `min` and `max`, both inclusive.
#[derive(Debug)]
pub struct Int<T> {
    min: u64,
    max: u64,
    _out: PhantomData<T>,
}

/// An integer kind producing `T`, accepting `min..=max`.
pub const fn int<T>(min: u64, max: u64) -> Int<T> {
    Int {
        min,
        max,
        _out: PhantomData,
    }
}

/// An unsigned integer: a TOML integer, or decimal digits (`_` separators and a leading
/// `+` allowed, as in TOML).
fn parse_u64(raw: &Raw) -> Result<u64, String> {
    let text = match single(raw)? {
        Raw::Int(i) if *i < 0 => return Err("negative".to_string()),
        Raw::Int(i) => return u64::try_from(*i).map_err(|_| "too large".to_string()),
        Raw::Str(s) => s.trim(),
        _ => return Err("not an integer".to_string()),
    };
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits = unsigned.replace('_', "");
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("not an integer".to_string());
    }
    if negative && digits.chars().any(|c| c != '0') {
        return Err("negative".to_string());
    }
    digits.parse().map_err(|_| "too large".to_string())
}

impl<T: TryFrom<u64> + Copy + Into<u64>> Kind for Int<T> {
    type Out = T;

    fn parse(&self, raw: &Raw) -> Result<T, String> {
        let n = parse_u64(raw)?;
        if n < self.min {
            return Err(format!("below the minimum {}", self.min));
        }
        if n > self.max {
            return Err(format!("above the maximum {}", self.max));
        }
        T::try_from(n).map_err(|_| "too large for this platform".to_string())
    }

    fn accepted(&self) -> String {
        format!("an integer from {} to {}", self.min, self.max)
    }

    fn to_toml(&self, value: &T) -> toml::Value {
        let v: u64 = (*value).into();
        toml::Value::Integer(i64::try_from(v).unwrap_or(i64::MAX))
    }

    fn samples(&self) -> Vec<String> {
        let mid = self.min + (self.max - self.min) / 2;
        vec![self.min.to_string(), mid.to_string(), self.max.to_string()]
    }
}

/// `usize` as a kind output: `Into<u64>` is not implemented for `usize`, so the integer
/// settings that are `usize` fields use this kind.
#[derive(Debug)]
pub struct Count {
    min: u64,
    max: u64,
}

/// An integer kind producing `usize`, accepting `min..=max` (`max` at most `u32::MAX`, so
/// every accepted value fits a `usize` on every supported platform).
pub const fn count(min: u64, max: u32) -> Count {
    Count {
        min,
        max: max as u64,
    }
}

impl Kind for Count {
    type Out = usize;

    fn parse(&self, raw: &Raw) -> Result<usize, String> {
        let n = int::<u64>(self.min, self.max).parse(raw)?;
        usize::try_from(n).map_err(|_| "too large for this platform".to_string())
    }

    fn accepted(&self) -> String {
        int::<u64>(self.min, self.max).accepted()
    }

    fn to_toml(&self, value: &usize) -> toml::Value {
        toml::Value::Integer(i64::try_from(*value).unwrap_or(i64::MAX))
    }

    fn samples(&self) -> Vec<String> {
        int::<u64>(self.min, self.max).samples()
    }
}

/// A duration in seconds: an integer, or a decimal number, from `min_ms` milliseconds
/// (usually 0) to `max` seconds.
#[derive(Debug)]
pub struct Seconds {
    min_ms: u64,
    max: u64,
}

/// A duration kind accepting 0 to `max` seconds.
pub const fn seconds(max: u64) -> Seconds {
    Seconds { min_ms: 0, max }
}

/// A duration kind accepting `min_ms` milliseconds to `max` seconds, for a period that
/// must not be 0 (how often something is done).
pub const fn seconds_from(min_ms: u64, max: u64) -> Seconds {
    Seconds { min_ms, max }
}

impl Seconds {
    /// The minimum in seconds, as the messages write it (`0.1`).
    fn min_text(&self) -> String {
        Duration::from_millis(self.min_ms).as_secs_f64().to_string()
    }
}

impl Kind for Seconds {
    type Out = Duration;

    fn parse(&self, raw: &Raw) -> Result<Duration, String> {
        let secs: f64 = match single(raw)? {
            Raw::Int(i) => *i as f64,
            Raw::Float(f) => *f,
            Raw::Str(s) => {
                let s = s.trim();
                let ok = !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
                    && s.chars().filter(|&c| c == '.').count() <= 1;
                if !ok {
                    return Err("not a number of seconds".to_string());
                }
                s.parse()
                    .map_err(|_| "not a number of seconds".to_string())?
            }
            _ => return Err("not a number of seconds".to_string()),
        };
        if secs.is_nan() || secs < 0.0 {
            return Err("negative".to_string());
        }
        if secs > self.max as f64 {
            return Err(format!("above the maximum {}", self.max));
        }
        let value = Duration::from_secs_f64(secs);
        if value < Duration::from_millis(self.min_ms) {
            return Err(format!("below the minimum {}", self.min_text()));
        }
        Ok(value)
    }

    fn accepted(&self) -> String {
        format!(
            "a number of seconds from {} to {}",
            self.min_text(),
            self.max
        )
    }

    fn to_toml(&self, value: &Duration) -> toml::Value {
        if value.subsec_nanos() == 0 {
            toml::Value::Integer(i64::try_from(value.as_secs()).unwrap_or(i64::MAX))
        } else {
            toml::Value::Float(value.as_secs_f64())
        }
    }

    fn samples(&self) -> Vec<String> {
        vec![self.min_text(), "1.5".to_string(), self.max.to_string()]
    }
}

/// A file mode mask: `0o22`, `022` (a leading zero means octal, as in gunicorn), `0x12`,
/// or a decimal integer; at most `0o777`.
#[derive(Debug)]
pub struct Umask;

impl Kind for Umask {
    type Out = u32;

    fn parse(&self, raw: &Raw) -> Result<u32, String> {
        let value: u64 = match single(raw)? {
            Raw::Int(i) => u64::try_from(*i).map_err(|_| "negative".to_string())?,
            Raw::Str(s) => {
                let s = s.trim().to_ascii_lowercase();
                let (digits, radix) = if let Some(rest) = s.strip_prefix("0o") {
                    (rest, 8)
                } else if let Some(rest) = s.strip_prefix("0x") {
                    (rest, 16)
                } else if let Some(rest) = s.strip_prefix("0b") {
                    (rest, 2)
                } else if s.len() > 1 && s.starts_with('0') {
                    (&s[1..], 8)
                } else {
                    (s.as_str(), 10)
                };
                if digits.is_empty() {
                    return Err("not an integer".to_string());
                }
                u64::from_str_radix(digits, radix).map_err(|_| "not an integer".to_string())?
            }
            _ => return Err("not an integer".to_string()),
        };
        if value > 0o777 {
            return Err("above the maximum 0o777".to_string());
        }
        Ok(value as u32)
    }

    fn accepted(&self) -> String {
        "a mode from 0 to 0o777 (octal as 0o22 or 022, or decimal)".to_string()
    }

    fn to_toml(&self, value: &u32) -> toml::Value {
        toml::Value::String(format!("0o{value:03o}"))
    }

    fn samples(&self) -> Vec<String> {
        vec!["0".to_string(), "0o22".to_string(), "077".to_string()]
    }
}

/// A boolean: TOML `true`/`false`; as text `true`, `false`, `1`, `0`, `yes`, `no`, `on`,
/// `off`. On the command line a switch without a value.
#[derive(Debug)]
pub struct Flag;

impl Kind for Flag {
    type Out = bool;

    fn parse(&self, raw: &Raw) -> Result<bool, String> {
        match single(raw)? {
            Raw::Bool(b) => Ok(*b),
            Raw::Int(0) => Ok(false),
            Raw::Int(1) => Ok(true),
            Raw::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err("not a boolean".to_string()),
            },
            _ => Err("not a boolean".to_string()),
        }
    }

    fn accepted(&self) -> String {
        "true or false (also 1/0, yes/no, on/off)".to_string()
    }

    fn to_toml(&self, value: &bool) -> toml::Value {
        toml::Value::Boolean(*value)
    }

    fn arity(&self) -> Arity {
        Arity::Switch
    }

    fn samples(&self) -> Vec<String> {
        vec!["true".to_string(), "false".to_string()]
    }
}

/// `proxy_protocol`: gunicorn's PROXY protocol modes `off`, `v1`, `v2` and `auto`. The
/// booleans of the switch it used to be still work in every spelling [`Flag`] accepts (a TOML
/// file or a variable written for it): true is `auto`, false is `off`. On the command line the
/// mode is optional; the flag alone is `auto`.
#[derive(Debug)]
pub struct ProxyMode;

const PROXY_MODES: &[(&str, ProxyProtocol)] = &[
    ("off", ProxyProtocol::Off),
    ("v1", ProxyProtocol::V1),
    ("v2", ProxyProtocol::V2),
    ("auto", ProxyProtocol::Auto),
];

impl Kind for ProxyMode {
    type Out = ProxyProtocol;

    fn parse(&self, raw: &Raw) -> Result<ProxyProtocol, String> {
        if let Raw::Str(text) = single(raw)? {
            if let Ok(mode) = choice(PROXY_MODES).parse(&Raw::Str(text.clone())) {
                return Ok(mode);
            }
        }
        match Flag.parse(raw) {
            Ok(true) => Ok(ProxyProtocol::Auto),
            Ok(false) => Ok(ProxyProtocol::Off),
            Err(_) => Err("not a PROXY protocol mode".to_string()),
        }
    }

    fn accepted(&self) -> String {
        "one of off, v1, v2, auto (true and false, as before, mean auto and off)".to_string()
    }

    fn to_toml(&self, value: &ProxyProtocol) -> toml::Value {
        choice(PROXY_MODES).to_toml(value)
    }

    fn arity(&self) -> Arity {
        Arity::Optional { bare: "auto" }
    }

    fn samples(&self) -> Vec<String> {
        choice(PROXY_MODES).samples()
    }
}

/// Free text; `non_empty` refuses the empty string.
#[derive(Debug)]
pub struct Text {
    non_empty: bool,
}

/// Any text.
pub const TEXT: Text = Text { non_empty: false };
/// Any text but the empty string.
pub const NON_EMPTY_TEXT: Text = Text { non_empty: true };

impl Kind for Text {
    type Out = String;

    fn parse(&self, raw: &Raw) -> Result<String, String> {
        let text = match single(raw)? {
            Raw::Str(s) => s.clone(),
            other => return Err(format!("not a string ({})", describe(other))),
        };
        if self.non_empty && text.trim().is_empty() {
            return Err("empty".to_string());
        }
        Ok(text)
    }

    fn accepted(&self) -> String {
        if self.non_empty {
            "a non-empty string".to_string()
        } else {
            "a string".to_string()
        }
    }

    fn to_toml(&self, value: &String) -> toml::Value {
        toml::Value::String(value.clone())
    }

    fn samples(&self) -> Vec<String> {
        vec!["alpha".to_string(), "b c".to_string(), "-".to_string()]
    }
}

fn describe(raw: &Raw) -> &'static str {
    match raw {
        Raw::Str(_) => "a string",
        Raw::Int(_) => "an integer",
        Raw::Float(_) => "a float",
        Raw::Bool(_) => "a boolean",
        Raw::List(_) => "an array",
        Raw::Other(_) => "a table or date",
    }
}

/// Optional text: the empty string means "not set" (TOML has no null).
#[derive(Debug)]
pub struct OptText;

impl Kind for OptText {
    type Out = Option<String>;

    fn parse(&self, raw: &Raw) -> Result<Option<String>, String> {
        let text = TEXT.parse(raw)?;
        Ok(if text.trim().is_empty() {
            None
        } else {
            Some(text)
        })
    }

    fn accepted(&self) -> String {
        "a string (empty: not set)".to_string()
    }

    fn to_toml(&self, value: &Option<String>) -> toml::Value {
        toml::Value::String(value.clone().unwrap_or_default())
    }

    fn samples(&self) -> Vec<String> {
        vec!["alpha".to_string(), "-".to_string(), String::new()]
    }
}

/// An optional path: the empty string means "not set".
#[derive(Debug)]
pub struct OptPath;

impl Kind for OptPath {
    type Out = Option<PathBuf>;

    fn parse(&self, raw: &Raw) -> Result<Option<PathBuf>, String> {
        Ok(OptText.parse(raw)?.map(PathBuf::from))
    }

    fn accepted(&self) -> String {
        "a path (empty: not set)".to_string()
    }

    fn to_toml(&self, value: &Option<PathBuf>) -> toml::Value {
        toml::Value::String(
            value
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        )
    }

    fn samples(&self) -> Vec<String> {
        vec![
            "/tmp/a".to_string(),
            "relative/b".to_string(),
            String::new(),
        ]
    }
}

/// One of a fixed set of names, case-insensitive, mapped to `T`.
#[derive(Debug)]
pub struct Choice<T: 'static> {
    choices: &'static [(&'static str, T)],
}

/// A kind accepting one of `choices` (the first name of a value is the one shown).
pub const fn choice<T>(choices: &'static [(&'static str, T)]) -> Choice<T> {
    Choice { choices }
}

impl<T: Copy + PartialEq + 'static> Kind for Choice<T> {
    type Out = T;

    fn parse(&self, raw: &Raw) -> Result<T, String> {
        // A number names a choice by its text, so that TOML's `cert_reqs = 2` and
        // `tls_min_version = 1.3` read as the command line's `2` and `1.3`.
        let text = match single(raw)? {
            Raw::Str(s) => s.trim().to_ascii_lowercase(),
            Raw::Int(i) => i.to_string(),
            Raw::Float(f) => f.to_string(),
            other => return Err(format!("not a string ({})", describe(other))),
        };
        self.choices
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, value)| *value)
            .ok_or_else(|| "not one of the choices".to_string())
    }

    fn accepted(&self) -> String {
        // Aliases (a later name for a value already listed) are accepted, not listed.
        let names: Vec<&str> = self
            .choices
            .iter()
            .enumerate()
            .filter(|(i, (_, value))| !self.choices[..*i].iter().any(|(_, v)| v == value))
            .map(|(_, (name, _))| *name)
            .collect();
        format!("one of {}", names.join(", "))
    }

    fn to_toml(&self, value: &T) -> toml::Value {
        let name = self
            .choices
            .iter()
            .find(|(_, v)| v == value)
            .map_or("", |(name, _)| *name);
        toml::Value::String(name.to_string())
    }

    fn samples(&self) -> Vec<String> {
        self.choices.iter().map(|(n, _)| n.to_string()).collect()
    }
}

mod lists;
mod statsd;
#[cfg(test)]
mod tests;
mod tls;

pub use lists::{Binds, EnvList, IpList, OptBind, UrlPrefix, PATHS, PATHS_WITH_COMMAS};
pub use statsd::{OptStatsd, StatsdAddress, DEFAULT_STATSD_PORT, DOGSTATSD_TAGS, STATSD_PREFIX};
pub use tls::{cipher_suite_names, CipherList, Ciphers};
