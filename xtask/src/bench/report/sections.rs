//! The report's sections that are not tables of runs: memory per process, instructions
//! per request under callgrind, and the parser against httparse.

use std::fmt::Write as _;
use std::time::Duration;

use super::{count, mib, Report};
use crate::bench::callgrind::CallgrindResult;
use crate::bench::scenario::AppKind;

impl Report {
    pub(super) fn memory_table(&self) -> String {
        let mut out = String::from(
            "| server | apps | pid | process | peak RSS (VmHWM) MiB | RSS after the runs MiB |\n|---|---|--:|---|--:|--:|\n",
        );
        for p in &self.memory {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                p.server.name(),
                p.apps
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                p.pid,
                if p.is_root { "master" } else { "worker" },
                mib(p.memory.peak_kib),
                mib(p.memory.current_kib)
            );
        }
        out
    }

    /// The callgrind count of `app` (hello or the WSGI hello), or why there is none.
    pub(super) fn callgrind_section(&self, app: AppKind) -> String {
        let Some(cg) = self.callgrind.iter().find(|cg| cg.app == app) else {
            let ran = self.rows.iter().any(|r| r.scenario.app == app);
            let why = match self.callgrind_note.as_deref() {
                Some(note) => note,
                None if ran => "see \"Skipped or failed\"",
                None => "no scenario of this app ran",
            };
            return format!("Not run: {why}.\n");
        };
        let what = match app.wsgi_target() {
            Some(target) => format!("WSGI hello request (`{target}`, `--threads 1`)"),
            None => format!("{} request", app.name()),
        };
        let mut out = format!(
            "**{:.0} instructions per keep-alive {what}** in a ferrocorn worker's user space \
             (`GET / HTTP/1.1` with a `Host`, one connection): ({} − {}) instructions / ({} − {}) requests, \
             two sessions under callgrind so that start-up and shutdown cancel out. Counted, not timed: \
             with `--busy-poll 0` (polling before sleeping follows timing) it does not move with the \
             machine's load. The kernel's share (most of the CPU, see \
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
        out.push_str(&objects_table(cg));
        if let Some(alone) = &cg.app_alone {
            let _ = write!(
                out,
                "The app alone, called in a plain Python loop with a prepared `environ` and a `start_response` \
                 that does nothing, the same two counts apart: **{:.0} instructions per call**. The other \
                 **{:.0} per request** are the server's, inside and outside libpython (command: `{}`).\n\n",
                alone.per_call,
                cg.per_request - alone.per_call,
                alone.command
            );
        }
        if !cg.top.is_empty() {
            out.push_str("Own instructions of the heaviest functions, large session:\n\n| share | function |\n|--:|---|\n");
            for (share, function) in &cg.top {
                let _ = writeln!(out, "| {share:.1} % | `{function}` |");
            }
        }
        out
    }

    pub(super) fn parser_section(&self) -> String {
        let mut out = String::from(
            "Three measurements of the same two requests (`http-parser/benches/common/requests.rs`), each \
             side doing what the criterion bench does per parse. The target is judged on the second: on \
             a shared machine the load drifts over seconds, and criterion measures one side for seconds \
             before the other.\n\n",
        );
        for (i, command) in crate::bench::parser_bench::commands().iter().enumerate() {
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
}

fn latency_ns(d: Duration) -> String {
    let nanos = d.as_secs_f64() * 1e9;
    if nanos < 1000.0 {
        format!("{nanos:.1} ns")
    } else {
        format!("{:.2} µs", nanos / 1000.0)
    }
}

/// Instructions per request by object file: the ferrocorn binary (the server, outside
/// Python), libpython (the app's bytecode and the server's calls into the C API), libc...
fn objects_table(cg: &CallgrindResult) -> String {
    if cg.objects.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "The same difference per object file (callgrind's per-object totals):\n\n\
         | object | instructions per request | share |\n|---|--:|--:|\n",
    );
    let (shown, rest): (Vec<_>, Vec<_>) = cg
        .objects
        .iter()
        .enumerate()
        .partition(|(i, (_, per_request))| *i < 6 && per_request.abs() >= 0.5);
    let rest: f64 = rest.iter().map(|(_, (_, per_request))| per_request).sum();
    let share = |x: f64| x * 100.0 / cg.per_request;
    for (_, (object, per_request)) in shown {
        let _ = writeln!(
            out,
            "| `{object}` | {per_request:.0} | {:.1} % |",
            share(*per_request)
        );
    }
    if rest.abs() >= 0.5 {
        let _ = writeln!(out, "| others | {rest:.0} | {:.1} % |", share(rest));
    }
    out.push('\n');
    out
}
