//! Forwarding one request to an upstream and relaying its answer.
//!
//! The order matters: the body is skimmed (bad JSON never costs an upstream call), the upstream
//! is reached and answers with a status before anything is written to the client, so every
//! failure up to then is a normal HTTP error (and, with the credential pool, a failover). Once the
//! client has the head, failures are reported by the relay.

use std::cell::Cell;
use std::io;

use monoio::net::TcpStream;

use super::headers::{self, Outbound};
use super::{respond, Api, UpstreamRoute};
use crate::api::skim::skim;
use crate::http::ApiError;
use crate::server::conn::{After, Request};
use crate::server::io::{client_gone, write_all};
use crate::server::router::Route;
use crate::stream::relay::{relay, ClientFraming, RelayEnd, RelayStats, Response};
use crate::upstream::client::{connect, exchange};
use crate::upstream::response::ResponseFraming;

pub async fn forward(
    api: &Api,
    client: &mut TcpStream,
    req: &Request,
    route: Route,
    caller: Option<&str>,
) -> io::Result<After> {
    let stream = if route.has_json_body() {
        match skim(&req.body) {
            Ok(s) => route == Route::Messages && s.is_stream(),
            Err(e) => {
                let e = ApiError::invalid_request(
                    format!("the request body is not valid JSON: {}", e.0).into(),
                );
                return respond(client, req, &e).await;
            }
        }
    } else {
        false
    };
    let upstream: &UpstreamRoute = api.pick_upstream();
    let target = &upstream.target;
    let head = headers::upstream_request(
        &req.head,
        &Outbound {
            path_prefix: &target.url.path_prefix,
            host: &target.url.host_header,
            api_key: upstream.api_key.as_deref(),
            default_version: &upstream.default_version,
            body_len: req.body.len(),
            stream,
        },
    );
    let mut conn = match connect(target).await {
        Ok(c) => c,
        Err(e) => return respond(client, req, &e.to_api_error(&target.name)).await,
    };
    // A client that leaves while the upstream is still thinking (a long answer can take
    // minutes) aborts the request: the upstream connection is dropped and not reused.
    let watch_client = Cell::new(true);
    let exchanged = monoio::select! {
        r = exchange(
            &mut conn,
            head,
            req.body.clone(),
            false,
            target.response_timeout,
            api.settings.upstream_head_buffer,
        ) => Some(r),
        _ = client_gone(client, &watch_client) => None,
    };
    let (up, leftover) = match exchanged {
        Some(Ok(r)) => r,
        Some(Err(e)) => return respond(client, req, &e.to_api_error(&target.name)).await,
        None => return Ok(After::Close),
    };

    let event_stream = up.is_event_stream();
    let http11 = req.head.minor_version == 1;
    let (out, close) = match up.framing {
        // An event stream is re-framed as chunks even when the upstream sent a length, so the
        // relay can add keep-alive comments or an error event.
        ResponseFraming::Length(_) if event_stream && http11 => {
            (ClientFraming::Chunked, !req.head.keep_alive)
        }
        ResponseFraming::None | ResponseFraming::Length(_) => {
            (ClientFraming::Passthrough, !req.head.keep_alive)
        }
        ResponseFraming::Chunked | ResponseFraming::UntilClose if http11 => {
            (ClientFraming::Chunked, !req.head.keep_alive)
        }
        // An HTTP/1.0 client cannot read chunks: its body ends when the connection closes.
        ResponseFraming::Chunked | ResponseFraming::UntilClose => {
            (ClientFraming::Passthrough, true)
        }
    };
    let client_head = headers::client_response(&up, req.id.as_str(), event_stream, close);
    let client_head = match (up.framing, out) {
        (ResponseFraming::None, _) => client_head.finish_with_length(0),
        (_, ClientFraming::Chunked) => client_head.finish_chunked(),
        (ResponseFraming::Length(n), _) => client_head.finish_with_length(n),
        (_, ClientFraming::Passthrough) => client_head.finish_without_length(),
    };
    if up.framing == ResponseFraming::None {
        write_all(client, client_head).await?;
        return Ok(if close {
            After::Close
        } else {
            After::KeepAlive
        });
    }
    let response = Response {
        head: client_head,
        leftover,
        framing: up.framing,
        out,
        event_stream,
    };
    let (end, stats) = relay(&mut conn, client, response, &api.settings.relay).await;
    log_completion(req, caller, up.status, &end, &stats);
    match end {
        RelayEnd::Complete { .. } if !close => Ok(After::KeepAlive),
        RelayEnd::Complete { .. } => Ok(After::Close),
        RelayEnd::NotCommitted(failure) => {
            log::warn!(
                "{}: upstream {:?} failed before its answer began: {}",
                req.id,
                target.name,
                failure.reason
            );
            let message = format!("the upstream {:?} {}", target.name, failure.reason);
            let e = if failure.timed_out {
                ApiError::gateway_timeout(message)
            } else {
                ApiError::bad_gateway(message)
            };
            respond(client, req, &e).await
        }
        RelayEnd::UpstreamFailed(failure) => {
            log::warn!(
                "{}: upstream {:?} failed mid-response: {}",
                req.id,
                target.name,
                failure.reason
            );
            Ok(After::Close)
        }
        RelayEnd::ClientGone => Ok(After::Close),
    }
}

/// The completion record of a relayed response (the access log and metrics build on it).
fn log_completion(
    req: &Request,
    caller: Option<&str>,
    status: u16,
    end: &RelayEnd,
    stats: &RelayStats,
) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let t = &stats.tally;
    let outcome = match end {
        RelayEnd::Complete { .. } => "complete",
        RelayEnd::NotCommitted(_) => "failed-before-commit",
        RelayEnd::UpstreamFailed(_) => "failed-mid-response",
        RelayEnd::ClientGone => "client-gone",
    };
    log::debug!(
        "{} {} {} ({}) -> {status} {outcome}: {} events, {} writes, {} bytes; tokens in={} out={} cache_write={} cache_read={}",
        req.id,
        req.head.method_str(),
        req.head.path(),
        caller.unwrap_or("no client key"),
        t.events,
        stats.writes,
        stats.bytes,
        t.usage.input_tokens,
        t.usage.output_tokens,
        t.usage.cache_creation_input_tokens,
        t.usage.cache_read_input_tokens,
    );
}
