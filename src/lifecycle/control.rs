//! [`Control`]: what changes a running gateway, from any thread: reload a configuration, drain.
//!
//! The signal thread of the binary uses it (SIGHUP reloads, SIGTERM and SIGINT drain), and so can
//! an admin endpoint or a test. A reload builds the next [`Generation`] here, on the caller's
//! thread, publishes it, moves the [`Beacon`] on, and waits until every worker has taken it up,
//! so that when `reload` returns, new requests are served by the new configuration. Requests in
//! flight finish on the generation they started with: each holds its own handler.
//!
//! Some keys cannot change while the gateway runs, because what they shape is made once at start:
//! `server.workers` (the threads), `server.pin_cores` (their pinning), `server.io_driver`
//! (their runtimes) and `[admin]` (its listener and token). A reload that changes them is applied without them: they keep their running
//! value, the log says so, and the [`ReloadReport`] lists them. Everything else is reloaded, with
//! two things to know:
//!
//! - The inbound limits (`max_head_bytes`, `max_body_bytes`, the request and idle timeouts)
//!   apply to connections accepted after the reload; a kept-alive connection keeps those it was
//!   accepted with (its requests do get the new routing, upstreams and keys).
//! - Idle upstream connections are not carried over: each worker's new handler opens (or
//!   prewarms) its own, and the old handler's close once its last request has ended.
//!
//! Built-in mock upstreams (`kind = "mock"`) keep running across a reload when one of the same
//! name and `event_interval_ms` is still configured; one that is new or re-paced gets a new
//! loopback server, and one no longer configured stops accepting (its open connections finish).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::beacon::Beacon;
use super::generation::{self, Generation};
use crate::config::Config;
use crate::routing::pool::Pool;
use crate::shutdown::Shutdown;

/// How long a reload waits for every worker to take the new generation up. A worker does so as
/// soon as its runtime turns (between two events of its connections), so this is only reached
/// when a worker is stuck or gone; the reload stands anyway.
const ADOPTION_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a reload gets its configuration (the file read again, with the command line's
/// overrides). A gateway started without a file has none.
pub type Source = Arc<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// What a reload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadReport {
    /// The generation now serving (1 is the configuration the gateway started with).
    pub generation: u64,
    /// The addresses listened on now.
    pub listening: Vec<SocketAddr>,
    /// Whether listeners were bound or closed (`server.listen` changed).
    pub rebound: bool,
    /// Keys whose new value was not applied (they need a restart), with their running value.
    pub kept: Vec<String>,
}

/// A handle on a running gateway's configuration and life; cheap to clone, usable from any
/// thread.
#[derive(Clone)]
pub struct Control {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    current: Mutex<Arc<Generation>>,
    /// Moves on when a generation is published or a drain begins.
    pub(super) beacon: Beacon,
    /// One reload at a time.
    reloading: Mutex<()>,
    /// Per worker: the id of the generation it serves.
    adopted: Mutex<Vec<u64>>,
    adoption: Condvar,
    drain_deadline: OnceLock<Instant>,
    /// Workers that started, and those that finished draining.
    running: AtomicUsize,
    drained: AtomicUsize,
    pub(super) shutdown: Shutdown,
    workers: usize,
    /// When the gateway started (the model catalog's `created_at`).
    started: String,
    source: OnceLock<Source>,
}

impl Control {
    pub(crate) fn new(
        first: Generation,
        workers: usize,
        shutdown: Shutdown,
        started: String,
    ) -> Control {
        Control {
            shared: Arc::new(Shared {
                current: Mutex::new(Arc::new(first)),
                beacon: Beacon::default(),
                reloading: Mutex::new(()),
                adopted: Mutex::new(vec![0; workers]),
                adoption: Condvar::new(),
                drain_deadline: OnceLock::new(),
                running: AtomicUsize::new(0),
                drained: AtomicUsize::new(0),
                shutdown,
                workers,
                started,
                source: OnceLock::new(),
            }),
        }
    }

    /// Replaces the running configuration with `config` (see the module comment for what it
    /// changes and when). On an error (a listener that cannot be bound, a CA file that cannot be
    /// read, a drain under way) the running configuration stays, and the error is logged and
    /// returned.
    pub fn reload(&self, config: Config) -> Result<ReloadReport, String> {
        let s = &*self.shared;
        let _one = s.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let previous = self.current();
        let refuse = |why: String| {
            log::error!(
                "reload refused: {why}; still serving generation {}",
                previous.id
            );
            Err(why)
        };
        if s.shutdown.is_raised() || self.is_draining() {
            return refuse("the gateway is shutting down".into());
        }
        let mut config = config;
        let kept = keep_fixed(&mut config, &previous.config);
        let next = match generation::build(
            config,
            Some(&previous),
            s.workers,
            &s.started,
            previous.id + 1,
        ) {
            Ok(next) => next,
            Err(e) => return refuse(e.to_string()),
        };
        for key in &kept {
            log::warn!("reload: {key}: cannot change while running; restart to apply it");
        }
        for note in next.config.warnings() {
            log::warn!("{note}");
        }
        let same = |a: &[Arc<_>], b: &[Arc<_>]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
        };
        let report = ReloadReport {
            generation: next.id,
            listening: next.front.iter().map(|l| l.addr).collect(),
            rebound: !same(&previous.front, &next.front),
            kept,
        };
        let id = next.id;
        crate::logging::apply(&next.config.log);
        *s.current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        drop(previous);
        s.beacon.bump();
        if !self.wait_adopted(id) && !self.is_draining() {
            log::warn!(
                "reload: not every worker took generation {id} up within {} s",
                ADOPTION_TIMEOUT.as_secs()
            );
        }
        log::info!(
            "reloaded: generation {id} serving; listening on {:?}{}",
            report.listening,
            if report.rebound { " (rebound)" } else { "" }
        );
        Ok(report)
    }

    /// Sets where [`reload_from_source`](Self::reload_from_source) reads the configuration; the
    /// first call wins.
    pub fn set_source(&self, source: Source) {
        let _ = self.shared.source.set(source);
    }

    /// Reads the configuration again from its source and reloads it (SIGHUP, `POST
    /// /admin/reload`). A file that does not load is refused like any bad reload: logged and
    /// returned, the running configuration stays.
    pub fn reload_from_source(&self) -> Result<ReloadReport, String> {
        let Some(load) = self.shared.source.get() else {
            let why = "the gateway was started without --config: there is no file to reload";
            log::warn!("reload: {why}");
            return Err(why.into());
        };
        match load() {
            Ok(config) => self.reload(config),
            Err(e) => {
                log::error!(
                    "reload refused: {e}; still serving generation {}",
                    self.generation()
                );
                Err(e)
            }
        }
    }

    /// Starts the drain: the workers stop accepting, close idle connections, and give requests in
    /// flight until `server.drain_timeout_ms` from now; then the gateway stops (and
    /// `GatewayHandle::wait` returns). True if this call started it, false if it was under way.
    pub fn drain(&self) -> bool {
        let deadline = Instant::now() + self.drain_timeout();
        let started = self.shared.drain_deadline.set(deadline).is_ok();
        if started {
            self.shared.beacon.bump();
        }
        started
    }

    pub fn is_draining(&self) -> bool {
        self.shared.drain_deadline.get().is_some()
    }

    /// The configured drain timeout of the running generation.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.current().config.server.drain_timeout_ms)
    }

    /// The id of the generation serving new requests.
    pub fn generation(&self) -> u64 {
        self.current().id
    }

    /// The running generation's credential pool (its snapshot is each credential's health).
    pub fn pool(&self) -> Arc<Pool> {
        self.current().pool.clone()
    }

    /// The running configuration.
    pub fn config(&self) -> Arc<Config> {
        self.current().config.clone()
    }

    /// The addresses listened on (with their real ports).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.current().front.iter().map(|l| l.addr).collect()
    }

    /// Built-in mock upstreams and the loopback addresses they serve on.
    pub fn mock_upstreams(&self) -> Vec<(String, SocketAddr)> {
        (self.current().mocks.iter())
            .map(|m| (m.name.clone(), m.listeners.addr))
            .collect()
    }

    pub(crate) fn current(&self) -> Arc<Generation> {
        let current = self.shared.current.lock();
        current.unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn drain_deadline(&self) -> Option<Instant> {
        self.shared.drain_deadline.get().copied()
    }

    /// A worker serves generation `id` now.
    pub(super) fn adopted(&self, worker: usize, id: u64) {
        let mut adopted = self
            .shared
            .adopted
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = adopted.get_mut(worker) {
            *slot = id;
        }
        self.shared.adoption.notify_all();
    }

    fn wait_adopted(&self, id: u64) -> bool {
        let deadline = Instant::now() + ADOPTION_TIMEOUT;
        let s = &*self.shared;
        let mut adopted = s.adopted.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if adopted.iter().all(|&g| g >= id) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || self.is_draining() || s.shutdown.is_raised() {
                return false;
            }
            // In slices, so that a drain or a stop is noticed without a notification of its own.
            let wait = (deadline - now).min(Duration::from_millis(50));
            adopted = (s.adoption.wait_timeout(adopted, wait))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub(super) fn worker_started(&self) {
        self.shared.running.fetch_add(1, Ordering::AcqRel);
    }

    /// A worker has no connection left (or gave up on them): once every worker that started
    /// has, the gateway stops. Workers wait for each other because a built-in mock upstream
    /// served by one may be answering a stream relayed by another.
    pub(super) fn worker_drained(&self) {
        let s = &*self.shared;
        if s.drained.fetch_add(1, Ordering::AcqRel) + 1 >= s.running.load(Ordering::Acquire) {
            s.shutdown.raise();
        }
    }
}

/// Gives `new` the running values of the keys that cannot change while the gateway runs; returns
/// those that differed, each with the value it keeps.
fn keep_fixed(new: &mut Config, running: &Config) -> Vec<String> {
    let (n, r) = (&mut new.server, &running.server);
    let mut kept = Vec::new();
    if n.workers != r.workers {
        kept.push(format!("server.workers stays {}", r.workers));
        n.workers = r.workers;
    }
    if n.pin_cores != r.pin_cores {
        kept.push(format!("server.pin_cores stays {}", r.pin_cores));
        n.pin_cores = r.pin_cores;
    }
    if n.io_driver != r.io_driver {
        kept.push(format!("server.io_driver stays {:?}", r.io_driver));
        n.io_driver = r.io_driver;
    }
    let (n, r) = (&mut new.admin, &running.admin);
    if n.listen != r.listen || n.token != r.token {
        kept.push("admin.listen and admin.token stay as the gateway started".into());
        *n = r.clone();
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IoDriver;

    #[test]
    fn fixed_keys_keep_their_running_values() {
        let running = Config::default_for_env(None);
        let mut new = running.clone();
        assert!(keep_fixed(&mut new, &running).is_empty());
        new.server.workers = running.server.workers + 3;
        new.server.pin_cores = !running.server.pin_cores;
        new.server.io_driver = IoDriver::Epoll;
        new.server.idle_timeout_ms = 5;
        new.admin.listen = Some("127.0.0.1:9999".parse().unwrap());
        let kept = keep_fixed(&mut new, &running);
        assert_eq!(kept.len(), 4, "{kept:?}");
        assert!(kept[3].contains("admin.listen"), "{kept:?}");
        assert_eq!(new.admin.listen, None);
        assert!(kept[0].starts_with("server.workers stays"));
        assert_eq!(new.server.workers, running.server.workers);
        assert_eq!(new.server.pin_cores, running.server.pin_cores);
        assert_eq!(new.server.io_driver, running.server.io_driver);
        assert_eq!(new.server.idle_timeout_ms, 5, "everything else is reloaded");
    }
}
