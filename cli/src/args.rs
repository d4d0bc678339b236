//! The command line: the clap parser built from the settings declarations and the action
//! flags (`--print-config`, `--check-config`, `--help`, `--version`), and the parsing of
//! one argument list (argv or the words of `FERROCORN_CMD_ARGS`) into [`Overrides`].

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use ferrocorn_config::{
    closest, Arity, CliForm, ConfigError, Origin, Overrides, Settings, SETTINGS,
};

/// The setting the positional `APP` sets.
pub const APP_SETTING: &str = "app";

const PRINT_CONFIG: &str = "print_config";
const CHECK_CONFIG: &str = "check_config";

/// What the command line asks for besides the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Serve.
    Run,
    /// `--print-config`: print every setting with its source, exit 0.
    PrintConfig,
    /// `--check-config`: validate the settings and load the app, exit 0 or 2.
    CheckConfig,
}

/// The program the command line belongs to: the `ferrocorn` binary, or a program serving
/// its own application, which takes no `APP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The name `--help`, `--version` and the error lines show.
    pub name: String,
    /// What `--version` prints after the name.
    pub version: String,
    /// The first line of `--help`.
    pub about: String,
    /// Whether the `app` setting (the `APP` argument) chooses the application.
    pub takes_app: bool,
}

impl Program {
    /// The `ferrocorn` binary.
    pub fn ferrocorn() -> Program {
        Program {
            name: "ferrocorn".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            about: "A pre-fork HTTP/1.1 server.".to_string(),
            takes_app: true,
        }
    }
}

/// The clap command: one argument per setting declaration (but `APP` for a program that
/// serves its own application), plus the action flags.
pub fn command(program: &Program) -> Command {
    let mut command = Command::new(program.name.clone())
        .version(program.version.clone())
        // gunicorn's -v/--version, and -V as most command-line tools (and cargo) spell it.
        .disable_version_flag(true)
        .arg(
            Arg::new("version")
                .short('v')
                .short_alias('V')
                .long("version")
                .action(ArgAction::Version)
                .help("Print the version"),
        )
        .about(program.about.clone())
        .after_help(
            "Every option can also be set in FERROCORN_CMD_ARGS, in FERROCORN_<NAME> variables \
             and in a TOML config file (see docs/settings.md). --help shows the details.",
        )
        .args_override_self(true);
    for setting in SETTINGS {
        if setting.name == APP_SETTING && !program.takes_app {
            continue;
        }
        command = command.arg(setting_arg(setting));
    }
    command
        .arg(
            Arg::new(PRINT_CONFIG)
                .long("print-config")
                .action(ArgAction::SetTrue)
                .help("Print every setting as `name = value  # source`, then exit")
                .help_heading("Actions"),
        )
        .arg(
            Arg::new(CHECK_CONFIG)
                .long("check-config")
                .action(ArgAction::SetTrue)
                .help(
                    "Validate the configuration and load the app, then exit (0 if valid, 2 if not)",
                )
                .help_heading("Actions"),
        )
}

fn setting_arg(setting: &'static ferrocorn_config::Setting) -> Arg {
    let long_help = format!(
        "{}\n\nAccepts {}. Default: {}. Environment: {}.",
        setting.doc_text(),
        setting.accepted(),
        setting.value_in(&Settings::default()),
        setting.env_var()
    );
    let arg = Arg::new(setting.name)
        .help(setting.summary())
        .long_help(long_help)
        .help_heading(setting.section.title());
    match setting.cli {
        CliForm::Positional { value_name } => {
            arg.index(1).value_name(value_name).action(ArgAction::Set)
        }
        CliForm::Flag {
            short,
            long,
            alias,
            value_name,
        } => {
            let arg = arg.long(long);
            let arg = match alias {
                Some(alias) => arg.alias(alias),
                None => arg,
            };
            let arg = match short {
                Some(short) => arg.short(short),
                None => arg,
            };
            match setting.arity() {
                // `--reuse-port` alone is true; `--reuse-port=false` undoes a file's or a
                // variable's true, and a bad value is refused saying what is accepted.
                Arity::Switch => arg
                    .value_name("BOOL")
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .action(ArgAction::Set),
                // A negative number is a value for the validator to refuse with the
                // accepted range, not an unknown flag.
                Arity::One => arg
                    .value_name(value_name)
                    .allow_negative_numbers(true)
                    .action(ArgAction::Set),
                Arity::Many => arg.value_name(value_name).action(ArgAction::Append),
                // `--proxy-protocol` alone is `bare`; `--proxy-protocol v1` was joined into
                // `--proxy-protocol=v1` by `join_optional_values`, so a following APP is
                // never taken for the value.
                Arity::Optional { bare } => arg
                    .value_name(value_name)
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value(bare)
                    .action(ArgAction::Set),
            }
        }
    }
}

/// What parsing one argument list gave.
pub enum Parsed {
    /// The settings given, the action asked for, and the errors met on the way (with
    /// errors, the settings are those of the arguments that could be parsed).
    Args {
        overrides: Overrides,
        action: Action,
        errors: Vec<ConfigError>,
    },
    /// `--help` or `--version`: print this text to stdout and exit 0.
    Display(String),
}

/// Joins a flag whose value is optional ([`Arity::Optional`]) with the next argument when
/// that argument is a valid value of its setting (`--proxy-protocol v1` becomes
/// `--proxy-protocol=v1`), as argparse's `nargs="?"` reads gunicorn's flag; anything else
/// after it (`--proxy-protocol hello`, the APP) stays a separate argument. Stops at `--`.
fn join_optional_values(args: &mut Vec<OsString>) {
    let mut i = 1;
    while i + 1 < args.len() {
        if args[i] == "--" {
            return;
        }
        let setting = args[i].to_str().and_then(|flag| {
            SETTINGS.iter().find(|s| match (s.cli, s.arity()) {
                (CliForm::Flag { long, alias, .. }, Arity::Optional { .. }) => flag
                    .strip_prefix("--")
                    .is_some_and(|name| name == long || Some(name) == alias),
                _ => false,
            })
        });
        let value = args[i + 1].to_str().map(str::to_string);
        if let (Some(setting), Some(value)) = (setting, value) {
            if setting.accepts(&value) {
                let joined = format!("{}={value}", args[i].to_string_lossy());
                args[i] = OsString::from(joined);
                args.remove(i + 1);
            }
        }
        i += 1;
    }
}

/// At most this many unknown arguments are skipped to look for more errors after them.
const MAX_SKIPPED: usize = 32;

/// Parses `args` (the program name first) with `command` (from [`command`]). clap stops at
/// the first error; an unknown argument is then left out and parsing starts again, so that
/// every unknown flag is reported, and the values of the others are still validated by the
/// loader.
pub fn parse(command: &Command, mut args: Vec<OsString>, origin: &Origin) -> Parsed {
    join_optional_values(&mut args);
    let mut errors = Vec::new();
    loop {
        let err = match command.clone().try_get_matches_from(args.clone()) {
            Ok(matches) => {
                return Parsed::Args {
                    overrides: overrides(&matches),
                    action: action(&matches),
                    errors,
                }
            }
            Err(err) => err,
        };
        if matches!(
            err.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        ) {
            return Parsed::Display(err.render().to_string());
        }
        errors.push(to_config_error(command, &err, origin));
        if errors.len() > MAX_SKIPPED || !skip_unknown(&err, &mut args) {
            return Parsed::Args {
                overrides: Overrides::new(),
                action: Action::Run,
                errors,
            };
        }
    }
}

/// Removes from `args` the argument `err` reports as unknown and, for a flag written
/// without `=VALUE`, the value that follows it (so that it is not taken for `APP`). False
/// when `err` is not about an unknown argument that can be found in `args`.
fn skip_unknown(err: &clap::Error, args: &mut Vec<OsString>) -> bool {
    if err.kind() != ErrorKind::UnknownArgument {
        return false;
    }
    let Some(ContextValue::String(unknown)) = err.get(ContextKind::InvalidArg) else {
        return false;
    };
    let with_value = format!("{unknown}=");
    let Some(index) = args.iter().enumerate().skip(1).find_map(|(i, arg)| {
        let arg = arg.to_str()?;
        (arg == unknown || arg.starts_with(&with_value)).then_some(i)
    }) else {
        return false;
    };
    let token = args.remove(index);
    let bare_flag = token
        .to_str()
        .is_some_and(|t| t.starts_with('-') && !t.contains('='));
    let next_is_value = args
        .get(index)
        .is_some_and(|next| !next.to_string_lossy().starts_with('-'));
    if bare_flag && next_is_value {
        args.remove(index);
    }
    true
}

fn action(matches: &ArgMatches) -> Action {
    if matches.get_flag(CHECK_CONFIG) {
        Action::CheckConfig
    } else if matches.get_flag(PRINT_CONFIG) {
        Action::PrintConfig
    } else {
        Action::Run
    }
}

/// The settings given in `matches`, as raw text for the config loader.
fn overrides(matches: &ArgMatches) -> Overrides {
    let mut overrides = Overrides::new();
    for setting in SETTINGS {
        // `APP` is not an argument of a program with its own application.
        let given = matches.try_contains_id(setting.name).unwrap_or(false)
            && matches.value_source(setting.name) == Some(ValueSource::CommandLine);
        if !given {
            continue;
        }
        if let Some(values) = matches.get_many::<String>(setting.name) {
            for value in values {
                overrides.push(setting.name, value.clone());
            }
        }
    }
    overrides
}

/// Every long flag of `command`, for typo suggestions.
fn long_flags(command: &Command) -> Vec<String> {
    let mut flags: Vec<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
        .collect();
    flags.push("--help".to_string());
    flags
}

/// Turns a clap error into one line: an unknown flag with our suggestion, or clap's own
/// first line for the other usage errors.
fn to_config_error(command: &Command, err: &clap::Error, origin: &Origin) -> ConfigError {
    let context = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    if err.kind() == ErrorKind::UnknownArgument {
        if let Some(arg) = context(ContextKind::InvalidArg) {
            if arg.starts_with('-') {
                let name = arg.split('=').next().unwrap_or(&arg).to_string();
                let flags = long_flags(command);
                let suggestion = closest(&name, flags.iter().map(String::as_str))
                    .filter(|_| name.starts_with("--"))
                    .map(String::from);
                return ConfigError::UnknownSetting {
                    key: name,
                    origin: origin.clone(),
                    suggestion,
                };
            }
            let message = if command.get_positionals().next().is_some() {
                format!("unexpected argument {arg:?} (only one APP is accepted)")
            } else {
                format!(
                    "unexpected argument {arg:?}: {} serves its own application and takes \
                     no APP",
                    command.get_name()
                )
            };
            return ConfigError::Usage {
                origin: origin.clone(),
                message,
            };
        }
    }
    let rendered = err.render().to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    ConfigError::Usage {
        origin: origin.clone(),
        message: first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invocation::{DisplayOnly, Invocation};

    fn invocation(argv: &[&str], env: &[(&str, &str)]) -> Result<Invocation, DisplayOnly> {
        let nowhere = std::env::temp_dir().join("ferrocorn-no-such-dir");
        crate::invocation::for_test(&Program::ferrocorn(), argv, env, nowhere)
    }

    fn errors(argv: &[&str], env: &[(&str, &str)]) -> Vec<String> {
        invocation(argv, env)
            .unwrap()
            .load()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_command_is_well_formed() {
        command(&Program::ferrocorn()).debug_assert();
        let mut own_app = Program::ferrocorn();
        own_app.takes_app = false;
        command(&own_app).debug_assert();
    }

    #[test]
    fn every_setting_has_its_flag() {
        let command = command(&Program::ferrocorn());
        for setting in SETTINGS {
            let arg = command
                .get_arguments()
                .find(|a| a.get_id() == setting.name)
                .unwrap_or_else(|| panic!("no argument for {}", setting.name));
            if let CliForm::Flag { long, short, .. } = setting.cli {
                assert_eq!(arg.get_long(), Some(long));
                assert_eq!(arg.get_short(), short);
            }
        }
    }

    #[test]
    fn flags_become_settings() {
        let loaded = invocation(
            &[
                "-w",
                "3",
                "-b",
                "127.0.0.1:0",
                "--bind",
                "[::1]:9",
                "--reuse-port",
                "-p",
                "/tmp/p.pid",
                "--keep-alive",
                "5",
                "--log-format",
                "json",
                "echo",
            ],
            &[],
        )
        .unwrap()
        .load()
        .unwrap();
        let s = &loaded.settings;
        assert_eq!(s.workers, 3);
        assert_eq!(s.bind.len(), 2);
        assert!(s.reuse_port);
        assert_eq!(
            s.pidfile.as_deref(),
            Some(std::path::Path::new("/tmp/p.pid"))
        );
        assert_eq!(s.keepalive.as_secs(), 5);
        assert_eq!(s.log_format, ferrocorn_config::LogFormat::Json);
        assert_eq!(s.app, "echo");
        assert_eq!(loaded.origin("workers"), Some(&Origin::Cli));
    }

    #[test]
    fn a_later_flag_overrides_an_earlier_one() {
        let loaded = invocation(&["-w", "3", "--workers", "5"], &[])
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(loaded.settings.workers, 5);
    }

    #[test]
    fn gunicorn_aliases_are_accepted() {
        let loaded = invocation(&["--log-file", "/tmp/x.log"], &[])
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(loaded.settings.errorlog, "/tmp/x.log");
        let loaded = invocation(&["--limit-request-field_size", "100", "-k", "gthread"], &[])
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(loaded.settings.limit_request_field_size, 100);
        assert_eq!(
            loaded.settings.worker_class,
            ferrocorn_config::WorkerClass::Gthread
        );
        let refused = invocation(&["-k", "gevent"], &[]).unwrap().load();
        assert!(refused.is_err());
    }

    #[test]
    fn cmd_args_sit_between_the_command_line_and_the_variables() {
        let env = [
            (
                "FERROCORN_CMD_ARGS",
                "--workers 4 --timeout '7' --threads=2",
            ),
            ("FERROCORN_WORKERS", "9"),
            ("FERROCORN_TIMEOUT", "9"),
            ("FERROCORN_BACKLOG", "99"),
        ];
        let loaded = invocation(&["--threads", "3"], &env)
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(loaded.settings.workers, 4);
        assert_eq!(loaded.settings.timeout.as_secs(), 7);
        assert_eq!(loaded.settings.threads, 3);
        assert_eq!(loaded.settings.backlog, 99);
        assert_eq!(loaded.origin("workers"), Some(&Origin::CmdArgs));
        assert_eq!(loaded.origin("threads"), Some(&Origin::Cli));
        assert_eq!(
            loaded.origin("backlog"),
            Some(&Origin::Env("FERROCORN_BACKLOG".to_string()))
        );
    }

    #[test]
    fn an_unknown_flag_is_reported_with_a_suggestion() {
        assert_eq!(
            errors(&["--wokers", "3"], &[]),
            ["cli: unknown flag --wokers; did you mean --workers?"]
        );
        assert_eq!(
            errors(&[], &[("FERROCORN_CMD_ARGS", "--keepalive=3")]),
            ["env FERROCORN_CMD_ARGS: unknown flag --keepalive; did you mean --keep-alive?"]
        );
    }

    #[test]
    fn command_line_errors_are_reported_with_the_other_errors() {
        let errors = errors(
            &["--bogus-flag-name"],
            &[
                ("FERROCORN_WORKERS", "zero"),
                ("FERROCORN_CMD_ARGS", "'open"),
            ],
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("cli: unknown flag --bogus-flag-name"));
        assert!(errors[1].starts_with("env FERROCORN_CMD_ARGS: unbalanced quotes"));
        assert!(errors[2].starts_with("env FERROCORN_WORKERS: invalid value \"zero\""));
    }

    #[test]
    fn every_unknown_flag_and_every_bad_value_is_reported() {
        assert_eq!(
            errors(
                &[
                    "-w",
                    "0",
                    "--wokers",
                    "2",
                    "--threds=3",
                    "-Z",
                    "hello",
                    "--backlog",
                    "x"
                ],
                &[]
            ),
            [
                "cli: unknown flag --wokers; did you mean --workers?",
                "cli: unknown flag --threds; did you mean --threads?",
                "cli: unknown flag -Z",
                "cli --backlog: invalid value \"x\" for backlog: not an integer; expected an \
                 integer from 1 to 65535",
                "cli --workers: invalid value \"0\" for workers: below the minimum 1; expected \
                 an integer from 1 to 1024",
            ]
        );
    }

    /// Bug: a switch could not be turned off from the command line (`--reuse-port=false`
    /// against a file's `reuse_port = true`), and `--reuse-port=maybe` got clap's "no more
    /// were expected" instead of what the setting accepts.
    #[test]
    fn bug_a_switch_takes_an_optional_boolean() {
        let env = [("FERROCORN_REUSE_PORT", "true")];
        let loaded = invocation(&["--reuse-port=false", "--reuse-port", "echo"], &env)
            .unwrap()
            .load()
            .unwrap();
        assert!(loaded.settings.reuse_port);
        assert_eq!(loaded.origin("reuse_port"), Some(&Origin::Cli));
        assert_eq!(
            loaded.settings.app, "echo",
            "a bare switch takes no APP as its value"
        );
        let loaded = invocation(&["--reuse-port=false"], &env)
            .unwrap()
            .load()
            .unwrap();
        assert!(!loaded.settings.reuse_port);
        assert_eq!(
            errors(&["--reuse-port=maybe"], &[]),
            [
                "cli --reuse-port: invalid value \"maybe\" for reuse_port: not a boolean; \
              expected true or false (also 1/0, yes/no, on/off)"
            ]
        );
    }

    /// Bug: `--proxy-protocol` was a switch while gunicorn takes `--proxy-protocol [MODE]`
    /// (`v1`, `v2`, `auto`), so `--proxy-protocol v1 hello` read as two applications. The
    /// mode is optional (alone: `auto`), and the booleans the switch took still work in the
    /// file and the environment.
    #[test]
    fn bug_proxy_protocol_takes_gunicorns_optional_mode() {
        use ferrocorn_config::ProxyProtocol::{Auto, Off, V1, V2};
        let mode = |argv: &[&str], env: &[(&str, &str)]| {
            let s = invocation(argv, env).unwrap().load().unwrap().settings;
            (s.proxy_protocol, s.app)
        };
        let app = |name: &str| name.to_string();
        assert_eq!(
            mode(&["--proxy-protocol", "v1", "hello"], &[]),
            (V1, app("hello"))
        );
        assert_eq!(
            mode(&["--proxy-protocol=v2", "hello"], &[]),
            (V2, app("hello"))
        );
        assert_eq!(
            mode(&["--proxy-protocol", "hello"], &[]),
            (Auto, app("hello"))
        );
        assert_eq!(
            mode(&["hello", "--proxy-protocol"], &[]),
            (Auto, app("hello"))
        );
        assert_eq!(
            mode(&["--proxy-protocol", "off", "echo"], &[]),
            (Off, app("echo"))
        );
        assert_eq!(
            mode(&["--proxy-protocol", "--", "v1"], &[]),
            (Auto, app("v1"))
        );
        let cmd_args = [("FERROCORN_CMD_ARGS", "--proxy-protocol auto echo")];
        assert_eq!(mode(&[], &cmd_args), (Auto, app("echo")));
        for (value, expected) in [("1", Auto), ("true", Auto), ("false", Off), ("v1", V1)] {
            let env = [("FERROCORN_PROXY_PROTOCOL", value)];
            assert_eq!(mode(&[], &env).0, expected, "{value}");
        }
        assert_eq!(
            errors(&["--proxy-protocol=v3"], &[]),
            [
                "cli --proxy-protocol: invalid value \"v3\" for proxy_protocol: not a PROXY \
                 protocol mode; expected one of off, v1, v2, auto (true and false, as before, \
                 mean auto and off)"
            ]
        );
    }

    /// Bug: `--timeout -1` was reported as "unknown flag -1" plus "a value is required",
    /// never naming the setting's range.
    #[test]
    fn bug_a_negative_number_is_a_bad_value_not_a_flag() {
        assert_eq!(
            errors(&["--timeout", "-1", "--limit-request-body=-5"], &[]),
            [
                "cli --timeout: invalid value \"-1\" for timeout: negative; expected a \
                 number of seconds from 0 to 31536000",
                "cli --limit-request-body: invalid value \"-5\" for limit_request_body: \
                 negative; expected an integer from 0 to 9223372036854775807",
            ]
        );
    }

    #[test]
    fn a_missing_value_and_a_second_app_are_usage_errors() {
        let errors = errors(&["--workers"], &[]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("cli: "), "{errors:?}");
        assert!(errors[0].contains("--workers"), "{errors:?}");
        let errors = self::errors(&["hello", "echo"], &[]);
        assert_eq!(
            errors,
            ["cli: unexpected argument \"echo\" (only one APP is accepted)"]
        );
    }

    #[test]
    fn actions_are_recognised() {
        assert_eq!(
            invocation(&["--print-config"], &[]).unwrap().action,
            Action::PrintConfig
        );
        assert_eq!(
            invocation(&["--check-config"], &[]).unwrap().action,
            Action::CheckConfig
        );
        assert_eq!(invocation(&[], &[]).unwrap().action, Action::Run);
        let help = invocation(&["--help"], &[]).unwrap_err().0;
        assert!(help.contains("--worker-connections <INT>"), "{help}");
        assert!(help.contains("FERROCORN_WORKER_CONNECTIONS"), "{help}");
        for flag in ["--version", "-v", "-V"] {
            let version = invocation(&[flag], &[]).unwrap_err().0;
            assert_eq!(
                version,
                format!("ferrocorn {}\n", env!("CARGO_PKG_VERSION"))
            );
        }
    }
}
