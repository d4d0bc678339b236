//! Instructions per request in a ferrocorn worker, counted by callgrind: reproducible where
//! timings on a shared machine are not.
//!
//! Two sessions under `valgrind --tool=callgrind`, one worker each, send a few and many
//! keep-alive requests; the difference of the worker's instruction totals over the
//! difference of the request counts cancels start-up and shutdown.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::loadgen;
use super::scenario::{AppKind, Scenario};
use super::servers::{free_port, which, BenchDir, Installed, Instance};

/// Requests sent in the small and the large session.
const REQUESTS: (u64, u64) = (2_000, 22_000);
/// valgrind starts slowly: how long ferrocorn may take to answer under it.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What the callgrind sessions measured.
#[derive(Debug, Clone)]
pub struct CallgrindResult {
    /// Worker instructions per request.
    pub per_request: f64,
    pub requests: (u64, u64),
    pub instructions: (u64, u64),
    /// The functions with the most instructions of their own in the large session:
    /// (share of the worker's total in %, function).
    pub top: Vec<(f64, String)>,
    pub command: String,
}

/// Runs both sessions against the hello app with `scenario`'s request.
pub fn run(ferrocorn: &Installed, scenario: &Scenario, dir: &BenchDir) -> Result<CallgrindResult> {
    if which("valgrind").is_none() {
        bail!("valgrind is not installed (apt-get install -y valgrind)");
    }
    let out_dir = dir.abs("callgrind");
    fs::create_dir_all(&out_dir)
        .with_context(|| format!("could not create {}", out_dir.display()))?;
    for entry in fs::read_dir(&out_dir)?.flatten() {
        let _ = fs::remove_file(entry.path());
    }
    // The shape of wrk's request: a Host with a port.
    let request = scenario.request_bytes("127.0.0.1:8000");
    let (small, _, _) = session(ferrocorn, &request, REQUESTS.0, dir)?;
    let (large, file, command) = session(ferrocorn, &request, REQUESTS.1, dir)?;
    if large <= small {
        bail!(
            "callgrind counted {large} instructions for {} requests and {small} for {}",
            REQUESTS.1,
            REQUESTS.0
        );
    }
    let per_request = (large - small) as f64 / (REQUESTS.1 - REQUESTS.0) as f64;
    Ok(CallgrindResult {
        per_request,
        requests: REQUESTS,
        instructions: (small, large),
        top: top_functions(&file, large).unwrap_or_default(),
        command,
    })
}

/// One session: ferrocorn under callgrind, `count` requests, a graceful stop. Returns the
/// worker's instruction total, its callgrind file and the command.
fn session(
    ferrocorn: &Installed,
    request: &[u8],
    count: u64,
    dir: &BenchDir,
) -> Result<(u64, std::path::PathBuf, String)> {
    let port = free_port()?;
    let out_file = dir
        .rel("callgrind")
        .join(format!("callgrind.out.{count}.%p"));
    let command: Vec<String> = vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        format!("--callgrind-out-file={}", out_file.display()),
        ferrocorn.program.display().to_string(),
        "--workers".into(),
        "1".into(),
        "--bind".into(),
        format!("127.0.0.1:{port}"),
        "hello".into(),
    ];
    let shown = command.join(" ");
    let instance = Instance::launch(
        ferrocorn.kind,
        &[AppKind::Hello],
        command,
        port,
        &format!("callgrind-{count}"),
        dir,
        1,
        START_TIMEOUT,
    )?;
    let worker = instance
        .processes()
        .get(1)
        .map(|p| p.pid)
        .context("ferrocorn under valgrind has no worker")?;
    loadgen::sequential(instance.addr, request, count)
        .with_context(|| format!("sending {count} requests to ferrocorn under valgrind"))?;
    // Dropping stops the arbiter and waits for it: the worker writes its file on exit.
    drop(instance);
    let file = dir
        .abs("callgrind")
        .join(format!("callgrind.out.{count}.{worker}"));
    let text = fs::read_to_string(&file)
        .with_context(|| format!("no callgrind output at {}", file.display()))?;
    let total = parse_total(&text)
        .with_context(|| format!("no instruction total in {}", file.display()))?;
    Ok((total, file, shown))
}

/// The `summary:` (or `totals:`) line of a callgrind output file.
pub fn parse_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The heaviest functions by their own instructions, from `callgrind_annotate`.
fn top_functions(file: &Path, total: u64) -> Option<Vec<(f64, String)>> {
    let output = Command::new("callgrind_annotate")
        .arg("--auto=no")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    Some(parse_annotate(
        &String::from_utf8_lossy(&output.stdout),
        total,
        12,
    ))
}

/// Reads `  31,432,878 ( 6.11%)  path:function [object]` lines into (percent of `total`,
/// function), from the table under the `file:function` heading up to the blank line that
/// ends it (source annotations may follow). callgrind_annotate gives one line per
/// (source file, function), so code inlined from several files is summed per function;
/// the `most` heaviest are returned, heaviest first.
pub fn parse_annotate(text: &str, total: u64, most: usize) -> Vec<(f64, String)> {
    let mut functions: Vec<(f64, String)> = Vec::new();
    let table = text
        .lines()
        .skip_while(|line| !line.contains("file:function"))
        .skip(2)
        .take_while(|line| !line.trim().is_empty());
    let lines = table.filter_map(|line| {
        let line = line.trim();
        let (count, rest) = line.split_once(' ')?;
        let count: u64 = count.replace(',', "").parse().ok()?;
        let (_, rest) = rest.split_once(')')?;
        let name = rest.trim();
        if name.starts_with("PROGRAM TOTALS") || total == 0 {
            return None;
        }
        let name = name.split(" [").next().unwrap_or(name);
        let function = name.split_once(':').map_or(name, |(_, f)| f);
        Some((count as f64 * 100.0 / total as f64, function.to_string()))
    });
    for (share, function) in lines {
        match functions.iter_mut().find(|(_, f)| *f == function) {
            Some(entry) => entry.0 += share,
            None => functions.push((share, function)),
        }
    }
    functions.sort_by(|a, b| b.0.total_cmp(&a.0));
    functions.truncate(most);
    functions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_annotations_are_read() {
        assert_eq!(
            parse_total("events: Ir\nsummary: 514600598\n"),
            Some(514_600_598)
        );
        assert_eq!(parse_total("events: Ir\ntotals: 12\n"), Some(12));
        assert_eq!(parse_total("events: Ir\n"), None);
        let annotate = "\
--------------------------------------------------------------------------------
514,600,598 (100.0%)  PROGRAM TOTALS
--------------------------------------------------------------------------------
Ir                   file:function
--------------------------------------------------------------------------------
31,432,878 ( 6.11%)  /w/worker/src/server.rs:ferrocorn_worker::server::drive [/w/target/release/ferrocorn]
26,635,097 ( 5.18%)  ./string/memmove-vec-unaligned-erms.S:__memcpy_avx_unaligned_erms [/usr/lib/libc.so.6]
13,122,510 ( 2.55%)  /w/worker/src/conn.rs:ferrocorn_worker::server::drive

--------------------------------------------------------------------------------
-- Auto-annotated source: worker/src/server.rs
--------------------------------------------------------------------------------
88,000,000 (88.70%)  => worker/src/server.rs:ferrocorn_worker::server::drive (22,003x)
";
        let top = parse_annotate(annotate, 514_600_598, 5);
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].1, "ferrocorn_worker::server::drive");
        // 6.11 % from server.rs and 2.55 % inlined from conn.rs.
        assert!((top[0].0 - 8.658).abs() < 0.01, "{}", top[0].0);
        assert_eq!(top[1].1, "__memcpy_avx_unaligned_erms");
    }
}
