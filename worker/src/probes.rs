//! The HTTP side of the metrics endpoint (`metrics_bind`): `GET /metrics` (Prometheus text
//! format 0.0.4), `GET /healthz` and `GET /readyz`, answered from a [`Probes`] source. It
//! runs in a small process of its own beside the workers (the arbiter starts it), so that it
//! answers while every worker is busy or hung and never holds up the arbiter.
//!
//! One `mio` loop; a connection gets one response, then is closed. Nothing waits on a
//! client: a connection that has not sent its request within [`REQUEST_TIMEOUT`], or has not
//! taken its response by then, is dropped, and at most [`MAX_CONNECTIONS`] are open.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::app::{Peer, Request};
use crate::http1::Stream;
use crate::proto::{HeadOutcome, Parser};
use crate::server::listener::MioListener;
use crate::{Listener, Settings, WorkerExit};

/// How long a client has to send its request and take the response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 64;
/// The largest request head read.
const MAX_HEAD: usize = 8 * 1024;
const LISTENER: Token = Token(usize::MAX);
/// The content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the endpoint reports.
pub trait Probes {
    /// Appends every metric in the Prometheus text exposition format 0.0.4.
    fn metrics(&self, out: &mut Vec<u8>);
    /// `/healthz`: whether the server's supervisor is alive.
    fn healthy(&self) -> bool;
    /// `/readyz`: whether the server takes requests (some worker serves, no stop begun).
    fn ready(&self) -> bool;
    /// Called about once a second and after every response: false ends [`serve_probes`]
    /// (the process serving them should go).
    fn keep_going(&self) -> bool {
        true
    }
}

struct Client {
    stream: Stream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    since: Instant,
}

/// Serves `probes` on `listener` until [`Probes::keep_going`] says no, or the loop fails.
pub fn serve_probes(listener: Listener, probes: &dyn Probes) -> WorkerExit {
    match ProbeServer::new(listener) {
        Ok(mut server) => server.run(probes),
        Err(e) => WorkerExit::Failed(format!("cannot serve the metrics endpoint: {e}")),
    }
}

struct ProbeServer {
    poll: Poll,
    listener: MioListener,
    listening: bool,
    clients: Vec<Option<Client>>,
    parser: Parser,
    request: Request,
}

impl ProbeServer {
    fn new(listener: Listener) -> io::Result<ProbeServer> {
        let poll = Poll::new()?;
        let listener = MioListener::from_std(listener)?;
        Ok(ProbeServer {
            poll,
            listener,
            listening: false,
            clients: Vec::new(),
            parser: Parser::from_settings(&Settings::default()),
            request: Request::new(Peer::Unix, None, false),
        })
    }

    fn run(&mut self, probes: &dyn Probes) -> WorkerExit {
        let mut events = Events::with_capacity(64);
        loop {
            self.listen(self.open() < MAX_CONNECTIONS);
            if let Err(e) = self.poll.poll(&mut events, Some(Duration::from_secs(1))) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return WorkerExit::Failed(format!("metrics endpoint: poll failed: {e}"));
                }
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    Token(i) => self.drive(i, probes),
                }
            }
            let now = Instant::now();
            for slot in &mut self.clients {
                if slot
                    .as_ref()
                    .is_some_and(|c| now - c.since > REQUEST_TIMEOUT)
                {
                    *slot = None;
                }
            }
            if !probes.keep_going() {
                return WorkerExit::ParentGone;
            }
        }
    }

    fn open(&self) -> usize {
        self.clients.iter().flatten().count()
    }

    fn listen(&mut self, on: bool) {
        if on == self.listening {
            return;
        }
        let registry = self.poll.registry();
        let result = if on {
            registry.register(self.listener.source(), LISTENER, Interest::READABLE)
        } else {
            registry.deregister(self.listener.source())
        };
        if let Err(e) = result {
            tracing::error!("metrics endpoint: cannot change the listener's registration: {e}");
        }
        self.listening = on;
    }

    fn accept(&mut self) {
        while self.open() < MAX_CONNECTIONS {
            let mut stream = match self.listener.accept() {
                Ok((stream, _, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    tracing::warn!("metrics endpoint: accept failed: {e}");
                    return;
                }
            };
            let index = match self.clients.iter().position(Option::is_none) {
                Some(index) => index,
                None => {
                    self.clients.push(None);
                    self.clients.len() - 1
                }
            };
            let registered = self.poll.registry().register(
                &mut stream,
                Token(index),
                Interest::READABLE | Interest::WRITABLE,
            );
            if registered.is_ok() {
                self.clients[index] = Some(Client {
                    stream,
                    input: Vec::new(),
                    output: Vec::new(),
                    written: 0,
                    since: Instant::now(),
                });
            }
        }
        // Full: the listener is deregistered until a connection ends (edge-triggered, so
        // what waits in the queue is reported again when it is registered again).
        self.listen(false);
    }

    /// Reads the request, answers it, writes the answer; drops the connection when done.
    fn drive(&mut self, index: usize, probes: &dyn Probes) {
        let Some(Some(client)) = self.clients.get_mut(index) else {
            return;
        };
        let keep = if client.output.is_empty() {
            match read_request(client, &mut self.parser, &mut self.request) {
                Ok(Some(status)) => {
                    respond(&self.request, status, probes, &mut client.output);
                    write_out(client)
                }
                Ok(None) => true,
                Err(_) => false,
            }
        } else {
            write_out(client)
        };
        if !keep {
            self.clients[index] = None;
        }
    }
}

/// Reads what has come; `Some(0)` once a whole head is in `request`, `Some(status)` for a
/// request to refuse with `status`, `None` while it is incomplete. Fails at EOF or on a
/// read error.
fn read_request(
    client: &mut Client,
    parser: &mut Parser,
    request: &mut Request,
) -> io::Result<Option<u16>> {
    let mut buf = [0; 4096];
    loop {
        match client.stream.read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => client.input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if client.input.len() > MAX_HEAD {
            return Ok(Some(431));
        }
    }
    let mut progress = Default::default();
    Ok(
        match parser.parse_head(&client.input, false, &mut progress, request) {
            HeadOutcome::Partial => None,
            HeadOutcome::Complete(_) => Some(0),
            HeadOutcome::Error(e) => Some(e.status),
        },
    )
}

/// The answer to `request` (or the refusal `status`, when not 0), with `Connection: close`.
fn respond(request: &Request, status: u16, probes: &dyn Probes, out: &mut Vec<u8>) {
    let mut body = Vec::new();
    let head_only = request.is_head();
    let (status, content_type, allow) = if status != 0 {
        body.extend_from_slice(b"bad request\n");
        (status, "text/plain; charset=utf-8", false)
    } else {
        let known = matches!(request.path(), "/metrics" | "/healthz" | "/readyz");
        let method_ok = matches!(request.method(), "GET" | "HEAD");
        match request.path() {
            _ if !known => {
                body.extend_from_slice(
                    b"not found: /metrics, /healthz and /readyz are served here\n",
                );
                (404, "text/plain; charset=utf-8", false)
            }
            _ if !method_ok => {
                body.extend_from_slice(b"method not allowed\n");
                (405, "text/plain; charset=utf-8", true)
            }
            "/metrics" => {
                probes.metrics(&mut body);
                (200, METRICS_CONTENT_TYPE, false)
            }
            "/healthz" => up_or_down(probes.healthy(), "alive", "not alive", &mut body),
            _ => up_or_down(probes.ready(), "ready", "not ready", &mut body),
        }
    };
    let reason = crate::reason_phrase(status);
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n",
        body.len()
    );
    if allow {
        out.extend_from_slice(b"Allow: GET, HEAD\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&body);
    }
}

fn up_or_down(up: bool, yes: &str, no: &str, body: &mut Vec<u8>) -> (u16, &'static str, bool) {
    body.extend_from_slice(if up { yes } else { no }.as_bytes());
    body.push(b'\n');
    (
        if up { 200 } else { 503 },
        "text/plain; charset=utf-8",
        false,
    )
}

/// Writes what the socket takes; false once everything is written (the connection is then
/// closed) or the client is gone.
fn write_out(client: &mut Client) -> bool {
    while client.written < client.output.len() {
        match client.stream.write(&client.output[client.written..]) {
            Ok(0) => return false,
            Ok(n) => client.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    client.stream.shutdown_write();
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed {
        ready: bool,
    }

    impl Probes for Fixed {
        fn metrics(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(b"# TYPE up gauge\nup 1\n");
        }
        fn healthy(&self) -> bool {
            true
        }
        fn ready(&self) -> bool {
            self.ready
        }
    }

    fn answer(raw: &str, ready: bool) -> String {
        let mut parser = Parser::from_settings(&Settings::default());
        let mut request = Request::new(Peer::Unix, None, false);
        let mut progress = Default::default();
        let status = match parser.parse_head(raw.as_bytes(), false, &mut progress, &mut request) {
            HeadOutcome::Complete(_) => 0,
            HeadOutcome::Error(e) => e.status,
            HeadOutcome::Partial => panic!("partial: {raw:?}"),
        };
        let mut out = Vec::new();
        respond(&request, status, &Fixed { ready }, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_path_gets_its_answer() {
        let metrics = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", true);
        assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
        assert!(metrics.contains(METRICS_CONTENT_TYPE), "{metrics}");
        assert!(
            metrics.ends_with("\r\n\r\n# TYPE up gauge\nup 1\n"),
            "{metrics}"
        );
        let ready = answer("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", true);
        assert!(ready.starts_with("HTTP/1.1 200 OK\r\n"), "{ready}");
        let not_ready = answer("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", false);
        assert!(not_ready.starts_with("HTTP/1.1 503 "), "{not_ready}");
        let health = answer("GET /healthz?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", false);
        assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
        let head = answer("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", true);
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        let missing = answer("GET /other HTTP/1.1\r\nHost: x\r\n\r\n", true);
        assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
        let post = answer("POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", true);
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        assert!(post.contains("Allow: GET, HEAD\r\n"), "{post}");
        let bad = answer("GET /metrics HTTP/1.1\r\n\r\n", true);
        assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    }
}
