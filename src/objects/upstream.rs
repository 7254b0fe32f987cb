//! One request about an object, to the one credential that holds it.
//!
//! No failover: another credential cannot know the object, so its cooldown is no reason to ask
//! elsewhere (its answer still teaches the credential's health, as any answer does). What can go
//! wrong, and what the client gets:
//! - the credential has no value (a fetched one not fetched yet): 502, the log says why;
//! - the upstream cannot be reached, or does not answer in time: 502 or 504, naming it;
//! - the upstream refuses the gateway's credential (401, 403): 502, never the client's own 401;
//! - an answer the gateway must look inside (an object, to point its links at the gateway) that
//!   is larger than [`MAX_OBJECT`] or breaks off: 502.
//!
//! Everything else the upstream says is the client's answer, relayed as it is.

use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;

use crate::api::headers::{self, Outbound};
use crate::api::Api;
use crate::dialect::{health, Dialect};
use crate::http::chunked::ChunkedDecoder;
use crate::http::ApiError;
use crate::routing::health::{unix_ms, Outcome};
use crate::server::conn::Request;
use crate::server::io::{read_more, write_all, ReadOutcome};
use crate::upstream::client::{exchange, Deadline, Step, UpstreamError};
use crate::upstream::conn::UpstreamConn;
use crate::upstream::dial::dial;
use crate::upstream::response::{ResponseFraming, ResponseHead};

/// The largest answer read whole: a batch or file object, or one page of the API's.
pub const MAX_OBJECT: usize = 1 << 20;

/// An upstream's answer, its body still on the connection.
pub struct Answer {
    pub origin: usize,
    pub conn: UpstreamConn,
    pub head: ResponseHead,
    pub leftover: BytesMut,
    pub deadline: Deadline,
}

/// What goes upstream in place of the client's request line, when it differs.
pub type Line<'a> = Option<(&'a str, &'a str)>;

/// Sends the client's request (or `line` with the client's headers) to `credential` and reads
/// the answer's head. The credential's health learns the answer.
pub async fn ask(
    api: &Api,
    req: &Request,
    credential: usize,
    line: Line<'_>,
) -> Result<Answer, ApiError> {
    let c = api.pool.credential(credential);
    let upstream = &api.upstreams[c.upstream];
    let name = &upstream.target.name;
    let now = SystemTime::now();
    let held = c.auth.hold(now).map_err(|_| {
        ApiError::bad_gateway(format!(
            "the gateway has no usable credential for the upstream {name:?} now; its log says why"
        ))
    })?;
    let url = &upstream.target.url;
    let body = match line {
        Some(_) => Bytes::new(),
        None => req.body.clone(),
    };
    let head = headers::upstream_request(
        &req.head,
        &Outbound {
            path_prefix: &url.path_prefix,
            host: &url.host_header,
            api_key: held.bearer(),
            default_version: &upstream.default_version,
            body_len: body.len() as u64,
            chunked: false,
            stream: false,
            line,
        },
    );
    let started = Instant::now();
    let deadline = Deadline::after(upstream.target.timeouts.response, Step::Response);
    let mut pooled = api.conns.take(c.upstream);
    let (conn, head, leftover) = loop {
        let reused = pooled.is_some();
        let mut conn = match pooled.take() {
            Some(conn) => conn,
            None => match dial(&upstream.target, &api.resolver).await {
                Ok(conn) => {
                    api.conns.opened();
                    conn
                }
                Err(e) => return Err(fail(api, credential, e)),
            },
        };
        let head_buffer = api.settings.upstream_head_buffer;
        match exchange(&mut conn, &head, &body, false, deadline, head_buffer).await {
            Ok((head, leftover)) => break (conn, head, leftover),
            Err(e) if reused && e.is_stale() => api.conns.stale_retry(),
            Err(e) => return Err(fail(api, credential, e)),
        }
    };
    req.exchange.attempted(credential, started.elapsed());
    judge(api, credential, None, &head, &leftover)?;
    Ok(Answer {
        origin: c.upstream,
        conn,
        head,
        leftover,
        deadline,
    })
}

/// Teaches the credential's health what its answer says; a refused credential is the
/// gateway's problem, a 502 for the client, never its 401. `picked`: the pool chose the
/// credential (a create) for `model`, so a success settles its probe and its cooldown; a read
/// went to it whatever its state, and its success says nothing of the limits on messages.
pub fn judge(
    api: &Api,
    credential: usize,
    picked: Option<Option<&str>>,
    head: &ResponseHead,
    leftover: &[u8],
) -> Result<(), ApiError> {
    let now = unix_ms(SystemTime::now());
    let headers = || head.headers();
    let outcome = health::outcome(Dialect::Anthropic, head.status, headers, leftover, now);
    let pool = &api.pool;
    match (outcome, picked) {
        (Some(failed), picked) => {
            pool.report(credential, picked.flatten(), failed, pool.now_ms());
        }
        (None, Some(model)) => {
            pool.report(credential, model, Outcome::Success, pool.now_ms());
        }
        (None, None) => {}
    }
    if outcome == Some(Outcome::AuthFailed) || matches!(head.status, 401 | 403) {
        let c = pool.credential(credential);
        let name = pool.upstream_name(c.upstream);
        log::warn!(
            "upstream {name:?} refused credential {:?} ({})",
            c.name,
            head.status
        );
        return Err(ApiError::bad_gateway(format!(
            "the upstream {name:?} refused the gateway's credential ({}); the gateway's log \
             names it",
            head.status
        )));
    }
    Ok(())
}

fn fail(api: &Api, credential: usize, e: UpstreamError) -> ApiError {
    let pool = &api.pool;
    let outcome = match e {
        UpstreamError::TimedOut(..) => Outcome::Transient,
        _ => Outcome::Unreachable,
    };
    pool.report(credential, None, outcome, pool.now_ms());
    let c = pool.credential(credential);
    e.to_api_error(pool.upstream_name(c.upstream))
}

/// Reads the answer's body whole (up to [`MAX_OBJECT`]), and puts the connection back in the
/// pool when it can carry another request.
pub async fn read_whole(api: &Api, answer: Answer) -> Result<(ResponseHead, Bytes), ApiError> {
    let Answer {
        origin,
        mut conn,
        head,
        leftover,
        deadline,
    } = answer;
    let upstream = api.pool.upstream_name(origin).to_string();
    let broke =
        |why: &str| ApiError::bad_gateway(format!("the upstream {upstream:?} answered {why}"));
    let mut raw = leftover;
    let mut body = BytesMut::new();
    let mut chunks = ChunkedDecoder::new();
    loop {
        let done = match head.framing {
            ResponseFraming::None => true,
            ResponseFraming::Length(n) => raw.len() as u64 >= n,
            ResponseFraming::Chunked => {
                let mut at = 0;
                while at < raw.len() && !chunks.is_done() {
                    let step = chunks
                        .step(&raw[at..])
                        .map_err(|_| broke("broken chunks"))?;
                    if let Some(d) = step.data {
                        body.extend_from_slice(&raw[at + d.start..at + d.end]);
                    }
                    at += step.consumed;
                }
                let _ = raw.split_to(at);
                chunks.is_done()
            }
            ResponseFraming::UntilClose => false,
        };
        if done || raw.len() + body.len() > MAX_OBJECT {
            break;
        }
        match read_more(&mut conn, &mut raw, deadline.at).await {
            ReadOutcome::Read(0) if head.framing == ResponseFraming::UntilClose => {
                return Ok((head, raw.freeze()))
            }
            ReadOutcome::Read(0) | ReadOutcome::Failed(_) => {
                return Err(broke("a body that broke off"))
            }
            ReadOutcome::TimedOut => return Err(deadline.missed().to_api_error(&upstream)),
            ReadOutcome::Read(_) => {}
        }
    }
    let body = match head.framing {
        ResponseFraming::Length(n) if raw.len() as u64 == n => raw.freeze(),
        ResponseFraming::None => Bytes::new(),
        ResponseFraming::Chunked if raw.is_empty() && chunks.is_done() => body.freeze(),
        _ => {
            return Err(broke(&format!(
                "more than {MAX_OBJECT} bytes for one object"
            )))
        }
    };
    if head.keep_alive {
        api.conns.put(origin, conn);
    }
    Ok((head, body))
}

/// Answers the client with the upstream's head (its framing replaced) and `body`.
pub async fn answer_with(
    client: &mut TcpStream,
    req: &Request,
    head: &ResponseHead,
    body: &[u8],
) -> std::io::Result<crate::server::conn::After> {
    let keep_alive = req.head.keep_alive && !crate::lifecycle::phase::draining();
    let out = {
        let gateway = req.extra_headers.borrow();
        let out = headers::client_response(head, req.id.as_str(), false, !keep_alive, &gateway);
        out.finish_with_body(body)
    };
    req.exchange.answered(head.status, &out);
    write_all(client, out).await?;
    Ok(crate::server::conn::After::KeepAlive)
}
