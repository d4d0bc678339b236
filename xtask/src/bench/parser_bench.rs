//! The parser's speed against raw httparse, three ways: the criterion bench (briefly; each
//! `httparse` measurement paired with ours), the `parse_alternate` example (both timed in short
//! alternating rounds, so that load drift on a shared machine cancels: the target is judged
//! on its medians), and, where valgrind is installed, the `parse_loop` example's instructions
//! per parse under callgrind (load-independent).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The arguments after `cargo`: a short warm-up and measurement keep the run near a minute.
pub const CARGO_ARGS: [&str; 10] = [
    "bench",
    "-p",
    "ferrocorn-http-parser",
    "--bench",
    "parse",
    "--",
    "--warm-up-time",
    "1",
    "--measurement-time",
    "2",
];

/// One criterion benchmark: its id and the middle of its time estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub id: String,
    pub time: Duration,
}

/// A benchmark of ours beside the raw httparse one on the same input.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub ours: Measurement,
    pub httparse: Measurement,
}

impl Pair {
    /// httparse's time over ours: 1.0 is as fast as httparse, above is faster.
    pub fn ratio(&self) -> f64 {
        self.httparse.time.as_secs_f64() / self.ours.time.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// What the parser bench yielded.
#[derive(Debug, Clone, Default)]
pub struct ParserResult {
    pub measurements: Vec<Measurement>,
    pub pairs: Vec<Pair>,
    /// The medians of `parse_alternate`, one per request; empty if it could not run.
    pub alternating: Vec<Alternating>,
    /// Instructions per parse, one per request; empty without valgrind.
    pub instructions: Vec<Instructions>,
    /// Why a part did not run.
    pub notes: Vec<String>,
}

/// Rounds of `parse_alternate` (odd, so the median is one round's ratio).
pub const ALTERNATE_ROUNDS: usize = 31;

/// Parses per side under callgrind.
const CALLGRIND_PARSES: u64 = 10_000;

/// One request timed by `parse_alternate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Alternating {
    pub request: String,
    pub rounds: usize,
    /// The median of the rounds' ratios (httparse's time over ours).
    pub median_ratio: f64,
    /// The lowest and highest round ratio.
    pub range: (f64, f64),
    /// The median nanoseconds per parse of each side.
    pub httparse_ns: f64,
    pub ours_ns: f64,
}

/// Instructions per parse of one request, counted by callgrind.
#[derive(Debug, Clone, PartialEq)]
pub struct Instructions {
    pub request: String,
    pub httparse: f64,
    pub ours: f64,
}

impl Instructions {
    /// httparse's count over ours: the throughput ratio if time followed instructions.
    pub fn ratio(&self) -> f64 {
        self.httparse / self.ours.max(f64::MIN_POSITIVE)
    }
}

/// The commands this part runs, for the report.
pub fn commands() -> Vec<String> {
    vec![
        format!("cargo {}", CARGO_ARGS.join(" ")),
        format!(
            "cargo build --release -p ferrocorn-http-parser --example parse_alternate --example parse_loop && \
             target/release/examples/parse_alternate {ALTERNATE_ROUNDS}"
        ),
        format!(
            "valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect='parse_loop::parse_*' \
             target/release/examples/parse_loop {{httparse|ferrocorn}} {{browser|minimal}} {CALLGRIND_PARSES}   # Collected / {CALLGRIND_PARSES}"
        ),
    ]
}

/// Runs all three parts; `cargo` makes a `cargo` command in the project root.
pub fn run(cargo: fn() -> Command, root: &Path) -> Result<ParserResult> {
    let mut result = criterion(cargo())?;
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "-p",
        "ferrocorn-http-parser",
        "--example",
        "parse_alternate",
        "--example",
        "parse_loop",
    ]);
    eprintln!("xtask: running {build:?}");
    match build.status() {
        Ok(status) if status.success() => {}
        other => {
            result
                .notes
                .push(format!("the parser examples did not build: {other:?}"));
            return Ok(result);
        }
    }
    let examples = target_dir(root).join("release").join("examples");
    match alternate(&examples.join("parse_alternate")) {
        Ok(alternating) => result.alternating = alternating,
        Err(err) => result
            .notes
            .push(format!("parse_alternate failed: {err:#}")),
    }
    if super::servers::which("valgrind").is_none() {
        result
            .notes
            .push("instructions not counted: valgrind is not installed".to_string());
    } else {
        match count_instructions(&examples.join("parse_loop")) {
            Ok(counts) => result.instructions = counts,
            Err(err) => result
                .notes
                .push(format!("instructions not counted: {err:#}")),
        }
    }
    Ok(result)
}

/// Where cargo puts build output.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Runs `parse_alternate` and reads its rounds.
fn alternate(binary: &Path) -> Result<Vec<Alternating>> {
    eprintln!("xtask: running {} {ALTERNATE_ROUNDS}", binary.display());
    let output = Command::new(binary)
        .arg(ALTERNATE_ROUNDS.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start {}", binary.display()))?;
    if !output.status.success() {
        bail!("{} exited with {}", binary.display(), output.status);
    }
    let alternating = parse_alternate_output(&String::from_utf8_lossy(&output.stdout));
    if alternating.is_empty() {
        bail!("{} printed no round", binary.display());
    }
    Ok(alternating)
}

/// Reads `round REQUEST INDEX HTTPARSE_NS OURS_NS` lines into one [`Alternating`] per
/// request, in first-seen order.
pub fn parse_alternate_output(stdout: &str) -> Vec<Alternating> {
    let mut rounds: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let ["round", request, _, theirs, ours] = fields[..] else {
            continue;
        };
        let (Ok(theirs), Ok(ours)) = (theirs.parse::<f64>(), ours.parse::<f64>()) else {
            continue;
        };
        if !(theirs > 0.0 && ours > 0.0) {
            continue;
        }
        match rounds.iter_mut().find(|(r, _)| r == request) {
            Some((_, times)) => times.push((theirs, ours)),
            None => rounds.push((request.to_string(), vec![(theirs, ours)])),
        }
    }
    rounds
        .into_iter()
        .map(|(request, times)| {
            let mut ratios: Vec<f64> = times.iter().map(|(t, o)| t / o).collect();
            ratios.sort_by(f64::total_cmp);
            let median = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            Alternating {
                rounds: times.len(),
                median_ratio: ratios[ratios.len() / 2],
                range: (ratios[0], ratios[ratios.len() - 1]),
                httparse_ns: median(times.iter().map(|t| t.0).collect()),
                ours_ns: median(times.iter().map(|t| t.1).collect()),
                request,
            }
        })
        .collect()
}

/// Instructions per parse of each side on each request, under callgrind.
fn count_instructions(binary: &Path) -> Result<Vec<Instructions>> {
    let mut counts = Vec::new();
    for request in ["browser", "minimal"] {
        let mut per_parser = [0.0; 2];
        for (i, parser) in ["httparse", "ferrocorn"].into_iter().enumerate() {
            let output = Command::new("valgrind")
                .args([
                    "--tool=callgrind",
                    "--callgrind-out-file=/dev/null",
                    "--toggle-collect=parse_loop::parse_*",
                ])
                .arg(binary)
                .args([parser, request, &CALLGRIND_PARSES.to_string()])
                .stdin(Stdio::null())
                .output()
                .context("could not start valgrind")?;
            let stderr = String::from_utf8_lossy(&output.stderr);
            if !output.status.success() {
                bail!("callgrind on parse_loop {parser} {request} failed: {stderr}");
            }
            let collected = collected_instructions(&stderr)
                .with_context(|| format!("no \"Collected\" line from callgrind: {stderr}"))?;
            per_parser[i] = collected as f64 / CALLGRIND_PARSES as f64;
        }
        counts.push(Instructions {
            request: request.to_string(),
            httparse: per_parser[0],
            ours: per_parser[1],
        });
    }
    Ok(counts)
}

/// The total from callgrind's `==PID== Collected : N` line.
pub fn collected_instructions(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|line| {
        let (_, rest) = line.split_once("Collected :")?;
        rest.trim().parse().ok()
    })
}

/// Runs the criterion bench with `cargo` and reads its output.
fn criterion(mut cargo: Command) -> Result<ParserResult> {
    cargo
        .args(CARGO_ARGS)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    eprintln!("xtask: running {cargo:?}");
    let output = cargo.output().context("could not start cargo bench")?;
    if !output.status.success() {
        bail!(
            "cargo bench -p ferrocorn-http-parser failed with {}",
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let measurements = parse_criterion(&stdout);
    if measurements.is_empty() {
        bail!("the parser bench printed no criterion result (is http-parser/benches/parse.rs written?)");
    }
    let pairs = pair_with_httparse(&measurements);
    Ok(ParserResult {
        measurements,
        pairs,
        ..ParserResult::default()
    })
}

/// Reads `id  time: [low mid high]` results out of criterion's output; the id may stand
/// alone on the line before when it is long.
pub fn parse_criterion(stdout: &str) -> Vec<Measurement> {
    let mut results = Vec::new();
    let mut last_id: Option<String> = None;
    for line in stdout.lines() {
        let (before, after) = match line.split_once("time:") {
            Some(parts) => parts,
            None => {
                let trimmed = line.trim();
                let is_id = !line.starts_with(char::is_whitespace)
                    && !trimmed.is_empty()
                    && !trimmed.contains(' ')
                    && !trimmed.ends_with(':');
                if is_id {
                    last_id = Some(trimmed.to_string());
                }
                continue;
            }
        };
        let id = match before.trim() {
            "" => last_id.take(),
            id => Some(id.to_string()),
        };
        let Some(id) = id else { continue };
        let inside = after.trim().trim_start_matches('[').trim_end_matches(']');
        let parts: Vec<&str> = inside.split_whitespace().collect();
        // [low unit mid unit high unit]
        if parts.len() == 6 {
            if let Some(time) = to_duration(parts[2], parts[3]) {
                results.push(Measurement { id, time });
            }
        }
    }
    results
}

fn to_duration(value: &str, unit: &str) -> Option<Duration> {
    let value: f64 = value.parse().ok()?;
    let nanos = match unit {
        "ps" => value / 1000.0,
        "ns" => value,
        "µs" | "us" => value * 1e3,
        "ms" => value * 1e6,
        "s" => value * 1e9,
        _ => return None,
    };
    (nanos.is_finite() && nanos >= 0.0).then(|| Duration::from_secs_f64(nanos / 1e9))
}

/// Pairs every measurement with an id segment naming httparse with the measurement whose
/// id differs only in that segment.
pub fn pair_with_httparse(measurements: &[Measurement]) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for raw in measurements {
        let segments: Vec<&str> = raw.id.split('/').collect();
        let Some(at) = segments.iter().position(|s| s.contains("httparse")) else {
            continue;
        };
        let ours = measurements.iter().find(|m| {
            let other: Vec<&str> = m.id.split('/').collect();
            other.len() == segments.len()
                && !other[at].contains("httparse")
                && other
                    .iter()
                    .zip(&segments)
                    .enumerate()
                    .all(|(i, (a, b))| i == at || a == b)
        });
        if let Some(ours) = ours {
            pairs.push(Pair {
                ours: ours.clone(),
                httparse: raw.clone(),
            });
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
Gnuplot not found, using plotters backend
parse/httparse/small    time:   [100.00 ns 110.00 ns 120.00 ns]
                        thrpt:  [1.0 GiB/s 1.1 GiB/s 1.2 GiB/s]
parse/ferrocorn/small   time:   [120.00 ns 125.00 ns 130.00 ns]
parse/httparse/a_long_request_with_many_headers
                        time:   [1.0000 µs 1.1000 µs 1.2000 µs]
                        change: [-1.0% +0.5% +2.0%] (p = 0.50 > 0.05)
parse/ferrocorn/a_long_request_with_many_headers
                        time:   [2.0000 µs 2.2000 µs 2.4000 µs]
other/thing             time:   [1.0 ms 2.0 ms 3.0 ms]
";

    #[test]
    fn criterion_lines_and_long_ids() {
        let m = parse_criterion(OUTPUT);
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].id, "parse/httparse/small");
        assert_eq!(m[0].time, Duration::from_nanos(110));
        assert_eq!(m[3].id, "parse/ferrocorn/a_long_request_with_many_headers");
        assert_eq!(m[3].time, Duration::from_nanos(2200));
        assert_eq!(m[4].time, Duration::from_millis(2));
    }

    #[test]
    fn real_criterion_output_with_outlier_lines() {
        let output = "\
browser_get/httparse    time:   [560.21 ns 602.79 ns 645.38 ns]
                        thrpt:  [1.0924 GiB/s 1.1696 GiB/s 1.2585 GiB/s]
Found 3 outliers among 100 measurements (3.00%)
  1 (1.00%) high mild
  2 (2.00%) high severe
browser_get/ferrocorn   time:   [940.65 ns 1.0468 µs 1.1580 µs]
                        thrpt:  [623.41 MiB/s 689.63 MiB/s 767.48 MiB/s]
";
        let pairs = pair_with_httparse(&parse_criterion(output));
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].ours.time, Duration::from_nanos(1047));
        assert!((pairs[0].ratio() - 602.79 / 1046.8).abs() < 1e-3);
    }

    #[test]
    fn alternate_rounds_give_median_ratios_per_request() {
        let output = "\
round browser 0 300.00 400.00
round browser 1 330.00 300.00
round browser 2 310.00 310.00
round minimal 0 30.00 40.00
noise line
median browser 1.000
round minimal 1 x 40.00
";
        let got = parse_alternate_output(output);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].request, "browser");
        assert_eq!(got[0].rounds, 3);
        assert!((got[0].median_ratio - 1.0).abs() < 1e-9);
        assert!((got[0].range.0 - 0.75).abs() < 1e-9);
        assert!((got[0].range.1 - 1.1).abs() < 1e-9);
        assert!((got[0].httparse_ns - 310.0).abs() < 1e-9);
        assert!((got[0].ours_ns - 310.0).abs() < 1e-9);
        assert_eq!(got[1].rounds, 1, "the malformed round is skipped");
        assert!((got[1].median_ratio - 0.75).abs() < 1e-9);
    }

    #[test]
    fn callgrind_collected_line() {
        let stderr = "==123== Events    : Ir\n==123== Collected : 6381363\n==123==\n";
        assert_eq!(collected_instructions(stderr), Some(6_381_363));
        assert_eq!(collected_instructions("nothing"), None);
    }

    #[test]
    fn pairs_differ_only_in_the_httparse_segment() {
        let pairs = pair_with_httparse(&parse_criterion(OUTPUT));
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].ours.id, "parse/ferrocorn/small");
        assert!((pairs[0].ratio() - 0.88).abs() < 1e-9);
        assert!((pairs[1].ratio() - 0.5).abs() < 1e-9);
    }
}
