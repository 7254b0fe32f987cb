//! The admin listener: where operators look at a running gateway and act on it.
//!
//! It runs on a thread of its own, with its own small runtime, so that a scrape, a config dump
//! or a reload never takes a turn from a worker serving clients. What it shows and does comes
//! from a [`Backend`] (the running gateway), so this module knows HTTP and access rules, not the
//! gateway's insides. With `admin.token` set, every request must carry
//! `Authorization: Bearer <token>`, compared in constant time.

mod routes;
mod views;

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::Config;
use crate::routing::pool::CredentialStatus;
use crate::runtime::{accept_loop, bind_group};
use crate::server::conn::Limits;
use crate::shutdown::Shutdown;

/// What the admin endpoints read and act on. Called on the admin thread.
pub trait Backend: Send + Sync + 'static {
    /// The Prometheus text exposition of the gateway's metrics.
    fn metrics(&self, out: &mut String);
    /// Every credential's health, as the pool sees it now.
    fn credentials(&self) -> Vec<CredentialStatus>;
    /// Clears a credential's cooldowns; false when there is no such credential.
    fn reset(&self, upstream: &str, credential: &str) -> bool;
    /// The configuration requests are served with now.
    fn config(&self) -> Arc<Config>;
    /// Reads the configuration file again and applies it; what changed, or why not.
    fn reload(&self) -> Result<String, String>;
    /// The batches and files made through the gateway, by owner (ids only); why not, if the
    /// record cannot be read.
    fn objects(&self) -> Result<ObjectsByOwner, String>;
    /// Each limited client key's limits, what is left of them, and its spend.
    fn keys(&self) -> Vec<crate::limits::registry::KeyStatus>;
    /// Gives a key full buckets and no spend; false when there is no limited key by that name.
    fn reset_key(&self, name: &str) -> bool;
}

/// Each owner's objects: (kind, id) pairs, by the owner's client key name (`""`: none).
pub type ObjectsByOwner =
    std::collections::BTreeMap<String, Vec<(crate::objects::store::Kind, String)>>;

/// A running admin listener.
pub struct AdminServer {
    addr: SocketAddr,
    shutdown: Shutdown,
    thread: Option<JoinHandle<()>>,
}

/// Admin requests are small: a reset or a reload has no body worth the name.
fn limits() -> Limits {
    Limits {
        max_head_bytes: 16 * 1024,
        max_body_bytes: 64 * 1024,
        head_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(75),
    }
}

impl AdminServer {
    /// Binds `addr` (here, so that a taken port fails the start) and serves it on a new thread
    /// until [`stop`](Self::stop).
    pub fn start(
        addr: SocketAddr,
        token: Option<String>,
        backend: Arc<dyn Backend>,
    ) -> io::Result<AdminServer> {
        let listener = bind_group(addr, 1)?
            .pop()
            .expect("bind_group binds one listener per worker");
        let addr = listener.local_addr()?;
        let shutdown = Shutdown::new();
        let stop = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("ringgate-admin".into())
            .spawn(move || {
                // epoll: the admin thread must work wherever the gateway does, and its load is
                // a scrape now and then.
                let runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                    .enable_timer()
                    .build();
                match runtime {
                    Ok(mut rt) => rt.block_on(async move {
                        let handler = Rc::new(routes::Admin::new(token, backend));
                        accept_loop(listener, handler, Rc::new(limits()), stop).await;
                    }),
                    Err(e) => log::error!("admin listener: cannot start its runtime: {e}"),
                }
            })?;
        Ok(AdminServer {
            addr,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The bound address (with its real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and ends the thread; requests in progress are dropped.
    pub fn stop(&mut self) {
        self.shutdown.raise();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop();
    }
}
