//! Runs the http-parser criterion bench briefly and pairs each `httparse` measurement with
//! ours, so that the report can give the ratio.

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
}

/// Runs the bench with `cargo` and reads its output.
pub fn run(mut cargo: Command) -> Result<ParserResult> {
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
    fn pairs_differ_only_in_the_httparse_segment() {
        let pairs = pair_with_httparse(&parse_criterion(OUTPUT));
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].ours.id, "parse/ferrocorn/small");
        assert!((pairs[0].ratio() - 0.88).abs() < 1e-9);
        assert!((pairs[1].ratio() - 0.5).abs() < 1e-9);
    }
}
