//! The values a worker's metrics are made of: counters, gauges and histograms that one worker
//! writes and the scrape reads from another thread.
//!
//! Each shard has a single writer, its worker, so an update is a relaxed load and store: no
//! locked read-modify-write on the request path, and no lock for the scrape, whose relaxed loads
//! see a value at most a moment old. A cell must never be written by two threads.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn add(&self, n: i64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// Upper bounds (in seconds) of the buckets of request-scale times: a cached answer in
/// milliseconds up to a long generation in minutes.
pub const REQUEST_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

/// Upper bounds (in seconds) of the buckets of the gateway's own time per request, which should
/// be tens of microseconds.
pub const OVERHEAD_SECONDS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
    1.0,
];

/// A histogram with fixed buckets; each bucket counts its own observations (the scrape makes
/// them cumulative).
#[derive(Debug)]
pub struct Histogram {
    bounds_ns: Box<[u64]>,
    /// One per bound, and one for +Inf.
    buckets: Box<[Counter]>,
    sum_ns: Counter,
}

/// What a histogram holds at one moment, summed over shards by the scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Observations per bucket (not cumulative), the last for +Inf.
    pub buckets: Vec<u64>,
    pub sum_ns: u64,
}

impl Histogram {
    pub fn new(bounds_seconds: &[f64]) -> Histogram {
        Histogram {
            bounds_ns: bounds_seconds.iter().map(|s| (s * 1e9) as u64).collect(),
            buckets: (0..=bounds_seconds.len())
                .map(|_| Counter::default())
                .collect(),
            sum_ns: Counter::default(),
        }
    }

    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Bounds are "less than or equal", as Prometheus' `le` says.
        let i = self.bounds_ns.partition_point(|&b| b < ns);
        self.buckets[i].add(1);
        self.sum_ns.add(ns);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self.buckets.iter().map(Counter::get).collect(),
            sum_ns: self.sum_ns.get(),
        }
    }
}

impl HistogramSnapshot {
    /// Adds another shard's snapshot of a histogram with the same buckets.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; other.buckets.len()];
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum_ns += other.sum_ns;
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_upper_inclusive_and_the_last_is_infinity() {
        let h = Histogram::new(&[0.001, 0.01]);
        for ms in [0, 1, 2, 10, 11, 5000] {
            h.observe(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![2, 2, 2]);
        assert_eq!(s.count(), 6);
        assert_eq!(s.sum_ns, 5_024_000_000);
        let mut total = HistogramSnapshot::default();
        total.merge(&s);
        total.merge(&s);
        assert_eq!(
            (total.buckets, total.sum_ns),
            (vec![4, 4, 4], 10_048_000_000)
        );
    }

    #[test]
    fn counters_and_gauges() {
        let (c, g) = (Counter::default(), Gauge::default());
        c.add(2);
        c.add(3);
        g.add(1);
        g.add(-2);
        assert_eq!((c.get(), g.get()), (5, -1));
    }

    #[test]
    fn bounds_ascend() {
        for bounds in [REQUEST_SECONDS, OVERHEAD_SECONDS] {
            assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
