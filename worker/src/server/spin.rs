//! The poll before sleeping: how long the loop keeps polling after a turn that served
//! connections, adapted to how soon events come.

use std::time::{Duration, Instant};

use mio::{Events, Poll};

use super::wait;
use crate::clock::Clock;
use crate::WorkerExit;

/// The shortest poll before sleeping that the loop starts; it doubles from here (see `Spin`).
const SPIN_MIN: Duration = Duration::from_micros(8);

/// How long the loop polls before it sleeps, adapted after every wait the way Linux's
/// `haltpoll` governor adapts a virtual CPU's poll before it halts: the poll is worth its CPU
/// only while the next event comes within `max`.
#[derive(Debug)]
pub(super) struct Spin {
    /// `busy_poll`; zero turns polling off.
    max: Duration,
    /// The current poll: zero, or `SPIN_MIN` doubled up to `max`.
    window: Duration,
}

impl Spin {
    pub(super) fn new(max: Duration) -> Spin {
        Spin {
            max,
            window: Duration::ZERO,
        }
    }

    /// Fills `events` and returns the time it came back (see [`Clock::now`]).
    ///
    /// The clients a turn answered are about to send again. Sleeping in `epoll_wait` until
    /// they do costs a sleep, a wake-up by the client's write (on another CPU, an interrupt
    /// into an idle CPU) and a switch back: most of a saturated worker's time outside the TCP
    /// stack, and most of a round trip's latency on one connection. So after a turn that
    /// `served` connections this polls without waiting for up to `window`, giving the CPU to
    /// whatever else is runnable here (often the client, or another worker) between polls,
    /// and sleeps only if nothing came; then it adapts the window to how long the wait took.
    /// An idle machine returns from the yield at once.
    pub(super) fn wait(
        &mut self,
        poll: &mut Poll,
        events: &mut Events,
        served: bool,
        clock: &Clock,
    ) -> Result<(Instant, u64), WorkerExit> {
        if !served {
            wait(poll, events, None)?;
            return Ok(clock.now());
        }
        let start = Instant::now();
        while !self.window.is_zero() {
            let _ = nix::sched::sched_yield();
            wait(poll, events, Some(Duration::ZERO))?;
            if !events.is_empty() {
                return Ok(clock.now());
            }
            if start.elapsed() >= self.window {
                break;
            }
        }
        wait(poll, events, None)?;
        let now = clock.now();
        self.adapt(now.0.saturating_duration_since(start));
        Ok(now)
    }

    /// After a wait that ended with an event `waited` after it began (polling and sleeping):
    /// a wait shorter than `max` would have ended while polling, so the poll grows; a longer
    /// one means the poll was spent for nothing, so it halves, down to nothing.
    fn adapt(&mut self, waited: Duration) {
        if waited < self.max {
            self.window = (self.window * 2).max(SPIN_MIN).min(self.max);
        } else if self.window > SPIN_MIN {
            self.window /= 2;
        } else {
            self.window = Duration::ZERO;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_micros(50);

    #[test]
    fn spin_grows_while_events_come_within_busy_poll() {
        let mut spin = Spin::new(MAX);
        assert_eq!(spin.window, Duration::ZERO);
        let mut seen = Vec::new();
        for _ in 0..5 {
            spin.adapt(Duration::from_micros(20));
            seen.push(spin.window.as_micros());
        }
        assert_eq!(seen, [8, 16, 32, 50, 50]);
    }

    #[test]
    fn spin_shrinks_to_nothing_when_events_come_later() {
        let mut spin = Spin::new(MAX);
        spin.window = MAX;
        let mut seen = Vec::new();
        for _ in 0..5 {
            spin.adapt(Duration::from_millis(3));
            seen.push(spin.window.as_micros());
        }
        assert_eq!(seen, [25, 12, 6, 0, 0]);
    }

    #[test]
    fn spin_settles_where_the_wait_crosses_busy_poll() {
        // Requests 70 µs apart with a 50 µs limit: polling never catches them, so after
        // a few waits the worker sleeps at once and stays so.
        let mut spin = Spin::new(MAX);
        for _ in 0..10 {
            let waited = Duration::from_micros(70).max(spin.window);
            spin.adapt(waited);
        }
        assert_eq!(spin.window, Duration::ZERO);
    }

    #[test]
    fn zero_busy_poll_never_polls_and_a_small_one_is_a_cap() {
        let mut off = Spin::new(Duration::ZERO);
        off.adapt(Duration::from_micros(1));
        assert_eq!(off.window, Duration::ZERO);

        let mut small = Spin::new(Duration::from_micros(3));
        small.adapt(Duration::from_micros(1));
        assert_eq!(small.window, Duration::from_micros(3));
    }
}
