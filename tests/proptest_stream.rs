//! Property tests for the stream pieces: the SSE event scanner, the flush policy's bookkeeping
//! (`Coalescer`), and both behind the chunked decoder, driven the way the relay drives them but
//! without I/O (the request-side parsers have their own file).
//!
//! Every property compares the code under test with something computed independently: the
//! generator knows where each event ends, and the relay simulation when each byte arrived.

use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use ringgate::http::chunked::ChunkedDecoder;
use ringgate::stream::flush::{Coalescer, Decision, FlushMode, FlushPolicy};
use ringgate::stream::sse::EventScanner;

/// No regression files: this test may only add itself to the repository.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------------------------------------
// Shared helpers
// ------------------------------------------------------------------------------------------------

/// Piece lengths for feeding a stream: the sizes are cycled until `total` is covered.
fn pieces(total: usize, sizes: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < total {
        let n = sizes[out.len() % sizes.len()].max(1).min(total - at);
        out.push(n);
        at += n;
    }
    out
}

/// Mostly tiny splits (1–7 bytes), sometimes larger ones.
fn split_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        3 => vec(1usize..=7, 1..16),
        1 => vec(prop_oneof![1usize..=7, 8usize..=600], 1..8),
    ]
}

/// Milliseconds between two pieces, cycled: often none, sometimes a little, sometimes long.
fn time_steps() -> impl Strategy<Value = Vec<u64>> {
    vec(
        prop_oneof![3 => Just(0u64), 2 => 1u64..=30, 1 => 50u64..=400],
        1..12,
    )
}

fn policy() -> impl Strategy<Value = FlushPolicy> {
    (any::<bool>(), 1usize..=1024, 0u64..=300).prop_map(|(immediate, threshold, ms)| FlushPolicy {
        mode: if immediate {
            FlushMode::Immediate
        } else {
            FlushMode::Coalesce
        },
        threshold,
        interval: Duration::from_millis(ms),
    })
}

// ------------------------------------------------------------------------------------------------
// Event streams
// ------------------------------------------------------------------------------------------------

/// One event: its lines without their ends, and for each line and the closing blank line whether
/// it ends in CRLF (else LF).
#[derive(Debug, Clone)]
struct GenEvent {
    lines: Vec<String>,
    crlf: Vec<bool>,
}

fn printable(max: usize) -> impl Strategy<Value = String> {
    vec(0x20u8..0x7f, 0..max).prop_map(|b| String::from_utf8(b).unwrap())
}

fn gen_event() -> impl Strategy<Value = GenEvent> {
    let data = prop_oneof![8 => printable(40), 1 => printable(700)];
    let event = ("[a-z_]{1,16}", vec(data, 0..=3), prop::bool::weighted(0.15)).prop_map(
        |(name, data, ping)| {
            let mut lines: Vec<String> = ping.then(|| ": ping".to_string()).into_iter().collect();
            lines.push(format!("event: {name}"));
            lines.extend(data.into_iter().map(|d| format!("data: {d}")));
            lines
        },
    );
    let lines = prop_oneof![1 => Just(vec![": ping".to_string()]), 8 => event];
    // All LF, all CRLF, or mixed line by line (which gives all four blank-line spellings).
    (lines, 0u8..3, vec(any::<bool>(), 6)).prop_map(|(lines, style, mixed)| GenEvent {
        crlf: (0..=lines.len())
            .map(|i| [false, true, mixed[i]][style as usize])
            .collect(),
        lines,
    })
}

/// A rendered stream and where each of its events ends.
#[derive(Debug)]
struct Stream {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Stream {
    fn new(events: &[GenEvent]) -> Stream {
        let (mut bytes, mut ends) = (Vec::new(), Vec::new());
        for e in events {
            let lines = e.lines.iter().map(String::as_str).chain([""]);
            for (line, &crlf) in lines.zip(&e.crlf) {
                bytes.extend_from_slice(line.as_bytes());
                bytes.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            ends.push(bytes.len());
        }
        Stream { bytes, ends }
    }

    /// `(start, end)` of each event.
    fn events(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied())
    }

    /// The last event end in `from + 1..=to`, if any.
    fn last_end_in(&self, from: usize, to: usize) -> Option<usize> {
        self.ends
            .iter()
            .rev()
            .copied()
            .find(|&e| e > from && e <= to)
    }
}

// ------------------------------------------------------------------------------------------------
// 1. The event scanner
// ------------------------------------------------------------------------------------------------

/// What the caller does with the held bytes after a scan.
#[derive(Debug, Clone)]
enum Consume {
    Keep,
    /// Every complete event.
    Ready,
    /// Some of the complete events (taken modulo `ready() + 1`).
    Part(usize),
    /// Past the complete events, as the relay does when one event fills the buffer (a `Part`
    /// when forcing is off or nothing lies past them): anywhere, everything held (what the relay
    /// cuts), or a single byte.
    Force(usize),
    ForceAll,
    ForceOne,
}

fn consume_plan() -> impl Strategy<Value = Vec<Consume>> {
    let c = prop_oneof![
        3 => Just(Consume::Keep),
        2 => Just(Consume::Ready),
        2 => any::<usize>().prop_map(Consume::Part),
        2 => any::<usize>().prop_map(Consume::Force),
        1 => Just(Consume::ForceAll),
        1 => Just(Consume::ForceOne),
    ];
    vec(c, 1..16)
}

/// What the scanner reported, and what it was fed and what was cut.
struct ScanRun {
    /// Bytes and `continued` flag of every event reported, in order.
    reports: Vec<(Vec<u8>, bool)>,
    consumed: Vec<u8>,
    held: Vec<u8>,
    /// Stream offsets of the cuts made past the complete events.
    forced: Vec<usize>,
}

fn run_scanner(
    s: &Stream,
    sizes: &[usize],
    plan: &[Consume],
    force: bool,
) -> Result<ScanRun, TestCaseError> {
    let mut sc = EventScanner::new();
    let mut run = ScanRun {
        reports: Vec::new(),
        consumed: Vec::new(),
        held: Vec::new(),
        forced: Vec::new(),
    };
    // `base` is the stream offset of `held[0]`; ready() and mid_event() are checked against the
    // generator's event ends after every scan and every cut.
    let check = |sc: &EventScanner, base: usize, held: usize| -> Result<(), TestCaseError> {
        let ready = s.last_end_in(base, base + held).map_or(0, |e| e - base);
        prop_assert_eq!(
            sc.ready(),
            ready,
            "ready() with {} held from offset {}",
            held,
            base
        );
        let inside = base != 0 && s.ends.binary_search(&base).is_err();
        prop_assert_eq!(
            sc.mid_event(),
            ready == 0 && inside,
            "mid_event() at offset {}",
            base
        );
        Ok(())
    };
    let (mut at, mut base) = (0, 0);
    for (k, n) in pieces(s.bytes.len(), sizes).into_iter().enumerate() {
        run.held.extend_from_slice(&s.bytes[at..at + n]);
        at += n;
        let (held, reports) = (&run.held, &mut run.reports);
        sc.scan(held, |f| {
            reports.push((held[f.range].to_vec(), f.continued))
        });
        check(&sc, base, run.held.len())?;
        let (ready, len) = (sc.ready(), run.held.len());
        let cut = match plan[k % plan.len()] {
            Consume::Keep => 0,
            Consume::Ready => ready,
            Consume::Force(x) if force && len > ready => ready + 1 + x % (len - ready),
            Consume::ForceAll if force && len > ready => len,
            Consume::ForceOne if force && len > ready => ready + 1,
            Consume::Part(x) | Consume::Force(x) => x % (ready + 1),
            Consume::ForceAll | Consume::ForceOne => ready,
        };
        if cut > ready {
            run.forced.push(base + cut);
        }
        sc.consumed(&run.held, cut);
        run.consumed.extend(run.held.drain(..cut));
        base += cut;
        check(&sc, base, run.held.len())?;
    }
    Ok(run)
}

/// What the scanner must report: each event whole, or, if it was cut, what followed its last cut.
fn expected_reports(s: &Stream, forced: &[usize]) -> Vec<(Vec<u8>, bool)> {
    s.events()
        .map(
            |(start, end)| match forced.iter().rev().find(|&&p| p > start && p < end) {
                Some(&p) => (s.bytes[p..end].to_vec(), true),
                None => (s.bytes[start..end].to_vec(), false),
            },
        )
        .collect()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn scanner_finds_every_event_under_any_split(
        events in vec(gen_event(), 1..30),
        sizes in split_sizes(),
        plan in consume_plan(),
    ) {
        let s = Stream::new(&events);
        let run = run_scanner(&s, &sizes, &plan, false)?;
        prop_assert!(run.forced.is_empty());
        prop_assert_eq!(run.reports, expected_reports(&s, &[]));
    }

    #[test]
    fn scanner_survives_cuts_inside_events(
        events in vec(gen_event(), 1..30),
        sizes in split_sizes(),
        plan in consume_plan(),
    ) {
        let s = Stream::new(&events);
        let run = run_scanner(&s, &sizes, &plan, true)?;
        prop_assert_eq!([run.consumed, run.held].concat(), s.bytes.clone());
        // One report per event, in order; a remainder marked `continued` exactly for the events
        // that were cut, holding the bytes after the last cut.
        prop_assert_eq!(run.reports, expected_reports(&s, &run.forced));
    }
}

// ------------------------------------------------------------------------------------------------
// 2. The relay without I/O: chunked decoding, scanning and flushing in one fixed buffer
// ------------------------------------------------------------------------------------------------

/// One write to the client.
#[derive(Debug)]
struct Write {
    /// Offset in the body of its first byte.
    start: usize,
    len: usize,
    at: Instant,
    /// Bytes held when it was decided.
    held: usize,
    /// Made at the end of the body rather than by the policy.
    last: bool,
}

/// A relay buffer of `cap` bytes driven like `stream::relay` drives it.
struct Sim {
    c: Coalescer,
    buf: Vec<u8>,
    held: usize,
    decoder: Option<ChunkedDecoder>,
    out: Vec<u8>,
    writes: Vec<Write>,
    /// Events reported by `arrived`, and how many of them were remainders.
    found: usize,
    continued: usize,
    /// Bytes written and bytes held each time the policy said to wait.
    settled: Vec<(usize, usize)>,
}

impl Sim {
    fn new(policy: FlushPolicy, cap: usize, event_stream: bool, chunked: bool) -> Sim {
        Sim {
            c: Coalescer::new(policy, cap, event_stream),
            buf: vec![0; cap],
            held: 0,
            decoder: chunked.then(ChunkedDecoder::new),
            out: Vec::new(),
            writes: Vec::new(),
            found: 0,
            continued: 0,
            settled: Vec::new(),
        }
    }

    fn done(&self) -> bool {
        self.decoder.as_ref().is_some_and(ChunkedDecoder::is_done)
    }

    /// Takes in a piece of the wire that arrived at `now`, in as many rounds as the room in the
    /// buffer requires; returns the flush deadline.
    fn arrive(&mut self, mut piece: &[u8], now: Instant) -> Result<Option<Instant>, TestCaseError> {
        let mut due = None;
        while !piece.is_empty() {
            prop_assert!(!self.done(), "bytes after the end of the body");
            let k = (self.buf.len() - self.held).min(piece.len());
            prop_assert!(k > 0, "the policy left the buffer full");
            let room = &mut self.buf[self.held..self.held + k];
            room.copy_from_slice(&piece[..k]);
            piece = &piece[k..];
            self.held += match &mut self.decoder {
                Some(d) => {
                    let r = d.decode_in_place(room);
                    prop_assert_eq!(r.error, None);
                    prop_assert_eq!(r.consumed, k);
                    r.data
                }
                None => k,
            };
            let (found, continued) = (&mut self.found, &mut self.continued);
            self.c.arrived(&self.buf[..self.held], now, |f| {
                *found += 1;
                *continued += usize::from(f.continued);
            });
            prop_assert_eq!(self.c.held(), self.held);
            if self.done() {
                // The relay stops reading; `finish` writes the rest.
                return Ok(None);
            }
            due = self.settle(now)?;
        }
        Ok(due)
    }

    /// Writes as long as the policy says so; returns the deadline it gives then.
    fn settle(&mut self, now: Instant) -> Result<Option<Instant>, TestCaseError> {
        let due = loop {
            match self.c.decide(now) {
                Decision::Flush(n) => self.flush(n, now, false)?,
                Decision::WaitUntil(t) => {
                    prop_assert!(t > now, "a deadline already past");
                    break Some(t);
                }
                Decision::Wait => break None,
            }
        };
        self.settled.push((self.out.len(), self.held));
        Ok(due)
    }

    fn flush(&mut self, n: usize, now: Instant, last: bool) -> Result<(), TestCaseError> {
        prop_assert!(
            n > 0 && n <= self.held,
            "flush of {} with {} held",
            n,
            self.held
        );
        let w = Write {
            start: self.out.len(),
            len: n,
            at: now,
            held: self.held,
            last,
        };
        self.writes.push(w);
        self.out.extend_from_slice(&self.buf[..n]);
        self.c.flushed(&self.buf[..self.held], n);
        self.buf.copy_within(n..self.held, 0);
        self.held -= n;
        Ok(())
    }

    /// The body ended: the complete events go out, and nothing may be left behind them.
    fn finish(&mut self, now: Instant) -> Result<(), TestCaseError> {
        prop_assert!(
            self.c.tail().is_empty(),
            "ended inside an event: {:?}",
            self.c.tail()
        );
        prop_assert_eq!(self.c.ready(), self.held);
        if self.held > 0 {
            self.flush(self.held, now, true)?;
        }
        Ok(())
    }

    /// Feeds `wire` in pieces, each `steps` (cycled) milliseconds after the previous one, and
    /// fires the flush timer in between as the relay's does. Returns each wire byte's arrival.
    fn run(
        &mut self,
        wire: &[u8],
        sizes: &[usize],
        steps: &[u64],
        t0: Instant,
    ) -> Result<Vec<Instant>, TestCaseError> {
        let (mut now, mut due, mut at) = (t0, None, 0);
        let mut arrivals = Vec::with_capacity(wire.len());
        for (k, n) in pieces(wire.len(), sizes).into_iter().enumerate() {
            let next = now + Duration::from_millis(steps[k % steps.len()]);
            while let Some(t) = due.filter(|&t| t <= next) {
                due = self.settle(t)?;
            }
            now = next;
            arrivals.resize(arrivals.len() + n, now);
            due = self.arrive(&wire[at..at + n], now)?;
            at += n;
        }
        self.finish(now)?;
        Ok(arrivals)
    }
}

/// Chunked coding with chunk sizes cycled from `sizes`; also returns the wire offset of each
/// payload byte.
fn encode_chunked(payload: &[u8], sizes: &[usize], upper: bool) -> (Vec<u8>, Vec<usize>) {
    let (mut wire, mut at) = (Vec::new(), Vec::with_capacity(payload.len()));
    for n in pieces(payload.len(), sizes) {
        let line = if upper {
            format!("{n:X}\r\n")
        } else {
            format!("{n:x}\r\n")
        };
        wire.extend_from_slice(line.as_bytes());
        let from = at.len();
        at.extend(wire.len()..wire.len() + n);
        wire.extend_from_slice(&payload[from..from + n]);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    (wire, at)
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(prop_oneof![2 => 1usize..=16, 1 => 1usize..=800], 1..8)
}

/// When each body byte was written.
fn written_at(s: &Sim, len: usize, t0: Instant) -> Vec<Instant> {
    let mut at = vec![t0; len];
    for w in &s.writes {
        at[w.start..w.start + w.len].fill(w.at);
    }
    at
}

/// How a stream travels: its chunking, the pieces the wire arrives in, and when.
#[derive(Debug, Clone)]
struct Feed {
    chunks: Vec<usize>,
    upper: bool,
    sizes: Vec<usize>,
    steps: Vec<u64>,
}

fn feed() -> impl Strategy<Value = Feed> {
    (chunk_sizes(), any::<bool>(), split_sizes(), time_steps()).prop_map(
        |(chunks, upper, sizes, steps)| Feed {
            chunks,
            upper,
            sizes,
            steps,
        },
    )
}

/// Whenever the policy says to wait, the whole events held (`whole(written, held)`) are fewer
/// than `threshold` bytes, and there are none in `Immediate` mode or before the first write.
fn check_settled(
    sim: &Sim,
    policy: FlushPolicy,
    whole: impl Fn(usize, usize) -> usize,
) -> Result<(), TestCaseError> {
    for &(written, held) in &sim.settled {
        let whole = whole(written, held);
        let at_once = written == 0 || policy.mode == FlushMode::Immediate;
        prop_assert!(
            whole < if at_once { 1 } else { policy.threshold },
            "{} bytes ready wait",
            whole
        );
    }
    Ok(())
}

/// Coalescing itself: in `Coalesce` mode, a write that is not the first, does not make room in a
/// full buffer, does not finish a split event, carries fewer than `threshold` bytes and does not
/// end the body waited until the oldest byte it carries (its first) had waited `interval`.
fn check_not_early(
    sim: &Sim,
    policy: FlushPolicy,
    arrived: &[Instant],
    starts_event: impl Fn(usize) -> bool,
) -> Result<(), TestCaseError> {
    if policy.mode == FlushMode::Immediate {
        return Ok(());
    }
    let cap = sim.buf.len();
    for w in sim.writes.iter().skip(1) {
        // The rest of a split event is due as soon as it is whole.
        let rest_of_split = !starts_event(w.start);
        if !w.last && !rest_of_split && w.held < cap && w.len < policy.threshold {
            prop_assert!(w.at >= arrived[w.start] + policy.interval, "early: {:?}", w);
        }
    }
    Ok(())
}

/// Runs the relay simulation over a chunked SSE stream; checks what holds whatever the timing.
/// Returns the simulation and the arrival of each body byte.
fn relay_stream(
    s: &Stream,
    f: &Feed,
    cap: usize,
    policy: FlushPolicy,
    t0: Instant,
) -> Result<(Sim, Vec<Instant>), TestCaseError> {
    let (wire, wire_at) = encode_chunked(&s.bytes, &f.chunks, f.upper);
    let mut sim = Sim::new(policy, cap, true, true);
    let arrivals = sim.run(&wire, &f.sizes, &f.steps, t0)?;
    // (e) The decoder saw the last chunk. (a) Every byte went out, in order.
    prop_assert!(sim.done());
    prop_assert_eq!(&sim.out, &s.bytes);
    // (b) A write takes every whole event held and ends at the last one; only a buffer filled
    // by part of one event is written without a boundary, and then all of it.
    for w in &sim.writes {
        match s.last_end_in(w.start, w.start + w.held) {
            Some(end) => prop_assert_eq!(w.start + w.len, end, "{:?}", w),
            None => prop_assert!(w.held == cap && w.len == cap, "{:?}", w),
        }
    }
    // The scanner inside reported each event once; remainders exactly for the events split.
    let split =
        |(start, end): (usize, usize)| sim.writes.iter().any(|w| w.start > start && w.start < end);
    prop_assert_eq!(sim.found, s.ends.len());
    prop_assert_eq!(sim.continued, s.events().filter(|&e| split(e)).count());
    Ok((sim, wire_at.into_iter().map(|i| arrivals[i]).collect()))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn relay_delivers_every_event_on_time(
        events in vec(gen_event(), 1..30),
        f in feed(),
        cap in 64usize..=512,
        policy in policy(),
    ) {
        let s = Stream::new(&events);
        let t0 = Instant::now();
        let (sim, arrived) = relay_stream(&s, &f, cap, policy, t0)?;
        check_not_early(&sim, policy, &arrived, |at| at == 0 || s.ends.contains(&at))?;
        check_settled(&sim, policy, |w, h| s.last_end_in(w, w + h).map_or(0, |e| e - w))?;
        let written = written_at(&sim, s.bytes.len(), t0);
        // (c) Timing, byte by byte. `last` is when the event's last byte arrived.
        for (i, (start, end)) in s.events().enumerate() {
            let last = arrived[end - 1];
            for x in start..end {
                match policy.mode {
                    // Nothing waits once its event is complete.
                    FlushMode::Immediate => prop_assert!(written[x] <= last, "event {} byte {}", i, x),
                    // Nothing waits past the end of its event and `interval` after the event's
                    // first byte arrived (the rest of a split event goes as soon as it is whole).
                    FlushMode::Coalesce => prop_assert!(
                        written[x] <= last.max(arrived[start] + policy.interval),
                        "event {} byte {}: written {:?} after t0, event complete {:?}, byte arrived {:?}",
                        i, x, written[x] - t0, last - t0, arrived[x] - t0
                    ),
                }
            }
            if policy.mode == FlushMode::Immediate || i == 0 {
                prop_assert_eq!(written[end - 1], last, "event {} was held back", i);
            }
        }
    }

    #[test]
    fn relay_coalesces_a_fast_stream(
        events in vec(gen_event(), 1..30),
        f in feed(),
        cap in 64usize..=512,
        threshold in 1usize..=600,
        interval in 1u64..=300,
    ) {
        let s = Stream::new(&events);
        let policy = FlushPolicy {
            mode: FlushMode::Coalesce,
            threshold,
            interval: Duration::from_millis(interval),
        };
        let f = Feed { steps: vec![0], ..f };
        let (sim, _) = relay_stream(&s, &f, cap, policy, Instant::now())?;
        // (d) Everything arrives at one instant, so no deadline ever passes (interval > 0), and a
        // write is one of: the first (1), the last at the end of the body (1), one of at least
        // `threshold` bytes (at most total / threshold of those), a cut inside an event larger
        // than the buffer (each writes `cap` bytes of it: (len - 1) / cap per such event), or a
        // full buffer holding fewer than `threshold` bytes of whole events. The last kind leaves
        // behind more than `cap - threshold` bytes of the next event, and the next such write
        // lies past that event's end, so it happens at most once per event longer than
        // `cap - threshold`.
        let total = s.bytes.len();
        let lens: Vec<usize> = s.events().map(|(a, b)| b - a).collect();
        let cuts: usize = lens.iter().filter(|&&n| n > cap).map(|n| (n - 1) / cap).sum();
        let long = lens.iter().filter(|&&n| n > cap.saturating_sub(threshold)).count();
        let bound = 2 + total / threshold + cuts + long;
        prop_assert!(
            sim.writes.len() <= bound,
            "{} writes for {} bytes in {} events (threshold {}, buffer {}): bound {}",
            sim.writes.len(), total, lens.len(), threshold, cap, bound
        );
    }
}

// ------------------------------------------------------------------------------------------------
// 3. Bodies that are not event streams
// ------------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn coalescer_passes_other_bodies_through(
        body in vec(any::<u8>(), 0..3000),
        sizes in split_sizes(),
        steps in time_steps(),
        cap in 1usize..=512,
        policy in policy(),
    ) {
        let t0 = Instant::now();
        let mut sim = Sim::new(policy, cap, false, false);
        let arrived = sim.run(&body, &sizes, &steps, t0)?;
        prop_assert_eq!(&sim.out, &body);
        prop_assert_eq!((sim.found, sim.continued), (0, 0));
        // Every byte is ready: a write takes all that is held, the first at once, none waits
        // beyond `interval` (in `Immediate` mode, not at all), and none is early.
        check_not_early(&sim, policy, &arrived, |_| true)?;
        check_settled(&sim, policy, |_, held| held)?;
        let written = written_at(&sim, body.len(), t0);
        for w in &sim.writes {
            prop_assert_eq!(w.len, w.held);
        }
        for x in 0..body.len() {
            let limit = match policy.mode {
                FlushMode::Immediate => arrived[x],
                FlushMode::Coalesce if x == 0 => arrived[x],
                FlushMode::Coalesce => arrived[x] + policy.interval,
            };
            prop_assert!(written[x] <= limit, "byte {}", x);
        }
    }
}

/// Found by the properties above: a cut one byte past complete events (`ready() > 0`) into an
/// event that begins with `\r` made the scanner pair that `\r` with the previous event's final
/// `\n`, so the cut event "ended" one byte early. The relay itself only cuts past `ready()` when
/// it is 0, but the scanner must not depend on that.
#[test]
fn scanner_cut_right_after_complete_events() {
    let held = b"data: 1\n\n\r\n\ndata: 2\n\n";
    let mut sc = EventScanner::new();
    let mut reports = Vec::new();
    sc.scan(&held[..10], |f| {
        reports.push((held[f.range].to_vec(), f.continued))
    });
    assert_eq!(sc.ready(), 9);
    sc.consumed(&held[..10], 10);
    let rest = &held[10..];
    sc.scan(rest, |f| {
        reports.push((rest[f.range].to_vec(), f.continued))
    });
    // The event `\r\n\n` was cut after its `\r`: its remainder is `\n\n`.
    let want = [
        (&b"data: 1\n\n"[..], false),
        (b"\n\n", true),
        (b"data: 2\n\n", false),
    ];
    assert_eq!(reports, want.map(|(b, c)| (b.to_vec(), c)));
}
