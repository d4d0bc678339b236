//! `cargo xtask count`: instructions per keep-alive `hello` request of several ferrocorn
//! builds, each with the metrics endpoint off and on, counted the same way as `cargo xtask
//! bench` does (callgrind, two sessions, `--busy-poll 0`). A build is a binary, or a git
//! revision that is extracted and built here, with a patch applied if one is given, so that
//! a baseline and the work tree are measured side by side.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::callgrind::{self, Counting};
use super::scenario::{AppKind, Scenario};
use super::servers::{BenchDir, Installed, ServerKind};

pub const USAGE: &str = "\
usage: cargo xtask count [--metrics off|on|both] BUILD...

Instructions per keep-alive hello request in the worker, under callgrind: (total after
22,000 requests - total after 2,000) / 20,000, one connection, --busy-poll 0.

BUILD is one of
  PATH               a ferrocorn binary
  git:REV[:PATCH]    REV extracted to .bench/src/REV, PATCH (a file, git apply) applied,
                     built with `cargo build --release -p ferrocorn` into this target/
  work               this work tree, built with `cargo build --release -p ferrocorn`
each optionally named NAME=BUILD. --metrics: with --metrics-bind off, on or both (both).";

/// Which `--metrics-bind` settings to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metrics {
    Off,
    On,
    Both,
}

/// Runs `cargo xtask count ARGS`.
pub fn run(args: &[String], root: PathBuf, cargo: fn() -> Command) -> Result<()> {
    let mut metrics = Metrics::Both;
    let mut builds = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            "--metrics" => {
                metrics = match args.next().map(String::as_str) {
                    Some("off") => Metrics::Off,
                    Some("on") => Metrics::On,
                    Some("both") => Metrics::Both,
                    other => bail!("--metrics takes off, on or both, not {other:?}\n\n{USAGE}"),
                }
            }
            other if other.starts_with('-') => bail!("unknown option {other:?}\n\n{USAGE}"),
            build => builds.push(build.to_string()),
        }
    }
    if builds.is_empty() {
        bail!("no build to count\n\n{USAGE}");
    }
    let dir = BenchDir { root: root.clone() };
    for sub in ["callgrind", "logs", "bin", "src"] {
        fs::create_dir_all(dir.abs(sub))
            .with_context(|| format!("could not create {}", dir.abs(sub).display()))?;
    }
    let mut programs = Vec::new();
    let mut built_elsewhere = false;
    for build in &builds {
        let (name, spec) = match build.split_once('=') {
            Some((name, spec)) => (name.to_string(), spec),
            None => (file_safe(build), build.as_str()),
        };
        built_elsewhere |= spec.starts_with("git:");
        programs.push((name.clone(), prepare(spec, &name, &dir, cargo)?));
    }
    if built_elsewhere {
        // The work tree's next build must not take the revisions' units for its own.
        touch_sources(&root)?;
    }
    let scenario = Scenario::by_name("hello-ka-1").context("no hello-ka-1 scenario")?;
    let request = scenario.request_bytes("127.0.0.1:8000");
    let modes: &[bool] = match metrics {
        Metrics::Off => &[false],
        Metrics::On => &[true],
        Metrics::Both => &[false, true],
    };
    let mut rows = Vec::new();
    for (name, program) in &programs {
        let ferrocorn = Installed {
            kind: ServerKind::Ferrocorn,
            program: program.clone(),
            version: String::new(),
        };
        for &on in modes {
            let counting = Counting {
                metrics: on,
                name: format!("count-{name}-metrics-{}", if on { "on" } else { "off" }),
            };
            eprintln!("xtask: counting {} ({})", counting.name, program.display());
            // A build that refuses a setting (an old one without `--metrics-bind`) gets a
            // row saying why; the others are still counted.
            let per_request =
                callgrind::per_request(&ferrocorn, AppKind::Hello, &request, &counting, &dir)
                    .map_err(|err| {
                        eprintln!("xtask: {} not counted: {err:#}", counting.name);
                        "not counted (see above)".to_string()
                    });
            rows.push((name.clone(), on, per_request));
        }
    }
    println!("| build | metrics | instructions per request |");
    println!("| --- | --- | --: |");
    for (name, on, per_request) in rows {
        let on = if on { "on" } else { "off" };
        let figure = per_request.map_or_else(|e| e, |n| format!("{n:.1}"));
        println!("| {name} | {on} | {figure} |");
    }
    println!(
        "\n(the worker's callgrind files: .bench/callgrind/callgrind.out.count-NAME-metrics-ON.REQUESTS.worker)"
    );
    Ok(())
}

/// The binary of `spec`, building it if it is a revision or the work tree.
fn prepare(spec: &str, name: &str, dir: &BenchDir, cargo: fn() -> Command) -> Result<PathBuf> {
    if spec == "work" {
        touch_sources(&dir.root)?;
        return build(cargo(), name, dir);
    }
    let Some(rev) = spec.strip_prefix("git:") else {
        let path = PathBuf::from(spec);
        if !dir.root.join(&path).is_file() {
            bail!("{spec} is not a file, `work` or git:REV");
        }
        return Ok(path);
    };
    let (rev, patch) = match rev.split_once(':') {
        Some((rev, patch)) => (rev, Some(dir.root.join(patch))),
        None => (rev, None),
    };
    let src = dir.abs("src").join(name);
    if src.exists() {
        fs::remove_dir_all(&src).with_context(|| format!("could not clear {}", src.display()))?;
    }
    fs::create_dir_all(&src)?;
    // git archive | tar -x: the revision's files, without touching the work tree; `-m`
    // dates them now, so that cargo rebuilds them (see `touch_sources`).
    let archive = Command::new("git")
        .args(["archive", rev])
        .current_dir(&dir.root)
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start git archive")?;
    let status = Command::new("tar")
        .arg("-xm")
        .current_dir(&src)
        .stdin(archive.stdout.context("git archive has no stdout")?)
        .status()
        .context("could not start tar")?;
    if !status.success() {
        bail!("git archive {rev} | tar -x failed with {status}");
    }
    if let Some(patch) = patch {
        // Outside any repository (the work tree's would make git apply skip every path
        // above `src` without a word).
        let status = Command::new("git")
            .arg("apply")
            .arg(&patch)
            .current_dir(&src)
            .env("GIT_CEILING_DIRECTORIES", dir.abs("src"))
            .status()
            .context("could not start git apply")?;
        if !status.success() {
            bail!("git apply {} failed with {status}", patch.display());
        }
    }
    let mut cargo = cargo();
    // The same target directory: the dependencies are built once.
    cargo
        .current_dir(&src)
        .env("CARGO_TARGET_DIR", dir.root.join("target"));
    build(cargo, name, dir)
}

/// Builds `cargo`'s tree (release) and copies its binary to `.bench/bin/ferrocorn-NAME`, as
/// the next build overwrites `target/release/ferrocorn`.
fn build(mut cargo: Command, name: &str, dir: &BenchDir) -> Result<PathBuf> {
    cargo.args(["build", "--release", "-p", "ferrocorn"]);
    eprintln!("xtask: running {cargo:?}");
    let status = cargo.status().context("could not start cargo")?;
    if !status.success() {
        bail!("{cargo:?} failed with {status}");
    }
    let program = dir.rel("bin").join(format!("ferrocorn-{name}"));
    let built = dir.root.join("target/release/ferrocorn");
    fs::copy(&built, dir.root.join(&program))
        .with_context(|| format!("could not copy {}", built.display()))?;
    Ok(program)
}

/// Dates every Rust source under `root` (but `target/` and `.bench/`) now. Cargo knows a
/// workspace's own packages by their path within the workspace and their sources' dates,
/// so a revision extracted elsewhere and built into the same `target/` shares the work
/// tree's units: whichever tree has the newer files looks fresh to cargo and is not
/// rebuilt. Touching the sources makes the next build of that tree its own.
fn touch_sources(root: &Path) -> Result<()> {
    let now = std::time::SystemTime::now();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            let file_type = entry.file_type()?;
            let skipped = [".git", ".bench", "target"];
            if file_type.is_dir() && !skipped.iter().any(|s| entry.file_name() == *s) {
                dirs.push(path);
            } else if file_type.is_file() && path.extension().is_some_and(|e| e == "rs") {
                fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(now))
                    .with_context(|| format!("could not touch {}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// `spec` as a file name part.
fn file_safe(spec: &str) -> String {
    spec.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_names_are_file_names() {
        assert_eq!(file_safe("git:389a31c"), "git-389a31c");
        assert_eq!(
            file_safe("target/release/ferrocorn"),
            "target-release-ferrocorn"
        );
    }
}
