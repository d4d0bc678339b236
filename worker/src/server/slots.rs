//! The open connections, in slots indexed by their `mio` token.

use crate::http1::{Conn, Phase};

/// The connections, in slots indexed by their token.
#[derive(Default)]
pub(super) struct Slots {
    pub(super) conns: Vec<Option<Conn>>,
    pub(super) free: Vec<usize>,
    pub(super) open: usize,
    pub(super) serial: u64,
}

impl Slots {
    pub(super) fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    pub(super) fn insert(&mut self, conn: Conn) -> usize {
        self.open += 1;
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
            drop(c);
            self.open -= 1;
            self.free.push(slot);
        }
    }
}
