//! `cargo xtask bench-ws`: WebSocket echo of small messages, ferrocorn against uvicorn, in
//! alternating rounds of one run. Both run the same raw ASGI echo application (Python; the
//! ratio judged against the target is theirs); ferrocorn's built-in `echo` (Rust) is a
//! labelled extra line, the transport without Python. Each of `--connections` threads sends
//! a 16-byte text message, waits for its echo, and repeats (one message in flight per
//! connection, as wrk keeps one request).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::procfs::{clock_ticks_per_second, tree_cpu};

/// uvicorn as its documentation recommends for speed (`uvicorn[standard]`'s uvloop and
/// httptools), with the `websockets` protocol implementation; pinned.
const UVICORN_PINS: [&str; 4] = [
    "uvicorn==0.55.0",
    "uvloop==0.23.0",
    "httptools==0.9.0",
    "websockets==17.4",
];
/// The message each connection sends and expects back.
const MESSAGE: &[u8; 16] = b"0123456789abcdef";

const ECHO_APP: &str = r#"# A raw ASGI WebSocket echo application (written by `cargo xtask bench-ws`).
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
"#;

pub const USAGE: &str = "\
usage: cargo xtask bench-ws [--rounds N] [--duration SECS] [--connections N]

WebSocket echo of 16-byte text messages: ferrocorn serving a raw ASGI echo app (`-k asgi`,
uvloop) against uvicorn serving the same app (uvloop, httptools, websockets), and ferrocorn's
built-in Rust echo as an extra line; 2 workers each, on 127.0.0.1, in alternating rounds.
Prints messages/s, messages per server CPU-second and the median ratios. Needs python3 with
venv and pip (uvicorn and uvloop go into .bench/ws-venv; ferrocorn uses that venv too).";

/// Runs the WebSocket echo comparison.
pub fn run(args: &[String], root: PathBuf, cargo: fn() -> Command) -> Result<()> {
    let (mut rounds, mut duration, mut connections) = (3usize, 5u64, 64usize);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut number = |max: u64| -> Result<u64> {
            let value = it.next().with_context(|| format!("{flag} needs a value"))?;
            match value.parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => bail!("{flag} {value:?}: expected a whole number from 1 to {max}"),
            }
        };
        match flag.as_str() {
            "--rounds" => rounds = number(9)? as usize,
            "--duration" => duration = number(30)?,
            "--connections" => connections = number(512)? as usize,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    let mut build = cargo();
    build.args(["build", "--release", "--quiet", "-p", "ferrocorn"]);
    if !build.status().context("cargo build")?.success() {
        bail!("cargo build --release -p ferrocorn failed");
    }
    let dir = root.join(".bench/ws");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("ws_echo.py"), ECHO_APP)?;
    let venv = root.join(".bench/ws-venv");
    install_uvicorn(&venv)?;

    let ferrocorn_port = free_port()?;
    let uvicorn_port = free_port()?;
    let ferrocorn_bin = root.join("target/release/ferrocorn");
    let bind = format!("127.0.0.1:{ferrocorn_port}");
    let echo_port = free_port()?;
    let echo_bind = format!("127.0.0.1:{echo_port}");
    // At debug level the workers log, as they exit, how many hand-offs carried how many
    // events and replies (nothing per message).
    let asgi_log = dir.join("ferrocorn-asgi.log");
    let mut servers = [
        Server::start(
            "ferrocorn asgi",
            Command::new(&ferrocorn_bin)
                .args(["ws_echo:app", "-k", "asgi", "--asgi-loop", "uvloop"])
                .args(["--workers", "2", "--bind", &bind, "--log-level", "debug"])
                .arg("--virtualenv")
                .arg(&venv)
                .current_dir(&dir)
                .stderr(std::fs::File::create(&asgi_log)?),
            ferrocorn_port,
        )?,
        Server::start(
            "uvicorn",
            Command::new(venv.join("bin/uvicorn"))
                .args([
                    "ws_echo:app",
                    "--workers",
                    "2",
                    "--loop",
                    "uvloop",
                    "--http",
                ])
                .args(["httptools", "--ws", "websockets", "--log-level", "warning"])
                .args(["--port", &uvicorn_port.to_string()])
                .current_dir(&dir)
                .stderr(Stdio::null()),
            uvicorn_port,
        )?,
        Server::start(
            "ferrocorn echo (Rust, extra)",
            Command::new(&ferrocorn_bin)
                .args(["echo", "--workers", "2", "--bind", &echo_bind])
                .stderr(Stdio::null()),
            echo_port,
        )?,
    ];
    let ticks = clock_ticks_per_second();
    // Per round: ferrocorn asgi / uvicorn, ferrocorn echo / uvicorn.
    let (mut ratios, mut efficiency) = (Vec::new(), Vec::new());
    let (mut echo_ratios, mut echo_efficiency) = (Vec::new(), Vec::new());
    println!("| round | server | messages/s | per server CPU-s | errors |");
    println!("|--:|---|--:|--:|--:|");
    for round in 0..rounds {
        let mut figures = [(0.0, 0.0); 3];
        let order: [usize; 3] = if round % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for i in order {
            let server = &mut servers[i];
            load(server.addr, connections, Duration::from_secs(1));
            let cpu_before = tree_cpu(server.child.id(), ticks);
            let (messages, elapsed, errors) =
                load(server.addr, connections, Duration::from_secs(duration));
            let cpu = tree_cpu(server.child.id(), ticks).saturating_sub(cpu_before);
            let rate = messages as f64 / elapsed.as_secs_f64();
            let per_cpu = messages as f64 / cpu.as_secs_f64().max(1e-9);
            println!(
                "| {round} | {} | {rate:.0} | {per_cpu:.0} | {errors} |",
                server.name
            );
            figures[i] = (rate, per_cpu);
        }
        ratios.push(figures[0].0 / figures[1].0.max(1e-9));
        efficiency.push(figures[0].1 / figures[1].1.max(1e-9));
        echo_ratios.push(figures[2].0 / figures[1].0.max(1e-9));
        echo_efficiency.push(figures[2].1 / figures[1].1.max(1e-9));
    }
    println!();
    summary("ferrocorn asgi / uvicorn", &ratios, &mut efficiency);
    summary(
        "ferrocorn echo (Rust) / uvicorn",
        &echo_ratios,
        &mut echo_efficiency,
    );
    let verdict = if median(&mut ratios.clone()) >= TARGET {
        "met"
    } else {
        "MISSED"
    };
    println!("target: ferrocorn asgi >= {TARGET}x uvicorn's messages/s: {verdict}");
    drop(servers);
    hand_offs(&asgi_log)
}

/// Sums what the ASGI workers logged as they exited: events per hand-off to the event loop
/// thread and replies per hand-off back (a message echoed is one event and one reply).
fn hand_offs(log: &Path) -> Result<()> {
    let text = std::fs::read_to_string(log)?;
    let sum = |key: &str| -> u64 {
        text.lines()
            .flat_map(|line| line.split_whitespace())
            .filter_map(|field| field.strip_prefix(key)?.strip_prefix('='))
            .filter_map(|n| n.parse::<u64>().ok())
            .sum()
    };
    let (deliveries, events) = (sum("hand_offs"), sum("events"));
    let (batches, replies) = (sum("batches"), sum("replies"));
    println!(
        "ferrocorn asgi hand-offs over the whole run: worker -> event loop {events} events in \
         {deliveries} hand-offs ({:.2} per hand-off), event loop -> worker {replies} replies \
         in {batches} ({:.2} per hand-off)",
        events as f64 / deliveries.max(1) as f64,
        replies as f64 / batches.max(1) as f64,
    );
    Ok(())
}

/// Issue 16's target for ASGI WebSocket echo against uvicorn.
const TARGET: f64 = 1.5;

fn summary(label: &str, ratios: &[f64], efficiency: &mut [f64]) {
    println!(
        "{label}, medians of per-round ratios: messages/s {:.2}x (rounds {}), per server \
         CPU-second {:.2}x",
        median(&mut ratios.to_vec()),
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        median(efficiency),
    );
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Makes `venv` with the pinned uvicorn unless its stamp names the same pins.
fn install_uvicorn(venv: &Path) -> Result<()> {
    let stamp = venv.join("ferrocorn-bench-pins");
    let pins = UVICORN_PINS.join(" ");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == pins) {
        return Ok(());
    }
    let ok = |cmd: &mut Command| cmd.stdin(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok(Command::new("python3").arg("-m").arg("venv").arg(venv)) {
        bail!("python3 -m venv {} failed", venv.display());
    }
    let pip = venv.join("bin/pip");
    if !ok(Command::new(&pip)
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(UVICORN_PINS))
    {
        bail!("{} install {pins} failed", pip.display());
    }
    std::fs::write(stamp, pins)?;
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A server process, stopped (SIGINT, then killed) when dropped.
struct Server {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts `command` (its stderr as the caller set it).
    fn start(name: &'static str, command: &mut Command, port: u16) -> Result<Server> {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("start {name}"))?;
        let server = Server {
            name,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if Client::connect(server.addr).is_ok() {
                return Ok(server);
            }
            thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "{name} did not accept a WebSocket on {} within 30 s",
            server.addr
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        // Our own child, not reaped yet: the pid is still its.
        let _ = kill(pid, Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One blocking WebSocket client connection.
struct Client {
    stream: TcpStream,
    frame: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_nodelay(true)?;
        stream.write_all(
            format!(
                "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        )?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            head.push(byte[0]);
        }
        if !head.starts_with(b"HTTP/1.1 101") {
            return Err(std::io::Error::other("handshake refused"));
        }
        let mask = [0x5a, 0xc3, 0x3c, 0xa5];
        let mut frame = vec![0x81, 0x80 | MESSAGE.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(MESSAGE.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        Ok(Client { stream, frame })
    }

    /// Sends the message and reads its echo (2 + 16 bytes).
    fn round_trip(&mut self) -> std::io::Result<()> {
        self.stream.write_all(&self.frame)?;
        let mut echo = [0u8; 2 + MESSAGE.len()];
        self.stream.read_exact(&mut echo)?;
        if echo[0] != 0x81 || echo[2..] != MESSAGE[..] {
            return Err(std::io::Error::other("wrong echo"));
        }
        Ok(())
    }
}

/// `connections` clients echoing for `duration`: messages echoed, the time, errors.
fn load(addr: SocketAddr, connections: usize, duration: Duration) -> (u64, Duration, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let (mut messages, mut errors) = (0u64, 0u64);
                let Ok(mut client) = Client::connect(addr) else {
                    return (0, 1);
                };
                while !stop.load(Ordering::Relaxed) {
                    match client.round_trip() {
                        Ok(()) => messages += 1,
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                }
                (messages, errors)
            })
        })
        .collect();
    thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let (mut messages, mut errors) = (0, 0);
    for handle in threads {
        if let Ok((m, e)) = handle.join() {
            messages += m;
            errors += e;
        }
    }
    (messages, elapsed, errors)
}
