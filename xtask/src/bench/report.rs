//! The bench's results: the table of runs, the targets marked met or missed, and
//! `docs/BENCHMARKS.md` (whose hand-written "What limits it" section is kept across runs).

use std::fmt::Write as _;
use std::time::Duration;

use super::callgrind::CallgrindResult;
use super::parser_bench::ParserResult;
use super::procfs::{Machine, Memory};
#[cfg(test)]
use super::scenario::Latency;
use super::scenario::{LoadFigures, Scenario, SCENARIOS};
use super::servers::ServerKind;

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
    pub apps: String,
    pub pid: u32,
    /// The arbiter or master, as opposed to a worker.
    pub is_root: bool,
    pub memory: Memory,
}

/// Whether a target holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Met,
    Missed,
    /// Not measured in this run, and why.
    Unmeasured(String),
}

/// A target of the bench issue, with what was measured.
#[derive(Debug, Clone)]
pub struct Target {
    pub what: &'static str,
    pub measured: String,
    pub verdict: Verdict,
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
    pub callgrind: Option<CallgrindResult>,
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

/// Which side of a ratio (ferrocorn over the peer) a target asks for.
#[derive(Debug, Clone, Copy)]
enum Bound {
    AtLeast(f64),
    AtMost(f64),
}

/// A target that compares one figure of ferrocorn with a peer's under one scenario.
struct Comparison {
    what: &'static str,
    scenario: &'static str,
    peer: ServerKind,
    figure: fn(&Row) -> Option<f64>,
    bound: Bound,
    /// Formats the figure for the report.
    show: fn(f64) -> String,
}

/// Per-process memory limit for ferrocorn's workers after the runs.
const WORKER_RSS_LIMIT_KIB: u64 = 4 * 1024;

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
    /// The ratio of ferrocorn's `figure` to `peer`'s in each round where both ran
    /// `scenario`, with the two figures, in round order.
    fn round_ratios(
        &self,
        scenario: &str,
        peer: ServerKind,
        figure: fn(&Row) -> Option<f64>,
    ) -> Vec<(f64, f64, f64)> {
        let runs = if self.runs.is_empty() {
            &self.rows
        } else {
            &self.runs
        };
        let find = |server: ServerKind, round: usize| {
            runs.iter()
                .find(|r| r.server == server && r.scenario.name == scenario && r.round == round)
        };
        let mut rounds: Vec<usize> = runs.iter().map(|r| r.round).collect();
        rounds.sort_unstable();
        rounds.dedup();
        rounds
            .into_iter()
            .filter_map(|round| {
                let ours = figure(find(ServerKind::Ferrocorn, round)?)?;
                let theirs = figure(find(peer, round)?)?;
                (theirs > 0.0 && ours.is_finite()).then_some((ours / theirs, ours, theirs))
            })
            .collect()
    }

    /// Marks one comparison target: the median over the rounds of the per-round ratio, so
    /// that each ratio compares two runs made seconds apart.
    fn compare(&self, c: &Comparison) -> Target {
        let mut ratios = self.round_ratios(c.scenario, c.peer, c.figure);
        if ratios.is_empty() {
            return Target {
                what: c.what,
                measured: String::new(),
                verdict: Verdict::Unmeasured(format!(
                    "no {} figures of both ferrocorn and {}",
                    c.scenario,
                    c.peer.name()
                )),
            };
        }
        let all: Vec<String> = ratios.iter().map(|(r, _, _)| format!("{r:.2}")).collect();
        ratios.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (ratio, ours, theirs) = ratios[(ratios.len() - 1) / 2];
        let met = match c.bound {
            Bound::AtLeast(min) => ratio >= min,
            Bound::AtMost(max) => ratio <= max,
        };
        let rounds = if all.len() > 1 {
            format!("; rounds {}", all.join(", "))
        } else {
            String::new()
        };
        Target {
            what: c.what,
            measured: format!(
                "{ratio:.2}× ({} vs {}{rounds})",
                (c.show)(ours),
                (c.show)(theirs)
            ),
            verdict: if met { Verdict::Met } else { Verdict::Missed },
        }
    }

    /// The targets of issue 6, each marked from this run's rows.
    pub fn targets(&self) -> Vec<Target> {
        use ServerKind::*;
        let per_cpu: fn(&Row) -> Option<f64> = Row::requests_per_cpu_second;
        let per_second: fn(&Row) -> Option<f64> = |r| Some(r.figures.requests_per_second());
        let mib_per_second: fn(&Row) -> Option<f64> = |r| Some(r.figures.mib_per_second());
        let p99_seconds: fn(&Row) -> Option<f64> =
            |r| r.figures.latency.map(|l| l.p99.as_secs_f64());
        let comparisons = [
            Comparison {
                what: "hello keep-alive ×64: requests per server CPU-second ≥ 1.2× nginx",
                scenario: "hello-ka-64",
                peer: Nginx,
                figure: per_cpu,
                bound: Bound::AtLeast(1.2),
                show: |x| format!("{} req/CPU-s", count(x)),
            },
            Comparison {
                what: "hello keep-alive ×64: requests per server CPU-second ≥ 20× gunicorn gthread",
                scenario: "hello-ka-64",
                peer: GunicornGthread,
                figure: per_cpu,
                bound: Bound::AtLeast(20.0),
                show: |x| format!("{} req/CPU-s", count(x)),
            },
            Comparison {
                what: "hello keep-alive ×64: requests/s ≥ 1.0× nginx",
                scenario: "hello-ka-64",
                peer: Nginx,
                figure: per_second,
                bound: Bound::AtLeast(1.0),
                show: |x| format!("{} req/s", count(x)),
            },
            Comparison {
                what: "pipelined ×16: requests/s ≥ 3× nginx",
                scenario: "hello-pipe-16",
                peer: Nginx,
                figure: per_second,
                bound: Bound::AtLeast(3.0),
                show: |x| format!("{} req/s", count(x)),
            },
            Comparison {
                what: "hello keep-alive ×1: p99 latency ≤ nginx's (ratio ≤ 1)",
                scenario: "hello-ka-1",
                peer: Nginx,
                figure: p99_seconds,
                bound: Bound::AtMost(1.0),
                show: |x| latency(Duration::from_secs_f64(x)),
            },
            Comparison {
                what: "1 MiB static file: throughput ≥ 0.9× nginx",
                scenario: "static-1m-8",
                peer: Nginx,
                figure: mib_per_second,
                bound: Bound::AtLeast(0.9),
                show: |x| format!("{x:.0} MiB/s"),
            },
        ];
        let mut targets: Vec<Target> = comparisons.iter().map(|c| self.compare(c)).collect();
        let workers: Vec<&ProcessMemory> = self
            .memory
            .iter()
            .filter(|p| p.server == Ferrocorn && !p.is_root)
            .collect();
        targets.push(match workers.iter().map(|p| p.memory.current_kib).max() {
            Some(max) => Target {
                what: "every ferrocorn worker's RSS ≤ 4 MiB after the runs",
                measured: format!("largest {} MiB over {} workers", mib(max), workers.len()),
                verdict: if max <= WORKER_RSS_LIMIT_KIB {
                    Verdict::Met
                } else {
                    Verdict::Missed
                },
            },
            None => Target {
                what: "every ferrocorn worker's RSS ≤ 4 MiB after the runs",
                measured: String::new(),
                verdict: Verdict::Unmeasured("ferrocorn did not run".to_string()),
            },
        });
        targets.push(self.parser_target());
        targets.push(super::idle::target(
            self.idle.as_ref(),
            self.idle_note.as_deref(),
        ));
        targets
    }

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

    /// The targets table in Markdown.
    pub fn targets_table(&self) -> String {
        let mut out = String::from("| target | measured | result |\n|---|---|---|\n");
        for target in self.targets() {
            let verdict = match &target.verdict {
                Verdict::Met => "**met**".to_string(),
                Verdict::Missed => "**missed**".to_string(),
                Verdict::Unmeasured(why) => format!("not measured: {why}"),
            };
            let _ = writeln!(out, "| {} | {} | {verdict} |", target.what, target.measured);
        }
        out
    }

    fn memory_table(&self) -> String {
        let mut out = String::from(
            "| server | apps | pid | process | peak RSS (VmHWM) MiB | RSS after the runs MiB |\n|---|---|--:|---|--:|--:|\n",
        );
        for p in &self.memory {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                p.server.name(),
                p.apps,
                p.pid,
                if p.is_root { "master" } else { "worker" },
                mib(p.memory.peak_kib),
                mib(p.memory.current_kib)
            );
        }
        out
    }

    fn callgrind_section(&self) -> String {
        let Some(cg) = &self.callgrind else {
            return format!(
                "Not run: {}.\n",
                self.callgrind_note
                    .as_deref()
                    .unwrap_or("see \"Skipped or failed\"")
            );
        };
        let mut out = format!(
            "**{:.0} instructions per keep-alive hello request** in a ferrocorn worker's user space \
             (`GET / HTTP/1.1` with a `Host`, one connection): ({} − {}) instructions / ({} − {}) requests, \
             two sessions under callgrind so that start-up and shutdown cancel out. Counted, not timed: \
             it does not move with the machine's load. The kernel's share (most of the CPU, see \
             \"What limits it\") is not counted.\n\n\
             Command (run twice, {} and {} requests, then SIGTERM): `{}`\n\n",
            cg.per_request,
            count(cg.instructions.1 as f64),
            count(cg.instructions.0 as f64),
            count(cg.requests.1 as f64),
            count(cg.requests.0 as f64),
            count(cg.requests.0 as f64),
            count(cg.requests.1 as f64),
            cg.command
        );
        if !cg.top.is_empty() {
            out.push_str("Own instructions of the heaviest functions, large session:\n\n| share | function |\n|--:|---|\n");
            for (share, function) in &cg.top {
                let _ = writeln!(out, "| {share:.1} % | `{function}` |");
            }
        }
        out
    }

    /// The parser target, judged on the alternating rounds' medians (criterion's sequential
    /// measurements and the instruction counts are given beside them).
    fn parser_target(&self) -> Target {
        let what =
            "parser ≥ 0.8× raw httparse's throughput (every request; median of alternating rounds)";
        let Some(parser) = self.parser.as_ref().filter(|p| !p.alternating.is_empty()) else {
            let why = match &self.parser {
                Some(parser) => parser.notes.join("; "),
                None => self
                    .parser_note
                    .clone()
                    .unwrap_or_else(|| "the parser bench did not run".to_string()),
            };
            return Target {
                what,
                measured: String::new(),
                verdict: Verdict::Unmeasured(why),
            };
        };
        let mut measured: Vec<String> = parser
            .alternating
            .iter()
            .map(|a| {
                format!(
                    "{} {:.2}× (rounds {:.2}–{:.2})",
                    a.request, a.median_ratio, a.range.0, a.range.1
                )
            })
            .collect();
        if !parser.pairs.is_empty() {
            let worst = parser
                .pairs
                .iter()
                .map(|p| p.ratio())
                .fold(f64::INFINITY, f64::min);
            measured.push(format!("criterion worst {worst:.2}×"));
        }
        for i in &parser.instructions {
            measured.push(format!(
                "{} {:.2}× by instructions ({:.0} vs {:.0})",
                i.request,
                i.ratio(),
                i.ours,
                i.httparse
            ));
        }
        let worst = parser
            .alternating
            .iter()
            .map(|a| a.median_ratio)
            .fold(f64::INFINITY, f64::min);
        Target {
            what,
            measured: measured.join("; "),
            verdict: if worst >= 0.8 {
                Verdict::Met
            } else {
                Verdict::Missed
            },
        }
    }

    fn parser_section(&self) -> String {
        let mut out = String::from(
            "Three measurements of the same two requests (`http-parser/benches/common/requests.rs`), each \
             side doing what the criterion bench does per parse. The target is judged on the second: on \
             a shared machine the load drifts over seconds, and criterion measures one side for seconds \
             before the other.\n\n",
        );
        for (i, command) in super::parser_bench::commands().iter().enumerate() {
            let what = [
                "criterion, short warm-up and measurement (indicative)",
                "both parsers timed in alternating rounds of ~3 ms a side; median of the per-round ratios",
                "instructions per parse under callgrind (load-independent)",
            ][i.min(2)];
            let _ = writeln!(out, "{}. {what}: `{command}`", i + 1);
        }
        out.push('\n');
        match &self.parser {
            Some(parser) => {
                if !parser.alternating.is_empty() {
                    out.push_str(
                        "| request | httparse (median ns/parse) | ours (median ns/parse) | ours vs httparse, median of rounds | lowest–highest round |\n|---|--:|--:|--:|--:|\n",
                    );
                    for a in &parser.alternating {
                        let _ = writeln!(
                            out,
                            "| {} ({} rounds) | {:.1} | {:.1} | {:.2}× | {:.2}–{:.2}× |",
                            a.request,
                            a.rounds,
                            a.httparse_ns,
                            a.ours_ns,
                            a.median_ratio,
                            a.range.0,
                            a.range.1
                        );
                    }
                    out.push('\n');
                }
                if !parser.instructions.is_empty() {
                    out.push_str("| request | httparse instructions/parse | ours | httparse's count over ours |\n|---|--:|--:|--:|\n");
                    for i in &parser.instructions {
                        let _ = writeln!(
                            out,
                            "| {} | {:.0} | {:.0} | {:.2}× |",
                            i.request,
                            i.httparse,
                            i.ours,
                            i.ratio()
                        );
                    }
                    out.push('\n');
                }
                for note in &parser.notes {
                    let _ = writeln!(out, "Note: {note}.\n");
                }
                out.push_str("Criterion:\n\n| benchmark | time |\n|---|--:|\n");
                for m in &parser.measurements {
                    let _ = writeln!(out, "| `{}` | {} |", m.id, latency_ns(m.time));
                }
                if !parser.pairs.is_empty() {
                    out.push_str("\n| ours | httparse | ours vs httparse (httparse time / ours) |\n|---|---|--:|\n");
                    for pair in &parser.pairs {
                        let _ = writeln!(
                            out,
                            "| `{}` | `{}` | {:.2}× |",
                            pair.ours.id,
                            pair.httparse.id,
                            pair.ratio()
                        );
                    }
                }
            }
            None => {
                let _ = writeln!(
                    out,
                    "Not run: {}.",
                    self.parser_note
                        .as_deref()
                        .unwrap_or("skipped with --no-parser")
                );
            }
        }
        out
    }

    /// The whole of `docs/BENCHMARKS.md`; `limits` is the kept "What limits it" section.
    pub fn markdown(&self, limits: &str) -> String {
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
             It builds ferrocorn in release mode, installs gunicorn into `.bench/venv` (python3 -m venv + pip), \
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
        let _ = write!(
            out,
            "- load generator: {}\n\n## Results\n\n{}\n### Scenarios\n\n",
            self.generator,
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
             connection. nginx has no echo without a module, so it has no echo row. For pipelining, wrk records \
             one latency per batch of 16, from its write to its last response; so does the built-in generator.\n",
        );
        let _ = write!(
            out,
            "\n## Targets\n\nEach ratio is ferrocorn's figure over the peer's in the same round (two runs seconds \
             apart, 2 workers each); with several rounds the median ratio decides and every round's ratio is listed. \
             The figures in brackets are those of the round with the median ratio.\n\n{}\n\
             ## Memory per process after the runs\n\n{}\n\
             ## Instructions per request (callgrind)\n\n{}\n## Parser\n\n{}\n",
            self.targets_table(),
            self.memory_table(),
            self.callgrind_section(),
            self.parser_section()
        );
        if !self.notes.is_empty() {
            out.push_str("## Skipped or failed\n\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
            out.push('\n');
        }
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
                 gunicorn serves `.bench/wsgi/bench_app.py`, written from `WSGI_APP` in `xtask/src/bench/servers.rs`.\n\n",
                conf
            );
        }
        out.push_str(limits);
        out
    }
}

fn latency_ns(d: Duration) -> String {
    let nanos = d.as_secs_f64() * 1e9;
    if nanos < 1000.0 {
        format!("{nanos:.1} ns")
    } else {
        format!("{:.2} µs", nanos / 1000.0)
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
mod tests {
    use super::*;
    use crate::bench::scenario::Scenario;

    fn row(server: ServerKind, scenario: &str, requests: u64, cpu_ms: u64, p99_us: u64) -> Row {
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
    fn targets_are_marked_from_ratios() {
        let report = Report {
            rows: vec![
                row(ServerKind::Ferrocorn, "hello-ka-64", 130_000, 1000, 500),
                row(ServerKind::Nginx, "hello-ka-64", 100_000, 1000, 500),
                row(
                    ServerKind::GunicornGthread,
                    "hello-ka-64",
                    10_000,
                    1000,
                    500,
                ),
                row(ServerKind::Ferrocorn, "hello-ka-1", 10, 10, 90),
                row(ServerKind::Nginx, "hello-ka-1", 10, 10, 80),
            ],
            ..Report::default()
        };
        let targets = report.targets();
        assert_eq!(targets[0].verdict, Verdict::Met, "{:?}", targets[0]);
        assert_eq!(targets[1].verdict, Verdict::Missed, "13× is short of 20×");
        assert_eq!(targets[2].verdict, Verdict::Met);
        assert!(matches!(targets[3].verdict, Verdict::Unmeasured(_)));
        assert_eq!(
            targets[4].verdict,
            Verdict::Missed,
            "90 µs p99 is worse than 80 µs"
        );
        assert!(matches!(targets[6].verdict, Verdict::Unmeasured(_)));
        assert!(report
            .targets_table()
            .contains("1.30× (130,000 req/CPU-s vs 100,000 req/CPU-s)"));
    }

    #[test]
    fn parser_target_is_judged_on_the_alternating_medians() {
        use super::super::parser_bench::{Alternating, Instructions};
        let alternating = |request: &str, median_ratio| Alternating {
            request: request.to_string(),
            rounds: 31,
            median_ratio,
            range: (0.5, 1.5),
            httparse_ns: 100.0,
            ours_ns: 100.0 / median_ratio,
        };
        let mut report = Report {
            parser: Some(ParserResult {
                alternating: vec![alternating("browser", 0.9), alternating("minimal", 0.79)],
                instructions: vec![Instructions {
                    request: "minimal".to_string(),
                    httparse: 500.0,
                    ours: 600.0,
                }],
                ..ParserResult::default()
            }),
            ..Report::default()
        };
        let target = report.parser_target();
        assert_eq!(target.verdict, Verdict::Missed, "{target:?}");
        assert!(target.measured.contains("minimal 0.79×"), "{target:?}");
        assert!(
            target.measured.contains("0.83× by instructions"),
            "{target:?}"
        );
        report.parser.as_mut().unwrap().alternating[1].median_ratio = 0.8;
        assert_eq!(report.parser_target().verdict, Verdict::Met);
        report.parser.as_mut().unwrap().alternating.clear();
        assert!(matches!(
            report.parser_target().verdict,
            Verdict::Unmeasured(_)
        ));
    }

    #[test]
    fn worker_rss_target_ignores_the_master() {
        let memory = |is_root, kib| ProcessMemory {
            server: ServerKind::Ferrocorn,
            apps: "hello".to_string(),
            pid: 1,
            is_root,
            memory: Memory {
                peak_kib: kib,
                current_kib: kib,
            },
        };
        let mut report = Report {
            memory: vec![memory(true, 9000), memory(false, 4000)],
            ..Report::default()
        };
        assert_eq!(report.targets()[6].verdict, Verdict::Met);
        report.memory.push(memory(false, 4097));
        assert_eq!(report.targets()[6].verdict, Verdict::Missed);
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
    fn targets_take_the_median_of_per_round_ratios() {
        let in_round = |mut r: Row, round| {
            r.round = round;
            r
        };
        // Round 2 ran under load for both: its ratio is still fair. Pairing medians of
        // each server across rounds would compare 200,000 with 90,000 instead.
        let runs = vec![
            in_round(
                row(ServerKind::Ferrocorn, "hello-ka-64", 250_000, 1000, 500),
                1,
            ),
            in_round(row(ServerKind::Nginx, "hello-ka-64", 200_000, 1000, 500), 1),
            in_round(
                row(ServerKind::Ferrocorn, "hello-ka-64", 100_000, 1000, 500),
                2,
            ),
            in_round(row(ServerKind::Nginx, "hello-ka-64", 90_000, 1000, 500), 2),
            in_round(
                row(ServerKind::Ferrocorn, "hello-ka-64", 200_000, 1000, 500),
                3,
            ),
            in_round(row(ServerKind::Nginx, "hello-ka-64", 130_000, 1000, 500), 3),
        ];
        let report = Report {
            runs,
            ..Report::default()
        };
        let target = &report.targets()[2];
        assert_eq!(target.verdict, Verdict::Met);
        assert!(
            target
                .measured
                .starts_with("1.25× (250,000 req/s vs 200,000 req/s; rounds 1.25, 1.11, 1.54)"),
            "{}",
            target.measured
        );
        assert_eq!(report.targets()[0].verdict, Verdict::Met);
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
