//! A minimal blocking WebSocket client for the black-box tests: the opening handshake, masked
//! frames out, whole frames in. The conformance cases proper are `tests/python/`'s
//! Autobahn-style suite; this is for the tests that also drive the server's process (stops,
//! timeouts, settings).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::{connect, read_response, Response, Server};

/// Opcodes (RFC 6455 §5.2).
pub const TEXT: u8 = 0x1;
/// A binary frame.
pub const BINARY: u8 = 0x2;
/// A close frame.
pub const CLOSE: u8 = 0x8;
/// A ping.
pub const PING: u8 = 0x9;
/// A pong.
pub const PONG: u8 = 0xA;

/// A WebSocket handshake request for `path` with `extra` header lines (each ending in CRLF).
pub fn handshake_request(path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// Judges the JSON report of `tests/python/autobahn_cases.py`: every section is there with
/// Autobahn's case count (section 9 at moderate sizes), and every case is `OK` unless
/// `not_strict` lists it (id, the result allowed, why). Returns the cases that fall short.
pub fn judge_autobahn(stdout: &str, not_strict: &[(&str, &str, &str)]) -> Vec<String> {
    let report: serde_json::Value = serde_json::from_str(stdout).expect("the suite prints JSON");
    let cases = report["cases"].as_object().expect("cases");
    let mut per_section: std::collections::BTreeMap<&str, usize> = Default::default();
    for id in cases.keys() {
        *per_section
            .entry(id.split('.').next().unwrap_or(""))
            .or_default() += 1;
    }
    let expected = [
        ("1", 16),
        ("2", 11),
        ("3", 7),
        ("4", 10),
        ("5", 20),
        ("6", 144),
        ("7", 37),
    ];
    for (section, count) in expected {
        assert_eq!(per_section.get(section), Some(&count), "section {section}");
    }
    assert!(
        per_section.get("9").is_some_and(|&n| n >= 40),
        "{per_section:?}"
    );
    let mut wrong = Vec::new();
    for (id, case) in cases {
        let result = case["result"].as_str().unwrap_or("?");
        let allowed = not_strict
            .iter()
            .find(|(listed, _, _)| listed == id)
            .map_or("OK", |(_, result, _)| *result);
        if result != "OK" && result != allowed {
            wrong.push(format!("{id}: {result}: {}", case["detail"]));
        }
    }
    wrong
}

/// One client connection after a `101`.
#[derive(Debug)]
pub struct WsClient {
    reader: BufReader<TcpStream>,
    /// The `101` response.
    pub response: Response,
}

impl WsClient {
    /// Connects and completes the handshake for `path`; an error if the answer is not 101.
    pub fn connect(addr: SocketAddr, path: &str) -> io::Result<WsClient> {
        WsClient::connect_with(addr, path, "")
    }

    /// As [`WsClient::connect`], with `extra` header lines (each ending in CRLF).
    pub fn connect_with(addr: SocketAddr, path: &str, extra: &str) -> io::Result<WsClient> {
        let mut stream = connect(addr)?;
        stream.write_all(&handshake_request(path, extra))?;
        let mut reader = BufReader::new(stream);
        // A 101 has no body: read_response stops after the head (no framing, HEAD-like).
        let response = read_response(&mut reader, true)?;
        if response.status != 101 {
            return Err(io::Error::other(format!(
                "handshake answered {}",
                response.status
            )));
        }
        Ok(WsClient { reader, response })
    }

    /// Sends one masked frame.
    pub fn send(&mut self, fin: bool, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.reader.get_mut().write_all(&out)
    }

    /// Reads one frame: its opcode and payload (the server never fragments or masks).
    pub fn recv(&mut self) -> io::Result<(u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.reader.read_exact(&mut head)?;
        let len = match head[1] & 0x7F {
            126 => {
                let mut n = [0u8; 2];
                self.reader.read_exact(&mut n)?;
                u64::from(u16::from_be_bytes(n))
            }
            127 => {
                let mut n = [0u8; 8];
                self.reader.read_exact(&mut n)?;
                u64::from_be_bytes(n)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0; usize::try_from(len).map_err(io::Error::other)?];
        self.reader.read_exact(&mut payload)?;
        Ok((head[0] & 0x0F, payload))
    }

    /// Reads a close frame's code (None for an empty one); an error for any other frame.
    pub fn recv_close(&mut self) -> io::Result<Option<u16>> {
        match self.recv()? {
            (CLOSE, body) if body.len() >= 2 => Ok(Some(u16::from_be_bytes([body[0], body[1]]))),
            (CLOSE, _) => Ok(None),
            (op, body) => Err(io::Error::other(format!(
                "expected a close frame, got opcode {op} with {} bytes",
                body.len()
            ))),
        }
    }

    /// Whether the server has closed the connection: the next read finds the end of file
    /// (within the stream's read timeout).
    pub fn at_eof(&mut self) -> bool {
        self.reader.fill_buf().is_ok_and(|b| b.is_empty())
    }

    /// A second handle on the socket, to send from another thread while this one reads.
    pub fn sender(&self) -> io::Result<WsClient> {
        let stream = self.reader.get_ref().try_clone()?;
        Ok(WsClient {
            reader: BufReader::new(stream),
            response: Response {
                status: 101,
                reason: String::new(),
                headers: Vec::new(),
                body: Vec::new(),
            },
        })
    }

    /// Changes the read timeout.
    pub fn set_read_timeout(&self, timeout: std::time::Duration) {
        let _ = self.reader.get_ref().set_read_timeout(Some(timeout));
    }
}

/// Runs `tests/python/websockets_client.py` (the `websockets` library as the client) with
/// `python` against `server` and asserts that each of its checks passed.
pub fn assert_websockets_client_passes(python: &std::ffi::OsStr, server: &Server) {
    let stdout = crate::python::run_script(python, "websockets_client.py", server);
    for check in [
        "text",
        "binary",
        "1MiB",
        "subprotocol",
        "rejection",
        "concurrent100",
    ] {
        assert!(
            stdout.contains(&format!("ok {check}\n")),
            "{check}: {stdout}"
        );
    }
}
