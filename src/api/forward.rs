//! Forwarding one request: which model it is for, which credentials may serve it, and failover
//! from one to the next until an answer reaches the client.
//!
//! The body is skimmed first (bad JSON never costs an upstream call) and an alias is replaced by
//! its model id. Then each attempt takes a credential from the pool, and its upstream gets the
//! request in its own words (see `outgoing`); an attempt that fails before anything reached the
//! client (a rate limit, an outage, a refused key, a stream that broke before its first event) is
//! replayed from the kept body with the next credential, up to `routing.max_attempts`. Errors the
//! request causes itself (400, 404, 413, …) are relayed at once.

use std::borrow::Cow;
use std::io;

use monoio::net::TcpStream;

use super::attempt::{
    attempt, body_failure, relay_answer, Attempt, Failed, LastAnswer, Plan, Relayed,
};
use super::outgoing::{prepare, Asked, Prepared};
use super::{local, respond, Api, Seen};
use crate::http::{ApiError, ErrorType};
use crate::json::skim::{skim, Skim};
use crate::lifecycle::phase;
use crate::routing::pool::{Ask, Pick, Unavailable};
use crate::routing::select::affinity_key;
use crate::server::conn::{After, Request};
use crate::server::io::ClientWatch;
use crate::server::router::Route;
use crate::stream::relay::RelayEnd;

/// How long after its arrival a request starts looking out for a client that left.
const WATCH_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

pub async fn forward<'a>(
    api: &'a Api,
    client: &mut TcpStream,
    req: &'a Request,
    route: Route,
    seen: &mut Seen<'a>,
) -> io::Result<After> {
    let skimmed = if route.has_json_body() {
        match skim(&req.body) {
            Ok(s) => s,
            Err(e) => {
                let e = ApiError::invalid_request(
                    format!("the request body is not valid JSON: {}", e.0).into(),
                );
                return respond(client, req, &e).await;
            }
        }
    } else {
        Skim::default()
    };
    let stream = route == Route::Messages && skimmed.is_stream();
    seen.stream = stream;
    // A model lookup is routed by the id it asks about, to an upstream that serves it.
    let requested = match route {
        Route::Model => Some(Cow::Owned(super::models::model_id(req))),
        _ => skimmed.model(&req.body),
    };
    seen.model = requested.as_ref().map(|m| match api.models.alias(m) {
        Some(id) => Cow::Borrowed(id),
        None => m.clone(),
    });
    let model = seen.model.as_deref();
    // Only a message is spent on: a key with a budget may not send one it cannot price.
    let spent = route == Route::Messages;
    if let Some(e) = spent
        .then(|| super::limits::unpriced(api, seen.caller, model))
        .flatten()
    {
        return respond(client, req, &e).await;
    }
    let affinity = req
        .head
        .header("x-session-id")
        .or_else(|| skimmed.user_id(&req.body))
        .map(affinity_key);

    let watch_client = ClientWatch::new(req.exchange.received + WATCH_AFTER);
    let mut tried = Vec::with_capacity(api.settings.max_attempts);
    // What the last upstream was sent, kept while the next attempt goes to the same upstream.
    let mut prepared: Option<(usize, Prepared)> = None;
    let mut last: Option<(usize, Failed)> = None;
    loop {
        let ask = Ask {
            model,
            affinity,
            tried: &tried,
            only: (route == Route::Forwarded).then_some(&api.objects.anthropic[..]),
        };
        let pick = match last {
            Some((previous, f)) if tried.len() >= api.settings.max_attempts => {
                return answer_failure(api, client, req, previous, f, &watch_client).await;
            }
            _ => api.pool.pick(&ask, api.pool.now_ms()),
        };
        let (credential, probe) = match (pick, last.take()) {
            (
                Pick::Use {
                    credential,
                    probe,
                    fail_open,
                },
                failed,
            ) => {
                if let Some((previous, f)) = failed {
                    log_failover(api, req, previous, &f, credential, fail_open);
                    f.discard(api);
                }
                (credential, probe)
            }
            (Pick::NotServed, _) if route == Route::Forwarded => {
                return respond(client, req, &crate::objects::anthropic_only(route)).await;
            }
            (Pick::NotServed, _) => {
                let model = model.unwrap_or_default();
                return respond(client, req, &not_served(model)).await;
            }
            // Every candidate is rate-limited or disabled (those tried included): the gateway
            // says so itself, whatever the order of the failures that brought it here.
            (Pick::Unavailable(u), None) => {
                return respond(client, req, &unavailable(model, &u)).await;
            }
            (Pick::Unavailable(u), Some((_, f))) if u.all_limited() => {
                f.discard(api);
                return respond(client, req, &unavailable(model, &u)).await;
            }
            (Pick::Unavailable(_), Some((previous, f))) => {
                return answer_failure(api, client, req, previous, f, &watch_client).await;
            }
        };
        let upstream = api.pool.credential(credential).upstream;
        let now = match prepared.take() {
            Some((u, p)) if u == upstream => p,
            _ => {
                let asked = Asked {
                    route,
                    body: &req.body,
                    range: skimmed.model.as_ref(),
                    requested: requested.as_deref(),
                    model,
                    stream,
                    head: &req.head,
                    request_id: req.id.as_str(),
                };
                match prepare(&api.upstreams[upstream], &asked) {
                    Ok(p) => p,
                    Err(e) => {
                        if probe {
                            api.pool.abandon(credential, model);
                        }
                        return respond(client, req, &e).await;
                    }
                }
            }
        };
        let outgoing = match &now {
            Prepared::Send(outgoing) => outgoing,
            Prepared::CountLocally => {
                return local::count_tokens(api, client, req, credential, probe, model).await
            }
            Prepared::Model => {
                return local::model(api, client, req, route, credential, probe).await
            }
        };
        tried.push(credential);
        let plan = Plan {
            req,
            outgoing,
            stream,
            credential,
            probe,
            model,
            watch_client: &watch_client,
        };
        match attempt(api, client, &plan).await {
            Attempt::Relayed(relayed) => {
                return finish(api, client, req, credential, relayed).await
            }
            Attempt::Failed(f) => last = Some((credential, f)),
            Attempt::ClientGone => return Ok(After::Close),
            Attempt::ShuttingDown => return respond(client, req, &phase::shutting_down()).await,
            Attempt::NotCounted => {
                return local::count_tokens(api, client, req, credential, false, model).await
            }
        }
        prepared = Some((upstream, now));
    }
}

/// The last attempt failed: its error, or the upstream's own answer relayed as it is.
async fn answer_failure(
    api: &Api,
    client: &mut TcpStream,
    req: &Request,
    credential: usize,
    failed: Failed,
    watch_client: &ClientWatch,
) -> io::Result<After> {
    let upstream = api.upstream_of(credential);
    log::warn!(
        "{}: upstream {upstream:?} failed ({}); no attempt left",
        req.id,
        failed.reason()
    );
    match failed.into_answer(upstream) {
        LastAnswer::Error(e) => respond(client, req, &e).await,
        LastAnswer::Upstream(answer) => {
            let began = std::time::Instant::now();
            let relayed = relay_answer(api, client, req, *answer, watch_client).await?;
            if let Some(end) = relayed.stats.upstream_end {
                req.exchange.waited(end.saturating_duration_since(began));
            }
            finish(api, client, req, credential, relayed).await
        }
    }
}

/// After a relayed answer: the completion record, and whether the connection goes on.
async fn finish(
    api: &Api,
    client: &mut TcpStream,
    req: &Request,
    credential: usize,
    relayed: Relayed,
) -> io::Result<After> {
    let upstream = api.upstream_of(credential);
    match relayed.end {
        RelayEnd::Complete { .. } if !relayed.close => Ok(After::KeepAlive),
        RelayEnd::Complete { .. } => Ok(After::Close),
        RelayEnd::NotCommitted(f) => {
            log::warn!(
                "{}: upstream {upstream:?} failed before its answer began: {}",
                req.id,
                f.reason
            );
            respond(client, req, &body_failure(upstream, &f)).await
        }
        RelayEnd::UpstreamFailed(f) => {
            log::warn!(
                "{}: upstream {upstream:?} failed mid-response: {}",
                req.id,
                f.reason
            );
            Ok(After::Close)
        }
        RelayEnd::ClientGone => Ok(After::Close),
        RelayEnd::ShuttingDown { committed: false } => {
            respond(client, req, &phase::shutting_down()).await
        }
        RelayEnd::ShuttingDown { committed: true } => Ok(After::Close),
    }
}

pub(crate) fn not_served(model: &str) -> ApiError {
    ApiError::new(
        404,
        ErrorType::NotFound,
        format!("model: {model} (no upstream of this gateway serves it)").into(),
    )
}

/// 429 when every credential that could serve the model is rate-limited or disabled.
pub(crate) fn unavailable(model: Option<&str>, u: &Unavailable) -> ApiError {
    let retry_after = u.retry_after_ms.map_or(1, |ms| ms.div_ceil(1000).max(1));
    let mut why = Vec::new();
    if u.rate_limited > 0 {
        why.push(format!("{} rate-limited", u.rate_limited));
    }
    if u.disabled > 0 {
        why.push(format!(
            "{} disabled after the upstream refused them",
            u.disabled
        ));
    }
    let model = model.map_or(Cow::Borrowed("this request"), |m| {
        format!("model {m:?}").into()
    });
    ApiError {
        retry_after: Some(retry_after),
        ..ApiError::new(
            429,
            ErrorType::RateLimit,
            format!(
                "no credential can serve {model} now ({}); retry after {retry_after} s",
                why.join(", ")
            )
            .into(),
        )
    }
}

fn log_failover(
    api: &Api,
    req: &Request,
    previous: usize,
    failed: &Failed,
    next: usize,
    fail_open: bool,
) {
    let pool = &api.pool;
    let (from, to) = (pool.credential(previous), pool.credential(next));
    api.recorder
        .failover(pool.upstream_name(from.upstream), &from.name);
    log::info!(
        "{}: {}/{} failed ({}); failing over to {}/{}{}",
        req.id,
        pool.upstream_name(from.upstream),
        from.name,
        failed.reason(),
        pool.upstream_name(to.upstream),
        to.name,
        if fail_open {
            " (cooling, tried anyway: nothing else is available)"
        } else {
            ""
        }
    );
}
