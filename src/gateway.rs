//! `Gateway::start`: from a validated config to serving workers, and the handle that stops them
//! (its [`Control`] reloads and drains them; see `lifecycle`).
//!
//! The binary and the integration tests start gateways the same way, through this API, so what
//! the tests exercise is what runs. Everything that can fail at start-up (binding, resolving
//! upstream hosts, an unavailable I/O driver) fails here, synchronously, with a clear error.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::admin::{AdminServer, Backend};
use crate::config::Config;
use crate::lifecycle::{generation, worker, Control};
use crate::metrics::{self, Scrape, Shard};
use crate::routing::pool::Pool;
use crate::runtime::{worker_count, Driver, Workers};
use crate::shutdown::Shutdown;
use crate::state::spend::Keeper;
use crate::upstream::pool::PoolStats;

pub struct Gateway;

/// A running gateway.
pub struct GatewayHandle {
    control: Control,
    /// One per worker: its metrics.
    shards: Arc<[Arc<Shard>]>,
    workers: usize,
    driver: Driver,
    admin: Option<AdminServer>,
    threads: Workers,
    /// Writes the keys' spend to the state directory.
    spend: Keeper,
}

/// What the admin listener sees of the running gateway: always its current generation.
struct AdminView {
    control: Control,
    shards: Arc<[Arc<Shard>]>,
}

impl Backend for AdminView {
    fn metrics(&self, out: &mut String) {
        let scrape = Scrape {
            shards: &self.shards,
            credentials: &self.control.pool().snapshot(),
            keys: &self.keys(),
            generation: self.control.current().id,
            access_log_dropped: crate::logging::dropped_lines(),
        };
        metrics::render(&scrape, out);
    }

    fn credentials(&self) -> Vec<crate::routing::pool::CredentialStatus> {
        self.control.pool().snapshot()
    }

    fn reset(&self, upstream: &str, credential: &str) -> bool {
        self.control.pool().reset(upstream, credential)
    }

    fn config(&self) -> Arc<Config> {
        self.control.config()
    }

    fn keys(&self) -> Vec<crate::limits::registry::KeyStatus> {
        self.control
            .current()
            .keys
            .status(crate::limits::Now::read())
    }

    fn reset_key(&self, name: &str) -> bool {
        self.control.current().keys.reset(name)
    }

    fn objects(&self) -> Result<crate::admin::ObjectsByOwner, String> {
        self.control
            .current()
            .objects
            .owners()
            .map_err(|e| e.to_string())
    }

    fn reload(&self) -> Result<String, String> {
        let r = self.control.reload_from_source()?;
        let mut summary = format!(
            "generation {} serving; listening on {:?}",
            r.generation, r.listening
        );
        if r.rebound {
            summary.push_str(" (rebound)");
        }
        for kept in &r.kept {
            summary.push_str(&format!("; {kept} (restart to apply)"));
        }
        Ok(summary)
    }
}

impl Gateway {
    /// Binds the listeners, resolves the upstreams and starts the workers.
    pub fn start(config: Config) -> io::Result<GatewayHandle> {
        let count = worker_count(config.server.workers);
        let driver = Driver::choose(config.server.io_driver)?;
        let pin = config.server.pin_cores;
        let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let admin_config = config.admin.clone();
        let state_dir = config.state.dir(&|k| std::env::var(k).ok());
        let first = generation::build(config, None, count, &started, 1)?;
        crate::state::spend::restore(&state_dir, &first.keys);
        let shutdown = Shutdown::new();
        let control = Control::new(first, count, shutdown.clone(), started);
        let mut workers = Workers::new(shutdown);
        let shards: Arc<[Arc<Shard>]> = (0..count).map(|_| Arc::default()).collect();
        for (index, shard) in shards.iter().enumerate() {
            let (control, shard) = (control.clone(), shard.clone());
            workers.spawn(index, pin, driver, move || {
                worker::run(index, control, shard)
            })?;
        }
        let admin = match admin_config.listen {
            Some(addr) => {
                let view = Arc::new(AdminView {
                    control: control.clone(),
                    shards: shards.clone(),
                });
                Some(AdminServer::start(addr, admin_config.token, view)?)
            }
            None => None,
        };
        let current = control.clone();
        let spend = Keeper::start(state_dir, move || current.current().keys.clone());
        Ok(GatewayHandle {
            admin,
            control,
            shards,
            workers: count,
            driver,
            threads: workers,
            spend,
        })
    }
}

impl GatewayHandle {
    /// The first bound address (with its real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs()[0]
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.control.local_addrs()
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// The credential pool shared by the workers (the running generation's): its
    /// [`snapshot`](Pool::snapshot) is each credential's health, and [`reset`](Pool::reset) clears
    /// a cooldown.
    pub fn pool(&self) -> Arc<Pool> {
        self.control.pool()
    }

    /// The handle that reloads or drains this gateway, from any thread.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// The upstream connection pools' counters, summed over the workers.
    pub fn upstream_connections(&self) -> PoolStats {
        (self.shards.iter())
            .map(|s| s.pool.read())
            .fold(PoolStats::default(), |a, b| a + b)
    }

    /// The admin listener's address, when `[admin] listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminServer::local_addr)
    }

    /// Built-in mock upstreams and the loopback addresses they serve on.
    pub fn mock_upstreams(&self) -> Vec<(String, SocketAddr)> {
        self.control.mock_upstreams()
    }

    /// A signal that stops the gateway when raised (for signal handlers on another thread).
    pub fn shutdown_signal(&self) -> Shutdown {
        self.threads.shutdown.clone()
    }

    /// Stops accepting, ends the workers and waits for them.
    pub fn shutdown(mut self) {
        self.threads.stop();
        self.spend.stop();
    }

    /// Blocks until the gateway is stopped through its shutdown signal, or its drain ends.
    pub fn wait(mut self) {
        self.threads.join();
        self.spend.stop();
    }
}
