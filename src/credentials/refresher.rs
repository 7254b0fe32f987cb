//! The one thread that fetches credentials, for every worker and every generation of the
//! configuration.
//!
//! A fetched credential is registered by what identifies it (its source, never its secret), so a
//! reload that keeps it gets the same cell, already filled: nothing is fetched twice, and no
//! request waits for a token a reload asked for again. The thread fetches what is due (a new
//! credential at once, then before expiry per [`super::schedule`], and at once when an upstream
//! refused the current value), keeps the old value when a fetch fails (it says so in the log and
//! tries again with a backoff), and forgets a credential once no configuration holds it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use super::aws::{AwsKeys, AwsSource};
use super::cell::Cell;
use super::google::ServiceAccount;
use super::schedule::{expired_on_arrival, renew_at, retry_after};

/// Where a token is fetched from.
#[derive(Debug)]
pub enum TokenSource {
    ServiceAccount(Arc<ServiceAccount>),
    /// The metadata server at this base URL.
    Metadata(String),
}

enum Fetcher {
    Aws(AwsSource, Arc<Cell<AwsKeys>>),
    Token(TokenSource, Arc<Cell<String>>),
}

struct Entry {
    /// What the credential is, for matching registrations (a source, never a secret).
    identity: String,
    /// How it is named in the log.
    name: String,
    fetcher: Fetcher,
    next: SystemTime,
    failures: u32,
    /// Fetched (or failed) at least once.
    attempted: bool,
}

impl Entry {
    fn unused(&self) -> bool {
        match &self.fetcher {
            Fetcher::Aws(_, cell) => Arc::strong_count(cell) == 1,
            Fetcher::Token(_, cell) => Arc::strong_count(cell) == 1,
        }
    }

    fn asked(&self) -> bool {
        match &self.fetcher {
            Fetcher::Aws(_, cell) => cell.refresh_asked(),
            Fetcher::Token(_, cell) => cell.refresh_asked(),
        }
    }

    /// Fetches now; returns when the next fetch is due.
    fn fetch(&mut self, now: SystemTime) -> SystemTime {
        let result = match &self.fetcher {
            Fetcher::Aws(source, cell) => keep(cell, now, source.fetch()),
            Fetcher::Token(source, cell) => {
                let fetched = match source {
                    TokenSource::ServiceAccount(sa) => sa.fetch(),
                    TokenSource::Metadata(url) => super::google::metadata_token(url),
                };
                keep(cell, now, fetched)
            }
        };
        match result {
            Ok(expires) => {
                if self.failures > 0 {
                    log::info!(
                        "credential {}: fetched again after {} failures",
                        self.name,
                        self.failures
                    );
                }
                self.failures = 0;
                // A value without an expiry is fetched again hourly all the same.
                renew_at(now, expires).unwrap_or(now + Duration::from_secs(3600))
            }
            Err(e) => self.failed(now, e),
        }
    }

    /// Notes a failed fetch; returns when to try again.
    fn failed(&mut self, now: SystemTime, e: String) -> SystemTime {
        self.failures += 1;
        let kept = match &self.fetcher {
            Fetcher::Aws(_, cell) => {
                cell.failed(e.clone());
                cell.current(now).is_some()
            }
            Fetcher::Token(_, cell) => {
                cell.failed(e.clone());
                cell.current(now).is_some()
            }
        };
        let keeping = if kept {
            "; the current one stays in use while valid"
        } else {
            ""
        };
        log::warn!("credential {}: fetching failed ({e}){keeping}", self.name);
        now + retry_after(self.failures)
    }
}

/// Installs a fetched value in its cell, unless it came already expired (a clock ahead of the
/// issuer's), which is a failed fetch; its expiry, or why not.
fn keep<T>(
    cell: &Cell<T>,
    now: SystemTime,
    fetched: Result<(T, Option<SystemTime>), String>,
) -> Result<Option<SystemTime>, String> {
    let (value, expires) = fetched?;
    if expired_on_arrival(now, expires) {
        return Err(
            "the credential fetched had already expired; is this host's clock right?".into(),
        );
    }
    cell.store(value, expires);
    Ok(expires)
}

#[derive(Default)]
struct Registry {
    entries: Mutex<Vec<Entry>>,
    wake: Condvar,
    /// Registered credentials not fetched (or failed) once yet.
    unattempted: AtomicUsize,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    static THREAD: OnceLock<()> = OnceLock::new();
    let registry = REGISTRY.get_or_init(Registry::default);
    THREAD.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("ringgate-credentials".into())
            .spawn(|| run(registry));
        if let Err(e) = spawned {
            log::error!("cannot start the credential refresher: {e}");
        }
    });
    registry
}

/// The cell of the AWS credentials `identity` names, fetched from `source`.
pub fn aws(identity: &str, name: &str, source: AwsSource) -> Arc<Cell<AwsKeys>> {
    registered(
        identity,
        name,
        |f| match f {
            Fetcher::Aws(_, cell) => Some(cell),
            Fetcher::Token(..) => None,
        },
        |cell| Fetcher::Aws(source, cell),
    )
}

/// The cell of the access token `identity` names, fetched from `source`.
pub fn token(identity: &str, name: &str, source: TokenSource) -> Arc<Cell<String>> {
    registered(
        identity,
        name,
        |f| match f {
            Fetcher::Token(_, cell) => Some(cell),
            Fetcher::Aws(..) => None,
        },
        |cell| Fetcher::Token(source, cell),
    )
}

/// The cell registered as `identity`, or a new one fetched by `make`'s fetcher.
fn registered<T>(
    identity: &str,
    name: &str,
    cell_of: impl Fn(&Fetcher) -> Option<&Arc<Cell<T>>>,
    make: impl FnOnce(Arc<Cell<T>>) -> Fetcher,
) -> Arc<Cell<T>> {
    let registry = registry();
    let mut entries = registry.entries.lock().unwrap_or_else(|e| e.into_inner());
    let known = (entries.iter())
        .filter(|e| e.identity == identity)
        .find_map(|e| cell_of(&e.fetcher).cloned());
    if let Some(cell) = known {
        return cell;
    }
    let cell = Arc::new(Cell::default());
    entries.push(Entry {
        identity: identity.to_string(),
        name: name.to_string(),
        fetcher: make(cell.clone()),
        next: SystemTime::UNIX_EPOCH,
        failures: 0,
        attempted: false,
    });
    registry.unattempted.fetch_add(1, Ordering::Relaxed);
    registry.wake.notify_all();
    cell
}

/// Wakes the refresher: an upstream refused a fetched value, which is due again at once.
pub fn wake() {
    registry().wake.notify_all();
}

/// Waits until every registered credential was fetched (or failed) once, at most `limit`: a
/// gateway need not take its first requests before its first tokens.
pub fn settle(limit: Duration) {
    let registry = registry();
    let deadline = std::time::Instant::now() + limit;
    let mut entries = registry.entries.lock().unwrap_or_else(|e| e.into_inner());
    while registry.unattempted.load(Ordering::Relaxed) > 0 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        entries = (registry.wake.wait_timeout(entries, left))
            .map_or_else(|e| e.into_inner().0, |(g, _)| g);
    }
}

fn run(registry: &'static Registry) {
    let mut entries = registry.entries.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        entries.retain(|e| {
            if e.unused() && !e.attempted {
                registry.unattempted.fetch_sub(1, Ordering::Relaxed);
            }
            !e.unused()
        });
        let now = SystemTime::now();
        let due: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].next <= now || entries[i].asked())
            .collect();
        if !due.is_empty() {
            // Fetched with the lock released: a fetch takes a network round trip, and a
            // registration or a wake must not wait for it.
            let mut taken: Vec<Entry> = due.iter().rev().map(|&i| entries.swap_remove(i)).collect();
            drop(entries);
            for e in &mut taken {
                e.next = e.fetch(SystemTime::now());
            }
            entries = registry.entries.lock().unwrap_or_else(|e| e.into_inner());
            for mut e in taken {
                if !std::mem::replace(&mut e.attempted, true) {
                    registry.unattempted.fetch_sub(1, Ordering::Relaxed);
                }
                entries.push(e);
            }
            registry.wake.notify_all();
            continue;
        }
        let next = entries.iter().map(|e| e.next).min();
        let wait = (next.and_then(|n| n.duration_since(now).ok()))
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60));
        entries = (registry.wake.wait_timeout(entries, wait))
            .map_or_else(|e| e.into_inner().0, |(g, _)| g);
    }
}
