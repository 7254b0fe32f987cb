//! What one thread counted, and how the threads' counts add up.
//!
//! Each client thread keeps its own [`Stats`] (no sharing on the request path) and they are
//! merged once at the end. Latencies go into HDR histograms, so percentiles stay exact to three
//! significant digits however many requests a run makes, and merging is lossless.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::stream_check::StreamCheck;

/// Why a request failed. Never fatal to the run: each is counted by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The connection could not be opened.
    Connect,
    /// The connection failed (reset, broken pipe) mid-exchange.
    Reset,
    /// The peer closed the connection before the response was complete.
    ClosedEarly,
    /// No complete response before the request's deadline.
    Timeout,
    /// The response was not valid HTTP/1.1 (head, framing, bytes after its end).
    Malformed,
    /// A complete response with a status other than 2xx.
    Status(u16),
}

impl ErrorKind {
    /// The kinds every report lists, even at zero.
    pub const FIXED: [ErrorKind; 5] = [
        ErrorKind::Connect,
        ErrorKind::Reset,
        ErrorKind::ClosedEarly,
        ErrorKind::Timeout,
        ErrorKind::Malformed,
    ];

    pub fn name(self) -> String {
        match self {
            ErrorKind::Connect => "connect".into(),
            ErrorKind::Reset => "reset".into(),
            ErrorKind::ClosedEarly => "closed_early".into(),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::Malformed => "malformed".into(),
            ErrorKind::Status(code) => format!("status_{code}"),
        }
    }
}

/// A histogram of µs from 1 µs to an hour, three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Percentiles of a histogram, µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Summary {
    /// All zeros for an empty histogram.
    pub fn of(h: &Histogram<u64>) -> Summary {
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

/// Stream histograms and counts; the counts go into the report as they are.
#[derive(Clone, Debug)]
pub struct StreamTotals {
    pub ttfe: Histogram<u64>,
    pub event_delay: Histogram<u64>,
    pub counts: StreamCounts,
}

impl Default for StreamTotals {
    fn default() -> Self {
        StreamTotals {
            ttfe: histogram(),
            event_delay: histogram(),
            counts: StreamCounts::default(),
        }
    }
}

/// What the checks of a run's streams came to.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StreamCounts {
    pub deltas_expected: u64,
    pub deltas_received: u64,
    pub events: u64,
    /// Deltas that never arrived valid, and events of a message's frame (`content_block_start`,
    /// `content_block_stop`, `message_delta`) that a later one showed skipped.
    pub lost_events: u64,
    pub garbled_events: u64,
    pub error_events: u64,
    pub incomplete_streams: u64,
}

impl StreamCounts {
    fn add(&mut self, o: &StreamCounts) {
        self.deltas_expected += o.deltas_expected;
        self.deltas_received += o.deltas_received;
        self.events += o.events;
        self.lost_events += o.lost_events;
        self.garbled_events += o.garbled_events;
        self.error_events += o.error_events;
        self.incomplete_streams += o.incomplete_streams;
    }
}

/// One thread's counts.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Requests that ended (answered or failed) and were measured.
    pub requests: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Successful requests: send (or scheduled) time to the last byte.
    pub latency: Histogram<u64>,
    pub stream: StreamTotals,
    /// Socket reads that returned body bytes.
    pub reads: u64,
    /// Body payload bytes (after chunked decoding).
    pub body_bytes: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            requests: 0,
            errors: BTreeMap::new(),
            latency: histogram(),
            stream: StreamTotals::default(),
            reads: 0,
            body_bytes: 0,
        }
    }
}

/// One request as it ended.
pub struct Finished<'a> {
    /// When it was sent, or (open loop) when it should have been.
    pub start: Instant,
    pub end: Instant,
    /// Its times go into the histograms (it was sent in the measured window).
    pub timed: bool,
    /// The response status, if a head arrived.
    pub status: Option<u16>,
    /// The transport failure, if any (a non-2xx status is added from `status`).
    pub error: Option<ErrorKind>,
    pub reads: u64,
    pub body_bytes: u64,
    pub first_event: Option<Instant>,
    /// The stream's check, for streaming requests; its delays are drained.
    pub stream: Option<&'a mut StreamCheck>,
}

impl Stats {
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn error(&mut self, kind: ErrorKind) {
        *self.errors.entry(kind).or_insert(0) += 1;
    }

    /// Counts one measured request.
    pub fn record(&mut self, f: Finished<'_>) {
        self.requests += 1;
        self.reads += f.reads;
        self.body_bytes += f.body_bytes;
        let ok_status = f.status.is_some_and(|s| (200..300).contains(&s));
        let error = f.error.or(match f.status {
            Some(s) if !ok_status => Some(ErrorKind::Status(s)),
            _ => None,
        });
        if let Some(kind) = error {
            self.error(kind);
        }
        let mut complete = true;
        if let Some(check) = f.stream.filter(|_| ok_status) {
            let verdict = check.finish();
            complete = verdict.complete;
            let s = &mut self.stream;
            s.counts.add(&StreamCounts {
                deltas_expected: check.expected_deltas(),
                deltas_received: check.deltas,
                events: check.events,
                lost_events: verdict.lost,
                garbled_events: check.garbled,
                error_events: check.error_events,
                incomplete_streams: u64::from(!verdict.complete),
            });
            if f.timed {
                for &d in &check.delays {
                    s.event_delay.saturating_record(d);
                }
                if let Some(first) = f.first_event {
                    s.ttfe
                        .saturating_record(micros(first.saturating_duration_since(f.start)));
                }
            }
            check.delays.clear();
        }
        if error.is_none() && complete && f.timed {
            self.latency
                .saturating_record(micros(f.end.saturating_duration_since(f.start)));
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        self.requests += other.requests;
        for (&kind, &n) in &other.errors {
            *self.errors.entry(kind).or_insert(0) += n;
        }
        add(&mut self.latency, &other.latency);
        self.reads += other.reads;
        self.body_bytes += other.body_bytes;
        let (s, o) = (&mut self.stream, &other.stream);
        add(&mut s.ttfe, &o.ttfe);
        add(&mut s.event_delay, &o.event_delay);
        s.counts.add(&o.counts);
    }
}

fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Same bounds on both sides, so adding cannot fail.
    let _ = into.add(from);
}

pub fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let mut h = histogram();
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let s = Summary::of(&h);
        assert_eq!(
            (s.p50, s.p90, s.p99, s.p999, s.max),
            (500, 900, 990, 999, 1000)
        );
        assert_eq!(s.mean, 500.5);
        assert_eq!(Summary::of(&histogram()), Summary::default());
        // Three significant digits at any scale.
        let mut h = histogram();
        h.record(1_234_567).unwrap();
        assert!((1_234_000..=1_236_000).contains(&Summary::of(&h).p50));
    }

    fn finished(status: Option<u16>, error: Option<ErrorKind>, ms: u64) -> Finished<'static> {
        let start = Instant::now();
        Finished {
            start,
            end: start + Duration::from_millis(ms),
            timed: true,
            status,
            error,
            reads: 1,
            body_bytes: 10,
            first_event: None,
            stream: None,
        }
    }

    #[test]
    fn only_successes_have_a_latency_and_errors_are_by_kind() {
        let mut s = Stats::default();
        s.record(finished(Some(200), None, 2));
        s.record(finished(Some(429), None, 1));
        s.record(finished(Some(200), Some(ErrorKind::ClosedEarly), 1));
        s.record(finished(None, Some(ErrorKind::Connect), 0));
        assert_eq!(s.requests, 4);
        assert_eq!(s.errors_total(), 3);
        assert_eq!(s.errors[&ErrorKind::Status(429)], 1);
        assert_eq!(s.latency.len(), 1);
        assert!((1990..=2010).contains(&s.latency.max()));
        let mut total = Stats::default();
        total.merge(&s);
        total.merge(&s);
        assert_eq!((total.requests, total.reads, total.body_bytes), (8, 8, 80));
        assert_eq!(total.errors[&ErrorKind::Connect], 2);
        assert_eq!(total.latency.len(), 2);
    }

    #[test]
    fn a_stream_counts_its_check() {
        let mut check = StreamCheck::new(3, 25);
        check.feed(
            b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
            5,
        );
        let mut f = finished(Some(200), None, 3);
        f.first_event = Some(f.start + Duration::from_micros(700));
        f.stream = Some(&mut check);
        let mut s = Stats::default();
        s.record(f);
        let t = &s.stream.counts;
        assert_eq!(
            (t.deltas_expected, t.lost_events, t.incomplete_streams),
            (3, 3, 1)
        );
        assert_eq!((t.events, t.garbled_events), (1, 0));
        assert!((699..=701).contains(&s.stream.ttfe.max()));
        // Incomplete: no latency; not an HTTP error either.
        assert_eq!((s.latency.len(), s.errors_total()), (0, 0));
        assert_eq!(ErrorKind::Status(502).name(), "status_502");
        assert_eq!(ErrorKind::ClosedEarly.name(), "closed_early");
    }
}
