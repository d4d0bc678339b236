//! The WSGI section (issue 11): the same Python app under ferrocorn, granian and gunicorn,
//! with ferrocorn's ratios to each, every worker's memory and the callgrind count.

use std::fmt::Write as _;

use super::{count, mib, p99, Report, Row};
use crate::bench::scenario::AppKind;
use crate::bench::servers::{ServerKind, GRANIAN_THREADING, GTHREAD_THREADS, WORKERS};

impl Report {
    /// How each server runs the WSGI apps, the table of the WSGI scenarios and the
    /// instructions per WSGI hello request.
    pub(super) fn wsgi_section(&self) -> String {
        let mut out = format!(
            "The same Python module under every server, {WORKERS} workers each: `.bench/wsgi/wsgi_hello.py` \
             (a function returning one bytes object, with `Content-Type: text/plain` and `Content-Length`) and \
             `.bench/wsgi/wsgi_echo.py` (reads `CONTENT_LENGTH` bytes from `wsgi.input` and returns them), written \
             from `WSGI_HELLO_APP` and `WSGI_ECHO_APP` in `xtask/src/bench/fixtures.rs`.\n\n\
             - ferrocorn imports it from `--chdir .bench/wsgi` and calls it on each worker's event-loop \
             thread (`--threads 1`).\n\
             - gunicorn gthread: {WORKERS} workers × {GTHREAD_THREADS} threads; gunicorn sync: {WORKERS} workers \
             (a new connection per request, as in its other rows).\n\
             - {GRANIAN_THREADING}\n\n\
             Ratios are ferrocorn's figure over that server's in the same round: the median of the rounds, \
             then the lowest and highest round. Worker memory is each worker's peak (`VmHWM`) / current \
             (`VmRSS`) RSS after all the runs, in MiB.\n\n"
        );
        out.push_str(&self.wsgi_table());
        let _ = write!(
            out,
            "\n### Instructions per WSGI hello request (callgrind)\n\n{}\n\
             The ferrocorn binary's share is the server outside Python: the event loop, HTTP and the glue to \
             Python. libpython's share holds the app's bytecode and also the server's work done through \
             Python's C API (building `environ`, calling the app and `start_response`, reading the body list).\n",
            self.callgrind_section(AppKind::WsgiHello)
        );
        out
    }

    fn wsgi_table(&self) -> String {
        let mut out = String::from(
            "| scenario | server | req/s | ferrocorn's req/s over this | req per server CPU-s \
             | ferrocorn's req per CPU-s over this | p99 | worker RSS MiB (peak / now) |\n\
             |---|---|--:|--:|--:|--:|--:|---|\n",
        );
        let per_second: fn(&Row) -> Option<f64> = |r| Some(r.figures.requests_per_second());
        let per_cpu: fn(&Row) -> Option<f64> = Row::requests_per_cpu_second;
        for row in self.rows.iter().filter(|r| r.scenario.app.is_wsgi()) {
            let ratio = |figure| match row.server {
                ServerKind::Ferrocorn => "-".to_string(),
                peer => self.ratio_spread(row.scenario.name, peer, figure),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                row.scenario.name,
                row.server.name(),
                count(row.figures.requests_per_second()),
                ratio(per_second),
                row.requests_per_cpu_second().map_or("-".to_string(), count),
                ratio(per_cpu),
                p99(&row.figures),
                self.worker_memory(row.server, row.scenario.app),
            );
        }
        out
    }

    /// The median of ferrocorn's per-round ratios to `peer`, with the lowest and highest.
    fn ratio_spread(
        &self,
        scenario: &str,
        peer: ServerKind,
        figure: fn(&Row) -> Option<f64>,
    ) -> String {
        let mut ratios: Vec<f64> = self
            .round_ratios(scenario, peer, figure)
            .into_iter()
            .map(|(ratio, _, _)| ratio)
            .collect();
        ratios.sort_by(f64::total_cmp);
        match (ratios.first(), ratios.last()) {
            (Some(low), Some(high)) if ratios.len() > 1 => format!(
                "{:.2}× ({low:.2}–{high:.2})",
                ratios[(ratios.len() - 1) / 2]
            ),
            (Some(only), _) => format!("{only:.2}×"),
            _ => "-".to_string(),
        }
    }

    /// The peak and current RSS of each worker of `server` that ran `app`.
    fn worker_memory(&self, server: ServerKind, app: AppKind) -> String {
        let workers: Vec<String> = self
            .memory
            .iter()
            .filter(|p| p.server == server && !p.is_root && p.apps.contains(&app))
            .map(|p| format!("{} / {}", mib(p.memory.peak_kib), mib(p.memory.current_kib)))
            .collect();
        if workers.is_empty() {
            "-".to_string()
        } else {
            workers.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::procfs::Memory;
    use crate::bench::report::tests::row;
    use crate::bench::report::ProcessMemory;

    #[test]
    fn wsgi_table_shows_ratios_and_worker_memory() {
        let in_round = |mut r: Row, round| {
            r.round = round;
            r
        };
        let runs = vec![
            in_round(
                row(ServerKind::Ferrocorn, "wsgi-hello-ka-64", 60_000, 1000, 500),
                1,
            ),
            in_round(
                row(ServerKind::Granian, "wsgi-hello-ka-64", 50_000, 500, 500),
                1,
            ),
            in_round(
                row(ServerKind::Ferrocorn, "wsgi-hello-ka-64", 66_000, 1000, 500),
                2,
            ),
            in_round(
                row(ServerKind::Granian, "wsgi-hello-ka-64", 40_000, 1000, 500),
                2,
            ),
            in_round(row(ServerKind::Ferrocorn, "hello-ka-64", 1, 1, 1), 1),
        ];
        let worker = |server, kib| ProcessMemory {
            server,
            apps: vec![AppKind::WsgiHello],
            pid: 7,
            is_root: false,
            memory: Memory {
                peak_kib: kib,
                current_kib: kib / 2,
            },
        };
        let report = Report {
            rows: super::super::median_rows(runs.clone()),
            runs,
            memory: vec![worker(ServerKind::Granian, 20 * 1024)],
            ..Report::default()
        };
        let table = report.wsgi_table();
        assert!(!table.contains("| hello-ka-64 |"), "{table}");
        // Rounds: 1.20× and 1.65× in requests/s, 0.60× and 1.65× per CPU-second.
        assert!(
            table.contains("| wsgi-hello-ka-64 | granian | 40,000 | 1.20× (1.20–1.65) | 40,000 | 0.60× (0.60–1.65) |"),
            "{table}"
        );
        assert!(table.contains("| 20.0 / 10.0 |"), "{table}");
        assert!(
            table.contains("| wsgi-hello-ka-64 | ferrocorn | 60,000 | - |"),
            "{table}"
        );
    }
}
