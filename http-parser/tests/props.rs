//! Property tests: limits hold for every accepted request, arbitrary bytes never panic, every
//! strict prefix of a valid request is "need more", generated requests survive
//! serialize → parse, and the fast path agrees with the reference path.

mod common;

use common::{run, run_bytewise, run_split, Request};
use ferrocorn_http_parser::{HeadParser, Limits, Policy, Status};
use proptest::prelude::*;

/// A request we generate, serialize and expect back.
#[derive(Debug, Clone)]
struct Generated {
    method: String,
    target: String,
    version: (u8, u8),
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunks: Option<Vec<usize>>,
    trailers: Vec<(String, String)>,
}

impl Generated {
    /// The bytes on the wire, and where the head ends.
    fn serialize(&self) -> (Vec<u8>, usize) {
        let mut out = format!(
            "{} {} HTTP/{}.{}\r\n",
            self.method, self.target, self.version.0, self.version.1
        )
        .into_bytes();
        for (name, value) in self.all_headers() {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        let head_len = out.len();
        match &self.chunks {
            None => out.extend_from_slice(&self.body),
            Some(sizes) => {
                let mut rest = &self.body[..];
                for &size in sizes {
                    let size = size.min(rest.len());
                    if size == 0 {
                        continue;
                    }
                    out.extend_from_slice(format!("{size:x}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..size]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[size..];
                }
                if !rest.is_empty() {
                    out.extend_from_slice(format!("{:X};ext=\"q\"\r\n", rest.len()).as_bytes());
                    out.extend_from_slice(rest);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n");
                for (name, value) in &self.trailers {
                    out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        (out, head_len)
    }

    fn all_headers(&self) -> Vec<(String, String)> {
        let mut headers = self.headers.clone();
        match &self.chunks {
            Some(_) => headers.push(("Transfer-Encoding".into(), "chunked".into())),
            None if !self.body.is_empty() => {
                headers.push(("Content-Length".into(), self.body.len().to_string()))
            }
            None => {}
        }
        headers
    }

    fn expected(&self) -> Request {
        Request {
            method: self.method.clone(),
            target: self.target.clone().into_bytes(),
            version: self.version,
            headers: self
                .all_headers()
                .into_iter()
                .map(|(n, v)| (n, v.into_bytes()))
                .collect(),
            body: self.body.clone(),
            trailers: if self.chunks.is_some() {
                self.trailers
                    .iter()
                    .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
                    .collect()
            } else {
                Vec::new()
            },
            keep_alive: self.version == (1, 1),
        }
    }
}

/// Field names that change framing or semantics are generated only where we put them.
fn plain_name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9!#$%&'*+.^`|~-]{0,20}".prop_filter("special field", |n| {
        ![
            "host",
            "content-length",
            "transfer-encoding",
            "connection",
            "expect",
            "content-type",
            "trailer",
            "te",
        ]
        .contains(&n.to_ascii_lowercase().as_str())
    })
}

/// A field value: visible ASCII and spaces inside, none at the ends.
fn value() -> impl Strategy<Value = String> {
    "([!-~]([ !-~]{0,60}[!-~])?)?"
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        "/[A-Za-z0-9/._~%!$&'()*+,;=:@-]{0,60}(\\?[A-Za-z0-9=&/?._~-]{0,30})?",
        prop::bool::ANY,
        "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        prop::collection::vec((plain_name(), value()), 0..12),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::option::of(prop::collection::vec(1usize..64, 0..6)),
        prop::collection::vec((plain_name(), value()), 0..3),
    )
        .prop_map(
            |(method, target, http11, host, mut headers, body, chunks, trailers)| {
                headers.insert(0, ("Host".to_string(), host));
                let version = if http11 { (1, 1) } else { (1, 0) };
                // Chunked framing only exists on HTTP/1.1 (RFC 9112 §6.1).
                let chunks = chunks.filter(|_| http11);
                Generated {
                    method: method.to_string(),
                    target,
                    version,
                    headers,
                    body,
                    chunks,
                    trailers,
                }
            },
        )
}

fn limits() -> impl Strategy<Value = Limits> {
    (1usize..120, 1usize..12, 1usize..120, 0u64..400).prop_map(
        |(request_line, fields, field_size, body)| Limits {
            request_line,
            fields,
            field_size,
            body,
            chunk_extensions: 64,
        },
    )
}

/// Random bytes, or a valid request with a few bytes changed, inserted or removed.
fn messy_input() -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        generated(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    )
        .prop_map(|(g, edits)| {
            let (mut bytes, _) = g.serialize();
            for (at, byte, op) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => {
                        bytes.remove(i);
                    }
                }
            }
            bytes
        });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..200), mutated]
}

fn lenient() -> Policy {
    Policy {
        permit_obsolete_folding: true,
        strip_header_spaces: true,
        permit_unconventional_http_method: true,
        ..Policy::gunicorn_compatible()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_requests_survive_serialize_then_parse(g in generated()) {
        let (bytes, _) = g.serialize();
        let outcome = run(&bytes, Limits::default(), Policy::default());
        prop_assert_eq!(outcome.error, None);
        prop_assert_eq!(outcome.requests, vec![g.expected()]);
    }

    #[test]
    fn every_strict_prefix_of_a_valid_request_is_partial(g in generated()) {
        let (bytes, head_len) = g.serialize();
        let mut parser = HeadParser::new(Limits::default(), Policy::default());
        for cut in 0..head_len {
            let status = parser.parse(&bytes[..cut]);
            prop_assert!(matches!(status, Ok(Status::Partial)), "cut {}: {:?}", cut, status);
        }
        // The body decoder, fed a strict prefix of the body, neither fails nor completes.
        let Ok(Status::Complete(head, n)) = parser.parse(&bytes) else {
            return Err(TestCaseError::fail("the whole head must parse"));
        };
        prop_assert_eq!(n, head_len);
        let decoder = head.body_decoder();
        for cut in head_len..bytes.len() {
            let mut decoder = decoder.clone();
            let mut rest = &bytes[head_len..cut];
            loop {
                let step = decoder.decode(rest);
                prop_assert!(step.is_ok(), "cut {}: {:?}", cut, step);
                let step = step.unwrap();
                prop_assert!(!step.complete, "complete at cut {}", cut);
                rest = &rest[step.consumed..];
                if step.consumed == 0 {
                    break;
                }
            }
        }
    }

    #[test]
    fn no_accepted_request_breaks_a_limit(g in generated(), limits in limits()) {
        let (bytes, _) = g.serialize();
        let outcome = run(&bytes, limits, Policy::default());
        for request in &outcome.requests {
            let line = format!("{} ", request.method).len() + request.target.len() + 9;
            prop_assert!(line <= limits.request_line, "request line {} > {}", line, limits.request_line);
            prop_assert!(request.headers.len() <= limits.fields);
            for (name, value) in request.headers.iter().chain(&request.trailers) {
                let size = name.len() + 2 + value.len() + 2;
                prop_assert!(size <= limits.field_size, "field {} > {}", size, limits.field_size);
            }
            prop_assert!(limits.body == 0 || request.body.len() as u64 <= limits.body);
        }
        if let Some(kind) = outcome.error {
            prop_assert!(matches!(kind.status(), 413 | 414 | 431), "{:?}", kind);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_splits_agree(
        bytes in messy_input(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        lenient_policy in prop::bool::ANY,
    ) {
        let policy = if lenient_policy { lenient() } else { Policy::default() };
        let whole = run(&bytes, Limits::default(), policy);
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(&run_split(&bytes, &cuts, Limits::default(), policy), &whole);
        prop_assert_eq!(&run_bytewise(&bytes, Limits::default(), policy), &whole);
    }

    #[test]
    fn fast_path_agrees_with_reference_path(bytes in messy_input(), lenient_policy in prop::bool::ANY) {
        let policy = if lenient_policy { lenient() } else { Policy::default() };
        let mut fast = HeadParser::new(Limits::default(), policy);
        let mut reference = HeadParser::new(Limits::default(), policy);
        reference.set_fast_path(false);
        let describe = |parsed: Result<Status<ferrocorn_http_parser::Head<'_>>, ferrocorn_http_parser::Error>| {
            match parsed {
                Err(err) => format!("error {:?}", err.kind()),
                Ok(Status::Partial) => "partial".to_string(),
                Ok(Status::Complete(head, n)) => format!(
                    "{} {:?} {:?} {:?} {:?} {} {} {:?} {n}",
                    head.method(),
                    head.target(),
                    head.version(),
                    head.headers().collect::<Vec<_>>(),
                    head.framing(),
                    head.keep_alive(),
                    head.expects_continue(),
                    head.host(),
                ),
            }
        };
        prop_assert_eq!(describe(fast.parse(&bytes)), describe(reference.parse(&bytes)));
    }
}
