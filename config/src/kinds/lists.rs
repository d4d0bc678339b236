//! The list kinds: listening addresses, allow lists, paths, environment pairs, and the URL
//! prefix; with the splitting every list value shares.

use std::path::PathBuf;

use super::{describe, Arity, Kind, Raw, TEXT};
use crate::bind::parse_bind;
use crate::net::IpAllowList;
use crate::BindAddress;

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

/// One optional listening address (`HOST:PORT`, `[IPV6]:PORT`, `unix:PATH`); the empty
/// string means "not set". `fd://N` is refused: the metrics listener is always bound by
/// the arbiter itself.
#[derive(Debug)]
pub struct OptBind;

impl Kind for OptBind {
    type Out = Option<BindAddress>;

    fn parse(&self, raw: &Raw) -> Result<Option<BindAddress>, String> {
        let text = TEXT.parse(raw)?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        match parse_bind(text)? {
            BindAddress::Fd(_) => Err("fd://N cannot be used here".to_string()),
            bind => Ok(Some(bind)),
        }
    }

    fn accepted(&self) -> String {
        "one of HOST:PORT, [IPV6]:PORT, HOST (port 8000), unix:PATH (empty: not set)".to_string()
    }

    fn to_toml(&self, value: &Option<BindAddress>) -> toml::Value {
        toml::Value::String(value.as_ref().map(|b| b.to_string()).unwrap_or_default())
    }

    fn samples(&self) -> Vec<String> {
        vec![
            "127.0.0.1:9100".to_string(),
            "unix:/tmp/ferrocorn-metrics.sock".to_string(),
            String::new(),
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
