//! `cargo xtask ci | bench | bench-ws | count | fuzz | docs`: project automation.
//!
//! xtask links none of the server crates: it drives them through `cargo`, the way
//! CI and a developer would, so that it keeps building when they do not.

mod bench;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci              cargo fmt --check, clippy -D warnings, the workspace tests, docs --check
  docs [--check]  regenerate docs/settings.md (or check that it is up to date)
  fuzz [SECONDS] [TARGET]
                  run a fuzz target: parse_request (http-parser, the default) or
                  decode_frames (websocket); needs cargo-fuzz and a nightly toolchain
  bench [OPTIONS] benchmark ferrocorn against nginx and gunicorn, write docs/BENCHMARKS.md
                  (cargo xtask bench --help for the options)
  bench-ws        WebSocket echo, ferrocorn against uvicorn (cargo xtask bench-ws --help)
  count BUILD...  instructions per hello request of builds (binaries, git revisions, the
                  work tree) under callgrind, metrics off and on (cargo xtask count --help)";

fn main() {
    if let Err(err) = run() {
        eprintln!("xtask: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => {
            println!("{USAGE}");
            return Ok(());
        }
    };
    match command {
        "ci" => ci(),
        "docs" => docs(rest),
        "fuzz" => fuzz(rest),
        "bench" => bench(rest),
        "bench-ws" => bench::run_websocket(rest, project_root(), cargo),
        "count" => bench::run_count(rest, project_root(), cargo),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

/// The root of the workspace: the parent of xtask's own manifest directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(project_root());
    cmd
}

/// Runs `cmd`, echoing it first, and fails with its exit status.
fn run_step(mut cmd: Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn ci() -> Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run_step(fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run_step(clippy)?;

    // The server without Python (`--no-default-features`) must keep building, lint-clean.
    let mut no_python = cargo();
    no_python.args([
        "clippy",
        "--package",
        "ferrocorn",
        "--no-default-features",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run_step(no_python)?;

    docs(&["--check".to_string()])?;

    // The black-box tests start the real binary: build it first so that their
    // own nested build finds nothing to do.
    let mut build = cargo();
    build.args(["build", "--package", "ferrocorn", "--bin", "ferrocorn"]);
    run_step(build)?;

    let mut test = cargo();
    test.args(["test", "--workspace"]);
    run_step(test)
}

/// The settings reference, generated from the declarations in `config/`.
const SETTINGS_DOC: &str = "docs/settings.md";

/// `docs`: writes `docs/settings.md` from the settings declarations; `docs --check` fails
/// when the file differs from what the declarations give. The markdown comes from the
/// `settings-doc` example of ferrocorn-config, since xtask links no server crate.
fn docs(args: &[String]) -> Result<()> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => bail!("usage: cargo xtask docs [--check]"),
    };
    let mut generate = cargo();
    generate.args([
        "run",
        "--quiet",
        "--package",
        "ferrocorn-config",
        "--example",
        "settings-doc",
    ]);
    eprintln!("xtask: running {generate:?}");
    let output = generate
        .output()
        .with_context(|| format!("could not start {generate:?}"))?;
    if !output.status.success() {
        bail!(
            "{generate:?} failed with {}:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let generated = String::from_utf8(output.stdout).context("the settings doc is not UTF-8")?;
    let path = project_root().join(SETTINGS_DOC);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if check {
        if current != generated {
            bail!("{SETTINGS_DOC} is out of date with the settings declarations: run `cargo xtask docs`");
        }
        eprintln!("xtask: {SETTINGS_DOC} is up to date");
        return Ok(());
    }
    if current == generated {
        eprintln!("xtask: {SETTINGS_DOC} is up to date");
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().expect("docs/ has a parent"))
        .with_context(|| format!("could not create {}", path.display()))?;
    std::fs::write(&path, generated)
        .with_context(|| format!("could not write {}", path.display()))?;
    eprintln!("xtask: wrote {SETTINGS_DOC}");
    Ok(())
}

/// Runs the http-parser fuzz target for `SECONDS` (default 60) with cargo-fuzz on nightly.
fn fuzz(args: &[String]) -> Result<()> {
    let (seconds, target) = match args {
        [] => ("60", "parse_request"),
        [seconds] => (seconds.as_str(), "parse_request"),
        [seconds, target] => (seconds.as_str(), target.as_str()),
        _ => bail!("usage: cargo xtask fuzz [SECONDS] [TARGET]"),
    };
    let seconds: u64 = seconds
        .parse()
        .with_context(|| format!("fuzz: SECONDS must be a whole number, not {seconds:?}"))?;
    // Each target lives in its crate's own fuzz workspace.
    let crate_dir = match target {
        "parse_request" => "http-parser",
        "decode_frames" => "websocket",
        other => bail!("fuzz: unknown target {other:?} (parse_request or decode_frames)"),
    };
    let has_nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    if !has_nightly {
        bail!(
            "fuzz: a nightly toolchain is needed (cargo-fuzz builds with sanitizers); \
             install it with `rustup toolchain install nightly`"
        );
    }
    let has_cargo_fuzz = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    if !has_cargo_fuzz {
        bail!("fuzz: cargo-fuzz is not installed; install it with `cargo install cargo-fuzz`");
    }
    // Not `cargo()`: the fuzz crate is its own workspace, and `CARGO` would pin the toolchain
    // that runs xtask instead of nightly.
    let mut cmd = Command::new("cargo");
    cmd.current_dir(project_root().join(crate_dir).join("fuzz"))
        .env_remove("CARGO")
        .env_remove("RUSTUP_TOOLCHAIN")
        .args([
            "+nightly",
            "fuzz",
            "run",
            target,
            "--",
            &format!("-max_total_time={seconds}"),
        ]);
    run_step(cmd)
}

fn bench(args: &[String]) -> Result<()> {
    bench::run(args, project_root(), cargo)
}
