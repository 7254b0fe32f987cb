//! Listing batches or files: the caller's own, from the gateway's records, each as its upstream
//! describes it now.
//!
//! The upstream's own lists cannot serve: each credential's list holds every team's objects
//! made through it, and a caller's objects may be spread over several credentials. So the page
//! is cut from the records (the caller's objects, newest first, by `limit`, `before_id` and
//! `after_id`), and each object on it is asked of the credential that holds it, a few at a
//! time. An object its upstream no longer has (deleted there, expired) leaves the records and
//! the page. An upstream that fails fails the list, naming it: a page with holes would look
//! complete. A list of given ids (`ids[]`) is one page of those the caller may see.

use std::io;

use bytes::Bytes;
use futures_util::future::join_all;
use monoio::net::TcpStream;

use super::ids::{kind_of, noun, visible};
use super::links::{gateway_results_url, public_base};
use super::pages::{asked, page};
use super::store::{Kind, Page, Record};
use super::upstream::{ask, read_whole};
use crate::api::{respond, Api};
use crate::http::ApiError;
use crate::server::conn::{After, Request};
use crate::server::io::write_all;
use crate::server::router::Route;

/// Objects asked of upstreams at once.
const AT_ONCE: usize = 8;

pub async fn list(
    api: &Api,
    client: &mut TcpStream,
    req: &Request,
    route: Route,
    caller: Option<&str>,
) -> io::Result<After> {
    let kind = kind_of(route);
    let query = req.head.target().split_once('?').map_or("", |(_, q)| q);
    let asked = match asked(query) {
        Ok(a) => a,
        Err(e) => return respond(client, req, &e).await,
    };
    let found = match &asked.ids {
        Some(ids) => these(api, kind, ids, caller).await,
        None => api.objects.records.page(kind, caller, &asked).await,
    };
    let found = match found {
        Ok(found) => found,
        Err(e) => return respond(client, req, &e).await,
    };
    let beta = query.split('&').any(|p| p == "beta=true");
    let base = public_base(api.objects.public_url.as_deref(), req.head.header("host"));
    let mut objects = Vec::with_capacity(found.records.len());
    for group in found.records.chunks(AT_ONCE) {
        let described = join_all(group.iter().map(|r| describe(api, req, r, beta))).await;
        for (record, described) in group.iter().zip(described) {
            match described {
                Ok(Some(object)) => {
                    let object = match kind {
                        Kind::Batch => {
                            gateway_results_url(&object, &base).map_or(object, Bytes::from)
                        }
                        Kind::File => object,
                    };
                    objects.push((record.id.clone(), object.to_vec()));
                }
                Ok(None) => {}
                Err(e) => return respond(client, req, &e).await,
            }
        }
    }
    let body = page(&objects, found.has_more, asked.before_id.is_none());
    let keep_alive = req.head.keep_alive && !crate::lifecycle::phase::draining();
    let out = crate::api::json_head(req, 200, keep_alive).finish_with_body(&body);
    req.exchange.answered(200, &out);
    write_all(client, out).await?;
    Ok(After::KeepAlive)
}

/// The records of the given ids the caller may see, newest first: one page.
async fn these(
    api: &Api,
    kind: Kind,
    ids: &[String],
    caller: Option<&str>,
) -> Result<Page, ApiError> {
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        match api.objects.records.get(id).await? {
            Some(r) if r.kind == kind && visible(&r, caller) => records.push(r),
            _ => {}
        }
    }
    records.sort_by(|a, b| (b.created_ms, &b.id).cmp(&(a.created_ms, &a.id)));
    Ok(Page {
        records,
        has_more: false,
    })
}

/// The object as its upstream describes it; `None` when it is gone (and then so is its record).
async fn describe(
    api: &Api,
    req: &Request,
    record: &Record,
    beta: bool,
) -> Result<Option<Bytes>, ApiError> {
    let Some(credential) = api.pool.find(&record.upstream, &record.credential) else {
        log::warn!(
            "{}: {} {} is held by {}/{}, which the configuration no longer has; left out of the list",
            req.id,
            noun(record.kind),
            record.id,
            record.upstream,
            record.credential
        );
        return Ok(None);
    };
    let collection = match record.kind {
        Kind::Batch => "/v1/messages/batches/",
        Kind::File => "/v1/files/",
    };
    let id = utf8_percent_encode(&record.id);
    let target = format!("{collection}{id}{}", if beta { "?beta=true" } else { "" });
    let answer = ask(api, req, credential, Some(("GET", &target))).await?;
    let (head, body) = read_whole(api, answer).await?;
    match head.status {
        200..=299 => Ok(Some(body)),
        404 => {
            let _ = api.objects.records.remove(&record.id).await;
            Ok(None)
        }
        status => Err(ApiError::bad_gateway(format!(
            "the upstream {:?} answered {status} for {} {}, so the list cannot be complete",
            record.upstream,
            noun(record.kind),
            record.id
        ))),
    }
}

/// An id as one path segment (ids are plain, but they come from an upstream).
fn utf8_percent_encode(id: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    const SEGMENT: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'-');
    utf8_percent_encode(id, SEGMENT).to_string()
}
