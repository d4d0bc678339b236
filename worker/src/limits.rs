//! Timeouts and limits the loop and the connections take from the settings once.

use std::time::{Duration, SystemTime};

use crate::Settings;

/// Timeouts and limits taken from the settings once.
#[derive(Debug)]
pub(crate) struct Config {
    /// `None`: keep-alive disabled (`keepalive` = 0).
    pub(crate) keepalive: Option<Duration>,
    pub(crate) header_timeout: Duration,
    /// `body_min_rate`, bytes per second; 0 for none.
    pub(crate) body_min_rate: u64,
    /// A client that accepts no output for this long is dropped.
    pub(crate) write_timeout: Duration,
    /// How long the next piece of an application's streamed response body may take on the
    /// pool (`timeout`; `None` when it is 0) before the connection is closed.
    pub(crate) piece_timeout: Option<Duration>,
    pub(crate) graceful_timeout: Duration,
    pub(crate) max_connections: usize,
    /// The most idle connections closed at once at `max_connections` (see `reclaim_idle`).
    pub(crate) reclaim_batch: usize,
    pub(crate) max_requests: u64,
    /// `busy_poll`: the longest poll before sleeping.
    pub(crate) busy_poll: Duration,
    /// `limit_concurrency`: requests in progress past which a new one is refused; 0 for
    /// no limit.
    pub(crate) limit_concurrency: u64,
    /// `websocket_max_message_size`: the longest WebSocket message, fragments joined.
    pub(crate) websocket_max_message: u64,
}

impl Config {
    pub(crate) fn from_settings(s: &Settings) -> Config {
        let max_requests = if s.max_requests == 0 {
            0
        } else {
            s.max_requests + jitter(s.max_requests_jitter)
        };
        Config {
            keepalive: (!s.keepalive.is_zero()).then_some(s.keepalive),
            body_min_rate: s.body_min_rate,
            header_timeout: if s.header_timeout.is_zero() {
                Duration::from_secs(3600)
            } else {
                s.header_timeout
            },
            write_timeout: if s.timeout.is_zero() {
                Duration::from_secs(30)
            } else {
                s.timeout.max(Duration::from_secs(5))
            },
            piece_timeout: (!s.timeout.is_zero()).then_some(s.timeout),
            graceful_timeout: s.graceful_timeout,
            max_connections: s.worker_connections.max(1),
            // A sixteenth of the connections, 1 to 32 (nginx closes up to 32 at a time):
            // room for a burst of new clients without a scan per connection.
            reclaim_batch: (s.worker_connections / 16).clamp(1, 32),
            max_requests,
            busy_poll: Duration::from_micros(s.busy_poll),
            limit_concurrency: s.limit_concurrency as u64,
            websocket_max_message: s.websocket_max_message_size,
        }
    }
}

/// A random number in `0..=max`, different in each worker (gunicorn's
/// `max_requests_jitter`: `randint(0, jitter)`).
fn jitter(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    // splitmix64 finalizer
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    x % (max + 1)
}
