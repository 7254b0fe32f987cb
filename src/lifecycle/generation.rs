//! A generation: everything the workers serve with that comes from one configuration.
//!
//! Start-up builds the first generation, each reload the next one, on the calling thread. Building
//! does everything that can fail (binding listeners, setting up TLS, resolving upstream hosts)
//! before anything is published, so a configuration that cannot be served is refused while the
//! running one goes on. What must outlive a configuration is taken over from the previous
//! generation instead of being made again: the listeners of an address still configured, the
//! built-in mock upstreams still configured with the same pace, and credential health (see
//! [`Pool::succeeding`]).
//!
//! The parts are `Send + Sync`; each worker builds its own request handler from them.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::config::{Config, UpstreamKind};
use crate::dialect::Dialect;
use crate::limits::registry::Registry;
use crate::mock::objects::Objects;
use crate::objects::store::Store;
use crate::routing::models::Catalog;
use crate::routing::pool::Pool;
use crate::runtime::bind_group;
use crate::server::conn::Limits;
use crate::upstream::client::Target;
use crate::upstream::tls;
use crate::upstream::url::{BaseUrl, Scheme};

/// An upstream host resolved on the calling thread: host, port, addresses.
pub type Seed = (String, u16, Vec<SocketAddr>);

pub struct Generation {
    /// 1 for the configuration the gateway started with, then one more per reload.
    pub id: u64,
    pub config: Arc<Config>,
    pub pool: Arc<Pool>,
    pub catalog: Option<Arc<Catalog>>,
    /// One per configured upstream, in order.
    pub targets: Vec<Target>,
    pub seeds: Vec<Seed>,
    pub limits: Limits,
    /// The gateway's listeners, one group per configured address.
    pub front: Vec<Arc<Listeners>>,
    pub mocks: Vec<Arc<MockUpstream>>,
    /// The record of batches and files; one per process and state directory, since its file
    /// can be opened only once (a reload that keeps the directory keeps it).
    pub objects: Arc<Store>,
    /// Each client key's limits, carried over from the previous generation by key name.
    pub keys: Arc<Registry>,
}

/// One address's `SO_REUSEPORT` sockets, one per worker; each worker takes its own when it starts
/// accepting on them, and closes it when a generation without this address replaces its own.
pub struct Listeners {
    /// As configured (port 0 stays 0): what a reload compares.
    pub configured: SocketAddr,
    /// As bound (the real port).
    pub addr: SocketAddr,
    sockets: Mutex<Vec<Option<std::net::TcpListener>>>,
}

impl Listeners {
    pub fn bind(configured: SocketAddr, workers: usize) -> io::Result<Listeners> {
        let group = bind_group(configured, workers)?;
        Ok(Listeners {
            configured,
            addr: group[0].local_addr()?,
            sockets: Mutex::new(group.into_iter().map(Some).collect()),
        })
    }

    /// Worker `index`'s socket, the first time it asks.
    pub fn take(&self, index: usize) -> Option<std::net::TcpListener> {
        let mut sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        sockets.get_mut(index).and_then(Option::take)
    }
}

/// A built-in mock upstream, served by the workers on loopback.
pub struct MockUpstream {
    pub name: String,
    pub interval: Duration,
    pub listeners: Listeners,
    /// Its batches and files, shared by the workers (and kept with the mock across reloads).
    pub objects: Arc<Objects>,
}

/// Builds generation `id` from `config`, taking over what it can from `previous`.
pub fn build(
    config: Config,
    previous: Option<&Generation>,
    workers: usize,
    started: &str,
    id: u64,
) -> io::Result<Generation> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let listen = config.listen_addrs().map_err(|e| invalid(e.message))?;

    let mut mocks = Vec::new();
    let mut targets = Vec::with_capacity(config.upstreams.len());
    let mut seeds = Vec::new();
    for u in &config.upstreams {
        let url = match u.kind {
            UpstreamKind::Mock => {
                // The built-in mock is a real HTTP server on loopback, served by these same
                // workers, so a gateway in front of it exercises exactly the path it takes in
                // front of the real API.
                let interval = Duration::from_millis(u.mock.event_interval_ms);
                let kept = previous
                    .into_iter()
                    .flat_map(|p| &p.mocks)
                    .find(|m| m.name == u.name && m.interval == interval);
                let mock = match kept {
                    Some(m) => m.clone(),
                    None => Arc::new(MockUpstream {
                        name: u.name.clone(),
                        interval,
                        listeners: Listeners::bind(SocketAddr::from(([127, 0, 0, 1], 0)), workers)?,
                        objects: Objects::shared(),
                    }),
                };
                // An OpenAI client's base URL ends in /v1; the mock answers every dialect.
                let prefix = match u.dialect() {
                    Dialect::OpenAi => "/v1",
                    _ => "",
                };
                let url = BaseUrl::parse(&format!("http://{}{prefix}", mock.listeners.addr));
                mocks.push(mock);
                url.map_err(invalid)?
            }
            _ => u
                .base_url
                .clone()
                .ok_or_else(|| invalid(format!("upstream {:?}: no base_url", u.name)))?,
        };
        // The host the gateway connects to (behind a proxy, the proxy's).
        let (host, port) = match &u.proxy {
            Some(p) => (&p.url.host, p.url.port),
            None => (&url.host, url.port),
        };
        if let Some(seed) = resolve_now(&u.name, host, port) {
            seeds.push(seed);
        }
        let tls = match url.scheme {
            Scheme::Http => None,
            Scheme::Https => {
                let config = tls::client_config(u.ca_file.as_deref())
                    .map_err(|e| invalid(format!("upstream {:?}: {e}", u.name)))?;
                let name = ServerName::try_from(url.host.clone())
                    .map_err(|e| invalid(format!("upstream {:?}: {e}", u.name)))?;
                Some((config, name))
            }
        };
        targets.push(Target {
            tls,
            name: u.name.clone(),
            url,
            timeouts: u.timeouts,
            proxy: u.proxy.clone(),
        });
    }

    // An address still configured keeps its sockets: nothing a client connects to is closed,
    // not even for an instant, by a reload that does not move it.
    let mut front = Vec::with_capacity(listen.len());
    for addr in listen {
        let kept = (previous.into_iter().flat_map(|p| &p.front)).find(|l| l.configured == addr);
        front.push(match kept {
            Some(l) => l.clone(),
            None => Arc::new(Listeners::bind(addr, workers)?),
        });
    }

    let limits = Limits {
        max_head_bytes: config.server.max_head_bytes,
        max_body_bytes: config.server.max_body_bytes,
        head_timeout: Duration::from_millis(config.server.request_head_timeout_ms),
        body_timeout: Duration::from_millis(config.server.request_body_timeout_ms),
        idle_timeout: Duration::from_millis(config.server.idle_timeout_ms),
    };
    let pool = match previous {
        Some(p) => Pool::succeeding(&config, &p.pool),
        None => Pool::new(&config),
    };
    // Fetched credentials are fetched as the pool registers them: the first requests need not
    // fail over for want of a token that is a round trip away. A source that does not answer in
    // time is retried in the background, and requests fail over from it meanwhile.
    crate::credentials::refresher::settle(FIRST_FETCH);
    let catalog = Catalog::new(&config, started).map(Arc::new);
    let dir = config.state.dir(&|k| std::env::var(k).ok());
    let objects = match previous {
        Some(p) if p.objects.path() == dir.join("objects.redb") => p.objects.clone(),
        _ => Arc::new(Store::new(dir)),
    };
    let keys = Arc::new(Registry::build(&config, previous.map(|p| &*p.keys)));
    Ok(Generation {
        id,
        config: Arc::new(config),
        pool: Arc::new(pool),
        catalog,
        targets,
        seeds,
        limits,
        front,
        mocks,
        objects,
        keys,
    })
}

/// How long a new generation waits for its fetched credentials' first values.
const FIRST_FETCH: Duration = Duration::from_secs(5);

/// Resolves an upstream's host name on the calling thread, so the workers begin with its
/// addresses. A failure is not fatal (DNS may come up after the gateway, as on a booting host):
/// it is said here, and requests resolve again, failing with a clear 502 until it works.
fn resolve_now(upstream: &str, host: &str, port: u16) -> Option<Seed> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    match (host, port).to_socket_addrs() {
        Ok(addrs) => Some((host.to_string(), port, addrs.collect())),
        Err(e) => {
            log::warn!(
                "upstream {upstream:?}: cannot resolve {host} yet ({e}); requests will try again"
            );
            None
        }
    }
}
