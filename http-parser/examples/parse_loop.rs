//! `parse_loop`: parses one of the bench's two requests (or the one `wrk` sends in the server
//! benchmark) N times with raw httparse or with our parser, doing per parse exactly what
//! `benches/parse.rs` does, so that an instruction count (deterministic, unlike wall-clock time
//! on a shared machine) can back the bench's ratios.
//!
//! ```sh
//! cargo build --release -p ferrocorn-http-parser --example parse_loop
//! for p in httparse ferrocorn; do for r in browser minimal wrk; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     --toggle-collect='parse_loop::parse_*' target/release/examples/parse_loop $p $r 10000 \
//!     2>&1 | grep Collected
//! done; done
//! ```
//!
//! `Collected` is the instructions spent inside the loop; divided by the count (10000) it is
//! the cost of one parse.

#[path = "../benches/common/requests.rs"]
mod requests;

use ferrocorn_http_parser::{HeadParser, Limits, Policy};
use requests::{ferrocorn_once, httparse_once, BROWSER_GET, MINIMAL_GET};
use std::process::ExitCode;

const USAGE: &str = "usage: parse_loop httparse|ferrocorn browser|minimal|wrk COUNT";

/// The request `wrk` sends in the server benchmark (`cargo xtask bench`), which the worker
/// parses once per request. Not in the criterion bench, whose pair the parser's issue fixes.
const WRK_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [parser, request, count] = &args[..] else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let input = match request.as_str() {
        "browser" => BROWSER_GET,
        "minimal" => MINIMAL_GET,
        "wrk" => WRK_GET,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let Ok(count) = count.parse::<u64>() else {
        eprintln!("parse_loop: COUNT must be a number, got {count:?}");
        return ExitCode::FAILURE;
    };
    let parsed = match parser.as_str() {
        "httparse" => parse_httparse(input, count),
        "ferrocorn" => parse_ferrocorn(input, count),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    if parsed != count {
        eprintln!("parse_loop: {parser} accepted {parsed} of {count} parses");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The bench's httparse side: a `[EMPTY_HEADER; 100]` built once, one `Request` per parse.
#[inline(never)]
fn parse_httparse(input: &[u8], count: u64) -> u64 {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut parsed = 0;
    for _ in 0..count {
        parsed += u64::from(httparse_once(&mut headers, input));
    }
    parsed
}

/// The bench's ferrocorn side: one parser with the default limits and policy, reused.
#[inline(never)]
fn parse_ferrocorn(input: &[u8], count: u64) -> u64 {
    let mut parser = HeadParser::new(Limits::default(), Policy::default());
    let mut parsed = 0;
    for _ in 0..count {
        parsed += u64::from(ferrocorn_once(&mut parser, input));
    }
    parsed
}
