//! The report's sections that are not tables of runs: memory per process, instructions
//! per request under callgrind, and the parser against httparse.

use std::fmt::Write as _;
use std::time::Duration;

use super::{count, mib, Report};

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
                p.apps,
                p.pid,
                if p.is_root { "master" } else { "worker" },
                mib(p.memory.peak_kib),
                mib(p.memory.current_kib)
            );
        }
        out
    }

    pub(super) fn callgrind_section(&self) -> String {
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
