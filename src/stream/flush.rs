//! When the relay writes to the client: the flush policy, as pure logic.
//!
//! Two ways to get this wrong are known. Writing once per event costs a syscall and a packet per
//! token. Writing only once a threshold has piled up (the first design of the gateway ringgate
//! descends from) starves short answers: they sit in the buffer until the stream ends. So the
//! first event goes out at once (time to first token is never taxed); after that the relay writes
//! when `threshold` bytes of complete events are waiting, or when the oldest unflushed byte has
//! waited `interval`, whichever comes first. Cuts fall on event boundaries (the bytes of an
//! event still arriving go out with its end); an event is split only when it alone fills the
//! buffer, and the rest of a split event goes out as soon as it is complete. `Immediate` mode
//! writes every event as it completes.
//!
//! [`Coalescer`] keeps the bookkeeping of one relay buffer (how much is held, how much is whole
//! events, since when it waits) and answers with a [`Decision`]; the relay does the I/O. Time is
//! passed in, so every rule can be tested without a clock.

use std::ops::Range;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::sse::{EventScanner, Found};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlushMode {
    Coalesce,
    Immediate,
}

#[derive(Clone, Copy, Debug)]
pub struct FlushPolicy {
    pub mode: FlushMode,
    /// Complete events of at least this many bytes are written without waiting.
    pub threshold: usize,
    /// No byte waits longer than this once it is part of a complete event.
    pub interval: Duration,
}

/// What the relay should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write the first `n` held bytes.
    Flush(usize),
    /// Nothing to write before this instant, unless more bytes arrive.
    WaitUntil(Instant),
    /// Nothing to write until more bytes arrive.
    Wait,
}

/// The state of one relay buffer.
#[derive(Debug)]
pub struct Coalescer {
    policy: FlushPolicy,
    capacity: usize,
    /// `None` for bodies that are not event streams: every byte of those is ready.
    scanner: Option<EventScanner>,
    held: usize,
    committed: bool,
    /// When the oldest byte held arrived.
    oldest: Option<Instant>,
    /// When the first byte after the complete events arrived.
    tail_since: Option<Instant>,
    /// The ready bytes begin with the rest of an event the client has only part of.
    ends_split: bool,
}

impl Coalescer {
    pub fn new(policy: FlushPolicy, capacity: usize, event_stream: bool) -> Coalescer {
        Coalescer {
            policy,
            capacity,
            scanner: event_stream.then(EventScanner::new),
            held: 0,
            committed: false,
            oldest: None,
            tail_since: None,
            ends_split: false,
        }
    }

    pub fn is_event_stream(&self) -> bool {
        self.scanner.is_some()
    }

    pub fn held(&self) -> usize {
        self.held
    }

    /// Held bytes that may be written: whole events, or everything for other bodies.
    pub fn ready(&self) -> usize {
        self.scanner.as_ref().map_or(self.held, EventScanner::ready)
    }

    /// Whether anything was written yet.
    pub fn committed(&self) -> bool {
        self.committed
    }

    /// Whether the client holds the first part of an event that was split; nothing else may be
    /// written to it before that event's end.
    pub fn mid_event(&self) -> bool {
        self.scanner.as_ref().is_some_and(EventScanner::mid_event)
    }

    /// `held` is everything held now; the bytes past what was held before arrived at `now`.
    /// `on_event` sees each event completed by them.
    pub fn arrived(&mut self, held: &[u8], now: Instant, mut on_event: impl FnMut(Found)) {
        debug_assert!(held.len() <= self.capacity);
        if held.len() == self.held {
            return;
        }
        self.held = held.len();
        self.oldest.get_or_insert(now);
        if let Some(scanner) = &mut self.scanner {
            let ready_before = scanner.ready();
            let ends_split = &mut self.ends_split;
            scanner.scan(held, |found| {
                *ends_split |= found.continued;
                on_event(found)
            });
            self.tail_since = if scanner.ready() == ready_before {
                self.tail_since.or(Some(now))
            } else if scanner.ready() < held.len() {
                Some(now)
            } else {
                None
            };
        }
    }

    pub fn decide(&self, now: Instant) -> Decision {
        let ready = self.ready();
        if self.held == self.capacity {
            // Room is needed: write the whole events, or cut the one event that fills it all.
            return Decision::Flush(if ready > 0 { ready } else { self.held });
        }
        if ready == 0 {
            return Decision::Wait;
        }
        if !self.committed || self.policy.mode == FlushMode::Immediate || self.ends_split {
            // The first event, every event, or the end of one the client has only part of
            // (it can do nothing with that part until the rest arrives).
            return Decision::Flush(ready);
        }
        if ready >= self.policy.threshold {
            return Decision::Flush(ready);
        }
        let due = self.oldest.unwrap_or(now) + self.policy.interval;
        if now >= due {
            Decision::Flush(ready)
        } else {
            Decision::WaitUntil(due)
        }
    }

    /// The first `cut` bytes of `held` (the bytes held before the cut) reached the client.
    pub fn flushed(&mut self, held: &[u8], cut: usize) {
        debug_assert!(cut <= self.held && held.len() == self.held);
        if let Some(scanner) = &mut self.scanner {
            scanner.consumed(held, cut);
        }
        self.held -= cut;
        self.committed = true;
        self.ends_split = false;
        if self.held == 0 {
            self.oldest = None;
            self.tail_since = None;
        } else {
            self.oldest = self.tail_since.or(self.oldest);
        }
    }

    /// The bytes behind the complete events: an event cut short if the body ends now.
    pub fn tail(&self) -> Range<usize> {
        self.ready()..self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: usize = 64;

    fn policy(mode: FlushMode) -> FlushPolicy {
        FlushPolicy {
            mode,
            threshold: 32,
            interval: Duration::from_millis(120),
        }
    }

    /// A coalescer with its own copy of the held bytes, driven like the relay drives it.
    struct Sim {
        c: Coalescer,
        held: Vec<u8>,
        out: Vec<u8>,
        writes: Vec<usize>,
        events: usize,
    }

    impl Sim {
        fn new(mode: FlushMode, event_stream: bool) -> Sim {
            Sim {
                c: Coalescer::new(policy(mode), CAP, event_stream),
                held: Vec::new(),
                out: Vec::new(),
                writes: Vec::new(),
                events: 0,
            }
        }

        fn push(&mut self, bytes: &[u8], now: Instant) -> Decision {
            self.held.extend_from_slice(bytes);
            let mut n = 0;
            self.c.arrived(&self.held, now, |_| n += 1);
            self.events += n;
            self.c.decide(now)
        }

        fn flush(&mut self, cut: usize) {
            self.c.flushed(&self.held, cut);
            self.out.extend(self.held.drain(..cut));
            self.writes.push(cut);
        }

        /// Flushes as long as the policy says so; returns what it says then.
        fn settle(&mut self, now: Instant) -> Decision {
            loop {
                match self.c.decide(now) {
                    Decision::Flush(n) => self.flush(n),
                    other => return other,
                }
            }
        }
    }

    #[test]
    fn the_first_event_goes_out_at_once() {
        let t = Instant::now();
        for mode in [FlushMode::Coalesce, FlushMode::Immediate] {
            let mut s = Sim::new(mode, true);
            assert_eq!(s.push(b"event: a\ndata: {}\n", t), Decision::Wait);
            assert_eq!(s.push(b"\n", t), Decision::Flush(19));
        }
    }

    #[test]
    fn later_events_wait_for_the_interval_then_go_together() {
        let t = Instant::now();
        let mut s = Sim::new(FlushMode::Coalesce, true);
        s.push(b"data: 1\n\n", t);
        s.settle(t);
        let due = t + Duration::from_millis(10) + Duration::from_millis(120);
        assert_eq!(
            s.push(b"data: 2\n\n", t + Duration::from_millis(10)),
            Decision::WaitUntil(due)
        );
        // A later event does not push the deadline back.
        assert_eq!(
            s.push(b"data: 3\n\n", t + Duration::from_millis(50)),
            Decision::WaitUntil(due)
        );
        assert_eq!(
            s.c.decide(due - Duration::from_millis(1)),
            Decision::WaitUntil(due)
        );
        assert_eq!(s.c.decide(due), Decision::Flush(18));
    }

    #[test]
    fn immediate_mode_writes_every_event() {
        let t = Instant::now();
        let mut s = Sim::new(FlushMode::Immediate, true);
        for i in 0..5 {
            assert_eq!(
                s.push(format!("data: {i}\n\n").as_bytes(), t),
                Decision::Flush(9)
            );
            s.flush(9);
        }
    }

    #[test]
    fn the_threshold_writes_without_waiting() {
        let t = Instant::now();
        let mut s = Sim::new(FlushMode::Coalesce, true);
        s.push(b"data: 1\n\n", t);
        s.settle(t);
        for _ in 0..3 {
            assert!(matches!(s.push(b"data: 2\n\n", t), Decision::WaitUntil(_)));
        }
        assert_eq!(s.push(b"data: 2\n\n", t), Decision::Flush(36));
    }

    #[test]
    fn a_partial_event_waits_for_its_end_then_goes_at_once_if_overdue() {
        let t = Instant::now();
        let mut s = Sim::new(FlushMode::Coalesce, true);
        s.push(b"data: 1\n\n", t);
        s.settle(t);
        // The complete event and the start of the next wait; at the deadline only the complete one goes.
        s.push(b"data: 2\n\ndata: 3", t);
        assert_eq!(s.settle(t + Duration::from_millis(120)), Decision::Wait);
        assert_eq!(s.writes, [9, 9]);
        // The rest of event 3 arrives late: its first byte has waited long enough already.
        assert_eq!(
            s.push(b"\n\n", t + Duration::from_millis(300)),
            Decision::Flush(9)
        );
    }

    #[test]
    fn the_tail_keeps_its_own_age_after_a_flush() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Sim::new(FlushMode::Coalesce, true);
        s.push(b"data: 1\n\n", t);
        s.settle(t);
        s.push(b"data: 2\n\n", t);
        s.push(b"data: 3", t + ms(100));
        s.settle(t + ms(120));
        s.push(b"\n\n", t + ms(150));
        // Event 3 began at 100 ms: it is due at 220 ms, not 120 ms after its end.
        assert_eq!(s.settle(t + ms(150)), Decision::WaitUntil(t + ms(220)));
    }

    #[test]
    fn an_event_larger_than_the_buffer_is_split_and_nothing_else_is() {
        let t = Instant::now();
        let mut s = Sim::new(FlushMode::Coalesce, true);
        s.push(b"data: 1\n\n", t);
        s.settle(t);
        let big = [b"data: ".as_slice(), &[b'x'; 80], b"\n\n"].concat();
        s.push(b"data: 2\n\n", t);
        // 9 whole bytes, then the big event fills the buffer: only the whole event is written.
        assert_eq!(s.push(&big[..CAP - 9], t), Decision::Flush(9));
        s.flush(9);
        assert!(!s.c.mid_event());
        s.push(&big[CAP - 9..CAP], t);
        assert_eq!(s.c.decide(t), Decision::Flush(CAP));
        s.flush(CAP);
        assert!(s.c.mid_event());
        // The rest of the split event goes at once, however small: the client waits for it.
        assert!(big.len() - CAP < 32);
        assert_eq!(s.push(&big[CAP..], t), Decision::Flush(big.len() - CAP));
        s.flush(big.len() - CAP);
        assert!(!s.c.mid_event());
        assert_eq!(s.events, 3);
        assert_eq!(s.out, [&b"data: 1\n\ndata: 2\n\n"[..], &big].concat());
    }

    #[test]
    fn other_bodies_are_all_ready() {
        let t = Instant::now();
        let mut s = Sim::new(FlushMode::Coalesce, false);
        assert_eq!(s.push(b"{\"a\":", t), Decision::Flush(5));
        s.flush(5);
        assert!(matches!(s.push(b"1}", t), Decision::WaitUntil(_)));
        assert_eq!(s.c.tail(), 2..2);
    }

    #[test]
    fn a_full_buffer_of_whole_events_is_written_even_before_the_deadline() {
        let t = Instant::now();
        let mut s = Sim::new(FlushMode::Coalesce, true);
        s.push(b"data: 1\n\n", t);
        s.settle(t);
        let mut sim_policy = policy(FlushMode::Coalesce);
        sim_policy.threshold = usize::MAX;
        s.c.policy = sim_policy;
        let fill = [b"data: ".as_slice(), &[b'y'; CAP - 8], b"\n\n"].concat();
        assert_eq!(s.push(&fill, t), Decision::Flush(CAP));
    }
}
