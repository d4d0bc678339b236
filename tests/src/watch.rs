//! Watching a server while a test runs: [`ChildWatch`] counts an arbiter's live children
//! through `/proc` in a thread (the most seen at once, every pid seen), and
//! [`Load::keep_alive`] keeps clients sending on persistent connections.

use std::collections::BTreeSet;
use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{children, connect, process_state, read_response, Load};

/// How often [`ChildWatch`] looks at `/proc`.
const WATCH_PERIOD: Duration = Duration::from_millis(1);

/// Counts the live children of one process until stopped.
#[derive(Debug)]
pub struct ChildWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<ChildReport>>,
}

/// What a [`ChildWatch`] saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildReport {
    /// The most live (not zombie) children seen at once.
    pub most_alive: usize,
    /// Every child pid seen.
    pub seen: BTreeSet<i32>,
    /// How many times it looked.
    pub looks: u64,
}

impl ChildWatch {
    /// Starts watching the children of `pid`.
    pub fn start(pid: i32) -> ChildWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut report = ChildReport::default();
            while !stopped.load(Ordering::SeqCst) {
                let alive = live_children(pid);
                report.most_alive = report.most_alive.max(alive.len());
                report.seen.extend(alive);
                report.looks += 1;
                std::thread::sleep(WATCH_PERIOD);
            }
            report
        });
        ChildWatch {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops watching and reports.
    pub fn stop(mut self) -> ChildReport {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for ChildWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The live children of `pid`: from `/proc/PID/task/PID/children` (one small read, complete
/// for a single-threaded process such as the arbiter), else by walking `/proc`.
fn live_children(pid: i32) -> Vec<i32> {
    let Ok(list) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) else {
        return children(pid);
    };
    list.split_whitespace()
        .filter_map(|child| child.parse::<i32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .is_ok_and(|stat| process_state(&stat).is_some_and(|state| state != 'Z'))
        })
        .collect()
}

impl Load {
    /// Starts `clients` threads, each sending `GET path` on one kept-alive connection,
    /// pausing `pause` between requests (so that the connection sits idle between them, as
    /// a browser's or a proxy's does), and opening a new connection only after a response
    /// that says `Connection: close`. Any other end of a connection is a failure: a server
    /// that stops must answer a request that arrives on an idle connection rather than drop it.
    pub fn keep_alive(addr: SocketAddr, path: &str, clients: usize, pause: Duration) -> Load {
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        Load::with_clients(clients, || {
            let request = request.clone();
            let mut conn = None;
            move || {
                let answer = exchange(addr, &mut conn, request.as_bytes())
                    .map_err(|e| io::Error::new(e.kind(), format!("{e} (kept alive)")));
                std::thread::sleep(pause);
                answer
            }
        })
    }
}

/// One request on `conn` (connecting first if there is none); the connection is kept
/// unless the response closes it or something failed.
fn exchange(
    addr: SocketAddr,
    conn: &mut Option<(TcpStream, BufReader<TcpStream>)>,
    request: &[u8],
) -> io::Result<u16> {
    let (mut stream, mut reader) = match conn.take() {
        Some(open) => open,
        None => {
            let stream = connect(addr)?;
            let reader = BufReader::new(stream.try_clone()?);
            (stream, reader)
        }
    };
    stream.write_all(request)?;
    let response = read_response(&mut reader, false)?;
    if response.header("connection") != Some("close") {
        *conn = Some((stream, reader));
    }
    Ok(response.status)
}
