//! Batches and files: objects that live upstream, under the credential that created them.
//!
//! A Message Batch or a file exists in the upstream account (the workspace) of the credential
//! that created it; another credential gets 404 for it. So the gateway records, for each object
//! created through it, which credential holds it and which client key owns it ([`store`]), and
//! afterwards sends every request about the object through that credential, and only for its
//! owner. Lists are answered from those records, so that a caller sees exactly its own objects,
//! paginated as the API paginates. Large bodies (uploads, batches) go upstream as they arrive
//! ([`create`]); batch results and file contents come back the same way.
//!
//! The pure parts (which id a path names, who may see a record, the links the gateway hands
//! out, list pages, the rewriting of batch bodies) are apart from the I/O and tested alone.

pub mod batch_body;
pub mod create;
pub mod ids;
pub mod links;
pub mod list;
pub mod pages;
pub mod read;
pub mod records;
pub mod store;
mod store_error;
mod store_keys;
mod upstream;

use std::io;

use monoio::net::TcpStream;

use crate::api::{Api, Seen};
use crate::http::{ApiError, ErrorType};
use crate::server::conn::{After, Request};
use crate::server::incoming::Incoming;
use crate::server::router::Route;

/// Serves a request about batches or files; `incoming` is the body of a create, still to be
/// read.
pub async fn serve<'a>(
    api: &'a Api,
    client: &mut TcpStream,
    req: &'a Request,
    incoming: Option<Incoming>,
    route: Route,
    seen: &mut Seen<'a>,
) -> io::Result<After> {
    let caller = seen.caller;
    match (route, incoming) {
        (Route::Batches | Route::Files, Some(mut incoming)) => {
            let after = create::create(api, client, req, &mut incoming, route, seen).await;
            seen.body_in = Some(incoming.received());
            after
        }
        (Route::Batches | Route::Files, None) => list::list(api, client, req, route, caller).await,
        _ => read::one(api, client, req, route, caller).await,
    }
}

/// What the object endpoints of one worker need beyond the rest of the handler.
pub struct Settings {
    pub records: records::Records,
    /// `server.public_url`.
    pub public_url: Option<String>,
    /// Which upstreams (by index) speak the Anthropic API, and so can hold objects.
    pub anthropic: Vec<bool>,
    /// How far into a batch its first request's model may come (`server.max_body_bytes`: the
    /// largest a single request may be).
    pub first_model_within: u64,
}

/// The error for a request that only an upstream speaking the Anthropic API can serve.
pub fn anthropic_only(route: Route) -> ApiError {
    ApiError::new(
        400,
        ErrorType::InvalidRequest,
        format!(
            "{} is served only through upstreams of kind \"anthropic\" (or the mock); this \
             gateway has none that can take it",
            route.name()
        )
        .into(),
    )
}
