//! `parse_alternate`: times raw httparse and our parser on the bench's two requests in short
//! alternating rounds, so that both sides of each ratio see the same machine load.
//!
//! On a shared machine the load drifts over seconds; criterion measures one function for
//! seconds and then the other, so a drift between the two shows up as a false ratio. Here a
//! round times a few milliseconds of httparse and a few of ours back to back (which goes first
//! alternates), and the median of the per-round ratios is robust to the drift.
//!
//! ```sh
//! cargo run --release -p ferrocorn-http-parser --example parse_alternate -- 31
//! ```
//!
//! Prints one line per round, `round REQUEST INDEX HTTPARSE_NS OURS_NS` (nanoseconds per parse),
//! then `median REQUEST RATIO` (httparse's time over ours: 1.0 is as fast as httparse).
//! `cargo xtask bench` runs it and reports the medians.

#[path = "../benches/common/requests.rs"]
mod requests;

use ferrocorn_http_parser::{HeadParser, Limits, Policy};
use requests::{ferrocorn_once, httparse_once, BROWSER_GET, MINIMAL_GET};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: parse_alternate ROUNDS (1 to 1001)";

/// How long one side of a round should take: long enough that the clock's cost and
/// resolution vanish, short enough that the load rarely changes within a round.
const SIDE_NANOS: f64 = 3e6;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds = match args.as_slice() {
        [n] => match n.parse::<usize>() {
            Ok(n) if (1..=1001).contains(&n) => n,
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    for (name, input) in [("browser", BROWSER_GET), ("minimal", MINIMAL_GET)] {
        let mut headers = [httparse::EMPTY_HEADER; 100];
        let mut parser = HeadParser::new(Limits::default(), Policy::default());
        // Warm up both and size a side to about SIDE_NANOS.
        let warm = 10_000;
        let took = time(warm, || httparse_once(&mut headers, input))
            .min(time(warm, || ferrocorn_once(&mut parser, input)));
        let count = ((SIDE_NANOS / took.max(1.0)) as u64).clamp(1_000, 10_000_000);
        let mut ratios = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let (theirs, ours) = if round % 2 == 0 {
                let theirs = time(count, || httparse_once(&mut headers, input));
                (theirs, time(count, || ferrocorn_once(&mut parser, input)))
            } else {
                let ours = time(count, || ferrocorn_once(&mut parser, input));
                (time(count, || httparse_once(&mut headers, input)), ours)
            };
            println!("round {name} {round} {theirs:.2} {ours:.2}");
            ratios.push(theirs / ours);
        }
        ratios.sort_by(f64::total_cmp);
        println!("median {name} {:.3}", ratios[ratios.len() / 2]);
    }
    ExitCode::SUCCESS
}

/// Nanoseconds per call of `parse`, over `count` calls; panics if a parse fails (the
/// requests are valid, so a failure is a bug to see at once).
fn time(count: u64, mut parse: impl FnMut() -> bool) -> f64 {
    let start = Instant::now();
    for _ in 0..count {
        assert!(parse(), "a bench request did not parse");
    }
    start.elapsed().as_nanos() as f64 / count as f64
}
