//! A request about one object (retrieve, cancel, delete, a batch's results, a file's content),
//! sent through the credential that holds it, for its owner only.
//!
//! An id the caller does not own gets the same 404 as an id that never existed. An object
//! whose credential the configuration no longer has gets a 404 that says so (to its owner).
//! Results and contents are relayed as they arrive, whatever their size; an object's own JSON
//! is read whole, so that its `results_url` can point at the gateway. The record goes when the
//! object does: on a successful delete, and when its upstream answers 404 for it.

use std::io;
use std::time::Instant;

use bytes::Bytes;
use monoio::net::TcpStream;

use super::ids::{id_of, kind_of, not_found, noun, visible};
use super::links::{gateway_results_url, public_base};
use super::store::{Kind, Record};
use super::upstream::{answer_with, ask, read_whole, Answer};
use crate::api::attempt::{body_failure, relay_answer, UpstreamAnswer};
use crate::api::{respond, Api};
use crate::http::head::Method;
use crate::http::{ApiError, ErrorType};
use crate::server::conn::{After, Request};
use crate::server::io::ClientWatch;
use crate::server::router::Route;
use crate::stream::relay::RelayEnd;

pub async fn one(
    api: &Api,
    client: &mut TcpStream,
    req: &Request,
    route: Route,
    caller: Option<&str>,
) -> io::Result<After> {
    let kind = kind_of(route);
    let id = id_of(req.head.path());
    let credential = match owned(api, kind, id, caller).await {
        Ok((_, credential)) => credential,
        Err(e) => return respond(client, req, &e).await,
    };
    let answer = match ask(api, req, credential, None).await {
        Ok(answer) => answer,
        Err(e) => return respond(client, req, &e).await,
    };
    let status = answer.head.status;
    if matches!(route, Route::BatchResults | Route::FileContent) && status == 200 {
        return relay(api, client, req, answer).await;
    }
    let (head, body) = match read_whole(api, answer).await {
        Ok(whole) => whole,
        Err(e) => return respond(client, req, &e).await,
    };
    let deleted = req.head.method == Method::Delete && (200..300).contains(&status);
    // Gone upstream (deleted there, or expired): the record goes too.
    let gone = status == 404 && matches!(route, Route::Batch | Route::File);
    if deleted || gone {
        let _ = api.objects.records.remove(id).await;
    }
    let body = match kind {
        Kind::Batch if (200..300).contains(&status) && !deleted => {
            let base = public_base(api.objects.public_url.as_deref(), req.head.header("host"));
            gateway_results_url(&body, &base).map_or(body, Bytes::from)
        }
        _ => body,
    };
    answer_with(client, req, &head, &body).await
}

/// The record of the caller's object `id`, and the credential that holds it.
pub async fn owned(
    api: &Api,
    kind: Kind,
    id: &str,
    caller: Option<&str>,
) -> Result<(Record, usize), ApiError> {
    let record = match api.objects.records.get(id).await? {
        Some(r) if r.kind == kind && visible(&r, caller) => r,
        _ => return Err(not_found(kind, id)),
    };
    match api.pool.find(&record.upstream, &record.credential) {
        Some(credential) => Ok((record, credential)),
        None => Err(ApiError::new(
            404,
            ErrorType::NotFound,
            format!(
                "{} {id:?} is held by the credential {:?} of the upstream {:?}, which this \
                 gateway's configuration no longer has; add it back to reach the {}",
                noun(kind),
                record.credential,
                record.upstream,
                noun(kind)
            )
            .into(),
        )),
    }
}

/// Relays a large answer (results, a file's content) as it arrives.
async fn relay(
    api: &Api,
    client: &mut TcpStream,
    req: &Request,
    answer: Answer,
) -> io::Result<After> {
    let Answer {
        origin,
        conn,
        head,
        leftover,
        ..
    } = answer;
    let upstream = UpstreamAnswer {
        origin,
        conn,
        head,
        leftover,
        // However long a large download takes: the relay's idle limit bounds each silence.
        deadline: None,
        translation: None,
    };
    let watch = ClientWatch::new(Instant::now());
    let relayed = relay_answer(api, client, req, upstream, &watch).await?;
    let name = api.pool.upstream_name(origin);
    match relayed.end {
        RelayEnd::Complete { .. } if !relayed.close => Ok(After::KeepAlive),
        RelayEnd::NotCommitted(f) => respond(client, req, &body_failure(name, &f)).await,
        RelayEnd::UpstreamFailed(f) => {
            log::warn!(
                "{}: upstream {name:?} failed mid-download: {}",
                req.id,
                f.reason
            );
            Ok(After::Close)
        }
        _ => Ok(After::Close),
    }
}
