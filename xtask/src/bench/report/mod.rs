//! The bench's results: the table of runs, the targets marked met or missed, and
//! `docs/BENCHMARKS.md` (whose hand-written "What limits it" section is kept across runs).

mod sections;
mod targets;
mod wsgi;

use std::fmt::Write as _;
use std::time::Duration;

use super::callgrind::CallgrindResult;
use super::parser_bench::ParserResult;
use super::procfs::{Machine, Memory};
#[cfg(test)]
use super::scenario::Latency;
use super::scenario::{AppKind, LoadFigures, Scenario, SCENARIOS};
use super::servers::ServerKind;
pub use targets::{Target, Verdict};

/// One measured run: a server under one scenario.
#[derive(Debug, Clone)]
pub struct Row {
    pub server: ServerKind,
    pub scenario: Scenario,
    pub figures: LoadFigures,
    /// CPU time of the server's whole process tree during the run.
    pub server_cpu: Duration,
    /// Peak RSS (VmHWM) of each process after the run, root first, KiB.
    pub peak_kib: Vec<u64>,
    /// Requests/s of every round of this server and scenario, in order; filled by
    /// [`median_rows`].
    pub round_rates: Vec<f64>,
    /// The round this run belongs to, from 1.
    pub round: usize,
}

/// One row per (scenario, server), in first-seen order: the round with the median
/// requests/s (the lower middle one for an even count), so that all the figures of a row
/// come from one real run.
pub fn median_rows(rows: Vec<Row>) -> Vec<Row> {
    let mut groups: Vec<Vec<Row>> = Vec::new();
    for row in rows {
        match groups
            .iter_mut()
            .find(|g| g[0].server == row.server && g[0].scenario.name == row.scenario.name)
        {
            Some(group) => group.push(row),
            None => groups.push(vec![row]),
        }
    }
    let mut out: Vec<Row> = groups
        .into_iter()
        .map(|mut group| {
            let rates: Vec<f64> = group
                .iter()
                .map(|r| r.figures.requests_per_second())
                .collect();
            group.sort_by(|a, b| {
                a.figures
                    .requests_per_second()
                    .total_cmp(&b.figures.requests_per_second())
            });
            let mut median = group.swap_remove((group.len() - 1) / 2);
            median.round_rates = rates;
            median
        })
        .collect();
    // Scenario order first, then the servers in the order they ran (the sort is stable).
    out.sort_by_key(|r| SCENARIOS.iter().position(|s| s.name == r.scenario.name));
    out
}

impl Row {
    /// Requests per CPU-second of the server, `None` when it used no measurable CPU.
    pub fn requests_per_cpu_second(&self) -> Option<f64> {
        let cpu = self.server_cpu.as_secs_f64();
        (cpu > 0.0).then(|| self.figures.requests as f64 / cpu)
    }
}

/// One process of a server after all the runs.
#[derive(Debug, Clone)]
pub struct ProcessMemory {
    pub server: ServerKind,
    /// The apps that process tree served.
    pub apps: Vec<AppKind>,
    pub pid: u32,
    /// The arbiter or master, as opposed to a worker.
    pub is_root: bool,
    pub memory: Memory,
}

/// Everything the report shows.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub versions: Vec<(String, String)>,
    pub generator: String,
    pub duration: Duration,
    pub warmup: Duration,
    pub rounds: usize,
    /// The scheduling priority the servers and the load generator ran at.
    pub priority: String,
    /// One row per scenario and server: the median round (see [`median_rows`]).
    pub rows: Vec<Row>,
    /// Every run of every round, which the targets compare round by round.
    pub runs: Vec<Row>,
    pub memory: Vec<ProcessMemory>,
    pub parser: Option<ParserResult>,
    pub parser_note: Option<String>,
    /// One per app counted (hello, the WSGI hello).
    pub callgrind: Vec<CallgrindResult>,
    pub callgrind_note: Option<String>,
    /// An idle ferrocorn's CPU (see `idle.rs`), or why it was not measured.
    pub idle: Option<super::idle::IdleCpu>,
    pub idle_note: Option<String>,
    /// Builds and installs, in the order run.
    pub setup_commands: Vec<String>,
    pub server_commands: Vec<String>,
    pub load_commands: Vec<String>,
    /// What was skipped or failed, and how to fix it.
    pub notes: Vec<String>,
    /// The invocation of this run, as typed.
    pub invocation: String,
    /// The nginx configuration the run generated, if nginx ran.
    pub nginx_conf: Option<String>,
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// A latency in the unit that keeps three significant digits readable.
pub fn latency(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else {
        format!("{:.2} ms", micros / 1000.0)
    }
}

/// The p99 latency of a run, `-` when none was recorded.
pub fn p99(figures: &LoadFigures) -> String {
    figures.latency.map_or("-".to_string(), |l| latency(l.p99))
}

fn count(x: f64) -> String {
    // Thousands separated by a thin space would not survive every terminal; use ','.
    let whole = x.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Report {
    /// The results table in Markdown, which reads as plain text in a terminal too.
    pub fn results_table(&self) -> String {
        let mut out = String::from(
            "| scenario | server | req/s | req/s by round | MiB/s | req per server CPU-s | p50 | p99 | server CPU s | client CPU s | errors | peak RSS MiB (master; workers) |\n\
             |---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n",
        );
        for row in &self.rows {
            let f = &row.figures;
            let rss = match row.peak_kib.split_first() {
                Some((root, workers)) => format!(
                    "{}; {}",
                    mib(*root),
                    workers
                        .iter()
                        .map(|k| mib(*k))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => "-".to_string(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.1} | {} | {} | {} | {:.2} | {:.2} | {} | {} |",
                row.scenario.name,
                row.server.name(),
                count(f.requests_per_second()),
                row.round_rates
                    .iter()
                    .map(|r| count(*r))
                    .collect::<Vec<_>>()
                    .join(" / "),
                f.mib_per_second(),
                row.requests_per_cpu_second().map_or("-".to_string(), count),
                f.latency.map_or("-".to_string(), |l| latency(l.p50)),
                p99(f),
                row.server_cpu.as_secs_f64(),
                f.client_cpu.as_secs_f64(),
                f.errors,
                rss
            );
        }
        out
    }

    /// The whole of `docs/BENCHMARKS.md`; `limits` is the kept "What limits it" section.
    pub fn markdown(&self, limits: &str) -> String {
        let mut out = self.header();
        let _ = write!(
            out,
            "## Results\n\n{}\n### Scenarios\n\n",
            self.results_table()
        );
        let mut seen = Vec::new();
        for row in &self.rows {
            if !seen.contains(&row.scenario.name) {
                seen.push(row.scenario.name);
                let _ = writeln!(
                    out,
                    "- `{}`: {}",
                    row.scenario.name,
                    row.scenario.describe()
                );
            }
        }
        out.push_str(
            "\ngunicorn's `sync` worker does not keep connections alive (it answers `Connection: close`), \
             so its keep-alive rows measure a new connection per request and its pipelined row one answer per \
             connection. nginx has no echo without a module, so it has no echo row; it runs no Python, so it has \
             no WSGI rows, and granian has only those. For pipelining, wrk records one latency per batch of 16, \
             from its write to its last response; so does the built-in generator.\n",
        );
        let _ = write!(
            out,
            "\n## Targets\n\nEach ratio is ferrocorn's figure over the peer's in the same round (two runs seconds \
             apart, 2 workers each); with several rounds the median ratio decides and every round's ratio is listed. \
             The figures in brackets are those of the round with the median ratio.\n\n{}\n\
             ## Memory per process after the runs\n\n{}\n\
             ## Instructions per request (callgrind)\n\n{}\n## WSGI applications\n\n{}\n## Parser\n\n{}\n",
            self.targets_table(),
            self.memory_table(),
            self.callgrind_section(AppKind::Hello),
            self.wsgi_section(),
            self.parser_section()
        );
        if !self.notes.is_empty() {
            out.push_str("## Skipped or failed\n\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
            out.push('\n');
        }
        out.push_str(&self.commands_section());
        out.push_str(limits);
        out
    }

    /// The title, how the bench runs, the machine and the versions.
    fn header(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = write!(
            out,
            "# Benchmarks\n\n\
             Generated by `cargo xtask bench` ({invocation}) on {date}. Everything above \"What limits it\" \
             is rewritten by each run; that section is written by hand and kept.\n\n\
             ## How to run\n\n\
             ```sh\ncargo xtask bench                  # all servers and scenarios, writes this file\n\
             cargo xtask bench --help           # options: --duration, --servers, --scenarios, --generator, ...\n```\n\n\
             It builds ferrocorn in release mode, installs gunicorn and granian into `.bench/venv` (python3 -m venv + pip), \
             and uses nginx and wrk where installed (`apt-get install -y nginx wrk`); without wrk it uses its own \
             load generator, without nginx it skips nginx. Every server runs on 127.0.0.1 with {workers} workers; \
             each run lasts {dur} s after a {warm} s warm-up that is not measured. Every scenario runs against \
             every server in turn, {rounds} round(s), every other round in reverse server order; each row is \
             the round with the median requests/s. Servers and load generator ran at {priority}. \
             A benchmark, not a test: CI does not run it.\n\n\
             Server CPU is utime + stime (+ that of reaped children) of the server's whole process tree from \
             `/proc/<pid>/stat`, read before and after each run; client CPU is the load generator's own. \
             Peak RSS is each process's `VmHWM`.\n\n\
             ## Machine\n\n\
             - CPU: {cpu}, {nproc} cores (nproc); memory {memory}\n\
             - kernel: {kernel}\n\
             - load average (1, 5, 15 min) before: {before}, after: {after} (the machine is shared; \
             other work skews absolute figures, less so the ratios of runs made side by side)\n\n\
             ## Versions\n\n",
            invocation = self.invocation,
            date = self.date,
            workers = super::servers::WORKERS,
            dur = self.duration.as_secs(),
            warm = self.warmup.as_secs(),
            rounds = self.rounds,
            priority = self.priority,
            cpu = m.cpu_model,
            nproc = m.nproc,
            memory = m.memory,
            kernel = m.kernel,
            before = m.loadavg_before,
            after = m.loadavg_after,
        );
        for (name, version) in &self.versions {
            let _ = writeln!(out, "- {name}: {version}");
        }
        let _ = write!(out, "- load generator: {}\n\n", self.generator);
        out
    }

    /// The commands that reproduce the run, and nginx's configuration.
    fn commands_section(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "## Commands\n\nRun from the project root. Setup:\n\n```sh\n{}\n```\n\nServers:\n\n```sh\n{}\n```\n\n\
             Load:\n\n```sh\n{}\n```\n\n",
            self.setup_commands.join("\n"),
            self.server_commands.join("\n"),
            self.load_commands.join("\n")
        );
        if let Some(conf) = &self.nginx_conf {
            let _ = write!(
                out,
                "The nginx configuration, `.bench/nginx/nginx.conf`:\n\n<details><summary>nginx.conf</summary>\n\n\
                 ```nginx\n{}```\n\n</details>\n\n\
                 In the built-in apps' scenarios gunicorn serves `.bench/wsgi/bench_app.py`, written from `WSGI_APP` \
                 in `xtask/src/bench/fixtures.rs`; in the WSGI scenarios every server runs the WSGI app of \
                 \"WSGI applications\".\n\n",
                conf
            );
        }
        out
    }
}

/// The heading of the hand-written section kept across runs.
pub const LIMITS_HEADING: &str = "## What limits it";

/// The "What limits it" section of an existing report, or a placeholder.
pub fn kept_limits_section(existing: &str) -> String {
    match existing.find(LIMITS_HEADING) {
        Some(at) => existing[at..].trim_end().to_string() + "\n",
        None => format!("{LIMITS_HEADING}\n\nNot analysed yet.\n"),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::bench::scenario::Scenario;

    /// A run of `requests` in one second with `cpu_ms` of server CPU, in round 1.
    pub(crate) fn row(
        server: ServerKind,
        scenario: &str,
        requests: u64,
        cpu_ms: u64,
        p99_us: u64,
    ) -> Row {
        Row {
            server,
            scenario: Scenario::by_name(scenario).unwrap(),
            figures: LoadFigures {
                requests,
                elapsed: Duration::from_secs(1),
                bytes: requests * 100,
                latency: Latency::checked(
                    Duration::from_micros(p99_us / 2),
                    Duration::from_micros(p99_us),
                ),
                ..LoadFigures::default()
            },
            server_cpu: Duration::from_millis(cpu_ms),
            peak_kib: vec![4096, 2048, 3072],
            round_rates: Vec::new(),
            round: 1,
        }
    }

    #[test]
    fn limits_section_is_kept_verbatim() {
        let old = "# Benchmarks\nold table\n## What limits it\n\n- the Date header: 12%\n";
        assert_eq!(
            kept_limits_section(old),
            "## What limits it\n\n- the Date header: 12%\n"
        );
        assert!(kept_limits_section("# nothing").starts_with(LIMITS_HEADING));
        let report = Report::default();
        assert!(report
            .markdown(&kept_limits_section(old))
            .ends_with("- the Date header: 12%\n"));
    }

    #[test]
    fn median_round_is_kept_in_scenario_order() {
        let rows = vec![
            row(ServerKind::Nginx, "hello-ka-64", 300, 1000, 500),
            row(ServerKind::Nginx, "hello-ka-1", 50, 1000, 500),
            row(ServerKind::Nginx, "hello-ka-64", 100, 1000, 500),
            row(ServerKind::Nginx, "hello-ka-64", 200, 1000, 900),
        ];
        let medians = median_rows(rows);
        assert_eq!(medians.len(), 2);
        assert_eq!(medians[0].scenario.name, "hello-ka-1");
        assert_eq!(medians[1].figures.requests, 200);
        assert_eq!(
            medians[1].figures.latency.unwrap().p99,
            Duration::from_micros(900)
        );
        assert_eq!(medians[1].round_rates, vec![300.0, 100.0, 200.0]);
    }

    #[test]
    fn table_shows_master_then_workers() {
        let report = Report {
            rows: vec![row(ServerKind::Nginx, "hello-ka-64", 100_000, 2000, 500)],
            ..Report::default()
        };
        let table = report.results_table();
        assert!(
            table.contains("| hello-ka-64 | nginx | 100,000 |"),
            "{table}"
        );
        assert!(table.contains("| 50,000 |"), "{table}");
        assert!(table.contains("4.0; 2.0, 3.0 |"), "{table}");
    }
}
