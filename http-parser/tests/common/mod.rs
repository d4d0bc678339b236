//! Test support: a simulated connection that drives the parsers over any split of the input,
//! the corpus locator and the small decoders the corpus formats need.

#![allow(dead_code)]

use std::path::PathBuf;

use ferrocorn_http_parser::{
    parse_proxy_header, BodyDecoder, Error, ErrorKind, HeadParser, Limits, Policy, Progress,
    ProxyProtocol, ProxyStatus, Status,
};

/// One request as the connection saw it, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: Vec<u8>,
    pub version: (u8, u8),
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, Vec<u8>)>,
    pub keep_alive: bool,
}

/// Everything a connection produced: the requests, then the error that ended it, if any.
/// Errors compare by kind: their messages may say less on a prefix (a size "over the limit"
/// is reported as soon as it is over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub requests: Vec<Request>,
    pub error: Option<ErrorKind>,
    /// The request whose body was being read when the input ended, if any.
    pub unfinished: Option<Request>,
}

enum State {
    Proxy,
    Head,
    Body(Box<BodyDecoder>, Request),
    Closed,
}

/// A connection as a server would run it: bytes arrive in pieces, each piece is appended to
/// the buffer and the parsers are pushed as far as they go.
pub struct Connection {
    parser: HeadParser,
    progress: Progress,
    proxy: ProxyProtocol,
    buf: Vec<u8>,
    state: State,
    outcome: Outcome,
}

impl Connection {
    pub fn new(limits: Limits, policy: Policy) -> Self {
        let proxy = policy.proxy_protocol;
        Connection {
            parser: HeadParser::new(limits, policy),
            progress: Progress::default(),
            proxy,
            buf: Vec::new(),
            state: if proxy == ProxyProtocol::Off {
                State::Head
            } else {
                State::Proxy
            },
            outcome: Outcome {
                requests: Vec::new(),
                error: None,
                unfinished: None,
            },
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Closed) {
            return;
        }
        self.buf.extend_from_slice(bytes);
        self.advance(false);
    }

    /// The peer closed: finish and return what the connection produced.
    pub fn finish(mut self) -> Outcome {
        self.advance(true);
        self.outcome
    }

    fn fail(&mut self, err: Error) {
        self.outcome.error = Some(err.kind());
        self.state = State::Closed;
    }

    fn advance(&mut self, eof: bool) {
        loop {
            match std::mem::replace(&mut self.state, State::Closed) {
                State::Closed => return,
                State::Proxy => match parse_proxy_header(&self.buf, self.proxy) {
                    Err(err) => return self.fail(err),
                    Ok(ProxyStatus::Partial) => {
                        if eof {
                            // Nothing we could parse: a truncated header (or nothing at all).
                            if !self.buf.is_empty() {
                                self.fail(Error::truncated());
                            }
                            return;
                        }
                        self.state = State::Proxy;
                        return;
                    }
                    Ok(ProxyStatus::Absent) => self.state = State::Head,
                    Ok(ProxyStatus::Complete(_, n)) => {
                        self.buf.drain(..n);
                        self.state = State::Head;
                    }
                },
                State::Head => {
                    let parsed = self.parser.parse_resuming(&self.buf, &mut self.progress);
                    match parsed {
                        Err(err) => return self.fail(err),
                        Ok(Status::Partial) => {
                            if eof {
                                if !self.buf.is_empty() {
                                    self.fail(Error::truncated());
                                }
                                return;
                            }
                            self.state = State::Head;
                            return;
                        }
                        Ok(Status::Complete(head, n)) => {
                            let request = Request {
                                method: head.method().to_string(),
                                target: head.target().to_vec(),
                                version: head.version().as_tuple(),
                                headers: head
                                    .headers()
                                    .map(|h| (h.name.to_string(), h.value.to_vec()))
                                    .collect(),
                                body: Vec::new(),
                                trailers: Vec::new(),
                                keep_alive: head.keep_alive(),
                            };
                            let decoder = Box::new(head.body_decoder());
                            self.buf.drain(..n);
                            self.state = State::Body(decoder, request);
                        }
                    }
                }
                State::Body(mut decoder, mut request) => loop {
                    let step = match decoder.decode(&self.buf) {
                        Ok(step) => step,
                        Err(err) => return self.fail(err),
                    };
                    request.body.extend_from_slice(step.data);
                    let consumed = step.consumed;
                    let complete = step.complete;
                    self.buf.drain(..consumed);
                    if complete {
                        request.trailers = decoder
                            .take_trailers()
                            .into_iter()
                            .map(|t| (t.name, t.value))
                            .collect();
                        let keep_alive = request.keep_alive;
                        self.outcome.requests.push(request);
                        // RFC 9112 §9.3: after a non-persistent request nothing more is read.
                        self.state = if keep_alive {
                            State::Head
                        } else {
                            State::Closed
                        };
                        break;
                    }
                    if consumed == 0 {
                        if eof {
                            if let Err(err) = decoder.finish() {
                                self.outcome.unfinished = Some(request);
                                return self.fail(err);
                            }
                        }
                        self.state = State::Body(decoder, request);
                        return;
                    }
                },
            }
        }
    }
}

/// Runs `input` through a connection delivered in pieces cut at `cuts` (sorted offsets).
pub fn run_split(input: &[u8], cuts: &[usize], limits: Limits, policy: Policy) -> Outcome {
    let mut conn = Connection::new(limits, policy);
    let mut start = 0;
    for &cut in cuts {
        let cut = cut.clamp(start, input.len());
        conn.feed(&input[start..cut]);
        start = cut;
    }
    conn.feed(&input[start..]);
    conn.finish()
}

/// Runs `input` delivered whole.
pub fn run(input: &[u8], limits: Limits, policy: Policy) -> Outcome {
    run_split(input, &[], limits, policy)
}

/// Runs `input` delivered one byte at a time.
pub fn run_bytewise(input: &[u8], limits: Limits, policy: Policy) -> Outcome {
    let cuts: Vec<usize> = (1..input.len()).collect();
    run_split(input, &cuts, limits, policy)
}

/// A small deterministic generator (xorshift64*) for random splits.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Sorted random cut points in `0..=len`.
    pub fn cuts(&mut self, len: usize) -> Vec<usize> {
        let count = (self.next() % 8) as usize;
        let mut cuts: Vec<usize> = (0..count)
            .map(|_| (self.next() % (len as u64 + 1)) as usize)
            .collect();
        cuts.sort_unstable();
        cuts
    }
}

/// The corpus folder: `<workspace root>/../shared/corpus`, else `$FERROCORN_SHARED/corpus`.
/// `None` (after a loud message) when neither exists; under `CI=true` a missing corpus
/// fails the test instead (see [`find_corpus`]).
pub fn corpus_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let beside = root.join("..").join("..").join("shared").join("corpus");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    find_corpus(&beside, std::env::var_os("FERROCORN_SHARED"), ci)
}

/// [`corpus_dir`] with its inputs given: the folder beside the workspace, the value of
/// `$FERROCORN_SHARED` and whether this is CI. A developer without the corpus gets a skip
/// with a loud message (visible with `--nocapture`); CI, which always has it, must not pass
/// by skipping, so there it panics.
pub fn find_corpus(
    beside: &std::path::Path,
    shared: Option<std::ffi::OsString>,
    ci: bool,
) -> Option<PathBuf> {
    if beside.is_dir() {
        return Some(beside.to_path_buf());
    }
    if let Some(shared) = shared {
        let dir = PathBuf::from(shared).join("corpus");
        if dir.is_dir() {
            return Some(dir);
        }
    }
    let missing = format!(
        "corpus not found at {} nor at $FERROCORN_SHARED/corpus",
        beside.display()
    );
    assert!(!ci, "{missing} (CI=true: the corpus tests may not skip)");
    eprintln!("{}", "=".repeat(78));
    eprintln!("SKIPPED: {missing}");
    eprintln!("         set FERROCORN_SHARED=/path/to/shared to run the corpus tests");
    eprintln!("{}", "=".repeat(78));
    None
}

/// Latin-1 text (one code point per byte) to bytes.
pub fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}

/// Decodes a Python bytes-literal escape string (`\r \n \t \xNN \\ \' \"`).
pub fn unescape(s: &str) -> Vec<u8> {
    let bytes = latin1(s);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 == bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let escape = bytes[i + 1];
        i += 2;
        match escape {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'0' => out.push(0),
            b'\\' | b'\'' | b'"' => out.push(escape),
            b'x' => {
                let hex = std::str::from_utf8(&bytes[i..i + 2]).expect("\\x needs two hex digits");
                out.push(u8::from_str_radix(hex, 16).expect("\\x needs two hex digits"));
                i += 2;
            }
            other => panic!("unknown escape \\{}", other as char),
        }
    }
    out
}
