//! Background load for "no request fails while …" tests.

use super::*;

/// Background clients sending requests one after another (a new connection each) until
/// stopped; every error or non-2xx answer is recorded. For "no request fails while ...".
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<JoinHandle<()>>,
}

/// What a [`Load`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub ok: u64,
    pub failures: Vec<String>,
}

impl LoadReport {
    /// Fails the test when a request failed, with the failures and the server's log.
    pub fn assert_no_failures(&self, server: &Server) {
        assert!(
            self.failures.is_empty(),
            "failed requests: {:?}\n{}",
            self.failures,
            server.stderr()
        );
    }
}

impl Load {
    /// Starts `clients` threads requesting `GET path` from `addr` in a loop.
    pub fn start(addr: SocketAddr, path: &str, clients: usize) -> Load {
        Load::with_clients(clients, || {
            let path = path.to_string();
            move || get(addr, &path).map(|response| response.status)
        })
    }

    /// Starts `clients` threads each making `request` in a loop.
    pub fn start_with(
        clients: usize,
        request: impl Fn() -> io::Result<Response> + Send + Sync + 'static,
    ) -> Load {
        let request = Arc::new(request);
        Load::with_clients(clients, || {
            let request = Arc::clone(&request);
            move || request().map(|response| response.status)
        })
    }

    /// Starts `clients` threads, each calling the function `client()` makes for it (one
    /// request: its status or the error) in a loop until stopped; counts 2xx answers and
    /// records everything else as a failure.
    pub(crate) fn with_clients<F>(clients: usize, mut client: impl FnMut() -> F) -> Load
    where
        F: FnMut() -> io::Result<u16> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|_| {
                let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
                let mut request = client();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let failure = match request() {
                            Ok(status) if (200..300).contains(&status) => {
                                ok.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                            Ok(status) => format!("status {status}"),
                            Err(error) => error.to_string(),
                        };
                        failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(failure);
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failures,
            threads,
        }
    }

    /// Requests answered with 2xx so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits until at least `more` further requests succeed; false after `timeout`.
    pub fn wait_for_more(&self, more: u64, timeout: Duration) -> bool {
        let target = self.ok() + more;
        wait_until(timeout, || self.ok() >= target)
    }

    /// Stops the clients (each finishes its current request) and reports.
    pub fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        LoadReport {
            ok: self.ok(),
            failures: self
                .failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
