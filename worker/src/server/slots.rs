//! The open connections, in slots indexed by their `mio` token.

use crate::app::ExchangeId;
use crate::http1::{Conn, Phase};
use crate::metrics::WorkerCounters;

/// The connections, in slots indexed by their token.
pub(super) struct Slots<'s> {
    pub(super) conns: Vec<Option<Conn>>,
    pub(super) free: Vec<usize>,
    pub(super) open: usize,
    pub(super) serial: u64,
    /// Where connections are counted, and a request in flight on a closed one uncounted.
    metrics: &'s WorkerCounters,
    /// Deferred exchanges whose connection closed: the application is told at the end of
    /// the loop's turn (`Event::Disconnect`).
    pub(super) gone: Vec<ExchangeId>,
}

impl<'s> Slots<'s> {
    pub(super) fn new(metrics: &'s WorkerCounters) -> Slots<'s> {
        Slots {
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            serial: 0,
            metrics,
            gone: Vec::new(),
        }
    }

    pub(super) fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    pub(super) fn insert(&mut self, conn: Conn) -> usize {
        self.open += 1;
        self.metrics.connection_opened(self.open);
        match self.free.pop() {
            Some(i) => {
                self.conns[i] = Some(conn);
                i
            }
            None => {
                self.conns.push(Some(conn));
                self.conns.len() - 1
            }
        }
    }

    /// Whether some connection could be closed to make room (see `Worker::reclaim_idle`).
    pub(super) fn any_reclaimable(&self) -> bool {
        self.conns.iter().flatten().any(Conn::is_reclaimable)
    }

    pub(super) fn remove(&mut self, slot: usize) {
        if let Some(c) = self.conns.get_mut(slot).and_then(Option::take) {
            if let Phase::Streaming { pipe, .. } = &c.phase {
                // Never leave an application thread waiting for bytes that cannot come.
                pipe.fail("the connection closed");
            }
            if c.in_flight {
                self.metrics.request_ended();
            }
            if let Phase::Deferred(st) = &c.phase {
                if !st.gone {
                    self.gone.push(st.id);
                }
            }
            if let Phase::WebSocket(s) = &c.phase {
                // A deferred application's WebSocket ended without a closing handshake.
                self.gone.extend(s.unreported());
            }
            drop(c);
            self.open -= 1;
            self.metrics.set_connections(self.open);
            self.free.push(slot);
        }
    }
}
