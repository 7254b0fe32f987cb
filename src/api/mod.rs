//! The gateway's endpoints: the request handler that the connection loop calls.
//!
//! `/healthz` is answered here; everything under `/v1` is forwarded. The handler owns the
//! per-worker view of the upstreams; choosing among them is the routing layer's job (one upstream
//! and one credential until the credential pool exists).

pub mod auth;
pub mod forward;
pub mod headers;
pub mod skim;

use std::io;

use monoio::net::TcpStream;

use crate::config::Config;
use crate::http::response::ResponseHead;
use crate::http::ApiError;
use crate::server::conn::{After, Handler, Request};
use crate::server::io::write_all;
use crate::server::router::{self, Route};
use crate::stream::relay::RelaySettings;
use crate::upstream::client::Target;
use auth::ClientKeys;

/// An upstream as one worker sees it.
pub struct UpstreamRoute {
    pub target: Target,
    /// The credential sent upstream; `None` for the built-in mock, which needs none.
    pub api_key: Option<String>,
    pub default_version: String,
}

pub struct Settings {
    pub relay: RelaySettings,
    pub upstream_head_buffer: usize,
}

/// The request handler of one worker.
pub struct Api {
    clients: ClientKeys,
    upstreams: Vec<UpstreamRoute>,
    settings: Settings,
}

impl Api {
    /// `targets` pairs each configured upstream with its resolved endpoint, in config order.
    pub fn new(config: &Config, targets: Vec<Target>) -> Api {
        let upstreams = config
            .upstreams
            .iter()
            .zip(targets)
            .map(|(u, target)| UpstreamRoute {
                target,
                api_key: u.credentials.first().map(|c| c.api_key.clone()),
                default_version: u.default_anthropic_version.clone(),
            })
            .collect();
        Api {
            clients: ClientKeys::new(&config.api_keys),
            upstreams,
            settings: Settings {
                relay: config.stream.relay_settings(),
                upstream_head_buffer: config.server.max_head_bytes,
            },
        }
    }

    fn pick_upstream(&self) -> &UpstreamRoute {
        &self.upstreams[0]
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
                let mut out = head.finish_with_length(2);
                out.extend_from_slice(b"ok");
                write_all(stream, out).await?;
                Ok(After::KeepAlive)
            }
            Ok(route) => match self.clients.check(&req.head) {
                Ok(caller) => forward::forward(self, stream, &req, route, caller).await,
                Err(e) => respond(stream, &req, &e).await,
            },
        }
    }
}

/// Answers with an error; the connection stays open if the client wants it.
pub(crate) async fn respond(
    stream: &mut TcpStream,
    req: &Request,
    e: &ApiError,
) -> io::Result<After> {
    write_all(stream, e.to_response(req.id.as_str(), req.head.keep_alive)).await?;
    Ok(After::KeepAlive)
}
