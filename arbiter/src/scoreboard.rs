//! The scoreboard: one shared anonymous mapping, created before the first fork, holding a
//! slot per worker (pid, generation, last heartbeat on the monotonic clock, requests served,
//! open connections, state). Workers write their own slot; the arbiter reads all of them.
//! This replaces gunicorn's temporary file per worker (one `fchmod` per heartbeat).
//!
//! Each slot also holds the worker's [`WorkerCounters`] (what `/metrics` shows), and a
//! header before the slots holds what the arbiter publishes about itself ([`ArbiterState`])
//! and the counters of the workers that are gone ([`Scoreboard::release`] folds a slot's
//! counters into them under a sequence lock, so that a reader never sees a sum go down).

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use ferrocorn_worker::{Snapshot, Supervisor, WorkerCounters, WorkerState, WorkerStatus};
use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use nix::time::{clock_gettime, ClockId};

use crate::error::{system, ArbiterError};

/// How many bytes of a worker's failure message the slot keeps.
pub const MESSAGE_CAPACITY: usize = 240;

/// How many slots the scoreboard holds: the most workers alive at once, old generations
/// included. The mapping is reserved, not committed: untouched pages cost nothing.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The most slots a scoreboard may have (about 5 GB of address space, reserved, not
/// committed): far beyond any machine's worker count (`workers` is at most 1024), and far
/// below what would overflow the mapping's size.
pub const MAX_CAPACITY: usize = 1 << 16;

/// Slot state values. `FREE` slots belong to nobody.
const FREE: u32 = 0;
const BOOTING: u32 = 1;
const SERVING: u32 = 2;
const STOPPING: u32 = 3;

/// One worker's slot: atomics only, so that no interleaving of the worker's writes and the
/// arbiter's reads is undefined behaviour. The message is written once by the worker just
/// before it exits and read by the arbiter after `waitpid`, which orders the two; a read
/// at any other time may only see a partial message.
#[repr(C)]
#[derive(Debug)]
pub struct Slot {
    pid: AtomicI32,
    state: AtomicU32,
    generation: AtomicU64,
    heartbeat_ns: AtomicU64,
    /// Since when every application thread has been stuck (0: not stalled).
    stalled_since_ns: AtomicU64,
    requests: AtomicU64,
    connections: AtomicU32,
    message_len: AtomicU32,
    message: [AtomicU8; MESSAGE_CAPACITY],
    /// What the worker counts for `/metrics`; folded into the header's totals on release.
    counters: WorkerCounters,
}

/// What the arbiter publishes about itself for the metrics process; written by the arbiter
/// only (`master/metrics.rs`).
#[repr(C)]
#[derive(Debug)]
pub struct ArbiterState {
    /// The arbiter's last loop turn, on CLOCK_MONOTONIC: `/healthz` says whether it is
    /// recent.
    pub heartbeat_ns: AtomicU64,
    /// Set from the moment TERM, INT or QUIT arrives: `/readyz` answers 503.
    pub stopping: AtomicU32,
    pub workers_desired: AtomicU64,
    pub reloads: AtomicU64,
    /// Workers replaced, by `RestartReason` (in the order of `RestartReason::ALL`): counted
    /// here directly when the arbiter reaps one, the only count there is.
    pub restarts: [AtomicU64; crate::master::RestartReason::ALL.len()],
}

impl ArbiterState {
    /// Counts one worker that ended for `reason`. The arbiter is the only writer, so a
    /// load and a store do.
    pub(crate) fn count_restart(&self, reason: crate::master::RestartReason) {
        let counter = &self.restarts[reason as usize];
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// How many workers ended for `reason` so far.
    pub(crate) fn restarts(&self, reason: crate::master::RestartReason) -> u64 {
        self.restarts[reason as usize].load(Ordering::Relaxed)
    }
}

/// The start of the mapping, before the slots.
#[repr(C)]
#[derive(Debug)]
struct Header {
    /// Odd while the arbiter folds a slot into `retired` (a sequence lock: readers retry).
    fold_seq: AtomicU64,
    /// One past the highest slot index ever claimed: readers look no further.
    slots_used: AtomicU64,
    arbiter: ArbiterState,
    /// The counters of every worker reaped so far.
    retired: WorkerCounters,
}

/// One worker in a [`Scoreboard::read_metrics`] reading.
#[derive(Debug, Clone)]
pub struct WorkerReading {
    pub index: usize,
    pub view: SlotView,
    pub counters: Snapshot,
}

/// What the arbiter reads from a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotView {
    pub pid: i32,
    pub generation: u64,
    pub state: WorkerState,
    /// Last heartbeat, nanoseconds on CLOCK_MONOTONIC.
    pub heartbeat_ns: u64,
    /// Since when every application thread has been busy without progress, on the same
    /// clock; 0 while the worker has a free thread (`WorkerStatus::app_stalled_for`).
    pub stalled_since_ns: u64,
    pub requests: u64,
    pub connections: u32,
}

impl Slot {
    fn claim(&self, generation: u64) {
        self.pid.store(0, Ordering::Relaxed);
        self.generation.store(generation, Ordering::Relaxed);
        self.heartbeat_ns.store(monotonic_ns(), Ordering::Relaxed);
        self.stalled_since_ns.store(0, Ordering::Relaxed);
        self.requests.store(0, Ordering::Relaxed);
        self.connections.store(0, Ordering::Relaxed);
        self.message_len.store(0, Ordering::Relaxed);
        self.state.store(BOOTING, Ordering::Release);
    }

    /// Records the worker's heartbeat: state, counters and the time now.
    pub fn beat(&self, status: WorkerStatus) {
        self.requests.store(status.requests, Ordering::Relaxed);
        self.connections
            .store(status.connections, Ordering::Relaxed);
        let now = monotonic_ns();
        let stalled_since = match u64::try_from(status.app_stalled_for.as_nanos()) {
            Ok(0) => 0,
            Ok(stalled) => now.saturating_sub(stalled).max(1),
            Err(_) => 1,
        };
        self.stalled_since_ns
            .store(stalled_since, Ordering::Relaxed);
        self.heartbeat_ns.store(now, Ordering::Relaxed);
        let state = match status.state {
            WorkerState::Booting => BOOTING,
            WorkerState::Serving => SERVING,
            WorkerState::Stopping => STOPPING,
        };
        self.state.store(state, Ordering::Release);
    }

    /// Stores why the worker failed, truncated to [`MESSAGE_CAPACITY`] bytes on a character
    /// boundary. Meant to be called once, by the worker, just before it exits.
    pub fn set_message(&self, message: &str) {
        let bytes = message.as_bytes();
        let mut len = bytes.len().min(MESSAGE_CAPACITY);
        while !message.is_char_boundary(len) {
            len -= 1;
        }
        for (cell, &byte) in self.message.iter().zip(&bytes[..len]) {
            cell.store(byte, Ordering::Relaxed);
        }
        // Publishes the bytes above to whoever reads the length with Acquire.
        self.message_len.store(len as u32, Ordering::Release);
    }

    /// The failure message the worker left, if any.
    pub fn message(&self) -> Option<String> {
        let len = (self.message_len.load(Ordering::Acquire) as usize).min(MESSAGE_CAPACITY);
        if len == 0 {
            return None;
        }
        let bytes: Vec<u8> = self.message[..len]
            .iter()
            .map(|cell| cell.load(Ordering::Relaxed))
            .collect();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    pub fn view(&self) -> SlotView {
        let state = match self.state.load(Ordering::Acquire) {
            SERVING => WorkerState::Serving,
            STOPPING => WorkerState::Stopping,
            _ => WorkerState::Booting,
        };
        SlotView {
            pid: self.pid.load(Ordering::Relaxed),
            generation: self.generation.load(Ordering::Relaxed),
            state,
            heartbeat_ns: self.heartbeat_ns.load(Ordering::Relaxed),
            stalled_since_ns: self.stalled_since_ns.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
        }
    }
}

/// The shared mapping. Cloned into every worker by `fork`; unmapped when the arbiter drops it.
#[derive(Debug)]
pub struct Scoreboard {
    header: NonNull<Header>,
    slots: NonNull<Slot>,
    capacity: usize,
    /// Which slots the arbiter has handed out (arbiter-side bookkeeping only).
    used: Vec<bool>,
}

impl Scoreboard {
    /// Maps `capacity` (at least 1, at most [`MAX_CAPACITY`]) zeroed slots shared with every
    /// child forked afterwards. Fails when `capacity` is above the maximum or mmap fails.
    pub fn new(capacity: usize) -> Result<Scoreboard, ArbiterError> {
        let capacity = capacity.max(1);
        let bytes = Some(capacity)
            .filter(|&slots| slots <= MAX_CAPACITY)
            .and_then(|slots| std::mem::size_of::<Slot>().checked_mul(slots))
            .and_then(|slots| slots.checked_add(SLOTS_OFFSET))
            .and_then(NonZeroUsize::new)
            .ok_or(ArbiterError::TooManyWorkers {
                requested: capacity,
                limit: MAX_CAPACITY,
            })?;
        // SAFETY: a fresh anonymous mapping aliases nothing; zeroed memory is a valid
        // `Header` and `Slot` (all atomics zero, state FREE, empty message, empty counters);
        // `bytes` was computed without overflow, so the mapping holds the header and
        // `capacity` whole slots after it. NORESERVE: the pages of unused slots and status
        // counters are never touched, and need no swap set aside.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                bytes,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED | MapFlags::MAP_NORESERVE,
            )
        }
        .map_err(|e| system("mmap", e))?;
        // SAFETY: SLOTS_OFFSET is within the mapping (added to its size above) and a
        // multiple of `Slot`'s alignment; the mapping is page-aligned.
        let slots = unsafe { ptr.cast::<u8>().add(SLOTS_OFFSET) };
        Ok(Scoreboard {
            header: ptr.cast(),
            slots: slots.cast(),
            capacity,
            used: vec![false; capacity],
        })
    }

    /// How many slots exist.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Hands out a free slot for a worker of `generation`, or `None` when all are used.
    pub fn claim(&mut self, generation: u64) -> Option<usize> {
        let index = self.used.iter().position(|used| !used)?;
        self.used[index] = true;
        self.slot(index).claim(generation);
        self.header()
            .slots_used
            .fetch_max(index as u64 + 1, Ordering::Release);
        Some(index)
    }

    /// Records the pid of the worker that owns slot `index` (after fork, in the arbiter).
    pub fn set_pid(&self, index: usize, pid: i32) {
        self.slot(index).pid.store(pid, Ordering::Relaxed);
    }

    /// Returns slot `index` to the pool once its worker is reaped (or was never started):
    /// its counters are added to the totals of the workers gone and zeroed, under the
    /// sequence lock, so that a reader sees them either in the slot or in the totals.
    pub fn release(&mut self, index: usize) {
        if index >= self.capacity {
            return;
        }
        let header = self.header();
        let slot = self.slot(index);
        let seq = header.fold_seq.load(Ordering::Relaxed);
        header
            .fold_seq
            .store(seq.wrapping_add(1), Ordering::Relaxed);
        // Readers that see the counters change also see the odd sequence number.
        fence(Ordering::Release);
        slot.counters.add_counters_to(&header.retired);
        slot.counters.clear();
        slot.state.store(FREE, Ordering::Relaxed);
        header
            .fold_seq
            .store(seq.wrapping_add(2), Ordering::Release);
        self.used[index] = false;
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a `Header` and lives as long as `self`.
        unsafe { self.header.as_ref() }
    }

    /// What the arbiter publishes about itself.
    pub fn arbiter_state(&self) -> &ArbiterState {
        &self.header().arbiter
    }

    /// The counters of every worker, those gone included, summed; and each live worker's
    /// slot and own counters. A consistent reading: taken again if the arbiter folded a
    /// slot meanwhile. For the metrics process; never blocks the arbiter.
    pub fn read_metrics(&self) -> (Snapshot, Vec<WorkerReading>) {
        let header = self.header();
        loop {
            let seq = header.fold_seq.load(Ordering::Acquire);
            if seq % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            let mut totals = Snapshot::default();
            header.retired.read_into(&mut totals);
            let used = header.slots_used.load(Ordering::Acquire);
            let used = usize::try_from(used)
                .unwrap_or(usize::MAX)
                .min(self.capacity);
            let mut workers = Vec::new();
            for index in 0..used {
                let slot = self.slot(index);
                if slot.state.load(Ordering::Relaxed) == FREE {
                    continue;
                }
                let mut counters = Snapshot::default();
                slot.counters.read_into(&mut counters);
                slot.counters.read_into(&mut totals);
                workers.push(WorkerReading {
                    index,
                    view: slot.view(),
                    counters,
                });
            }
            fence(Ordering::Acquire);
            if header.fold_seq.load(Ordering::Relaxed) == seq {
                return (totals, workers);
            }
        }
    }

    /// The slot at `index`. Panics never: an index out of range yields the last slot, which
    /// callers never do (indices come from `claim`).
    pub fn slot(&self, index: usize) -> &Slot {
        let index = index.min(self.capacity - 1);
        // SAFETY: `index < capacity` and the mapping holds `capacity` slots for as long as
        // `self` lives.
        unsafe { &*self.slots.as_ptr().add(index) }
    }

    /// A `Supervisor` for the worker in slot `index`, to be used in that worker's process.
    pub fn supervisor(
        &self,
        index: usize,
        reopen_logs: Option<Arc<dyn Fn() + Send + Sync>>,
    ) -> SlotSupervisor<'_> {
        SlotSupervisor {
            slot: self.slot(index),
            reopen_logs,
        }
    }
}

impl Drop for Scoreboard {
    fn drop(&mut self) {
        let bytes = SLOTS_OFFSET + std::mem::size_of::<Slot>() * self.capacity;
        // SAFETY: the mapping was created by `new` with this length and nothing borrows it
        // once the scoreboard is dropped.
        let _ = unsafe { munmap(self.header.cast(), bytes) };
    }
}

/// Where the slots start in the mapping: after the header, aligned for a `Slot`.
const SLOTS_OFFSET: usize = std::mem::size_of::<Header>().next_multiple_of(64);
const _: () = assert!(std::mem::align_of::<Slot>() <= 64 && std::mem::align_of::<Header>() <= 64);

/// The worker's side: heartbeats go to its slot, log reopening to the binary's hook.
pub struct SlotSupervisor<'a> {
    slot: &'a Slot,
    reopen_logs: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for SlotSupervisor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotSupervisor")
            .field("slot", &self.slot.view())
            .finish()
    }
}

impl Supervisor for SlotSupervisor<'_> {
    fn heartbeat(&self, status: WorkerStatus) {
        self.slot.beat(status);
    }

    fn counters(&self) -> Option<&WorkerCounters> {
        Some(&self.slot.counters)
    }

    fn reopen_logs(&self) {
        if let Some(reopen) = &self.reopen_logs {
            reopen();
        }
    }
}

/// Nanoseconds on CLOCK_MONOTONIC, the same clock in every process of the machine.
pub fn monotonic_ns() -> u64 {
    match clock_gettime(ClockId::CLOCK_MONOTONIC) {
        Ok(now) => (now.tv_sec() as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(now.tv_nsec() as u64),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_is_seen_across_fork() {
        let mut board = Scoreboard::new(4).unwrap();
        let index = board.claim(7).unwrap();
        let before = board.slot(index).view();
        assert_eq!(before.state, WorkerState::Booting);
        assert_eq!(before.generation, 7);
        // SAFETY: the test process is single-threaded here as far as the child cares: the
        // child only touches the mapping and exits with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                board.supervisor(index, None).heartbeat(WorkerStatus {
                    state: WorkerState::Serving,
                    requests: 42,
                    connections: 3,
                    app_stalled_for: std::time::Duration::from_secs(5),
                });
                board.slot(index).set_message("boom: ünïcode");
                // SAFETY: _exit skips destructors and atexit handlers of the test harness.
                unsafe { nix::libc::_exit(0) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                nix::sys::wait::waitpid(child, None).unwrap();
            }
        }
        let after = board.slot(index).view();
        assert_eq!(after.state, WorkerState::Serving);
        assert_eq!(after.requests, 42);
        assert_eq!(after.connections, 3);
        assert!(after.heartbeat_ns >= before.heartbeat_ns);
        assert_eq!(before.stalled_since_ns, 0);
        assert_eq!(after.heartbeat_ns - after.stalled_since_ns, 5_000_000_000);
        assert_eq!(
            board.slot(index).message().as_deref(),
            Some("boom: ünïcode")
        );
    }

    #[test]
    fn slots_are_reused_after_release_and_run_out() {
        let mut board = Scoreboard::new(2).unwrap();
        let a = board.claim(1).unwrap();
        let b = board.claim(1).unwrap();
        assert_ne!(a, b);
        assert_eq!(board.claim(1), None);
        board.release(a);
        assert_eq!(board.claim(2), Some(a));
        assert_eq!(board.slot(a).message(), None);
    }

    /// Bug: the mapping's size was `size_of::<Slot>() * capacity` unchecked; a capacity
    /// that overflows it (a program passing a huge `workers` to `serve`) panicked in a debug
    /// build and, in a release build, mapped too little for the slots handed out.
    #[test]
    fn bug_a_capacity_whose_size_overflows_is_refused() {
        for capacity in [usize::MAX, usize::MAX / 2, MAX_CAPACITY + 1] {
            let error = Scoreboard::new(capacity).unwrap_err();
            assert!(
                matches!(error, ArbiterError::TooManyWorkers { limit, .. } if limit == MAX_CAPACITY),
                "{error}"
            );
        }
        assert_eq!(Scoreboard::new(0).unwrap().capacity(), 1);
    }

    #[test]
    fn long_message_is_cut_on_a_char_boundary() {
        let board = Scoreboard::new(1).unwrap();
        let long = "é".repeat(MESSAGE_CAPACITY);
        board.slot(0).set_message(&long);
        let kept = board.slot(0).message().unwrap();
        assert!(kept.len() <= MESSAGE_CAPACITY);
        assert!(kept.chars().all(|c| c == 'é'));
    }
}
