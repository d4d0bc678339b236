//! The targets of the bench issues, each marked met or missed from this run's figures.

use std::fmt::Write as _;
use std::time::Duration;

use super::{count, latency, mib, ProcessMemory, Report, Row};
use crate::bench::servers::ServerKind;

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

fn per_cpu(row: &Row) -> Option<f64> {
    row.requests_per_cpu_second()
}

fn per_second(row: &Row) -> Option<f64> {
    Some(row.figures.requests_per_second())
}

fn mib_per_second(row: &Row) -> Option<f64> {
    Some(row.figures.mib_per_second())
}

fn p99_seconds(row: &Row) -> Option<f64> {
    row.figures.latency.map(|l| l.p99.as_secs_f64())
}

fn show_per_cpu(x: f64) -> String {
    format!("{} req/CPU-s", count(x))
}

fn show_per_second(x: f64) -> String {
    format!("{} req/s", count(x))
}

fn show_mib_per_second(x: f64) -> String {
    format!("{x:.0} MiB/s")
}

fn show_latency(x: f64) -> String {
    latency(Duration::from_secs_f64(x))
}

/// The comparisons of issue 6 (the built-in apps against nginx and gunicorn).
const ISSUE_6: [Comparison; 6] = [
    Comparison {
        what: "hello keep-alive ×64: requests per server CPU-second ≥ 1.2× nginx",
        scenario: "hello-ka-64",
        peer: ServerKind::Nginx,
        figure: per_cpu,
        bound: Bound::AtLeast(1.2),
        show: show_per_cpu,
    },
    Comparison {
        what: "hello keep-alive ×64: requests per server CPU-second ≥ 20× gunicorn gthread",
        scenario: "hello-ka-64",
        peer: ServerKind::GunicornGthread,
        figure: per_cpu,
        bound: Bound::AtLeast(20.0),
        show: show_per_cpu,
    },
    Comparison {
        what: "hello keep-alive ×64: requests/s ≥ 1.0× nginx",
        scenario: "hello-ka-64",
        peer: ServerKind::Nginx,
        figure: per_second,
        bound: Bound::AtLeast(1.0),
        show: show_per_second,
    },
    Comparison {
        what: "pipelined ×16: requests/s ≥ 3× nginx",
        scenario: "hello-pipe-16",
        peer: ServerKind::Nginx,
        figure: per_second,
        bound: Bound::AtLeast(3.0),
        show: show_per_second,
    },
    Comparison {
        what: "hello keep-alive ×1: p99 latency ≤ nginx's (ratio ≤ 1)",
        scenario: "hello-ka-1",
        peer: ServerKind::Nginx,
        figure: p99_seconds,
        bound: Bound::AtMost(1.0),
        show: show_latency,
    },
    Comparison {
        what: "1 MiB static file: throughput ≥ 0.9× nginx",
        scenario: "static-1m-8",
        peer: ServerKind::Nginx,
        figure: mib_per_second,
        bound: Bound::AtLeast(0.9),
        show: show_mib_per_second,
    },
];

/// The comparisons of issue 15: TLS 1.3 with the same ECDSA P-256 certificate.
const TLS: [Comparison; 3] = [
    Comparison {
        what: "TLS hello keep-alive ×64: requests per server CPU-second ≥ 1.0× nginx",
        scenario: "tls-hello-ka-64",
        peer: ServerKind::Nginx,
        figure: per_cpu,
        bound: Bound::AtLeast(1.0),
        show: show_per_cpu,
    },
    Comparison {
        what: "TLS full handshake per request ×16: handshakes per server CPU-second ≥ 1.0× nginx",
        scenario: "tls-hello-close-16",
        peer: ServerKind::Nginx,
        figure: per_cpu,
        bound: Bound::AtLeast(1.0),
        show: show_per_cpu,
    },
    Comparison {
        what: "TLS 1 MiB static file: throughput ≥ 0.8× nginx",
        scenario: "tls-static-1m-8",
        peer: ServerKind::Nginx,
        figure: mib_per_second,
        bound: Bound::AtLeast(0.8),
        show: show_mib_per_second,
    },
];

/// The comparisons of issue 11: the same WSGI app on 2 workers under each server.
const WSGI: [Comparison; 4] = [
    Comparison {
        what: "WSGI hello keep-alive ×64: requests/s ≥ 1.2× granian",
        scenario: "wsgi-hello-ka-64",
        peer: ServerKind::Granian,
        figure: per_second,
        bound: Bound::AtLeast(1.2),
        show: show_per_second,
    },
    Comparison {
        what: "WSGI hello keep-alive ×64: requests/s ≥ 6× gunicorn gthread",
        scenario: "wsgi-hello-ka-64",
        peer: ServerKind::GunicornGthread,
        figure: per_second,
        bound: Bound::AtLeast(6.0),
        show: show_per_second,
    },
    Comparison {
        what: "WSGI 4 KiB POST echo ×64: requests/s ≥ 1.2× granian",
        scenario: "wsgi-echo-post-4k-64",
        peer: ServerKind::Granian,
        figure: per_second,
        bound: Bound::AtLeast(1.2),
        show: show_per_second,
    },
    Comparison {
        what: "WSGI 4 KiB POST echo ×64: requests/s ≥ 6× gunicorn gthread",
        scenario: "wsgi-echo-post-4k-64",
        peer: ServerKind::GunicornGthread,
        figure: per_second,
        bound: Bound::AtLeast(6.0),
        show: show_per_second,
    },
];

/// The comparisons of issue 16: the same raw ASGI app on 2 workers under each server.
const ASGI: [Comparison; 2] = [
    Comparison {
        what: "ASGI hello keep-alive ×64: requests/s ≥ 1.2× granian",
        scenario: "asgi-hello-ka-64",
        peer: ServerKind::Granian,
        figure: per_second,
        bound: Bound::AtLeast(1.2),
        show: show_per_second,
    },
    Comparison {
        what: "ASGI hello keep-alive ×64: requests/s ≥ 2× uvicorn",
        scenario: "asgi-hello-ka-64",
        peer: ServerKind::Uvicorn,
        figure: per_second,
        bound: Bound::AtLeast(2.0),
        show: show_per_second,
    },
];

/// Per-process memory limit for ferrocorn's workers after the runs.
const WORKER_RSS_LIMIT_KIB: u64 = 4 * 1024;
impl Report {
    /// The ratio of ferrocorn's `figure` to `peer`'s in each round where both ran
    /// `scenario`, with the two figures, in round order.
    pub(super) fn round_ratios(
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

    /// The targets of issue 6, the idle CPU's and issue 11's WSGI targets, each marked
    /// from this run's figures.
    pub fn targets(&self) -> Vec<Target> {
        let mut targets: Vec<Target> = ISSUE_6.iter().map(|c| self.compare(c)).collect();
        targets.push(self.worker_rss_target());
        targets.push(self.parser_target());
        targets.push(crate::bench::idle::target(
            self.idle.as_ref(),
            self.idle_note.as_deref(),
        ));
        targets.extend(ASGI.iter().map(|c| self.compare(c)));
        targets.extend(WSGI.iter().map(|c| self.compare(c)));
        targets.extend(TLS.iter().map(|c| self.compare(c)));
        targets
    }

    /// The RSS of ferrocorn's workers running a built-in app (a Python worker holds an
    /// interpreter: its RSS is shown beside granian's and gunicorn's instead).
    fn worker_rss_target(&self) -> Target {
        let what = "every ferrocorn worker of a built-in app: RSS ≤ 4 MiB after the runs";
        let workers: Vec<&ProcessMemory> = self
            .memory
            .iter()
            .filter(|p| p.server == ServerKind::Ferrocorn && !p.is_root)
            .filter(|p| p.apps.iter().all(|a| !a.is_wsgi()))
            .collect();
        match workers.iter().map(|p| p.memory.current_kib).max() {
            Some(max) => Target {
                what,
                measured: format!("largest {} MiB over {} workers", mib(max), workers.len()),
                verdict: if max <= WORKER_RSS_LIMIT_KIB {
                    Verdict::Met
                } else {
                    Verdict::Missed
                },
            },
            None => Target {
                what,
                measured: String::new(),
                verdict: Verdict::Unmeasured("ferrocorn did not run".to_string()),
            },
        }
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

    /// The parser target, judged on the alternating rounds' medians (criterion's sequential
    /// measurements and the instruction counts are given beside them).
    pub(super) fn parser_target(&self) -> Target {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::parser_bench::ParserResult;
    use crate::bench::procfs::Memory;
    use crate::bench::report::tests::row;
    use crate::bench::scenario::AppKind;

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
    pub(super) fn parser_target_is_judged_on_the_alternating_medians() {
        use crate::bench::parser_bench::{Alternating, Instructions};
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
    fn worker_rss_target_ignores_the_master_and_python_workers() {
        let memory = |is_root, kib, app| ProcessMemory {
            server: ServerKind::Ferrocorn,
            apps: vec![app],
            pid: 1,
            is_root,
            memory: Memory {
                peak_kib: kib,
                current_kib: kib,
            },
        };
        let mut report = Report {
            memory: vec![
                memory(true, 9000, AppKind::Hello),
                memory(false, 4000, AppKind::Hello),
                memory(false, 20_000, AppKind::WsgiHello),
            ],
            ..Report::default()
        };
        assert_eq!(report.targets()[6].verdict, Verdict::Met);
        report.memory.push(memory(false, 4097, AppKind::Echo));
        assert_eq!(report.targets()[6].verdict, Verdict::Missed);
    }

    #[test]
    fn wsgi_targets_compare_requests_per_second_with_granian_and_gthread() {
        let report = Report {
            rows: vec![
                row(ServerKind::Ferrocorn, "wsgi-hello-ka-64", 60_000, 1000, 500),
                row(ServerKind::Granian, "wsgi-hello-ka-64", 50_000, 1000, 500),
                row(
                    ServerKind::GunicornGthread,
                    "wsgi-hello-ka-64",
                    11_000,
                    1000,
                    500,
                ),
            ],
            ..Report::default()
        };
        let targets = report.targets();
        let end = targets.len() - TLS.len();
        let wsgi = &targets[end - WSGI.len()..end];
        assert_eq!(wsgi[0].verdict, Verdict::Met, "{:?}", wsgi[0]);
        assert!(wsgi[0]
            .measured
            .starts_with("1.20× (60,000 req/s vs 50,000 req/s"));
        assert_eq!(wsgi[1].verdict, Verdict::Missed, "5.45× is short of 6×");
        assert!(matches!(wsgi[2].verdict, Verdict::Unmeasured(_)));
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
}
