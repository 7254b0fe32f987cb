//! `Gateway::start`: from a validated config to serving workers, and the handle that stops them.
//!
//! The binary and the integration tests start gateways the same way, through this API, so what
//! the tests exercise is what runs. Everything that can fail at start-up (binding, resolving
//! upstream hosts, an unavailable I/O driver) fails here, synchronously, with a clear error.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::admin::{AdminServer, Backend};
use crate::api::Api;
use crate::config::{Config, UpstreamKind};
use crate::mock::server::MockHandler;
use crate::routing::models::Catalog;
use crate::routing::pool::Pool;
use crate::runtime::{accept_loop, bind_group, worker_count, Driver, Workers};
use crate::server::conn::Limits;
use crate::shutdown::Shutdown;
use crate::upstream::client::Target;
use crate::upstream::dns::Resolver;
use crate::upstream::pool::{ConnPool, PoolCounters, PoolStats};
use crate::upstream::tls;
use crate::upstream::url::{BaseUrl, Scheme};
use rustls::pki_types::ServerName;

pub struct Gateway;

/// A running gateway.
pub struct GatewayHandle {
    pool: Arc<Pool>,
    /// One per worker: its upstream connection pool's counters.
    conn_counters: Vec<Arc<PoolCounters>>,
    addrs: Vec<SocketAddr>,
    workers: usize,
    driver: Driver,
    mock_upstreams: Vec<(String, SocketAddr)>,
    admin: Option<AdminServer>,
    threads: Workers,
}

/// What the admin listener sees of the running gateway.
struct AdminView {
    config: Arc<Config>,
    pool: Arc<Pool>,
}

impl Backend for AdminView {
    fn metrics(&self, _out: &mut String) {}

    fn credentials(&self) -> Vec<crate::routing::pool::CredentialStatus> {
        self.pool.snapshot()
    }

    fn reset(&self, upstream: &str, credential: &str) -> bool {
        self.pool.reset(upstream, credential)
    }

    fn config(&self) -> Arc<Config> {
        self.config.clone()
    }

    fn reload(&self) -> Result<String, String> {
        Err("not available yet".into())
    }
}

impl Gateway {
    /// Binds the listeners, resolves the upstreams and starts the workers.
    pub fn start(config: Config) -> io::Result<GatewayHandle> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        let listen = config.listen_addrs().map_err(|e| invalid(e.message))?;
        let count = worker_count(config.server.workers);
        let driver = Driver::choose(config.server.io_driver)?;

        // The built-in mock is a real HTTP server on loopback, served by these same workers, so a
        // gateway in front of it exercises exactly the path it takes in front of the real API.
        let mut mock_groups = Vec::new();
        let mut targets = Vec::with_capacity(config.upstreams.len());
        let mut seeds = Vec::new();
        for u in &config.upstreams {
            let url = match u.kind {
                UpstreamKind::Mock => {
                    let group = bind_group(SocketAddr::from(([127, 0, 0, 1], 0)), count)?;
                    let addr = group[0].local_addr()?;
                    mock_groups.push((
                        u.name.clone(),
                        addr,
                        Duration::from_millis(u.mock.event_interval_ms),
                        group,
                    ));
                    BaseUrl::parse(&format!("http://{addr}")).map_err(invalid)?
                }
                UpstreamKind::Anthropic => u
                    .base_url
                    .clone()
                    .expect("validated: anthropic upstreams have a base_url"),
            };
            // The host the gateway connects to (behind a proxy, the proxy's).
            let (host, port) = match &u.proxy {
                Some(p) => (&p.url.host, p.url.port),
                None => (&url.host, url.port),
            };
            if let Some(seed) = resolve_at_start(&u.name, host, port) {
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

        let mut listener_groups = Vec::with_capacity(listen.len());
        let mut addrs = Vec::with_capacity(listen.len());
        for addr in &listen {
            let group = bind_group(*addr, count)?;
            addrs.push(group[0].local_addr()?);
            listener_groups.push(group);
        }

        let limits = Limits {
            max_head_bytes: config.server.max_head_bytes,
            max_body_bytes: config.server.max_body_bytes,
            head_timeout: Duration::from_millis(config.server.request_head_timeout_ms),
            body_timeout: Duration::from_millis(config.server.request_body_timeout_ms),
            idle_timeout: Duration::from_millis(config.server.idle_timeout_ms),
        };
        let mock_upstreams = mock_groups
            .iter()
            .map(|(n, a, _, _)| (n.clone(), *a))
            .collect();
        let config = Arc::new(config);
        let pool = Arc::new(Pool::new(&config));
        let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let catalog = Catalog::new(&config, &started).map(Arc::new);
        let shutdown = Shutdown::new();
        let mut workers = Workers::new(shutdown.clone());
        let conn_counters: Vec<Arc<PoolCounters>> = (0..count).map(|_| Arc::default()).collect();
        for (index, counters) in conn_counters.iter().enumerate() {
            let listeners: Vec<_> = listener_groups
                .iter_mut()
                .map(|g| g.pop().expect("one per worker"))
                .collect();
            let mocks: Vec<_> = mock_groups
                .iter_mut()
                .map(|(_, _, interval, g)| (*interval, g.pop().expect("one per worker")))
                .collect();
            let (config, targets, seeds, limits, shutdown, pool) = (
                config.clone(),
                targets.clone(),
                seeds.clone(),
                limits.clone(),
                shutdown.clone(),
                pool.clone(),
            );
            let catalog = catalog.clone();
            let counters = counters.clone();
            workers.spawn(index, config.server.pin_cores, driver, move || async move {
                let limits = Rc::new(limits);
                let conns = ConnPool::new(targets.len(), config.pool.settings(), counters);
                let resolver = Resolver::new(config.dns.ttl());
                for (host, port, addrs) in seeds {
                    resolver.seed(&host, port, addrs);
                }
                let api = Rc::new(Api::new(&config, targets, pool, catalog, conns, resolver));
                let (a, stop) = (api.clone(), shutdown.clone());
                monoio::spawn(async move { a.sweep_idle(stop.wait()).await });
                let (a, count) = (api.clone(), config.pool.prewarm_count());
                if count > 0 {
                    monoio::spawn(async move { a.prewarm(count).await });
                }
                for listener in listeners {
                    monoio::spawn(accept_loop(
                        listener,
                        api.clone(),
                        limits.clone(),
                        shutdown.clone(),
                    ));
                }
                for (interval, listener) in mocks {
                    let mock = Rc::new(MockHandler::new(interval, None, Vec::new()));
                    monoio::spawn(accept_loop(
                        listener,
                        mock,
                        limits.clone(),
                        shutdown.clone(),
                    ));
                }
                shutdown.wait().await;
            })?;
        }
        let admin = match config.admin.listen {
            Some(addr) => {
                let view = Arc::new(AdminView {
                    config: config.clone(),
                    pool: pool.clone(),
                });
                Some(AdminServer::start(addr, config.admin.token.clone(), view)?)
            }
            None => None,
        };
        Ok(GatewayHandle {
            admin,
            pool,
            conn_counters,
            addrs,
            workers: count,
            driver,
            mock_upstreams,
            threads: workers,
        })
    }
}

/// Resolves an upstream's host name once at start, on the main thread, so the workers begin with
/// its addresses. A failure is not fatal (DNS may come up after the gateway, as on a booting
/// host): it is said here, and requests resolve again, failing with a clear 502 until it works.
fn resolve_at_start(
    upstream: &str,
    host: &str,
    port: u16,
) -> Option<(String, u16, Vec<SocketAddr>)> {
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

impl GatewayHandle {
    /// The first bound address (with its real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// The credential pool shared by the workers: its [`snapshot`](Pool::snapshot) is each
    /// credential's health, and [`reset`](Pool::reset) clears a cooldown.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The upstream connection pools' counters, summed over the workers.
    pub fn upstream_connections(&self) -> PoolStats {
        (self.conn_counters.iter())
            .map(|c| c.read())
            .fold(PoolStats::default(), |a, b| a + b)
    }

    /// The admin listener's address, when `[admin] listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminServer::local_addr)
    }

    /// Built-in mock upstreams and the loopback addresses they serve on.
    pub fn mock_upstreams(&self) -> &[(String, SocketAddr)] {
        &self.mock_upstreams
    }

    /// A signal that stops the gateway when raised (for signal handlers on another thread).
    pub fn shutdown_signal(&self) -> Shutdown {
        self.threads.shutdown.clone()
    }

    /// Stops accepting, ends the workers and waits for them.
    pub fn shutdown(mut self) {
        self.threads.stop();
    }

    /// Blocks until the gateway is stopped through its shutdown signal.
    pub fn wait(mut self) {
        self.threads.join();
    }
}
