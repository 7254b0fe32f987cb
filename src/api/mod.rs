//! The gateway's endpoints: the request handler that the connection loop calls.
//!
//! `/healthz` is answered here; everything under `/v1` is forwarded. The handler owns the
//! per-worker view of the upstreams (their resolved endpoints) and shares the credential pool with
//! every other worker; choosing among credentials is the pool's job.

pub mod attempt;
pub mod auth;
pub mod forward;
pub mod headers;
pub mod models;
pub mod skim;

use std::io;
use std::sync::Arc;

use monoio::net::TcpStream;

use crate::config::{Config, ModelsConfig};
use crate::http::response::ResponseHead;
use crate::http::ApiError;
use crate::routing::models::Catalog;
use crate::routing::pool::Pool;
use crate::server::conn::{After, Handler, Request};
use crate::server::io::write_all;
use crate::server::router::{self, Route};
use crate::stream::relay::RelaySettings;
use crate::upstream::client::Target;
use crate::upstream::dial::dial;
use crate::upstream::dns::Resolver;
use crate::upstream::pool::ConnPool;
use auth::ClientKeys;

/// How long a prewarmed TLS connection is given to take in the server's session tickets (one
/// round trip after the handshake, usually).
const SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

/// An upstream as one worker sees it.
pub struct UpstreamRoute {
    pub target: Target,
    pub default_version: String,
}

pub struct Settings {
    pub relay: RelaySettings,
    pub upstream_head_buffer: usize,
    pub max_attempts: usize,
}

/// The request handler of one worker.
pub struct Api {
    clients: ClientKeys,
    /// Indexed like the configuration's upstreams.
    upstreams: Vec<UpstreamRoute>,
    pool: Arc<Pool>,
    models: ModelsConfig,
    /// The models the configuration names, when it names any.
    catalog: Option<Arc<Catalog>>,
    /// This core's idle upstream connections.
    conns: ConnPool,
    /// This core's cache of upstream addresses.
    resolver: Resolver,
    settings: Settings,
}

impl Api {
    /// `targets` pairs each configured upstream with its endpoint, in config order; `pool` and
    /// `catalog` are shared by all workers, `conns` and `resolver` are this worker's.
    pub fn new(
        config: &Config,
        targets: Vec<Target>,
        pool: Arc<Pool>,
        catalog: Option<Arc<Catalog>>,
        conns: ConnPool,
        resolver: Resolver,
    ) -> Api {
        let upstreams = config
            .upstreams
            .iter()
            .zip(targets)
            .map(|(u, target)| UpstreamRoute {
                target,
                default_version: u.default_anthropic_version.clone(),
            })
            .collect();
        Api {
            clients: ClientKeys::new(&config.api_keys),
            upstreams,
            pool,
            models: config.models.clone(),
            catalog,
            conns,
            resolver,
            settings: Settings {
                relay: config.stream.relay_settings(),
                upstream_head_buffer: config.server.max_head_bytes,
                max_attempts: config.routing.max_attempts as usize,
            },
        }
    }

    /// Opens the configured number of idle connections to every upstream, so the first requests
    /// find them ready; a failure is logged and leaves the pool to fill as requests come.
    pub async fn prewarm(&self, count: usize) {
        for (origin, upstream) in self.upstreams.iter().enumerate() {
            for _ in 0..count {
                let target = &upstream.target;
                match dial(target, &self.resolver).await {
                    Ok(mut conn) => {
                        if conn.settle(SETTLE).await {
                            self.conns.put(origin, conn);
                        }
                    }
                    Err(e) => {
                        log::warn!("upstream {:?}: prewarming failed: {e}", target.name);
                        break;
                    }
                }
            }
        }
    }

    /// Closes idle upstream connections as they time out, until `stop` completes.
    pub async fn sweep_idle(&self, stop: impl std::future::Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        loop {
            monoio::select! {
                _ = monoio::time::sleep(self.conns.sweep_interval()) => self.conns.sweep(),
                _ = &mut stop => return,
            }
        }
    }

    /// The name of the upstream a credential belongs to.
    fn upstream_of(&self, credential: usize) -> &str {
        self.pool
            .upstream_name(self.pool.credential(credential).upstream)
    }
}

impl Handler for Api {
    async fn handle(&self, stream: &mut TcpStream, req: Request) -> io::Result<After> {
        match router::route(req.head.method, req.head.path()) {
            Err(e) => respond(stream, &req, &e).await,
            Ok(Route::Health) => {
                let mut head = ResponseHead::new(200);
                head.header("content-type", b"text/plain")
                    .header("request-id", req.id.as_str().as_bytes());
                write_all(stream, head.finish_with_body(b"ok")).await?;
                Ok(After::KeepAlive)
            }
            Ok(route) => match (self.clients.check(&req.head), &self.catalog) {
                (Err(e), _) => respond(stream, &req, &e).await,
                (Ok(_), Some(catalog)) if models::answers(catalog, &self.pool, &req, route) => {
                    models::answer(catalog, stream, &req, route).await
                }
                (Ok(caller), _) => forward::forward(self, stream, &req, route, caller).await,
            },
        }
    }
}

/// Answers with an error; the connection stays open if the client wants it (and the gateway is
/// not draining).
pub(crate) async fn respond(
    stream: &mut TcpStream,
    req: &Request,
    e: &ApiError,
) -> io::Result<After> {
    let keep_alive = req.head.keep_alive && !crate::lifecycle::phase::draining();
    write_all(stream, e.to_response(req.id.as_str(), keep_alive)).await?;
    Ok(After::KeepAlive)
}
