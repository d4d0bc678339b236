//! An application that misbehaves on demand, served by the full server through
//! `ferrocorn_arbiter::serve`, for the black-box tests of what the server does when an
//! application goes wrong (`cargo build -p ferrocorn-tests --example faulty_app`).
//!
//! `faulty_app [--bind ADDR]... [--workers N] [--threads N] [--timeout SECONDS]
//! [--pid FILE] [--reload-strategy generation|rolling] [--fault NAME=PATH]...
//! [--thread-before-serve]`
//!
//! Faults, each active while its PATH exists (so a test can turn it on and off):
//! - `after-fork-panic`: the `after_fork_child` hook panics in the new worker.
//! - `init-fail`: `init_worker` fails, so the worker stops before it serves.
//!
//! `--thread-before-serve` starts a thread before calling `serve` (which must refuse).
//!
//! Routes: `/` answers the worker's pid; `/panic-in-body` streams a first piece, then its
//! body reader panics; `/stalled-body` streams a first piece, then its reader waits ten
//! minutes; `/sleep/MS` sleeps MS milliseconds before answering.
//!
//! WebSockets: `/ws/link` sends `one`, `two`, `three` from another thread through a
//! `ws::Link`, then closes with 1000 the same way; `/ws/pause` stops reading at once and a
//! thread resumes it after sending `resuming` (every message is echoed); `/ws/panic` panics
//! on the first message.
//!
//! `--deferred` makes it a deferred application (`App::deferred`) that accepts every
//! WebSocket handshake from its own side of the channel (`Reply::Respond` with a response
//! `accept_websocket` filled), echoing messages, as an ASGI host would.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ferrocorn_config::{parse_bind, ReloadStrategy, Settings};
use ferrocorn_worker::ws::{self, Message, Outbox};
use ferrocorn_worker::{App, Body, DeferredApp, Event, Inbox, Replies, Reply, Request, Response};

/// The WebSocket routes' handler.
struct Socket {
    route: String,
}

impl ws::Handler for Socket {
    fn on_open(&mut self, out: &mut Outbox<'_>) {
        let link = out.link();
        match self.route.as_str() {
            "/ws/link" => {
                std::thread::spawn(move || {
                    for word in ["one", "two", "three"] {
                        let _ = link.send_text(word);
                    }
                    let _ = link.close(1000, "done");
                });
            }
            "/ws/pause" => {
                out.pause_reading();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    let _ = link.send_text("resuming");
                    let _ = link.resume_reading();
                });
            }
            _ => {}
        }
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        if self.route == "/ws/panic" {
            panic!("the WebSocket handler broke");
        }
        match message {
            Message::Text(text) => out.send_text(text),
            Message::Binary(bytes) => out.send_binary(bytes),
        };
    }
}

/// The faults the command line armed.
#[derive(Debug, Default)]
struct Faulty {
    after_fork_panic: Option<PathBuf>,
    init_fail: Option<PathBuf>,
    deferred: bool,
}

/// `--deferred`: answers each request event at once from `deliver`.
struct DeferredInbox {
    replies: Replies,
}

impl Inbox for DeferredInbox {
    fn deliver(&mut self, events: &mut Vec<Event>) {
        let mut batch = Vec::new();
        for event in events.drain(..) {
            if let Event::Request { id, request, .. } = event {
                let mut response = Response::new();
                if request.is_websocket() {
                    let socket = Box::new(Socket {
                        route: "/ws/echo".to_string(),
                    });
                    response.accept_websocket(&request, None, socket);
                } else {
                    response.plain(200, "not a WebSocket\n");
                }
                batch.push(Reply::Respond {
                    id,
                    response,
                    more: false,
                    length: None,
                });
            }
        }
        self.replies.send(&mut batch);
    }
}

impl DeferredApp for Faulty {
    fn open(&self, replies: Replies) -> Result<Box<dyn Inbox>, String> {
        Ok(Box::new(DeferredInbox { replies }))
    }
}

fn armed(path: &Option<PathBuf>) -> bool {
    path.as_ref().is_some_and(|path| path.exists())
}

/// A body that yields `first`, then does what `then` says on the next read.
struct Faulting {
    step: u8,
    then: Then,
}

#[derive(Clone, Copy)]
enum Then {
    Panic,
    Stall,
}

impl Read for Faulting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step += 1;
        if self.step == 1 {
            let first = b"first piece\n";
            let n = first.len().min(buf.len());
            buf[..n].copy_from_slice(&first[..n]);
            return Ok(n);
        }
        match self.then {
            Then::Panic => panic!("the body reader broke"),
            Then::Stall => {
                std::thread::sleep(Duration::from_secs(600));
                Ok(0)
            }
        }
    }
}

impl App for Faulty {
    fn call(&self, request: &mut Request, response: &mut Response) {
        let path = request.path().to_string();
        let stream = |then| Body::Stream {
            reader: Box::new(Faulting { step: 0, then }),
            len: None,
        };
        if path.starts_with("/ws/") {
            let socket = Box::new(Socket { route: path });
            response.accept_websocket(request, None, socket);
        } else if path == "/panic-in-body" {
            response.body = stream(Then::Panic);
        } else if path == "/stalled-body" {
            response.body = stream(Then::Stall);
        } else if let Some(ms) = path.strip_prefix("/sleep/") {
            let ms = ms.parse().unwrap_or(0);
            std::thread::sleep(Duration::from_millis(ms));
            response.plain(200, "slept\n");
        } else {
            response.plain(200, format!("hello from worker {}\n", std::process::id()));
        }
    }

    fn after_fork_child(&self) {
        if armed(&self.after_fork_panic) {
            panic!("after_fork_child was told to panic");
        }
    }

    fn deferred(&self) -> Option<&dyn DeferredApp> {
        self.deferred.then_some(self as &dyn DeferredApp)
    }

    fn init_worker(&self) -> Result<(), String> {
        if armed(&self.init_fail) {
            return Err("init_worker was told to fail".to_string());
        }
        Ok(())
    }
}

/// The command line, or a usage error.
fn parse_args() -> Result<(Settings, Faulty, bool), String> {
    let mut settings = Settings {
        bind: Vec::new(),
        ..Settings::default()
    };
    let mut app = Faulty::default();
    let mut thread_before_serve = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--thread-before-serve" {
            thread_before_serve = true;
            continue;
        }
        if flag == "--deferred" {
            app.deferred = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--bind" => settings
                .bind
                .push(parse_bind(&value).map_err(|e| e.to_string())?),
            "--workers" => settings.workers = number()?,
            "--threads" => settings.threads = number()?,
            "--timeout" => settings.timeout = Duration::from_secs(number()? as u64),
            "--pid" => settings.pidfile = Some(PathBuf::from(&value)),
            "--reload-strategy" => {
                settings.reload_strategy = match value.as_str() {
                    "generation" => ReloadStrategy::Generation,
                    "rolling" => ReloadStrategy::Rolling,
                    _ => return Err(format!("unknown reload strategy {value:?}")),
                }
            }
            "--fault" => match value.split_once('=') {
                Some(("after-fork-panic", path)) => app.after_fork_panic = Some(path.into()),
                Some(("init-fail", path)) => app.init_fail = Some(path.into()),
                _ => return Err(format!("unknown fault {value:?}")),
            },
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    if settings.bind.is_empty() {
        settings.bind = Settings::default().bind;
    }
    Ok((settings, app, thread_before_serve))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .without_time()
        .with_ansi(false)
        .init();
    let (settings, app, thread_before_serve) = match parse_args() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("faulty_app: error: {e}");
            return ExitCode::from(2);
        }
    };
    let _thread = thread_before_serve
        .then(|| std::thread::spawn(|| std::thread::sleep(Duration::from_secs(600))));
    match ferrocorn_arbiter::serve(settings, Arc::new(app)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faulty_app: error: {e}");
            ExitCode::FAILURE
        }
    }
}
