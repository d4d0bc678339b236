//! Value kinds: how one setting's raw value (a TOML value from the file, or text from the
//! command line and the environment) is checked and turned into its typed field.
//!
//! Each declaration in `settings.rs` names one kind; the kind's `Out` type must be the
//! field's type, so a mismatch between a declaration and its field does not compile.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use crate::bind::parse_bind;
use crate::net::IpAllowList;
use crate::{BindAddress, ProxyProtocol};

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

/// A duration in seconds: an integer, or a decimal number, from 0 to `max`.
#[derive(Debug)]
pub struct Seconds {
    max: u64,
}

/// A duration kind accepting 0 to `max` seconds.
pub const fn seconds(max: u64) -> Seconds {
    Seconds { max }
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
        Ok(Duration::from_secs_f64(secs))
    }

    fn accepted(&self) -> String {
        format!("a number of seconds from 0 to {}", self.max)
    }

    fn to_toml(&self, value: &Duration) -> toml::Value {
        if value.subsec_nanos() == 0 {
            toml::Value::Integer(i64::try_from(value.as_secs()).unwrap_or(i64::MAX))
        } else {
            toml::Value::Float(value.as_secs_f64())
        }
    }

    fn samples(&self) -> Vec<String> {
        vec!["0".to_string(), "1.5".to_string(), self.max.to_string()]
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
        let text = match single(raw)? {
            Raw::Str(s) => s.trim().to_ascii_lowercase(),
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

/// Splits a list value: a TOML array, several occurrences of a flag, or text with
/// comma-separated items (`split_text`). Items are trimmed; empty items are dropped.
fn list_items(raw: &Raw, split_items: bool) -> Result<Vec<String>, String> {
    let pieces: Vec<String> = match raw {
        Raw::List(items) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Raw::Str(s) => out.push(s.clone()),
                    other => return Err(format!("an item is {}", describe(other))),
                }
            }
            out
        }
        Raw::Str(s) => vec![s.clone()],
        other => return Err(format!("not a string or an array ({})", describe(other))),
    };
    let mut items = Vec::new();
    for piece in pieces {
        if split_items || !matches!(raw, Raw::List(_)) {
            items.extend(
                piece
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        } else if !piece.trim().is_empty() {
            items.push(piece.trim().to_string());
        }
    }
    Ok(items)
}

fn list_to_toml<T: ToString>(items: &[T]) -> toml::Value {
    toml::Value::Array(
        items
            .iter()
            .map(|i| toml::Value::String(i.to_string()))
            .collect(),
    )
}

/// The listening addresses: `HOST:PORT`, `[IPv6]:PORT`, `HOST` (port 8000), `unix:PATH`,
/// `fd://N`. Repeatable on the command line; an array in the file; comma-separated in an
/// environment variable. At least one.
#[derive(Debug)]
pub struct Binds;

impl Kind for Binds {
    type Out = Vec<BindAddress>;

    fn parse(&self, raw: &Raw) -> Result<Vec<BindAddress>, String> {
        let items = list_items(raw, false)?;
        if items.is_empty() {
            return Err("no address".to_string());
        }
        let binds = items
            .iter()
            .map(|item| parse_bind(item))
            .collect::<Result<Vec<_>, _>>()?;
        // One socket per address: the same address twice cannot be bound twice, and the
        // same `fd://N` twice would give one descriptor two owners. Port 0 asks for a new
        // ephemeral port each time.
        for (i, bind) in binds.iter().enumerate() {
            let ephemeral = matches!(bind, BindAddress::Tcp { port: 0, .. });
            if let Some(j) = binds[..i].iter().position(|earlier| earlier == bind) {
                if !ephemeral {
                    return Err(if items[i] == items[j] {
                        format!("{:?} is given twice", items[i])
                    } else {
                        format!("{:?} and {:?} are the same address", items[j], items[i])
                    });
                }
            }
        }
        Ok(binds)
    }

    fn accepted(&self) -> String {
        "one or more of HOST:PORT, [IPV6]:PORT, HOST (port 8000), unix:PATH, fd://N".to_string()
    }

    fn to_toml(&self, value: &Vec<BindAddress>) -> toml::Value {
        list_to_toml(value)
    }

    fn arity(&self) -> Arity {
        Arity::Many
    }

    fn samples(&self) -> Vec<String> {
        vec![
            "127.0.0.1:0".to_string(),
            "[::1]:8080".to_string(),
            "unix:/tmp/ferrocorn.sock".to_string(),
        ]
    }
}

/// A list of client addresses: IP addresses, `ADDRESS/PREFIX` networks, or `*` for any.
/// Comma-separated text, a TOML array, or a repeated flag. May be empty.
#[derive(Debug)]
pub struct IpList;

impl Kind for IpList {
    type Out = IpAllowList;

    fn parse(&self, raw: &Raw) -> Result<IpAllowList, String> {
        IpAllowList::parse(list_items(raw, true)?)
    }

    fn accepted(&self) -> String {
        "a comma-separated list of IP addresses, ADDRESS/PREFIX networks, or *".to_string()
    }

    fn to_toml(&self, value: &IpAllowList) -> toml::Value {
        list_to_toml(value.items())
    }

    fn arity(&self) -> Arity {
        Arity::Many
    }

    fn samples(&self) -> Vec<String> {
        vec![
            "*".to_string(),
            "10.0.0.0/8".to_string(),
            "127.0.0.1,::1".to_string(),
        ]
    }
}

/// A list of paths. Repeatable on the command line and a TOML array in the file; in one
/// text value (an environment variable, or any value when `commas` is set, as gunicorn's
/// `--pythonpath a,b` takes it), items are separated by commas. May be empty.
#[derive(Debug)]
pub struct PathList {
    commas: bool,
}

/// Paths separated by commas in every form (gunicorn's `pythonpath`).
pub const PATHS_WITH_COMMAS: PathList = PathList { commas: true };
/// One path per flag or array item; commas only separate items of one text value.
pub const PATHS: PathList = PathList { commas: false };

impl Kind for PathList {
    type Out = Vec<PathBuf>;

    fn parse(&self, raw: &Raw) -> Result<Vec<PathBuf>, String> {
        Ok(list_items(raw, self.commas)?
            .into_iter()
            .map(PathBuf::from)
            .collect())
    }

    fn accepted(&self) -> String {
        if self.commas {
            "a comma-separated list of paths".to_string()
        } else {
            "paths (repeat the flag; comma-separated in an environment variable)".to_string()
        }
    }

    fn to_toml(&self, value: &Vec<PathBuf>) -> toml::Value {
        toml::Value::Array(
            value
                .iter()
                .map(|p| toml::Value::String(p.display().to_string()))
                .collect(),
        )
    }

    fn arity(&self) -> Arity {
        Arity::Many
    }

    fn samples(&self) -> Vec<String> {
        vec!["/srv/app".to_string(), "lib".to_string(), "a/b".to_string()]
    }
}

/// Environment variables as `KEY=VALUE` (gunicorn's `raw_env`): repeatable on the command
/// line, a TOML array in the file, comma-separated in an environment variable. The key is
/// not empty and holds neither `=` nor NUL; the value holds no NUL.
#[derive(Debug)]
pub struct EnvList;

fn check_env_item(item: &str) -> Result<(), String> {
    let Some((key, value)) = item.split_once('=') else {
        return Err(format!("{item:?} is not KEY=VALUE"));
    };
    if key.trim().is_empty() {
        return Err(format!("{item:?} has an empty name"));
    }
    if key.contains('\0') || value.contains('\0') {
        return Err(format!("{item:?} holds a NUL byte"));
    }
    Ok(())
}

impl Kind for EnvList {
    type Out = Vec<String>;

    fn parse(&self, raw: &Raw) -> Result<Vec<String>, String> {
        let items = list_items(raw, false)?;
        for item in &items {
            check_env_item(item)?;
        }
        Ok(items)
    }

    fn accepted(&self) -> String {
        "KEY=VALUE pairs (repeat the flag)".to_string()
    }

    fn to_toml(&self, value: &Vec<String>) -> toml::Value {
        list_to_toml(value)
    }

    fn arity(&self) -> Arity {
        Arity::Many
    }

    fn samples(&self) -> Vec<String> {
        vec![
            "A=1".to_string(),
            "DJANGO_SETTINGS_MODULE=site.settings".to_string(),
            "EMPTY=".to_string(),
        ]
    }
}

/// A URL path prefix an application is mounted at (`SCRIPT_NAME`): empty, or starting with
/// `/` and not ending with one, with no `?`, `#` or control characters.
#[derive(Debug)]
pub struct UrlPrefix;

impl Kind for UrlPrefix {
    type Out = String;

    fn parse(&self, raw: &Raw) -> Result<String, String> {
        let text = TEXT.parse(raw)?;
        if text.is_empty() {
            return Ok(text);
        }
        if !text.starts_with('/') {
            return Err("does not start with /".to_string());
        }
        if text.ends_with('/') {
            return Err("ends with /".to_string());
        }
        if text
            .chars()
            .any(|c| c.is_control() || c == '?' || c == '#' || c == ' ')
        {
            return Err("holds a space, ?, # or a control character".to_string());
        }
        Ok(text)
    }

    fn accepted(&self) -> String {
        "empty, or a path starting with / and not ending with / (/api)".to_string()
    }

    fn to_toml(&self, value: &String) -> toml::Value {
        toml::Value::String(value.clone())
    }

    fn samples(&self) -> Vec<String> {
        vec![String::new(), "/api".to_string(), "/a/b".to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Raw {
        Raw::Str(text.to_string())
    }

    #[test]
    fn integers_accept_text_and_toml_and_check_the_range() {
        let k = count(1, 100);
        assert_eq!(k.parse(&s("42")), Ok(42));
        assert_eq!(k.parse(&Raw::Int(7)), Ok(7));
        assert_eq!(k.parse(&Raw::List(vec![s("9")])), Ok(9));
        assert!(k.parse(&s("0")).unwrap_err().contains("minimum 1"));
        assert!(k.parse(&s("101")).unwrap_err().contains("maximum 100"));
        assert_eq!(k.parse(&s("-3")).unwrap_err(), "negative");
        assert_eq!(k.parse(&s("4x")).unwrap_err(), "not an integer");
        assert_eq!(k.parse(&Raw::Float(1.5)).unwrap_err(), "not an integer");
        assert_eq!(
            k.parse(&s("99999999999999999999999")).unwrap_err(),
            "too large"
        );
        assert_eq!(
            int::<u32>(0, 10).parse(&Raw::Int(-1)).unwrap_err(),
            "negative"
        );
    }

    #[test]
    fn seconds_accept_integers_and_decimals() {
        let k = seconds(100);
        assert_eq!(k.parse(&s("30")), Ok(Duration::from_secs(30)));
        assert_eq!(k.parse(&s("0.5")), Ok(Duration::from_millis(500)));
        assert_eq!(k.parse(&Raw::Float(2.5)), Ok(Duration::from_millis(2500)));
        assert!(k.parse(&s("-1")).is_err());
        assert!(k.parse(&s("1e3")).is_err());
        assert!(k.parse(&s("101")).unwrap_err().contains("maximum 100"));
        assert_eq!(k.to_toml(&Duration::from_secs(3)), toml::Value::Integer(3));
        assert_eq!(
            k.to_toml(&Duration::from_millis(1500)),
            toml::Value::Float(1.5)
        );
    }

    #[test]
    fn umask_reads_octal_like_gunicorn() {
        assert_eq!(Umask.parse(&s("0o22")), Ok(0o22));
        assert_eq!(Umask.parse(&s("022")), Ok(0o22));
        assert_eq!(Umask.parse(&s("18")), Ok(18));
        assert_eq!(Umask.parse(&s("0")), Ok(0));
        assert_eq!(Umask.parse(&Raw::Int(0o77)), Ok(0o77));
        assert!(Umask.parse(&s("0o1000")).is_err());
        assert!(Umask.parse(&s("09")).is_err());
        assert_eq!(Umask.to_toml(&0o22), toml::Value::String("0o022".into()));
    }

    #[test]
    fn flags_accept_the_usual_spellings() {
        for yes in ["true", "1", "YES", "on"] {
            assert_eq!(Flag.parse(&s(yes)), Ok(true));
        }
        for no in ["false", "0", "no", "Off"] {
            assert_eq!(Flag.parse(&s(no)), Ok(false));
        }
        assert!(Flag.parse(&s("maybe")).is_err());
        assert!(Flag.parse(&Raw::Int(2)).is_err());
    }

    #[test]
    fn choices_are_case_insensitive_and_list_their_names() {
        let k = choice(&[("a", 1u8), ("b", 2u8), ("bee", 2u8)]);
        assert_eq!(k.parse(&s("B")), Ok(2));
        assert_eq!(k.parse(&s("bee")), Ok(2));
        assert!(k.parse(&s("c")).is_err());
        assert_eq!(k.accepted(), "one of a, b");
        assert_eq!(k.to_toml(&2), toml::Value::String("b".into()));
    }

    #[test]
    fn lists_split_text_on_commas() {
        let items = |raw: &Raw| IpList.parse(raw).map(|l| l.items().to_vec());
        assert_eq!(
            items(&s("127.0.0.1, ::1")),
            Ok(vec!["127.0.0.1".to_string(), "::1".to_string()])
        );
        assert_eq!(items(&s("")), Ok(vec![]));
        assert!(IpList.parse(&s("localhost")).is_err());
        assert!(IpList.parse(&s("10.0.0.0/33")).is_err());
        assert_eq!(
            items(&Raw::List(vec![s("*"), s("10.0.0.0/8,1.2.3.4")])),
            Ok(vec!["*".into(), "10.0.0.0/8".into(), "1.2.3.4".into()])
        );
    }

    #[test]
    fn binds_need_at_least_one_address() {
        assert!(Binds.parse(&s("")).is_err());
        assert_eq!(
            Binds.parse(&Raw::List(vec![s("127.0.0.1:0"), s("unix:/tmp/s")])),
            Ok(vec![
                BindAddress::Tcp {
                    host: "127.0.0.1".into(),
                    port: 0
                },
                BindAddress::Unix("/tmp/s".into())
            ])
        );
        assert_eq!(Binds.parse(&s("a:1,b:2")).map(|v| v.len()), Ok(2));
    }

    /// Bug: `--bind fd://3 --bind fd://3` gave one descriptor two owners (the arbiter
    /// aborted on TERM with "owned file descriptor already closed").
    #[test]
    fn bug_the_same_address_twice_is_refused_naming_both() {
        let list = |items: &[&str]| Raw::List(items.iter().map(|i| s(i)).collect());
        assert_eq!(
            Binds.parse(&list(&["fd://3", "fd://3"])),
            Err("\"fd://3\" is given twice".to_string())
        );
        assert_eq!(
            Binds.parse(&list(&["localhost", "unix:/s", "localhost:8000"])),
            Err("\"localhost\" and \"localhost:8000\" are the same address".to_string())
        );
        assert!(Binds.parse(&list(&["unix:/s", "unix:/s"])).is_err());
        // Port 0 is a new ephemeral port each time.
        assert_eq!(
            Binds
                .parse(&list(&["127.0.0.1:0", "127.0.0.1:0"]))
                .map(|v| v.len()),
            Ok(2)
        );
    }

    #[test]
    fn every_kind_parses_back_what_it_shows() {
        fn round_trip<K: Kind>(kind: &K)
        where
            K::Out: PartialEq + std::fmt::Debug,
        {
            for sample in kind.samples() {
                let value = kind.parse(&Raw::Str(sample.clone())).unwrap();
                let shown = kind.to_toml(&value);
                let raw = Raw::from_figment(&figment::value::Value::serialize(&shown).unwrap());
                assert_eq!(kind.parse(&raw), Ok(value), "sample {sample:?}");
            }
        }
        round_trip(&count(1, 9));
        round_trip(&int::<u64>(0, 9));
        round_trip(&seconds(9));
        round_trip(&Umask);
        round_trip(&Flag);
        round_trip(&TEXT);
        round_trip(&OptText);
        round_trip(&OptPath);
        round_trip(&Binds);
        round_trip(&IpList);
        round_trip(&choice(&[("x", 1u8), ("y", 2u8)]));
        round_trip(&PATHS);
        round_trip(&PATHS_WITH_COMMAS);
        round_trip(&EnvList);
        round_trip(&UrlPrefix);
        round_trip(&ProxyMode);
    }

    #[test]
    fn proxy_modes_are_gunicorns_and_the_old_booleans_still_work() {
        for (text, mode) in [
            ("off", ProxyProtocol::Off),
            ("V1", ProxyProtocol::V1),
            ("v2", ProxyProtocol::V2),
            ("auto", ProxyProtocol::Auto),
            ("true", ProxyProtocol::Auto),
            ("1", ProxyProtocol::Auto),
            ("yes", ProxyProtocol::Auto),
            ("false", ProxyProtocol::Off),
            ("0", ProxyProtocol::Off),
        ] {
            assert_eq!(ProxyMode.parse(&s(text)), Ok(mode), "{text}");
        }
        assert_eq!(ProxyMode.parse(&Raw::Bool(true)), Ok(ProxyProtocol::Auto));
        assert_eq!(ProxyMode.parse(&Raw::Bool(false)), Ok(ProxyProtocol::Off));
        assert!(ProxyMode.parse(&s("v3")).is_err());
        assert!(ProxyMode.parse(&Raw::Int(2)).is_err());
    }

    #[test]
    fn python_kinds_check_their_values() {
        let flags = |items: &[&str]| Raw::List(items.iter().map(|i| s(i)).collect());
        // One value per flag keeps its commas; a comma-separated text is split.
        assert_eq!(
            EnvList.parse(&flags(&["A=1,2", "B="])),
            Ok(vec!["A=1,2".to_string(), "B=".to_string()])
        );
        assert!(EnvList.parse(&flags(&["NOEQUALS"])).is_err());
        assert!(EnvList.parse(&flags(&["=1"])).is_err());
        assert_eq!(
            PATHS_WITH_COMMAS.parse(&flags(&["a,b"])).map(|v| v.len()),
            Ok(2)
        );
        assert_eq!(PATHS.parse(&flags(&["a,b"])).map(|v| v.len()), Ok(1));
        assert_eq!(UrlPrefix.parse(&s("/api")), Ok("/api".to_string()));
        for bad in ["api", "/api/", "/a b", "/a?b"] {
            assert!(UrlPrefix.parse(&s(bad)).is_err(), "{bad}");
        }
    }
}
