//! `cargo xtask bench`: ferrocorn against nginx and gunicorn on loopback, side by side in
//! one run, written to `docs/BENCHMARKS.md`. Every server is driven as a process; xtask
//! links none of them.

mod callgrind;
mod count;
mod fixtures;
mod idle;
mod loadgen;
mod parser_bench;
mod procfs;
mod report;
mod scenario;
mod servers;
mod websocket;
mod wrk;

pub use count::run as run_count;
pub use websocket::run as run_websocket;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use report::{ProcessMemory, Report, Row};
use scenario::{AppKind, Scenario, SCENARIOS};
use servers::{BenchDir, Installed, Instance, ServerKind};

pub const USAGE: &str = "\
usage: cargo xtask bench [OPTIONS]

Benchmarks ferrocorn against nginx, gunicorn (sync, gthread, asgi), granian and uvicorn on
127.0.0.1, 2 workers each, and writes docs/BENCHMARKS.md. Needs python3 with venv and pip
(gunicorn, granian and uvicorn go into .bench/venv); uses nginx and wrk where installed:
apt-get install -y nginx wrk

options:
  --duration SECS     measured seconds per run, 1 to 10 (default 5)
  --warmup SECS       unmeasured seconds before each run, 0 to 5 (default 1)
  --rounds N          run everything N times, 1 to 9, and keep each median (default 1);
                      on a shared machine single rounds of the ka×64 ratios
                      range ±15 %: 5 to 9 rounds steady the medians
  --servers LIST      comma-separated, of: ferrocorn, nginx, gunicorn-gthread, gunicorn-sync,
                      granian, uvicorn, gunicorn-asgi
  --scenarios LIST    comma-separated, of: hello-ka-1, hello-ka-64, hello-close-16,
                      hello-pipe-16, static-1m-8, echo-post-4k-64, wsgi-hello-ka-64,
                      wsgi-echo-post-4k-64, asgi-hello-ka-64, tls-hello-ka-64,
                      tls-hello-close-16, tls-static-1m-8 (TLS 1.3, against nginx,
                      built-in generator)
  --generator KIND    auto (wrk if installed, else built-in), wrk or builtin (default auto)
  --no-parser         skip the parser against httparse (criterion, alternating rounds, callgrind)
  --no-callgrind      skip counting ferrocorn's instructions per request under valgrind
                      (done for hello and the WSGI hello, when a scenario runs that app)
  --output PATH       the report to write (default docs/BENCHMARKS.md); - writes none
  -h, --help          this text";

/// Which load generator drives the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    Auto,
    Wrk,
    Builtin,
}

/// The parsed command line of `cargo xtask bench`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub duration: Duration,
    pub warmup: Duration,
    pub servers: Vec<ServerKind>,
    pub scenarios: Vec<Scenario>,
    pub generator: Generator,
    pub parser: bool,
    pub callgrind: bool,
    /// How many times every scenario runs against every server; the report keeps the run
    /// with the median requests/s.
    pub rounds: usize,
    /// `None` for `--output -`.
    pub output: Option<PathBuf>,
    pub help: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            servers: ServerKind::ALL.to_vec(),
            scenarios: SCENARIOS.to_vec(),
            generator: Generator::Auto,
            parser: true,
            callgrind: true,
            rounds: 1,
            output: Some(PathBuf::from("docs/BENCHMARKS.md")),
            help: false,
        }
    }
}

fn seconds(flag: &str, value: &str, min: u64, max: u64) -> Result<Duration> {
    match value.parse::<u64>() {
        Ok(secs) if (min..=max).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => bail!("{flag} {value:?}: expected whole seconds from {min} to {max}"),
    }
}

fn list<T>(flag: &str, value: &str, find: impl Fn(&str) -> Option<T>) -> Result<Vec<T>> {
    let items: Vec<T> = value
        .split(',')
        .map(|name| find(name.trim()).with_context(|| format!("{flag}: unknown name {name:?}")))
        .collect::<Result<_>>()?;
    if items.is_empty() {
        bail!("{flag}: empty list");
    }
    Ok(items)
}

impl Options {
    /// Parses the arguments after `bench`. Fails naming the bad flag or value.
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .map(String::as_str)
                    .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))
            };
            match flag.as_str() {
                "--duration" => options.duration = seconds(flag, value()?, 1, 10)?,
                "--warmup" => options.warmup = seconds(flag, value()?, 0, 5)?,
                "--rounds" => {
                    options.rounds = match value()?.parse() {
                        Ok(n @ 1..=MAX_ROUNDS) => n,
                        _ => bail!("--rounds: expected a count from 1 to {MAX_ROUNDS}"),
                    }
                }
                "--servers" => options.servers = list(flag, value()?, ServerKind::by_name)?,
                "--scenarios" => options.scenarios = list(flag, value()?, Scenario::by_name)?,
                "--generator" => {
                    options.generator = match value()? {
                        "auto" => Generator::Auto,
                        "wrk" => Generator::Wrk,
                        "builtin" => Generator::Builtin,
                        other => bail!("--generator {other:?}: expected auto, wrk or builtin"),
                    }
                }
                "--no-parser" => options.parser = false,
                "--no-callgrind" => options.callgrind = false,
                "--output" => {
                    options.output = match value()? {
                        "-" => None,
                        path => Some(PathBuf::from(path)),
                    }
                }
                "-h" | "--help" => options.help = true,
                other => bail!("unknown option {other:?}\n\n{USAGE}"),
            }
        }
        Ok(options)
    }
}

/// The niceness the bench gives itself, and so the servers and wrk it starts: on a
/// machine shared with builds, the measured processes then get most of the CPU they ask
/// for instead of a twelfth of it.
const BENCH_NICE: i32 = -10;
/// The most `--rounds` accepted (a round of every scenario takes ~2 minutes at the default
/// duration). If this changes, update `USAGE`.
const MAX_ROUNDS: usize = 9;

/// The load generator chosen for this run, with its description for the report.
enum Driver {
    Wrk,
    Builtin,
}

/// Runs the bench. `cargo` makes a `cargo` command in the project root.
pub fn run(args: &[String], root: PathBuf, cargo: fn() -> Command) -> Result<()> {
    let options = Options::parse(args)?;
    if options.help {
        println!("{USAGE}");
        return Ok(());
    }
    let dir = BenchDir { root: root.clone() };
    let mut report = Report {
        date: date_utc(),
        machine: procfs::Machine::read(),
        duration: options.duration,
        warmup: options.warmup,
        invocation: std::iter::once("cargo xtask bench".to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        ..Report::default()
    };
    fixtures::write_fixtures(&dir)?;
    report.setup_commands = servers::setup_commands();

    let wrk_version = wrk::version();
    let driver = match (options.generator, &wrk_version) {
        (Generator::Builtin, _) => Driver::Builtin,
        (Generator::Auto | Generator::Wrk, Some(_)) => Driver::Wrk,
        (Generator::Wrk, None) => bail!("wrk is not installed: apt-get install -y wrk"),
        (Generator::Auto, None) => {
            note(&mut report, "wrk is not installed (apt-get install -y wrk): the built-in load generator was used");
            Driver::Builtin
        }
    };
    report.generator = match (&driver, &wrk_version) {
        (Driver::Wrk, Some(version)) => format!(
            "{version} (figures from its Lua `done` hook; latency from its `--latency` histogram)"
        ),
        _ => "xtask's built-in generator (std threads, one blocking connection per thread)"
            .to_string(),
    };

    let installed = install_servers(&options, &dir, cargo, &mut report);
    let rustc = Command::new("rustc").arg("--version").output();
    if let Ok(out) = rustc {
        report.versions.push((
            "rustc".to_string(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ));
    }

    // Only the servers and the load runs get the higher priority, not the builds.
    let own_nice = procfs::own_nice();
    report.priority = match procfs::set_priority(BENCH_NICE) {
        Ok(()) => format!("nice {BENCH_NICE}, ahead of other work on the machine"),
        Err(err) => {
            note(
                &mut report,
                &format!(
                    "could not raise the bench's priority to nice {BENCH_NICE} ({err}): \
                     figures share the CPU with other work on equal terms"
                ),
            );
            format!("nice {own_nice}")
        }
    };

    // Start every server first, then run each scenario against all of them in turn, so
    // that the figures compared with each other are measured close together in time.
    let instances = start_instances(&installed, &options, &dir, &mut report);
    let measured = run_rounds(&driver, &installed, &instances, &options, &dir, &mut report);
    report.rounds = options.rounds;
    report.runs = measured.clone();
    report.rows = report::median_rows(measured);

    record_memory(&instances, &mut report);
    measure_idle(&instances, &mut report);
    report.nginx_conf = fs::read_to_string(dir.abs("nginx").join("nginx.conf"))
        .ok()
        .filter(|_| instances.iter().any(|i| i.kind == ServerKind::Nginx));
    // Stops every server (TERM, then KILL by pid) before the parser bench uses the CPU.
    drop(instances);
    let _ = procfs::set_priority(own_nice);

    count_instructions(&options, &installed, &dir, &mut report);

    if options.parser {
        match parser_bench::run(cargo, &root) {
            Ok(result) => report.parser = Some(result),
            Err(err) => {
                report.parser_note = Some(format!("{err:#}"));
                eprintln!("xtask: parser bench skipped: {err:#}");
            }
        }
    } else {
        report.parser_note = Some("skipped with --no-parser".to_string());
    }
    report.machine.loadavg_after = procfs::loadavg();

    write_report(&report, options.output.as_deref(), &root)
}

/// Counts ferrocorn's instructions per request under callgrind, for hello and for the WSGI
/// hello, each when a scenario of that app is run.
fn count_instructions(
    options: &Options,
    installed: &[Installed],
    dir: &BenchDir,
    report: &mut Report,
) {
    if !options.callgrind {
        report.callgrind_note = Some("skipped with --no-callgrind".to_string());
        return;
    }
    let Some(ferrocorn) = installed.iter().find(|s| s.kind == ServerKind::Ferrocorn) else {
        return;
    };
    // One keep-alive connection, the request hello-ka-1 sends.
    let Some(one_connection) = Scenario::by_name("hello-ka-1") else {
        return;
    };
    for app in [AppKind::Hello, AppKind::WsgiHello] {
        if !options.scenarios.iter().any(|s| s.app == app) {
            continue;
        }
        eprintln!(
            "xtask: counting instructions per {} request under callgrind",
            app.name()
        );
        match callgrind::run(ferrocorn, app, &one_connection, dir) {
            Ok(result) => report.callgrind.push(result),
            Err(err) => note(
                report,
                &format!("callgrind of the {} app skipped: {err:#}", app.name()),
            ),
        }
    }
}

/// Starts every installed server, one process tree per group of apps it serves; what does
/// not start becomes a note.
fn start_instances(
    installed: &[Installed],
    options: &Options,
    dir: &BenchDir,
    report: &mut Report,
) -> Vec<Instance> {
    let wanted_apps: Vec<AppKind> = AppKind::ALL
        .into_iter()
        .filter(|a| options.scenarios.iter().any(|s| s.app == *a))
        .collect();
    let mut instances: Vec<Instance> = Vec::new();
    for server in installed {
        for apps in servers::instance_apps(server.kind, &wanted_apps) {
            match Instance::start(server, &apps, dir) {
                Ok(instance) => {
                    report.server_commands.push(instance.command.join(" "));
                    instances.push(instance);
                }
                Err(err) => note(
                    report,
                    &format!("{} could not start: {err:#}", server.kind.name()),
                ),
            }
        }
    }
    instances
}

/// Runs every scenario against every started server, `options.rounds` times; returns
/// every run, and notes the ones that failed.
fn run_rounds(
    driver: &Driver,
    installed: &[Installed],
    instances: &[Instance],
    options: &Options,
    dir: &BenchDir,
    report: &mut Report,
) -> Vec<Row> {
    let ticks = procfs::clock_ticks_per_second();
    let mut measured: Vec<Row> = Vec::new();
    for round in 1..=options.rounds {
        for scenario in &options.scenarios {
            // Every other round runs the servers in reverse order, so that none always
            // runs right after the same neighbour.
            let order: Vec<&Installed> = if round % 2 == 0 {
                installed.iter().rev().collect()
            } else {
                installed.iter().collect()
            };
            for server in order {
                let Some(instance) = instances
                    .iter()
                    .find(|i| i.kind == server.kind && i.apps.contains(&scenario.app))
                else {
                    if round == 1 && !server.kind.serves(scenario.app) {
                        eprintln!(
                            "xtask: {} has no {} app: {} not run",
                            server.kind.name(),
                            scenario.app.name(),
                            scenario.name
                        );
                    }
                    continue;
                };
                match measure(driver, scenario, instance, round, options, dir, ticks) {
                    Ok((row, command)) => {
                        eprintln!(
                        "xtask: round {round} {:<16} {:<16} {:>10.0} req/s  {:>10} req/CPU-s  p99 {}",
                        scenario.name,
                        server.kind.name(),
                        row.figures.requests_per_second(),
                        row.requests_per_cpu_second()
                            .map_or("-".to_string(), |r| format!("{r:.0}")),
                        report::p99(&row.figures)
                    );
                        if !report.load_commands.contains(&command) {
                            report.load_commands.push(command);
                        }
                        measured.push(row);
                    }
                    Err(err) => note(
                        report,
                        &format!(
                            "{} under {} failed in round {round}: {err:#}",
                            server.kind.name(),
                            scenario.name
                        ),
                    ),
                }
            }
        }
    }
    measured
}

/// Measures the CPU of the ferrocorn serving hello once its connections have gone idle.
fn measure_idle(instances: &[Instance], report: &mut Report) {
    let hello = instances
        .iter()
        .find(|i| i.kind == ServerKind::Ferrocorn && i.apps.contains(&AppKind::Hello));
    let Some(instance) = hello else {
        report.idle_note = Some("no ferrocorn serving hello in this run".to_string());
        return;
    };
    match idle::measure(instance, procfs::clock_ticks_per_second()) {
        Ok(idle) => report.idle = Some(idle),
        Err(err) => {
            report.idle_note = Some(format!("{err:#}"));
            note(report, &format!("idle CPU not measured: {err:#}"));
        }
    }
}

/// Records the memory of every process of every server, after all the runs.
fn record_memory(instances: &[Instance], report: &mut Report) {
    for instance in instances {
        for (i, process) in instance.processes().iter().enumerate() {
            if let Some(memory) = procfs::memory(process.pid) {
                report.memory.push(ProcessMemory {
                    server: instance.kind,
                    apps: instance.apps.clone(),
                    pid: process.pid,
                    is_root: i == 0,
                    memory,
                });
            }
        }
    }
}

/// Prints the tables and writes the report to `output` (relative to `root`), keeping the
/// hand-written section of the file it replaces.
fn write_report(report: &Report, output: Option<&Path>, root: &Path) -> Result<()> {
    println!("\n{}", report.results_table());
    println!("{}", report.targets_table());
    if let Some(output) = output {
        let path = root.join(output);
        let existing = fs::read_to_string(&path).unwrap_or_default();
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("could not create {}", parent.display()))?;
        }
        fs::write(
            &path,
            report.markdown(&report::kept_limits_section(&existing)),
        )
        .with_context(|| format!("could not write {}", path.display()))?;
        eprintln!("xtask: wrote {}", path.display());
    }
    Ok(())
}

fn note(report: &mut Report, line: &str) {
    eprintln!("xtask: {line}");
    report.notes.push(line.to_string());
}

/// Builds or finds the servers asked for; what is missing becomes a note saying how to
/// install it.
fn install_servers(
    options: &Options,
    dir: &BenchDir,
    cargo: fn() -> Command,
    report: &mut Report,
) -> Vec<Installed> {
    let mut installed = Vec::new();
    let wants = |kind| options.servers.contains(&kind);
    if wants(ServerKind::Ferrocorn) {
        match servers::install_ferrocorn(dir, cargo()) {
            Ok(server) => installed.push(server),
            Err(err) => note(report, &format!("ferrocorn skipped: {err:#}")),
        }
    }
    if wants(ServerKind::Nginx) {
        match servers::find_nginx(dir) {
            Ok(server) => installed.push(server),
            Err(err) => note(report, &format!("nginx skipped: {err:#}")),
        }
    }
    if wants(ServerKind::GunicornGthread) || wants(ServerKind::GunicornSync) {
        match servers::install_gunicorn(dir) {
            Ok((gthread, sync)) => {
                installed.extend([gthread, sync].into_iter().filter(|s| wants(s.kind)))
            }
            Err(err) => note(
                report,
                &format!("gunicorn skipped (needs python3 with venv and pip, and PyPI): {err:#}"),
            ),
        }
    }
    if wants(ServerKind::GunicornAsgi) {
        match servers::install_gunicorn(dir) {
            Ok((gthread, _)) => installed.push(Installed {
                kind: ServerKind::GunicornAsgi,
                ..gthread
            }),
            Err(err) => note(report, &format!("gunicorn asgi skipped: {err:#}")),
        }
    }
    if wants(ServerKind::Uvicorn) {
        match servers::install_uvicorn(dir) {
            Ok(server) => installed.push(server),
            Err(err) => note(
                report,
                &format!("uvicorn skipped (needs python3 with venv and pip, and PyPI): {err:#}"),
            ),
        }
    }
    if wants(ServerKind::Granian) {
        match servers::install_granian(dir) {
            Ok(server) => installed.push(server),
            Err(err) => note(
                report,
                &format!("granian skipped (needs python3 with venv and pip, and PyPI): {err:#}"),
            ),
        }
    }
    for server in &installed {
        let name = match server.kind {
            ServerKind::GunicornGthread | ServerKind::GunicornSync | ServerKind::GunicornAsgi => {
                "gunicorn"
            }
            kind => kind.name(),
        };
        if !report.versions.iter().any(|(n, _)| n == name) {
            report
                .versions
                .push((name.to_string(), server.version.clone()));
        }
    }
    installed
}

/// Runs `scenario` against `instance`: a warm-up, then the measured run with the server's
/// CPU time read around it. Returns the row and the load command as run.
fn measure(
    driver: &Driver,
    scenario: &Scenario,
    instance: &Instance,
    round: usize,
    options: &Options,
    dir: &BenchDir,
    ticks: u64,
) -> Result<(Row, String)> {
    let label = format!("{}-{}", instance.kind.name(), scenario.name);
    // TLS runs use the built-in generator's rustls client, whatever drives the others.
    let tls = scenario
        .app
        .is_tls()
        .then(|| loadgen::tls_client(&dir.abs("tls").join(fixtures::TLS_CERT)))
        .transpose()?;
    let driver = if tls.is_some() {
        &Driver::Builtin
    } else {
        driver
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let load = |duration: Duration, log_suffix: &str| -> Result<(scenario::LoadFigures, String)> {
        match driver {
            Driver::Wrk => {
                let script = wrk::write_script(&dir.abs("wrk"), scenario)?;
                let rel_script = dir.rel("wrk").join(script.file_name().unwrap_or_default());
                let url = format!("http://{}/", instance.addr);
                let args = wrk::command_line(scenario, &rel_script, &url, duration);
                let log = dir.abs("logs").join(format!("wrk-{label}{log_suffix}.txt"));
                Ok((wrk::run(&args, &dir.root, &log)?, args.join(" ")))
            }
            Driver::Builtin => Ok((
                loadgen::run(instance.addr, scenario, duration, tls.clone()),
                format!(
                    "(built-in) {} against {scheme}://{}{}, {} s",
                    scenario.describe(),
                    instance.addr,
                    scenario.path,
                    duration.as_secs()
                ),
            )),
        }
    };
    if !options.warmup.is_zero() {
        load(options.warmup, "-warmup")?;
    }
    let root = instance.root_pid();
    let cpu_before = procfs::tree_cpu(root, ticks);
    let (figures, command) = load(options.duration, "")?;
    let server_cpu = procfs::tree_cpu(root, ticks).saturating_sub(cpu_before);
    if figures.requests == 0 {
        bail!(
            "no response in {} s (see {})",
            options.duration.as_secs(),
            instance.log.display()
        );
    }
    let peak_kib = instance
        .processes()
        .iter()
        .filter_map(|p| procfs::memory(p.pid))
        .map(|m| m.peak_kib)
        .collect();
    Ok((
        Row {
            server: instance.kind,
            scenario: *scenario,
            figures,
            server_cpu,
            peak_kib,
            round_rates: Vec::new(),
            round,
        },
        command,
    ))
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
fn date_utc() -> String {
    date_utc_at(std::time::SystemTime::now())
}

/// `time` as `YYYY-MM-DD HH:MM UTC`, rearranged from its IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), so that the calendar is httpdate's.
fn date_utc_at(time: std::time::SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let date = httpdate::fmt_http_date(time);
    let month = MONTHS
        .iter()
        .position(|m| *m == &date[8..11])
        .map_or(0, |i| i + 1);
    format!(
        "{}-{month:02}-{} {} UTC",
        &date[12..16],
        &date[5..7],
        &date[17..22]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_run_everything_for_five_seconds() {
        let options = Options::parse(&[]).unwrap();
        assert_eq!(options, Options::default());
        assert_eq!(options.duration, Duration::from_secs(5));
        assert_eq!(options.servers.len(), 7);
        assert_eq!(options.scenarios.len(), 12);
    }

    #[test]
    fn flags_select_servers_scenarios_and_generator() {
        let options = Options::parse(&args(
            "--duration 2 --warmup 0 --rounds 3 --servers nginx,ferrocorn --scenarios hello-ka-1 \
             --generator builtin --no-parser --no-callgrind --output -",
        ))
        .unwrap();
        assert_eq!(options.duration, Duration::from_secs(2));
        assert_eq!(options.warmup, Duration::ZERO);
        assert_eq!(options.rounds, 3);
        assert_eq!(
            options.servers,
            vec![ServerKind::Nginx, ServerKind::Ferrocorn]
        );
        assert_eq!(options.scenarios.len(), 1);
        assert_eq!(options.generator, Generator::Builtin);
        assert!(!options.parser);
        assert!(!options.callgrind);
        assert_eq!(options.output, None);
        assert!(Options::parse(&args("--help")).unwrap().help);
    }

    #[test]
    fn runs_are_bounded_to_ten_seconds() {
        for bad in [
            "--duration 11",
            "--duration 0",
            "--duration x",
            "--warmup 6",
            "--duration",
            "--rounds 0",
            "--rounds 10",
        ] {
            assert!(Options::parse(&args(bad)).is_err(), "{bad}");
        }
        let err = Options::parse(&args("--servers nginx,apache")).unwrap_err();
        assert!(format!("{err:#}").contains("\"apache\""), "{err:#}");
        assert!(Options::parse(&args("--frobnicate")).is_err());
    }

    #[test]
    fn dates_are_utc_days_and_minutes() {
        let at = |secs| date_utc_at(std::time::UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00 UTC");
        assert_eq!(at(19_723 * 86_400), "2024-01-01 00:00 UTC");
        assert_eq!(at(20_513 * 86_400 + 3_599), "2026-03-01 00:59 UTC");
        assert_eq!(at(784_111_777), "1994-11-06 08:49 UTC");
    }
}
