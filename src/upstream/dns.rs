//! Upstream host names to addresses, without blocking a worker and without going stale.
//!
//! `getaddrinfo` blocks, and a worker that blocks stalls every connection on its core, so lookups
//! run on the runtime's blocking pool (`monoio::spawn_blocking`; `runtime::Workers` attaches
//! one) and the answers are cached for a TTL, so a long-running gateway follows DNS changes. An
//! expired entry is still served while one background lookup refreshes it: a request never
//! waits for DNS once a host has been resolved, and a failing DNS server keeps the last good
//! addresses in use. Only a host never resolved before makes its caller wait.
//!
//! One `Resolver` per worker (shared through `Rc`), so no locks. The cache holds only the hosts
//! the configuration names, so it is never pruned.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The blocking lookup: host and port to addresses, in the order they should be tried.
pub type Lookup = Arc<dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync>;

/// How soon a failed refresh is retried (or the TTL, if that is shorter), so an outage is not
/// re-queried on every request, yet a recovered DNS server is noticed soon.
const RETRY: Duration = Duration::from_secs(5);

type Addrs = Rc<[SocketAddr]>;
type Key = (String, u16);

/// A per-worker, TTL-cached resolver. See the module documentation.
pub struct Resolver {
    shared: Rc<Shared>,
}

/// What the resolver and its in-flight lookup tasks share.
struct Shared {
    ttl: Duration,
    lookup: Lookup,
    entries: RefCell<HashMap<Key, Entry>>,
}

struct Entry {
    /// `None` until a lookup of the host has succeeded.
    addrs: Option<Addrs>,
    /// When a lookup is due; before that, `addrs` is served without one.
    expires: Instant,
    /// The lookup in flight, if any: at most one per host.
    lookup: Option<Rc<InFlight>>,
}

/// A lookup running on the blocking pool, and the callers waiting for it (only callers that
/// have no addresses to use meanwhile wait).
#[derive(Default)]
struct InFlight {
    /// The outcome once it lands. An `io::Error` cannot be cloned, so each waiter gets a copy
    /// rebuilt from its kind and message.
    result: RefCell<Option<Result<Addrs, (io::ErrorKind, String)>>>,
    waiters: RefCell<Vec<Waker>>,
}

impl Resolver {
    /// A resolver using the system resolver (`getaddrinfo`), keeping the order it returns.
    pub fn new(ttl: Duration) -> Resolver {
        Resolver::with_lookup(
            ttl,
            Arc::new(|host: &str, port| Ok((host, port).to_socket_addrs()?.collect())),
        )
    }

    /// A resolver using `lookup`, which runs on the blocking pool (tests count, delay or fail
    /// lookups through it).
    pub fn with_lookup(ttl: Duration, lookup: Lookup) -> Resolver {
        Resolver {
            shared: Rc::new(Shared {
                ttl,
                lookup,
                entries: RefCell::new(HashMap::new()),
            }),
        }
    }

    /// Caches addresses found elsewhere (the gateway resolves every upstream once at start, on
    /// the main thread) with a fresh TTL. An empty list is ignored: the next `resolve` looks up.
    pub fn seed(&self, host: &str, port: u16, addrs: Vec<SocketAddr>) {
        if addrs.is_empty() {
            return;
        }
        let expires = Instant::now() + self.shared.ttl;
        let mut entries = self.shared.entries.borrow_mut();
        let entry = entries.entry((host.to_owned(), port)).or_insert(Entry {
            addrs: None,
            expires,
            lookup: None,
        });
        entry.addrs = Some(addrs.into());
        entry.expires = expires;
    }

    /// The addresses of `host:port`. Waits only when none are cached (the host was never
    /// resolved, or every lookup of it failed); otherwise answers from the cache at once,
    /// starting a background refresh if the entry has expired.
    pub async fn resolve(&self, host: &str, port: u16) -> io::Result<Rc<[SocketAddr]>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Rc::new([SocketAddr::new(ip, port)]));
        }
        let in_flight = {
            let mut entries = self.shared.entries.borrow_mut();
            let key = (host.to_owned(), port);
            match entries.get_mut(&key) {
                Some(Entry {
                    addrs: Some(addrs),
                    expires,
                    lookup,
                }) => {
                    if lookup.is_none() && Instant::now() >= *expires {
                        *lookup = Some(self.shared.start(key));
                    }
                    return Ok(addrs.clone());
                }
                Some(Entry {
                    lookup: Some(running),
                    expires,
                    ..
                }) if !(running.finished() && Instant::now() >= *expires) => running.clone(),
                _ => {
                    let running = self.shared.start(key.clone());
                    entries.insert(
                        key,
                        Entry {
                            addrs: None,
                            expires: Instant::now(),
                            lookup: Some(running.clone()),
                        },
                    );
                    running
                }
            }
        };
        std::future::poll_fn(|cx| in_flight.poll(cx)).await
    }
}

impl Shared {
    /// Starts a lookup of `key` as a task of its own, so it lands in the cache even if every
    /// caller waiting for it gives up (a client that disconnects, a connect timeout).
    fn start(self: &Rc<Self>, key: Key) -> Rc<InFlight> {
        let in_flight = Rc::new(InFlight::default());
        let (shared, landed) = (self.clone(), in_flight.clone());
        monoio::spawn(async move {
            let result = lookup_off_thread(shared.lookup.clone(), &key.0, key.1).await;
            shared.land(key, &result);
            landed.finish(result);
        });
        in_flight
    }

    /// Puts a lookup's outcome in the cache. A failure keeps the addresses there are, or (for a
    /// host never resolved) the failure; either way it is retried after `RETRY` at most.
    fn land(&self, key: Key, result: &io::Result<Addrs>) {
        let mut entries = self.entries.borrow_mut();
        let now = Instant::now();
        match (result, entries.get_mut(&key)) {
            (Ok(addrs), _) => {
                let entry = Entry {
                    addrs: Some(addrs.clone()),
                    expires: now + self.ttl,
                    lookup: None,
                };
                entries.insert(key, entry);
            }
            (Err(e), Some(entry)) if entry.addrs.is_some() => {
                log::warn!("{e}; the addresses looked up before stay in use");
                entry.expires = now + self.ttl.min(RETRY);
                entry.lookup = None;
            }
            // Never resolved: the failure itself is kept a while, so a DNS outage is not asked
            // again by every request (and does not queue other hosts' lookups behind it).
            (Err(_), Some(entry)) => entry.expires = now + self.ttl.min(RETRY),
            (Err(_), None) => {}
        }
    }
}

impl InFlight {
    fn finished(&self) -> bool {
        self.result.borrow().is_some()
    }

    fn finish(&self, result: io::Result<Addrs>) {
        *self.result.borrow_mut() = Some(result.map_err(|e| (e.kind(), e.to_string())));
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<io::Result<Addrs>> {
        match &*self.result.borrow() {
            Some(Ok(addrs)) => Poll::Ready(Ok(addrs.clone())),
            Some(Err((kind, message))) => Poll::Ready(Err(io::Error::new(*kind, message.clone()))),
            None => {
                let mut waiters = self.waiters.borrow_mut();
                if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// Runs `lookup` on the blocking pool. Errors name the host: the lookup's own message rarely
/// does.
async fn lookup_off_thread(lookup: Lookup, host: &str, port: u16) -> io::Result<Addrs> {
    let name = host.to_owned();
    let found = monoio::spawn_blocking(move || lookup(&name, port))
        .await
        .unwrap_or_else(|_cancelled| Err(io::Error::other("the blocking pool dropped the lookup")));
    match found {
        Ok(addrs) if addrs.is_empty() => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no addresses for {host}"),
        )),
        Ok(addrs) => Ok(addrs.into()),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot resolve {host}: {e}"),
        )),
    }
}

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;
