//! The gateway's metrics: per-worker shards that the request path writes without locks, summed
//! into the Prometheus text format when the admin listener is scraped.
//!
//! A [`Shard`] is a worker's: only that worker writes it (see [`cell`]), the scrape reads all of
//! them from the admin thread. Its labelled families are written through the worker's
//! [`Recorder`], which finds a label set's value without a lock ([`family`]). Shards live as long
//! as the gateway, so a reload never resets a counter.

pub mod cell;
pub mod family;
mod scrape;
mod text;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustc_hash::FxHashSet;

use cell::{Counter, Gauge, Histogram, OVERHEAD_SECONDS, REQUEST_SECONDS};
use family::{published, Family, Published};
pub use scrape::{render, Scrape};

use crate::exchange::Summary;
use crate::upstream::pool::PoolCounters;

/// Model ids a worker labels its metrics with before it says `other`: clients choose them, and
/// a pattern such as `claude-*` lets any through.
const MAX_MODELS: usize = 100;
/// A model id longer than this is labelled `other` (real ids are a few dozen bytes).
const MAX_MODEL_LABEL: usize = 128;

/// Tokens by kind, as the upstream reported them.
#[derive(Debug, Default)]
pub struct Tokens {
    pub input: Counter,
    pub output: Counter,
    pub cache_creation: Counter,
    pub cache_read: Counter,
}

/// One worker's metrics.
#[derive(Debug)]
pub struct Shard {
    /// Its upstream connection pool's counters (hits, misses, stale retries, idle drops).
    pub pool: Arc<PoolCounters>,
    pub connections: Gauge,
    pub streams: Gauge,
    pub body_in: Counter,
    pub body_out: Counter,
    pub stream_events: Counter,
    pub stream_writes: Counter,
    /// Indexed by whether the client asked for a stream.
    pub first_byte: [Histogram; 2],
    pub duration: [Histogram; 2],
    pub overhead: [Histogram; 2],
    /// route, status, model
    requests: Published<Counter>,
    /// upstream, credential, outcome
    attempts: Published<Counter>,
    /// upstream, credential (the one failed over from)
    failovers: Published<Counter>,
    /// client, model
    tokens: Published<Tokens>,
}

impl Default for Shard {
    fn default() -> Self {
        let two = |bounds: &[f64]| [Histogram::new(bounds), Histogram::new(bounds)];
        Shard {
            pool: Arc::default(),
            connections: Gauge::default(),
            streams: Gauge::default(),
            body_in: Counter::default(),
            body_out: Counter::default(),
            stream_events: Counter::default(),
            stream_writes: Counter::default(),
            first_byte: two(REQUEST_SECONDS),
            duration: two(REQUEST_SECONDS),
            overhead: two(OVERHEAD_SECONDS),
            requests: published(),
            attempts: published(),
            failovers: published(),
            tokens: published(),
        }
    }
}

/// A worker's way of writing its shard, kept for the worker's whole life (across reloads).
pub struct Recorder {
    shard: Arc<Shard>,
    requests: Family<Counter>,
    attempts: Family<Counter>,
    failovers: Family<Counter>,
    tokens: Family<Tokens>,
    models: RefCell<FxHashSet<Box<str>>>,
}

impl Recorder {
    pub fn new(shard: Arc<Shard>) -> Recorder {
        Recorder {
            requests: Family::new(shard.requests.clone()),
            attempts: Family::new(shard.attempts.clone()),
            failovers: Family::new(shard.failovers.clone()),
            tokens: Family::new(shard.tokens.clone()),
            models: RefCell::default(),
            shard,
        }
    }

    pub fn shard(&self) -> &Shard {
        &self.shard
    }

    /// Counts a client connection open until the returned guard drops.
    pub fn connection(self: &Rc<Self>) -> Held {
        Held::new(self, |s| &s.connections)
    }

    /// Counts an event stream relayed until the returned guard drops.
    pub fn stream(self: &Rc<Self>) -> Held {
        Held::new(self, |s| &s.streams)
    }

    /// One finished request.
    pub fn request(&self, s: &Summary<'_>) {
        let f = &s.facts;
        let shard = &*self.shard;
        let model = self.model_label(s.model);
        let mut status = itoa::Buffer::new();
        let status = status.format(f.status);
        self.requests.with(&[s.route, status, model], |c| c.add(1));
        let i = usize::from(s.stream);
        if let Some(t) = f.first_byte {
            shard.first_byte[i].observe(t);
        }
        shard.duration[i].observe(f.duration);
        shard.overhead[i].observe(f.overhead());
        shard.body_in.add(s.body_in);
        shard.body_out.add(f.body_out);
        if f.event_stream {
            shard.stream_events.add(f.events);
            shard.stream_writes.add(f.client_writes);
        }
        let u = &f.usage;
        if u.input_tokens
            + u.output_tokens
            + u.cache_creation_input_tokens
            + u.cache_read_input_tokens
            > 0
        {
            let client = s.client.unwrap_or("");
            self.tokens.with(&[client, model], |t| {
                t.input.add(u.input_tokens);
                t.output.add(u.output_tokens);
                t.cache_creation.add(u.cache_creation_input_tokens);
                t.cache_read.add(u.cache_read_input_tokens);
            });
        }
    }

    /// One attempt at an upstream, and how it went.
    pub fn attempt(&self, upstream: &str, credential: &str, outcome: &str) {
        self.attempts
            .with(&[upstream, credential, outcome], |c| c.add(1));
    }

    /// A request moved on from `credential` to another one.
    pub fn failover(&self, upstream: &str, credential: &str) {
        self.failovers.with(&[upstream, credential], |c| c.add(1));
    }

    /// The model's label: itself, or `other` once this worker has seen `MAX_MODELS` others (or
    /// when it is absurdly long), so that clients cannot grow the metrics without bound.
    fn model_label<'a>(&self, model: Option<&'a str>) -> &'a str {
        let Some(model) = model else { return "" };
        if model.len() > MAX_MODEL_LABEL {
            return "other";
        }
        let mut known = self.models.borrow_mut();
        if known.contains(model) {
            return model;
        }
        if known.len() < MAX_MODELS {
            known.insert(model.into());
            return model;
        }
        "other"
    }
}

/// One in a gauge for as long as it lives.
pub struct Held {
    recorder: Rc<Recorder>,
    gauge: fn(&Shard) -> &Gauge,
}

impl Held {
    fn new(recorder: &Rc<Recorder>, gauge: fn(&Shard) -> &Gauge) -> Held {
        gauge(&recorder.shard).add(1);
        Held {
            recorder: recorder.clone(),
            gauge,
        }
    }
}

impl Held {
    /// `fut`, with this held until it completes or is dropped. An `async move` block that awaits
    /// a future it captured keeps two copies of it (the capture and the one being awaited): for
    /// a connection's task that was 7 KiB more resident per open stream.
    pub fn during<F: Future>(self, fut: F) -> Holding<F> {
        Holding { fut, _held: self }
    }
}

/// A future and the gauge it counts in; see [`Held::during`].
pub struct Holding<F> {
    fut: F,
    _held: Held,
}

impl<F: Future> Future for Holding<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is pinned with `self` and never moved out; `Holding` has no `Drop` of
        // its own and no other access to `fut`.
        unsafe { self.map_unchecked_mut(|h| &mut h.fut) }.poll(cx)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        (self.gauge)(&self.recorder.shard).add(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_beyond_the_cap_are_other() {
        let r = Recorder::new(Arc::default());
        let names: Vec<String> = (0..MAX_MODELS + 5).map(|i| format!("m{i}")).collect();
        let labels: Vec<&str> = names.iter().map(|n| r.model_label(Some(n))).collect();
        assert_eq!(labels[MAX_MODELS - 1], format!("m{}", MAX_MODELS - 1));
        assert!(labels[MAX_MODELS..].iter().all(|&l| l == "other"));
        assert_eq!(r.model_label(Some("m0")), "m0");
        assert_eq!(r.model_label(Some(&"x".repeat(200))), "other");
        assert_eq!(r.model_label(None), "");
    }

    #[test]
    fn guards_hold_their_gauge() {
        let r = Rc::new(Recorder::new(Arc::default()));
        let (a, b) = (r.connection(), r.stream());
        let c = r.connection();
        assert_eq!(
            (r.shard().connections.get(), r.shard().streams.get()),
            (2, 1)
        );
        drop((a, b, c));
        assert_eq!(
            (r.shard().connections.get(), r.shard().streams.get()),
            (0, 0)
        );
    }
}
