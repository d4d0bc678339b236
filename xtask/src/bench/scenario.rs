//! The bench's scenarios: what is requested, how, over how many connections; and the
//! figures one load run yields.

use std::time::Duration;

/// Which application a scenario needs the server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppKind {
    /// `Hello, World!\n` as text/plain.
    Hello,
    /// Files from a directory (the 1 MiB file).
    Static,
    /// The request echoed back as JSON.
    Echo,
    /// A Python WSGI function returning one bytes object, `Hello, World!\n` as text/plain
    /// (`.bench/wsgi/wsgi_hello.py`), served by every server that runs Python.
    WsgiHello,
    /// A Python WSGI function returning the request body it read from `wsgi.input`
    /// (`.bench/wsgi/wsgi_echo.py`).
    WsgiEcho,
    /// A raw ASGI 3.0 application answering `Hello, World!\n` in one body message
    /// (`.bench/wsgi/asgi_hello.py`), served by every server that runs ASGI.
    AsgiHello,
    /// `Hello` over TLS 1.3, with the bench's ECDSA P-256 certificate (`.bench/tls/`).
    TlsHello,
    /// `Static` over TLS 1.3, the same certificate.
    TlsStatic,
}

impl AppKind {
    pub const ALL: [AppKind; 8] = [
        AppKind::Hello,
        AppKind::Static,
        AppKind::Echo,
        AppKind::WsgiHello,
        AppKind::WsgiEcho,
        AppKind::AsgiHello,
        AppKind::TlsHello,
        AppKind::TlsStatic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AppKind::Hello => "hello",
            AppKind::Static => "static",
            AppKind::Echo => "echo",
            AppKind::WsgiHello => "wsgi-hello",
            AppKind::WsgiEcho => "wsgi-echo",
            AppKind::AsgiHello => "asgi-hello",
            AppKind::TlsHello => "tls-hello",
            AppKind::TlsStatic => "tls-static",
        }
    }

    /// Whether the app is served over TLS (its own listener, its own process tree).
    pub fn is_tls(self) -> bool {
        matches!(self, AppKind::TlsHello | AppKind::TlsStatic)
    }

    /// The Python application, WSGI or ASGI (`module:callable` in `.bench/wsgi/`), that
    /// every server runs for this app, `None` for the apps ferrocorn has built in.
    pub fn wsgi_target(self) -> Option<&'static str> {
        match self {
            AppKind::WsgiHello => Some("wsgi_hello:app"),
            AppKind::WsgiEcho => Some("wsgi_echo:app"),
            AppKind::AsgiHello => Some("asgi_hello:app"),
            AppKind::Hello
            | AppKind::Static
            | AppKind::Echo
            | AppKind::TlsHello
            | AppKind::TlsStatic => None,
        }
    }

    /// A Python application (WSGI or ASGI): each server runs it in a process tree of its own.
    pub fn is_wsgi(self) -> bool {
        self.wsgi_target().is_some()
    }

    /// An ASGI application (only the servers that run ASGI have it).
    pub fn is_asgi(self) -> bool {
        self == AppKind::AsgiHello
    }
}

/// How requests go over a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One request at a time, the connection kept open.
    KeepAlive,
    /// `Connection: close` on every request: a new connection per request.
    Close,
    /// This many requests written at once, then as many responses read (RFC 9112 §9.3.2).
    Pipeline(usize),
    /// A POST with a body of this many bytes, keep-alive.
    Post(usize),
}

/// One load pattern, run against every server that has its application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// Short id used on the command line and in the table.
    pub name: &'static str,
    pub app: AppKind,
    pub path: &'static str,
    pub mode: Mode,
    pub connections: usize,
    /// wrk threads (the built-in generator runs one thread per connection).
    pub threads: usize,
}

/// The size of the static file.
pub const STATIC_FILE_BYTES: usize = 1 << 20;
/// Its name in the static directory.
pub const STATIC_FILE_NAME: &str = "file-1m.bin";
/// The POST body size of the echo scenario.
pub const POST_BODY_BYTES: usize = 4096;

/// All scenarios, in the order they run and print.
pub const SCENARIOS: [Scenario; 12] = [
    Scenario {
        name: "hello-ka-1",
        app: AppKind::Hello,
        path: "/",
        mode: Mode::KeepAlive,
        connections: 1,
        threads: 1,
    },
    Scenario {
        name: "hello-ka-64",
        app: AppKind::Hello,
        path: "/",
        mode: Mode::KeepAlive,
        connections: 64,
        threads: 2,
    },
    Scenario {
        name: "hello-close-16",
        app: AppKind::Hello,
        path: "/",
        mode: Mode::Close,
        connections: 16,
        threads: 2,
    },
    Scenario {
        name: "hello-pipe-16",
        app: AppKind::Hello,
        path: "/",
        mode: Mode::Pipeline(16),
        connections: 64,
        threads: 2,
    },
    Scenario {
        name: "static-1m-8",
        app: AppKind::Static,
        path: "/file-1m.bin",
        mode: Mode::KeepAlive,
        connections: 8,
        threads: 2,
    },
    Scenario {
        name: "echo-post-4k-64",
        app: AppKind::Echo,
        path: "/echo",
        mode: Mode::Post(POST_BODY_BYTES),
        connections: 64,
        threads: 2,
    },
    Scenario {
        name: "wsgi-hello-ka-64",
        app: AppKind::WsgiHello,
        path: "/",
        mode: Mode::KeepAlive,
        connections: 64,
        threads: 2,
    },
    Scenario {
        name: "wsgi-echo-post-4k-64",
        app: AppKind::WsgiEcho,
        path: "/echo",
        mode: Mode::Post(POST_BODY_BYTES),
        connections: 64,
        threads: 2,
    },
    Scenario {
        name: "asgi-hello-ka-64",
        app: AppKind::AsgiHello,
        path: "/",
        mode: Mode::KeepAlive,
        connections: 64,
        threads: 2,
    },
    Scenario {
        name: "tls-hello-ka-64",
        app: AppKind::TlsHello,
        path: "/",
        mode: Mode::KeepAlive,
        connections: 64,
        threads: 2,
    },
    // Every request a new connection and a full handshake (the client keeps no session).
    Scenario {
        name: "tls-hello-close-16",
        app: AppKind::TlsHello,
        path: "/",
        mode: Mode::Close,
        connections: 16,
        threads: 2,
    },
    Scenario {
        name: "tls-static-1m-8",
        app: AppKind::TlsStatic,
        path: "/file-1m.bin",
        mode: Mode::KeepAlive,
        connections: 8,
        threads: 2,
    },
];

impl Scenario {
    /// Finds a scenario by its name.
    pub fn by_name(name: &str) -> Option<Scenario> {
        SCENARIOS.iter().find(|s| s.name == name).copied()
    }

    /// One line saying what the scenario does, for the report.
    pub fn describe(&self) -> String {
        let what = match self.mode {
            Mode::KeepAlive => format!("GET {} keep-alive", self.path),
            Mode::Close => format!(
                "GET {} with `Connection: close` (new connection per request)",
                self.path
            ),
            Mode::Pipeline(depth) => format!("GET {} pipelined {depth} deep", self.path),
            Mode::Post(bytes) => format!("POST {} with a {bytes}-byte body, keep-alive", self.path),
        };
        format!("{what}, {} connection(s)", self.connections)
    }

    /// The raw bytes of one request of this scenario (the built-in generator sends them;
    /// the wrk script builds the same request with `wrk.format`).
    pub fn request_bytes(&self, host: &str) -> Vec<u8> {
        let mut head = match self.mode {
            Mode::Post(_) => format!("POST {} HTTP/1.1\r\nHost: {host}\r\n", self.path),
            _ => format!("GET {} HTTP/1.1\r\nHost: {host}\r\n", self.path),
        };
        match self.mode {
            Mode::Close => head.push_str("Connection: close\r\n"),
            Mode::Post(bytes) => {
                head.push_str("Content-Type: application/octet-stream\r\n");
                head.push_str(&format!("Content-Length: {bytes}\r\n"));
            }
            Mode::KeepAlive | Mode::Pipeline(_) => {}
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        if let Mode::Post(bytes) = self.mode {
            request.extend(post_body(bytes));
        }
        request
    }
}

/// The POST body: printable ASCII, so that every echo app returns it verbatim.
pub fn post_body(bytes: usize) -> impl Iterator<Item = u8> {
    (0..bytes).map(|i| b'a' + (i % 26) as u8)
}

/// The figures of one load run, as the load generator saw them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadFigures {
    /// Responses received in full.
    pub requests: u64,
    /// From the first connection to the end of the last response.
    pub elapsed: Duration,
    /// Bytes read, heads and bodies.
    pub bytes: u64,
    /// Connect, read, write and timeout errors, and responses with a status ≥ 400.
    pub errors: u64,
    /// `None` when the generator recorded no usable latency (see [`Latency::checked`]).
    pub latency: Option<Latency>,
    /// CPU time the load generator used.
    pub client_cpu: Duration,
}

/// Latency percentiles of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
}

impl Latency {
    /// The percentiles, or `None` when they cannot be right: wrk records nothing for a
    /// pipelined batch the server cut short by closing, and then reports zeros.
    pub fn checked(p50: Duration, p99: Duration) -> Option<Latency> {
        (!p99.is_zero() && p99 >= p50).then_some(Latency { p50, p99 })
    }
}

impl LoadFigures {
    pub fn requests_per_second(&self) -> f64 {
        per_second(self.requests as f64, self.elapsed)
    }

    pub fn mib_per_second(&self) -> f64 {
        per_second(self.bytes as f64 / (1024.0 * 1024.0), self.elapsed)
    }
}

fn per_second(amount: f64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        amount / elapsed.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_are_unique_and_found() {
        for s in SCENARIOS {
            assert_eq!(Scenario::by_name(s.name), Some(s));
            assert!(s.connections >= s.threads && s.threads >= 1, "{}", s.name);
        }
        assert_eq!(Scenario::by_name("nope"), None);
    }

    #[test]
    fn post_request_carries_its_body_and_length() {
        let echo = Scenario::by_name("echo-post-4k-64").unwrap();
        let request = echo.request_bytes("127.0.0.1:1");
        let text = String::from_utf8(request).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /echo HTTP/1.1\r\n"));
        assert!(head.contains("Content-Length: 4096"));
        assert_eq!(body.len(), POST_BODY_BYTES);
    }

    #[test]
    fn close_request_asks_for_close() {
        let close = Scenario::by_name("hello-close-16").unwrap();
        let text = String::from_utf8(close.request_bytes("h")).unwrap();
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }
}
