//! `cargo xtask ci | bench | fuzz | docs`: project automation.
//!
//! xtask links none of the server crates: it drives them through `cargo`, the way
//! CI and a developer would, so that it keeps building when they do not.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci              cargo fmt --check, clippy -D warnings, the workspace tests, docs --check
  docs [--check]  regenerate docs/settings.md (or check that it is up to date)
  fuzz [SECONDS]  run the http-parser fuzz target (needs cargo-fuzz and a nightly toolchain)
  bench           benchmark ferrocorn against its peers, write docs/BENCHMARKS.md";

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

fn docs(_args: &[String]) -> Result<()> {
    // Filled by the settings-registry issue: regenerate or check docs/settings.md.
    eprintln!("xtask: docs: nothing to generate yet");
    Ok(())
}

/// Runs the http-parser fuzz target for `SECONDS` (default 60) with cargo-fuzz on nightly.
fn fuzz(args: &[String]) -> Result<()> {
    let seconds: u64 = match args {
        [] => 60,
        [seconds] => seconds
            .parse()
            .with_context(|| format!("fuzz: SECONDS must be a whole number, not {seconds:?}"))?,
        _ => bail!("usage: cargo xtask fuzz [SECONDS]"),
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
    cmd.current_dir(project_root().join("http-parser").join("fuzz"))
        .env_remove("CARGO")
        .env_remove("RUSTUP_TOOLCHAIN")
        .args([
            "+nightly",
            "fuzz",
            "run",
            "parse_request",
            "--",
            &format!("-max_total_time={seconds}"),
        ]);
    run_step(cmd)
}

fn bench(_args: &[String]) -> Result<()> {
    bail!("bench: not built yet")
}
