//! One invocation of a program: its command line, `FERROCORN_CMD_ARGS` and environment,
//! loaded into settings at start and again on every reload (HUP).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::Command;
use ferrocorn_config::{ConfigError, Loaded, Origin, Overrides, Settings, Sources, CMD_ARGS_VAR};

use crate::args::{self, Action, Parsed, Program, APP_SETTING};

/// Why a program that serves its own application refuses an `app` setting.
const OWN_APP: &str = "is not taken by this program: it serves its own application";

/// The command line and environment a program was started with, ready to be loaded, and
/// loaded again on a reload (HUP).
#[derive(Debug, Clone)]
pub struct Invocation {
    /// What the command line asks for.
    pub action: Action,
    sources: Sources,
    /// Errors from parsing the command line or `FERROCORN_CMD_ARGS`, reported together
    /// with the configuration's own.
    parse_errors: Vec<ConfigError>,
    /// Whether the `app` setting may be given (false for a program with its own app).
    takes_app: bool,
}

/// What [`Invocation::new`] gives when the arguments ask for `--help` or `--version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayOnly(pub String);

impl Invocation {
    /// Reads the process's arguments, environment and working directory.
    pub fn from_process(program: &Program) -> Result<Invocation, DisplayOnly> {
        let env: BTreeMap<String, String> = std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Invocation::new(program, std::env::args_os().collect(), env, cwd)
    }

    /// Parses `argv` (the program name first) and `FERROCORN_CMD_ARGS` from `env` with
    /// `program`'s command line. `--help`/`--version` anywhere give [`DisplayOnly`]; other
    /// parse errors are kept and reported by [`Invocation::load`].
    pub fn new(
        program: &Program,
        argv: Vec<OsString>,
        env: BTreeMap<String, String>,
        cwd: PathBuf,
    ) -> Result<Invocation, DisplayOnly> {
        let command = args::command(program);
        let mut parse_errors = Vec::new();
        let (cli, mut action) = match args::parse(&command, argv, &Origin::Cli) {
            Parsed::Args {
                overrides,
                action,
                errors,
            } => {
                parse_errors.extend(errors);
                (overrides, action)
            }
            Parsed::Display(text) => return Err(DisplayOnly(text)),
        };
        let mut cmd_args = Overrides::new();
        if let Some(text) = env.get(CMD_ARGS_VAR) {
            let (overrides, act) = parse_cmd_args(&command, text, &mut parse_errors)?;
            cmd_args = overrides;
            if action == Action::Run {
                action = act;
            }
        }
        Ok(Invocation {
            action,
            sources: Sources {
                cli,
                cmd_args,
                env,
                cwd,
            },
            parse_errors,
            takes_app: program.takes_app,
        })
    }

    /// Loads and validates the settings (reading the config file again each time), or
    /// gives every error: the command line's first, then the configuration's. For a
    /// program with its own application, an `app` from a variable or the config file is an
    /// error (it would name an application that is not served).
    pub fn load(&self) -> Result<Loaded, Vec<ConfigError>> {
        let mut errors = self.parse_errors.clone();
        match ferrocorn_config::load(&self.sources) {
            Ok(loaded) => match loaded.origin(APP_SETTING) {
                Some(origin) if !self.takes_app && *origin != Origin::Default => {
                    errors.push(ConfigError::Misplaced {
                        setting: APP_SETTING,
                        origin: origin.clone(),
                        reason: OWN_APP,
                    });
                }
                _ if errors.is_empty() => return Ok(loaded),
                _ => {}
            },
            Err(more) => errors.extend(more),
        }
        Err(errors)
    }

    /// Loads the settings again for a reload (HUP): the same command line and environment,
    /// the config file read anew (resolved against the directory the program started in,
    /// whatever `chdir` says). Errors come as one string (one log line), joined by `; `.
    pub fn reload(&self) -> Result<Settings, String> {
        self.load().map(|loaded| loaded.settings).map_err(|errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// `--print-config`'s text: every setting with its source, but `app` for a program
    /// serving its own application (no `APP` chooses what it serves).
    pub fn print_config(&self, loaded: &Loaded) -> String {
        let app_line = format!("{APP_SETTING} = ");
        loaded
            .print_config()
            .lines()
            .filter(|line| self.takes_app || !line.starts_with(&app_line))
            .map(|line| format!("{line}\n"))
            .collect()
    }
}

/// For tests: `program`'s invocation with `argv` after its name, `env` as the environment,
/// in `cwd`.
#[cfg(test)]
pub fn for_test(
    program: &Program,
    argv: &[&str],
    env: &[(&str, &str)],
    cwd: PathBuf,
) -> Result<Invocation, DisplayOnly> {
    let argv = std::iter::once(program.name.as_str())
        .chain(argv.iter().copied())
        .map(OsString::from)
        .collect();
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Invocation::new(program, argv, env, cwd)
}

/// Parses the shell words of `FERROCORN_CMD_ARGS` with `command`, adding its errors to
/// `errors`.
fn parse_cmd_args(
    command: &Command,
    text: &str,
    errors: &mut Vec<ConfigError>,
) -> Result<(Overrides, Action), DisplayOnly> {
    let Some(words) = shlex::split(text) else {
        errors.push(ConfigError::Usage {
            origin: Origin::CmdArgs,
            message: format!("unbalanced quotes in {text:?}"),
        });
        return Ok((Overrides::new(), Action::Run));
    };
    let args = std::iter::once(OsString::from(command.get_name()))
        .chain(words.into_iter().map(OsString::from))
        .collect();
    match args::parse(command, args, &Origin::CmdArgs) {
        Parsed::Args {
            overrides,
            action,
            errors: more,
        } => {
            errors.extend(more);
            Ok((overrides, action))
        }
        Parsed::Display(text) => Err(DisplayOnly(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom() -> Program {
        Program {
            name: "custom_app".to_string(),
            version: "1.2.3".to_string(),
            about: "A custom application.".to_string(),
            takes_app: false,
        }
    }

    fn custom_invocation(argv: &[&str], env: &[(&str, &str)], cwd: PathBuf) -> Invocation {
        for_test(&custom(), argv, env, cwd).unwrap()
    }

    fn errors(invocation: &Invocation) -> Vec<String> {
        let errors = invocation.load().unwrap_err();
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reload_reads_the_config_file_again() {
        let dir =
            std::env::temp_dir().join(format!("ferrocorn-args-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ferrocorn.toml");
        std::fs::write(&file, "workers = 2\n").unwrap();
        let invocation = Invocation::new(
            &Program::ferrocorn(),
            vec!["ferrocorn".into(), "--threads".into(), "3".into()],
            BTreeMap::new(),
            dir.clone(),
        )
        .unwrap();
        assert_eq!(
            invocation.reload().map(|s| (s.workers, s.threads)),
            Ok((2, 3))
        );
        std::fs::write(&file, "workers = 5\n").unwrap();
        assert_eq!(
            invocation.reload().map(|s| (s.workers, s.threads)),
            Ok((5, 3))
        );
        std::fs::write(&file, "workers = 0\nthreds = 1\n").unwrap();
        let errors = invocation.reload().unwrap_err();
        assert!(errors.contains("unknown setting threds"), "{errors}");
        assert!(errors.contains("invalid value 0 for workers"), "{errors}");
        assert!(!errors.contains('\n'), "{errors}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A program with its own application takes every flag but no `APP`, from any source.
    #[test]
    fn a_program_with_its_own_app_refuses_an_app_from_every_source() {
        let nowhere = std::env::temp_dir().join("ferrocorn-no-such-dir");
        let loaded = custom_invocation(&["--workers", "4"], &[], nowhere.clone())
            .load()
            .unwrap();
        assert_eq!(loaded.settings.workers, 4);
        assert_eq!(
            errors(&custom_invocation(
                &["-w", "2", "hello"],
                &[],
                nowhere.clone()
            )),
            [
                "cli: unexpected argument \"hello\": custom_app serves its own application and \
              takes no APP"
            ]
        );
        let cmd_args = [("FERROCORN_CMD_ARGS", "echo")];
        assert_eq!(
            errors(&custom_invocation(&[], &cmd_args, nowhere.clone())),
            [
                "env FERROCORN_CMD_ARGS: unexpected argument \"echo\": custom_app serves its own \
              application and takes no APP"
            ]
        );
        let env = [("FERROCORN_APP", "hello")];
        assert_eq!(
            errors(&custom_invocation(&[], &env, nowhere)),
            [
                "env FERROCORN_APP: app is not taken by this program: it serves its own \
              application"
            ]
        );
        let dir = std::env::temp_dir().join(format!("ferrocorn-own-app-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ferrocorn.toml"), "workers = 3\napp = \"hello\"\n").unwrap();
        let from_file = errors(&custom_invocation(&[], &[], dir.clone()));
        assert_eq!(from_file.len(), 1, "{from_file:?}");
        assert!(
            from_file[0].ends_with(
                "line 2: app is not taken by this program: it serves its own application"
            ),
            "{from_file:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_program_with_its_own_app_shows_its_name_and_no_app() {
        let nowhere = std::env::temp_dir().join("ferrocorn-no-such-dir");
        let invocation = custom_invocation(&["--print-config"], &[], nowhere);
        assert_eq!(invocation.action, Action::PrintConfig);
        let text = invocation.print_config(&invocation.load().unwrap());
        assert!(text.lines().any(|l| l.starts_with("workers = ")), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("app = ")), "{text}");
        let help = for_test(&custom(), &["--help"], &[], PathBuf::from("."))
            .unwrap_err()
            .0;
        assert!(help.starts_with("A custom application."), "{help}");
        assert!(help.contains("Usage: custom_app [OPTIONS]\n"), "{help}");
        assert!(help.contains("--workers <INT>"), "{help}");
        assert!(!help.contains("[APP]"), "{help}");
        let version = for_test(&custom(), &["-V"], &[], PathBuf::from("."));
        assert_eq!(version.unwrap_err().0, "custom_app 1.2.3\n");
    }
}
