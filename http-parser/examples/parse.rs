//! `parse`: the crate used alone. Reads one raw request (head and body) on standard input and
//! prints `ok` and the request as one JSON line, or `error <status> <reason>`.
//!
//! ```sh
//! cargo run -p ferrocorn-http-parser --example parse -- [--limit-request-line N] \
//!     [--limit-request-fields N] [--limit-request-field-size N] [--limit-request-body N] < request.bin
//! ```
//!
//! Input that ends before the request is complete is `error 400 Bad Request` (truncated). Bytes
//! of the target, header values and body are printed as latin-1 code points, one per byte. The
//! error's detail goes to standard error.

use std::io::{Read, Write};
use std::process::ExitCode;

use ferrocorn_http_parser::{Error, Framing, HeadParser, Limits, Policy, Status};
use serde_json::{json, Value};

const USAGE: &str = "usage: parse [--limit-request-line N] [--limit-request-fields N] \
                     [--limit-request-field-size N] [--limit-request-body N] < request.bin";

fn main() -> ExitCode {
    let limits = match parse_args(std::env::args().skip(1)) {
        Ok(Some(limits)) => limits,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("parse: {message}");
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut input = Vec::new();
    if let Err(err) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("parse: cannot read standard input: {err}");
        return ExitCode::from(2);
    }
    let mut out = std::io::stdout().lock();
    let written = match parse_request(&input, limits) {
        Ok(request) => writeln!(out, "ok\n{request}"),
        Err(err) => {
            eprintln!("parse: {err}");
            writeln!(out, "error {} {}", err.status(), err.reason())
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(2),
    }
}

/// The limits the arguments ask for, or `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Limits>, String> {
    let mut limits = Limits::default();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let known = [
            "--limit-request-line",
            "--limit-request-fields",
            "--limit-request-field-size",
            "--limit-request-body",
        ];
        if !known.contains(&flag.as_str()) {
            return Err(format!("unknown option {flag:?}"));
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: {value:?} is not a number"))?;
        let size = usize::try_from(number).map_err(|_| format!("{flag}: {number} is too large"))?;
        match flag.as_str() {
            "--limit-request-line" => limits.request_line = size,
            "--limit-request-fields" => limits.fields = size,
            "--limit-request-field-size" => limits.field_size = size,
            _ => limits.body = number,
        }
    }
    Ok(Some(limits))
}

/// Bytes as a string of latin-1 code points.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn parse_request(input: &[u8], limits: Limits) -> Result<Value, Error> {
    let mut parser = HeadParser::new(limits, Policy::default());
    let (mut request, mut decoder, consumed) = match parser.parse(input)? {
        Status::Partial => return Err(Error::truncated()),
        Status::Complete(head, consumed) => {
            let headers: Vec<Value> = head
                .headers()
                .map(|h| json!([h.name, latin1(h.value)]))
                .collect();
            let framing = match head.framing() {
                Framing::None => json!("none"),
                Framing::Length(n) => json!({ "length": n }),
                Framing::Chunked => json!("chunked"),
            };
            let request = json!({
                "method": head.method(),
                "target": latin1(head.target()),
                "version": head.version().as_str(),
                "headers": headers,
                "framing": framing,
                "keep_alive": head.keep_alive(),
                "expects_continue": head.expects_continue(),
            });
            (request, head.body_decoder(), consumed)
        }
    };
    let mut rest = &input[consumed..];
    let mut body = Vec::new();
    loop {
        let step = decoder.decode(rest)?;
        body.extend_from_slice(step.data);
        rest = &rest[step.consumed..];
        if step.complete {
            break;
        }
        if step.consumed == 0 {
            decoder.finish()?;
        }
    }
    let trailers: Vec<Value> = decoder
        .trailers()
        .iter()
        .map(|t| json!([t.name, latin1(&t.value)]))
        .collect();
    request["body"] = json!(latin1(&body));
    request["trailers"] = json!(trailers);
    Ok(request)
}
