//! The gateway's endpoints: the request handler that the connection loop calls.
//!
//! `/healthz` is answered here; batches and files go to `objects`, everything else under `/v1`
//! is forwarded. The handler owns the
//! per-worker view of the upstreams (their resolved endpoints) and shares the credential pool with
//! every other worker; choosing among credentials is the pool's job.

pub mod attempt;
pub mod auth;
pub mod forward;
pub mod headers;
pub mod limits;
pub mod local;
pub mod models;
pub mod outgoing;
pub mod proof;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use monoio::net::TcpStream;

use crate::config::{Config, ModelsConfig};
use crate::dialect::Dialect;
use crate::exchange::{Exchange, Summary};
use crate::http::head::RequestHead;
use crate::http::response::ResponseHead;
use crate::http::ApiError;
use crate::limits::registry::Registry;
use crate::metrics::Recorder;
use crate::request_id::RequestId;
use crate::routing::models::Catalog;
use crate::routing::pool::Pool;
use crate::server::conn::{After, Handler, Request};
use crate::server::incoming::Incoming;
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
    /// The API it speaks.
    pub dialect: Dialect,
    /// The client-facing model → this upstream's id for it.
    pub model_names: BTreeMap<String, String>,
    pub openai: crate::dialect::openai::Options,
    /// Bedrock's and Vertex's region, and Vertex's project (empty for other kinds).
    pub region: String,
    pub project: String,
}

impl UpstreamRoute {
    /// An upstream that is never connected to, for tests of what would be sent.
    #[cfg(test)]
    pub fn for_tests(dialect: Dialect, model_names: BTreeMap<String, String>) -> UpstreamRoute {
        UpstreamRoute {
            target: Target {
                name: "test".into(),
                url: crate::upstream::url::BaseUrl::parse("http://127.0.0.1:1").expect("a URL"),
                timeouts: crate::config::Upstream::mock("test").timeouts,
                proxy: None,
                tls: None,
            },
            default_version: "2023-06-01".into(),
            dialect,
            model_names,
            openai: crate::dialect::openai::Options::default(),
            region: "us-east-1".into(),
            project: "test-project".into(),
        }
    }
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
    pub(crate) upstreams: Vec<UpstreamRoute>,
    pub(crate) pool: Arc<Pool>,
    pub(crate) models: ModelsConfig,
    /// The models the configuration names, when it names any.
    catalog: Option<Arc<Catalog>>,
    /// This core's idle upstream connections.
    pub(crate) conns: ConnPool,
    /// This core's cache of upstream addresses.
    pub(crate) resolver: Resolver,
    /// This core's metrics.
    recorder: Rc<Recorder>,
    pub(crate) settings: Settings,
    /// Batches and files.
    pub(crate) objects: crate::objects::Settings,
    /// `routing.forward_paths`.
    forward_paths: Vec<String>,
    /// `server.max_upload_bytes`.
    max_upload: u64,
    /// Client keys' limits and budgets.
    pub(crate) limits: Arc<Registry>,
}

/// What the handler learnt of a request that labels its metrics and its access-log line.
#[derive(Default)]
pub struct Seen<'a> {
    pub route: Option<Route>,
    /// The name of the client's key.
    pub caller: Option<&'a str>,
    /// The model, aliases resolved.
    pub model: Option<Cow<'a, str>>,
    pub stream: bool,
    /// Body bytes read as they came (an upload), where the body was not collected first.
    pub body_in: Option<u64>,
}

impl Api {
    /// `targets` pairs each configured upstream with its endpoint, in config order; `pool` and
    /// `catalog` are shared by all workers, `conns`, `resolver` and `recorder` are this worker's.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &Config,
        targets: Vec<Target>,
        pool: Arc<Pool>,
        catalog: Option<Arc<Catalog>>,
        records: crate::objects::records::Records,
        limits: Arc<Registry>,
        conns: ConnPool,
        resolver: Resolver,
        recorder: Rc<Recorder>,
    ) -> Api {
        let upstreams = config
            .upstreams
            .iter()
            .zip(targets)
            .map(|(u, target)| UpstreamRoute {
                target,
                default_version: u.default_anthropic_version.clone(),
                dialect: u.dialect(),
                model_names: u.model_names.clone(),
                openai: u.openai,
                region: u.region.clone().unwrap_or_default(),
                project: u.project.clone().unwrap_or_default(),
            })
            .collect();
        let objects = crate::objects::Settings {
            records,
            public_url: config.server.public_url.clone(),
            anthropic: (config.upstreams.iter())
                .map(|u| u.dialect() == Dialect::Anthropic)
                .collect(),
            first_model_within: config.server.max_body_bytes,
        };
        Api {
            clients: ClientKeys::new(&config.api_keys),
            upstreams,
            pool,
            models: config.models.clone(),
            catalog,
            conns,
            resolver,
            recorder,
            settings: Settings {
                relay: config.stream.relay_settings(),
                upstream_head_buffer: config.server.max_head_bytes,
                max_attempts: config.routing.max_attempts as usize,
            },
            objects,
            forward_paths: config.routing.forward_paths.clone(),
            max_upload: config.server.max_upload_bytes,
            limits,
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
    async fn handle(&self, stream: &mut TcpStream, mut req: Request) -> io::Result<After> {
        let mut seen = Seen::default();
        let incoming = req.incoming.take();
        let result = self.serve(stream, &req, incoming, &mut seen).await;
        self.record(&req, &seen);
        result
    }

    fn streams_body(&self, head: &RequestHead) -> Option<u64> {
        let route = router::route(head.method, head.path()).ok()?;
        route.streams_body(head.method).then_some(self.max_upload)
    }

    fn rejected(&self, error: &ApiError, id: RequestId) {
        let now = Instant::now();
        let x = Exchange::new(now);
        x.answered(error.status, b"");
        self.finish(&Summary {
            id: id.as_str(),
            method: "-",
            path: "-",
            route: "unknown",
            client: None,
            model: None,
            stream: false,
            upstream: None,
            credential: None,
            body_in: 0,
            facts: x.facts(now),
        });
    }
}

impl Api {
    async fn serve<'a>(
        &'a self,
        stream: &mut TcpStream,
        req: &'a Request,
        incoming: Option<Incoming>,
        seen: &mut Seen<'a>,
    ) -> io::Result<After> {
        let route = match router::route(req.head.method, req.head.path()) {
            Err(_) if self.forwards(req.head.path()) => Route::Forwarded,
            Err(e) => return respond(stream, req, &e).await,
            Ok(route) => route,
        };
        seen.route = Some(route);
        if route == Route::Health {
            let mut head = ResponseHead::new(200);
            head.header("content-type", b"text/plain")
                .header("request-id", req.id.as_str().as_bytes());
            let out = head.finish_with_body(b"ok");
            req.exchange.answered(200, &out);
            write_all(stream, out).await?;
            return Ok(After::KeepAlive);
        }
        let caller = match self.clients.check(&req.head) {
            Err(e) => return respond(stream, req, &e).await,
            Ok(caller) => caller,
        };
        seen.caller = caller;
        let limited = caller.and_then(|name| self.limits.get(name));
        let admitted = match limited.map(|l| limits::admit(l, req, route)) {
            None => None,
            Some(Ok(admitted)) => Some(admitted),
            Some(Err(e)) => return respond(stream, req, &e).await,
        };
        let after = match &self.catalog {
            Some(catalog) if models::answers(catalog, &self.pool, req, route) => {
                models::answer(catalog, stream, req, route).await
            }
            _ if route.is_object() => {
                crate::objects::serve(self, stream, req, incoming, route, seen).await
            }
            _ => forward::forward(self, stream, req, route, seen).await,
        };
        if let (Some(l), Some(admitted)) = (limited, admitted) {
            limits::settle(self, l, admitted, req, seen);
        }
        after
    }

    /// Whether a path the gateway does not serve is under one of `routing.forward_paths` (at a
    /// segment's boundary: `/v1/skills` forwards `/v1/skills/x`, not `/v1/skillsets`).
    fn forwards(&self, path: &str) -> bool {
        self.forward_paths.iter().any(|prefix| {
            path.strip_prefix(prefix.as_str()).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/')
            })
        })
    }

    /// The request is over: its metrics and its access-log line.
    fn record(&self, req: &Request, seen: &Seen<'_>) {
        let (upstream, credential) = match req.exchange.credential() {
            Some(i) => {
                let c = self.pool.credential(i);
                (Some(self.pool.upstream_name(c.upstream)), Some(&*c.name))
            }
            None => (None, None),
        };
        self.finish(&Summary {
            id: req.id.as_str(),
            method: req.head.method_str(),
            path: req.head.path(),
            route: seen.route.map_or("unknown", Route::name),
            client: seen.caller,
            model: seen.model.as_deref(),
            stream: seen.stream,
            upstream,
            credential,
            body_in: seen.body_in.unwrap_or(req.body.len() as u64),
            facts: req.exchange.facts(Instant::now()),
        });
    }

    fn finish(&self, summary: &Summary<'_>) {
        self.recorder.request(summary);
        if crate::logging::access_enabled() {
            crate::access_log::write(summary);
        }
    }
}

/// The head of a JSON answer of the gateway's own (a page, a count, a model), with the headers
/// the gateway adds to every answer of this request.
pub(crate) fn json_head(req: &Request, status: u16, keep_alive: bool) -> ResponseHead {
    let mut head = ResponseHead::json(status, req.id.as_str(), keep_alive);
    head.lines(&req.extra_headers.borrow());
    head
}

/// Answers with an error; the connection stays open if the client wants it (and the gateway is
/// not draining).
pub(crate) async fn respond(
    stream: &mut TcpStream,
    req: &Request,
    e: &ApiError,
) -> io::Result<After> {
    let keep_alive = req.head.keep_alive && !crate::lifecycle::phase::draining();
    let out = e.to_response_with(req.id.as_str(), keep_alive, &req.extra_headers.borrow());
    req.exchange.answered(e.status, &out);
    write_all(stream, out).await?;
    Ok(After::KeepAlive)
}
