//! Black-box: the metrics endpoint (`--metrics-bind`) and `--limit-concurrency`. Every
//! scrape is parsed by a real Prometheus text parser (`prometheus_client`'s, in the test
//! virtualenv) and the counts must match exactly the requests sent.

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrocorn_tests::python::{fixtures_dir, test_venv};
use ferrocorn_tests::{
    connect, get, read_response, request, send_signal, wait_until, Server, Signal,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

/// One sample of a scrape, as `prometheus_client` read it.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Value,
    value: f64,
}

/// Every sample `/metrics` shows now, parsed by `prometheus_client`; `None` (after a loud
/// skip message) when the test virtualenv cannot be made outside CI.
fn scrape(addr: SocketAddr) -> Option<Vec<Sample>> {
    let venv = test_venv()?;
    let response = get(addr, "/metrics").expect("/metrics answers");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let mut parser = Command::new(venv.dir().join("bin/python"))
        .arg(fixtures_dir().join("prom_parse.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the parser");
    parser
        .stdin
        .take()
        .expect("stdin")
        .write_all(&response.body)
        .expect("feed the parser");
    let output = parser.wait_with_output().expect("the parser ends");
    assert!(
        output.status.success(),
        "prometheus_client refused the exposition: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        response.text()
    );
    let samples: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    Some(
        samples
            .into_iter()
            .map(|s| Sample {
                name: s["name"].as_str().unwrap_or_default().to_string(),
                labels: s["labels"].clone(),
                value: s["value"].as_f64().unwrap_or(f64::NAN),
            })
            .collect(),
    )
}

/// The value of the sample `name` whose labels include `labels`; 0 when there is none.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels[*k] == *v))
        .map(|s| s.value)
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?}: {matching:?}");
    matching.first().copied().unwrap_or(0.0)
}

/// The sum of every sample named `name`.
fn total(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .sum()
}

fn start(args: &[&str]) -> (Server, SocketAddr) {
    let mut all = vec!["--metrics-bind", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let server = Server::start(all);
    let metrics = server
        .metrics_addr()
        .unwrap_or_else(|| panic!("no `Serving metrics at:` line\n{}", server.stderr()));
    (server, metrics)
}

/// Sends the same known mix every count test uses: GET, POST, HEAD, PUT, an unknown
/// method, 404s and a malformed request (400).
fn send_known_mix(server: &Server) {
    for _ in 0..3 {
        assert_eq!(get(server.addr, "/").unwrap().status, 200);
    }
    for _ in 0..2 {
        assert_eq!(get(server.addr, "/status/404").unwrap().status, 404);
    }
    let post = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
    for _ in 0..2 {
        assert_eq!(request(server.addr, post).unwrap().status, 200);
    }
    let put =
        b"PUT /status/201 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(request(server.addr, put).unwrap().status, 201);
    let head = b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let mut reader = BufReader::new({
        let mut s = connect(server.addr).unwrap();
        s.write_all(head).unwrap();
        s
    });
    assert_eq!(read_response(&mut reader, true).unwrap().status, 200);
    let brew = b"BREW /pot HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    assert_eq!(request(server.addr, brew).unwrap().status, 200);
    let malformed = b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n";
    assert_eq!(request(server.addr, malformed).unwrap().status, 400);
}

/// `all_workers_alive`: no worker has ended since the mix was sent, so the per-worker
/// counts (which start again with each worker) add up to the totals.
fn assert_known_mix(samples: &[Sample], server: &Server, all_workers_alive: bool) {
    let expected = [
        ("200", "GET", 3.0),
        ("404", "GET", 2.0),
        ("200", "POST", 2.0),
        ("201", "PUT", 1.0),
        ("200", "HEAD", 1.0),
        ("200", "other", 1.0),
        ("400", "other", 1.0),
    ];
    for (code, method, n) in expected {
        assert_eq!(
            value(
                samples,
                "http_requests_total",
                &[("code", code), ("method", method)]
            ),
            n,
            "{code} {method}\n{}",
            server.stderr()
        );
    }
    assert_eq!(total(samples, "http_requests_total"), 11.0);
    // The histogram holds the application's answers, not the 400 the server gave itself.
    assert_eq!(
        value(samples, "http_request_duration_seconds_count", &[]),
        10.0
    );
    assert_eq!(
        value(
            samples,
            "http_request_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        10.0
    );
    assert_eq!(value(samples, "ferrocorn_connections_total", &[]), 11.0);
    if all_workers_alive {
        assert_eq!(
            total(samples, "ferrocorn_worker_requests_total"),
            11.0,
            "the workers' own counts add up"
        );
    }
}

#[test]
fn counts_match_exactly_per_code_and_method() {
    let (server, metrics) = start(&["--workers", "2", "echo"]);
    let Some(before) = scrape(metrics) else {
        return;
    };
    assert_eq!(total(&before, "http_requests_total"), 0.0);
    assert_eq!(value(&before, "ferrocorn_workers", &[]), 2.0);
    assert_eq!(value(&before, "ferrocorn_workers_desired", &[]), 2.0);
    assert_eq!(
        value(
            &before,
            "ferrocorn_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(value(&before, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(value(&before, "process_start_time_seconds", &[]) > 1.6e9);
    assert!(
        value(
            &before,
            "ferrocorn_listen_queue_max",
            &[("listener", &format!("http://{}", server.addr))]
        ) > 0.0
    );
    send_known_mix(&server);
    let after = scrape(metrics).unwrap();
    assert_known_mix(&after, &server, true);
    assert_eq!(value(&after, "http_requests_in_flight", &[]), 0.0);
    for metric in [
        "process_cpu_seconds_total",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "ferrocorn_reloads_total",
        "ferrocorn_connections_active",
        "ferrocorn_limit_concurrency_refused_total",
    ] {
        assert!(after.iter().any(|s| s.name == metric), "{metric} is shown");
    }
    let missing = get(metrics, "/other").unwrap();
    assert_eq!(missing.status, 404);
    let post = b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(request(metrics, post).unwrap().status, 405);
}

#[test]
fn counters_survive_a_worker_killed() {
    let (server, metrics) = start(&["--workers", "2", "echo"]);
    if scrape(metrics).is_none() {
        return;
    }
    send_known_mix(&server);
    let victims = server.worker_pids();
    assert_eq!(victims.len(), 2);
    send_signal(victims[0], Signal::SIGKILL);
    // Scrapes while the arbiter reaps and replaces it: no counter ever goes down.
    let mut last = 0.0;
    let replaced = wait_until(WAIT, || {
        let samples = scrape(metrics).unwrap();
        let now = total(&samples, "http_requests_total");
        assert!(now >= last, "http_requests_total went from {last} to {now}");
        last = now;
        let pids = server.worker_pids();
        pids.len() == 2
            && !pids.contains(&victims[0])
            && value(
                &samples,
                "ferrocorn_worker_restarts_total",
                &[("reason", "crash")],
            ) == 1.0
    });
    assert!(replaced, "the worker is replaced\n{}", server.stderr());
    let after = scrape(metrics).unwrap();
    assert_known_mix(&after, &server, false);
    assert_eq!(value(&after, "ferrocorn_workers", &[]), 2.0);
    assert_eq!(
        value(
            &after,
            "ferrocorn_worker_restarts_total",
            &[("reason", "crash")]
        ),
        1.0
    );
}

#[test]
fn readyz_turns_503_at_term_while_the_request_in_flight_finishes() {
    let (mut server, metrics) = start(&["--graceful-timeout", "20", "echo"]);
    assert!(
        wait_until(WAIT, || get(metrics, "/readyz")
            .is_ok_and(|r| r.status == 200)),
        "ready once a worker serves"
    );
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"GET /delay/1500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    // The request is in flight once the metrics say so.
    assert!(wait_until(WAIT, || {
        get(metrics, "/metrics").is_ok_and(|r| r.text().contains("\nhttp_requests_in_flight 1\n"))
    }));
    server.signal(Signal::SIGTERM);
    let sent = Instant::now();
    let turned = wait_until(WAIT, || {
        get(metrics, "/readyz").is_ok_and(|r| r.status == 503)
    });
    let took = sent.elapsed();
    assert!(
        turned,
        "/readyz answers 503 after TERM\n{}",
        server.stderr()
    );
    // The issue's bound: the arbiter sets the flag as soon as its loop wakes on the signal.
    assert!(
        took < Duration::from_millis(100),
        "503 came {took:?} after TERM"
    );
    assert_eq!(get(metrics, "/healthz").unwrap().status, 200, "still alive");
    let answer = read_response(&mut reader, false).expect("the request in flight is answered");
    assert_eq!(answer.status, 200);
    assert!(server.wait_exit(WAIT).is_some(), "the arbiter exits");
}

#[test]
fn health_and_metrics_answer_while_every_worker_is_hung() {
    let (server, metrics) = start(&["--workers", "2", "--timeout", "120", "echo"]);
    if scrape(metrics).is_none() {
        return;
    }
    assert_eq!(get(server.addr, "/").unwrap().status, 200);
    let workers = server.worker_pids();
    assert_eq!(workers.len(), 2);
    for &pid in &workers {
        send_signal(pid, Signal::SIGSTOP);
    }
    let health = get(metrics, "/healthz").expect("/healthz answers");
    assert_eq!(health.status, 200);
    let samples = scrape(metrics).expect("/metrics answers");
    assert_eq!(total(&samples, "http_requests_total"), 1.0);
    assert_eq!(value(&samples, "ferrocorn_workers", &[]), 2.0);
    for &pid in &workers {
        send_signal(pid, Signal::SIGCONT);
    }
}

#[test]
fn limit_concurrency_answers_503_past_the_limit_and_recovers() {
    let (server, metrics) = start(&["--threads", "4", "--limit-concurrency", "2", "echo"]);
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || get(addr, "/delay/2000").map(|r| r.status))
        })
        .collect();
    assert!(
        wait_until(WAIT, || {
            get(metrics, "/metrics")
                .is_ok_and(|r| r.text().contains("\nhttp_requests_in_flight 2\n"))
        }),
        "two requests in flight\n{}",
        server.stderr()
    );
    let refused = get(server.addr, "/").unwrap();
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("Retry-After"), Some("1"));
    assert_eq!(refused.header("Connection"), Some("close"));
    for thread in slow {
        assert_eq!(
            thread.join().unwrap().unwrap(),
            200,
            "the requests in progress finish"
        );
    }
    assert_eq!(get(server.addr, "/").unwrap().status, 200, "recovered");
    if let Some(samples) = scrape(metrics) {
        assert_eq!(
            value(&samples, "ferrocorn_limit_concurrency_refused_total", &[]),
            1.0
        );
        assert_eq!(
            value(
                &samples,
                "http_requests_total",
                &[("code", "503"), ("method", "GET")]
            ),
            1.0
        );
        assert_eq!(
            value(
                &samples,
                "http_requests_total",
                &[("code", "200"), ("method", "GET")]
            ),
            3.0
        );
    }
}

#[test]
fn usr2_hands_the_metrics_socket_to_the_new_arbiter() {
    let (server, metrics) = start(&["echo"]);
    assert_eq!(get(metrics, "/healthz").unwrap().status, 200);
    let old = server.pid;
    server.signal(Signal::SIGUSR2);
    assert!(
        server.wait_for_log_count("Serving metrics at: ", 2, WAIT),
        "the new arbiter serves metrics\n{}",
        server.stderr()
    );
    let new_line = server
        .stderr()
        .lines()
        .filter(|l| l.contains("Serving metrics at: "))
        .nth(1)
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        new_line.contains(&format!("http://{metrics}")),
        "the same address: {new_line}"
    );
    assert!(server.wait_for_log_count("Listening at: ", 2, WAIT));
    send_signal(old, Signal::SIGTERM);
    assert!(wait_until(WAIT, || !ferrocorn_tests::is_running(old)
        || ferrocorn_tests::process_name(old).is_none()));
    assert!(
        wait_until(WAIT, || get(metrics, "/readyz")
            .is_ok_and(|r| r.status == 200)),
        "the new arbiter's endpoint answers on the same address\n{}",
        server.stderr()
    );
}

#[test]
fn a_tls_listener_is_labelled_https_as_listening_at_shows_it() {
    let pki = ferrocorn_tests::tls::Pki::new("metrics-tls");
    pki.issue_server("server", "localhost");
    let cert = pki.path("server.pem").display().to_string();
    let key = pki.path("server.key").display().to_string();
    let (server, metrics) = start(&["--certfile", &cert, "--keyfile", &key, "hello"]);
    let Some(samples) = scrape(metrics) else {
        return;
    };
    let label = format!("https://{}", server.addr);
    let queues: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == "ferrocorn_listen_queue_max")
        .collect();
    assert_eq!(queues.len(), 1, "{queues:?}");
    assert_eq!(queues[0].labels["listener"], label.as_str(), "{queues:?}");
}
