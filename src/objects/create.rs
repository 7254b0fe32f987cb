//! Creating a batch or uploading a file: the body goes upstream as it arrives, never held whole.
//!
//! A batch is routed by the model of its first request (aliases resolved, as for a message);
//! every later request's model is resolved and renamed for that upstream on the way
//! ([`BatchBody`]), and a request for a model that upstream does not serve stops the batch. A
//! file goes to any upstream that speaks the Anthropic API. The object's id, credential and
//! owner are recorded when the upstream answers, so that every later request about it goes
//! through that credential, for that owner only.
//!
//! What can go wrong, and what each case gets:
//! - nothing can take it (no upstream speaks the Anthropic API, or every credential is cooling):
//!   400, or 429 with `retry-after`, as for a message;
//! - the upstream cannot be reached: the next credential, while nothing has been sent. Each
//!   create goes out on a new connection, so an idle one the upstream was closing never costs a
//!   byte of it;
//! - the client's body breaks (over `server.max_upload_bytes`, bad chunks, a stall, the client
//!   gone): the upstream request is abandoned unfinished, its connection closed, so no object is
//!   made; the client gets 413, 400 or 408 (or nothing, if it is gone);
//! - a batch that is not JSON, or that needs two upstreams: 400, abandoned likewise;
//! - the upstream fails once the body went: its answer as it is, or 502/504; never a second
//!   attempt, since the object may exist;
//! - an object made but not recorded (the store failed): the client still gets it (it exists,
//!   and a retry would make another); the log names the id that no later request can reach.

use std::io;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use monoio::net::TcpStream;

use super::batch_body::BatchBody;
use super::ids::{kind_of, owner_of};
use super::links::{gateway_results_url, public_base};
use super::store::{Kind, Record};
use super::upstream::{answer_with, judge, read_whole, Answer};
use crate::api::forward::{not_served, unavailable};
use crate::api::headers::{self, Outbound};
use crate::api::{respond, Api, Seen};
use crate::http::ApiError;
use crate::json::skim::{members, unescape};
use crate::routing::health::{unix_ms, Outcome};
use crate::routing::pool::{Ask, Pick};
use crate::server::conn::{After, Request};
use crate::server::incoming::Incoming;
use crate::server::io::write_all;
use crate::server::router::Route;
use crate::upstream::client::{read_head, Deadline, Step};
use crate::upstream::conn::UpstreamConn;
use crate::upstream::dial::dial;

/// How long an upstream that stopped taking the body is given to say why.
const LAST_WORD: Duration = Duration::from_secs(2);

/// Why a create stopped before the upstream answered.
enum Stop {
    /// The client gets this error (the upstream request, if begun, is abandoned).
    Error(ApiError),
    /// The client is gone.
    Gone,
    /// The upstream stopped taking the body: its answer, if it gave one.
    Upstream(io::Error),
}

pub async fn create<'a>(
    api: &'a Api,
    client: &mut TcpStream,
    req: &Request,
    incoming: &mut Incoming,
    route: Route,
    seen: &mut Seen<'a>,
) -> io::Result<After> {
    let kind = kind_of(route);
    // A batch goes where its first request's model is served: the body is read up to it.
    let (held, first) = match kind {
        Kind::Batch => match first_model(api, client, incoming).await {
            Ok(found) => found,
            Err(stop) => return stopped(client, req, stop).await,
        },
        Kind::File => (Vec::new(), None),
    };
    let model = first
        .as_deref()
        .map(|m| api.models.alias(m).unwrap_or(m).to_string());
    seen.model = model.clone().map(Into::into);
    let (credential, probe, mut conn) = match connect(api, route, model.as_deref()).await {
        Ok(picked) => picked,
        Err(e) => return respond(client, req, &e).await,
    };
    let started = Instant::now();
    let sent = send(
        api, client, req, incoming, held, credential, &mut conn, kind,
    )
    .await;
    req.exchange.attempted(credential, started.elapsed());
    let model = model.as_deref();
    let answer = match sent {
        Ok(()) => read_answer(api, credential, model, conn, None).await,
        Err(Stop::Upstream(e)) => {
            // It may have said why it stopped (a refused key, a body it will not take).
            match read_answer(api, credential, model, conn, Some(LAST_WORD)).await {
                Ok(answer) => Ok(answer),
                Err(_) => {
                    let name = api
                        .pool
                        .upstream_name(api.pool.credential(credential).upstream);
                    Err(ApiError::bad_gateway(format!(
                        "the upstream {name:?} stopped taking the body: {e}"
                    )))
                }
            }
        }
        Err(stop) => {
            if probe {
                api.pool.abandon(credential, model);
            }
            return stopped(client, req, stop).await;
        }
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return respond(client, req, &e).await,
    };
    let (head, body) = match read_whole(api, answer).await {
        Ok(whole) => whole,
        Err(e) => return respond(client, req, &e).await,
    };
    if !(200..300).contains(&head.status) {
        return answer_with(client, req, &head, &body).await;
    }
    record(api, credential, kind, seen.caller, &body, req).await;
    let base = public_base(api.objects.public_url.as_deref(), req.head.header("host"));
    let body = match kind {
        Kind::Batch => gateway_results_url(&body, &base).map_or(body, Bytes::from),
        Kind::File => body,
    };
    answer_with(client, req, &head, &body).await
}

/// Reads a batch's body up to its first request's model (kept, to be sent once the upstream is
/// known): the pieces read, and the model (`None` if the body has none, which the upstream will
/// refuse in its own words).
async fn first_model(
    api: &Api,
    client: &mut TcpStream,
    incoming: &mut Incoming,
) -> Result<(Vec<Bytes>, Option<String>), Stop> {
    let mut scan = BatchBody::new();
    let (mut held, mut size, mut first) = (Vec::new(), 0usize, None);
    let mut sink = Vec::new();
    while first.is_none() {
        let Some(piece) = incoming.next(client).await.map_err(body_stop)? else {
            break;
        };
        size += piece.len();
        let mut found = |m: &str| {
            first = Some(m.to_string());
            Err(String::new())
        };
        sink.clear();
        let scanned = scan.feed(&piece, &mut sink, &mut found);
        held.push(piece);
        match scanned {
            _ if first.is_some() => break,
            Err(e) => return Err(Stop::Error(invalid_batch(&e.to_string()))),
            Ok(()) if size as u64 > api.objects.first_model_within => {
                return Err(Stop::Error(invalid_batch(&format!(
                    "the first request's params.model must come within the first {} bytes",
                    api.objects.first_model_within
                ))))
            }
            Ok(()) => {}
        }
    }
    Ok((held, first))
}

/// A credential of an upstream that can take the object, and a new connection to it.
async fn connect(
    api: &Api,
    route: Route,
    model: Option<&str>,
) -> Result<(usize, bool, UpstreamConn), ApiError> {
    let mut tried = Vec::with_capacity(api.settings.max_attempts);
    let mut last = None;
    while tried.len() < api.settings.max_attempts {
        let ask = Ask {
            model,
            affinity: None,
            tried: &tried,
            only: Some(&api.objects.anthropic),
        };
        let pool = &api.pool;
        let (credential, probe) = match pool.pick(&ask, pool.now_ms()) {
            Pick::Use {
                credential, probe, ..
            } => (credential, probe),
            Pick::NotServed => {
                return Err(match model {
                    Some(m) if pool.serves(m) => super::anthropic_only(route),
                    Some(m) => not_served(m),
                    None => super::anthropic_only(route),
                })
            }
            Pick::Unavailable(u) if last.is_none() || u.all_limited() => {
                return Err(unavailable(model, &u))
            }
            Pick::Unavailable(_) => break,
        };
        tried.push(credential);
        let c = pool.credential(credential);
        let upstream = &api.upstreams[c.upstream];
        if let Err(why) = c.auth.hold(SystemTime::now()) {
            log::warn!(
                "upstream {:?}: credential {:?} {why}",
                upstream.target.name,
                c.name
            );
            pool.report(credential, model, Outcome::Transient, pool.now_ms());
            last = Some(ApiError::bad_gateway(format!(
                "the gateway has no usable credential for the upstream {:?} now; its log says why",
                upstream.target.name
            )));
            continue;
        }
        match dial(&upstream.target, &api.resolver).await {
            Ok(conn) => {
                api.conns.opened();
                return Ok((credential, probe, conn));
            }
            Err(e) => {
                pool.report(credential, model, Outcome::Unreachable, pool.now_ms());
                log::warn!(
                    "upstream {:?}: {e}; trying another credential",
                    upstream.target.name
                );
                last = Some(e.to_api_error(&upstream.target.name));
            }
        }
    }
    Err(last.unwrap_or_else(|| ApiError::bad_gateway("no upstream could be reached".into())))
}

/// Sends the request head and the body, as it arrives, to the upstream.
#[allow(clippy::too_many_arguments)]
async fn send(
    api: &Api,
    client: &mut TcpStream,
    req: &Request,
    incoming: &mut Incoming,
    held: Vec<Bytes>,
    credential: usize,
    conn: &mut UpstreamConn,
    kind: Kind,
) -> Result<(), Stop> {
    let c = api.pool.credential(credential);
    let upstream = &api.upstreams[c.upstream];
    let held_key = c.auth.hold(SystemTime::now());
    let api_key = held_key.as_ref().ok().and_then(|h| h.bearer());
    // Renaming models may change the body's length: then it goes as chunks.
    let renames =
        kind == Kind::Batch && !(api.models.aliases.is_empty() && upstream.model_names.is_empty());
    let chunked = renames || incoming.declared().is_none();
    let url = &upstream.target.url;
    let head = headers::upstream_request(
        &req.head,
        &Outbound {
            path_prefix: &url.path_prefix,
            host: &url.host_header,
            api_key,
            default_version: &upstream.default_version,
            body_len: incoming.declared().unwrap_or(0),
            chunked,
            stream: false,
            line: None,
        },
    );
    let stall = upstream.target.timeouts.first_byte;
    let out = Out { chunked, stall };
    out.write(conn, head).await?;
    let name = &upstream.target.name;
    let mut rename = |m: &str| -> Result<Option<String>, String> {
        let resolved = api.models.alias(m).unwrap_or(m);
        if !api.pool.serves_on(c.upstream, resolved) {
            return Err(format!(
                "requests: the model {m:?} is not served by the upstream {name:?}, which takes \
                 this batch (chosen for its first request's model); a batch goes to one \
                 upstream: send the requests for other models in a batch of their own"
            ));
        }
        let target = upstream
            .model_names
            .get(resolved)
            .map_or(resolved, String::as_str);
        Ok((target != m).then(|| target.to_string()))
    };
    let mut batch = (kind == Kind::Batch).then(BatchBody::new);
    let mut held = held.into_iter();
    let mut buf = Vec::new();
    loop {
        let piece = match held.next() {
            Some(piece) => piece,
            None => match incoming.next(client).await.map_err(body_stop)? {
                Some(piece) => piece,
                None => break,
            },
        };
        match &mut batch {
            None => out.piece(conn, piece).await?,
            Some(batch) => {
                buf.clear();
                batch
                    .feed(&piece, &mut buf, &mut rename)
                    .map_err(|e| Stop::Error(invalid_batch(&e.to_string())))?;
                if !buf.is_empty() {
                    out.piece(conn, Bytes::copy_from_slice(&buf)).await?;
                }
            }
        }
    }
    if let Some(batch) = &batch {
        batch
            .finish()
            .map_err(|e| Stop::Error(invalid_batch(&e.to_string())))?;
    }
    if chunked {
        out.write(conn, &b"0\r\n\r\n"[..]).await?;
    }
    Ok(())
}

/// How the body is written upstream.
struct Out {
    chunked: bool,
    /// The longest a write may wait for the upstream to take it.
    stall: Duration,
}

impl Out {
    async fn piece(&self, conn: &mut UpstreamConn, piece: Bytes) -> Result<(), Stop> {
        if !self.chunked {
            return self.write(conn, piece).await;
        }
        let mut framed = Vec::with_capacity(piece.len() + 20);
        framed.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        framed.extend_from_slice(&piece);
        framed.extend_from_slice(b"\r\n");
        self.write(conn, framed).await
    }

    async fn write<B: monoio::buf::IoBuf + 'static>(
        &self,
        conn: &mut UpstreamConn,
        bytes: B,
    ) -> Result<(), Stop> {
        match monoio::time::timeout(self.stall, write_all(conn, bytes)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Stop::Upstream(e)),
            Err(_) => Err(Stop::Upstream(io::Error::new(
                io::ErrorKind::TimedOut,
                "the upstream took no more of it (first_byte_timeout_ms)",
            ))),
        }
    }
}

/// Reads the upstream's answer head (within `within`, else its response timeout); its health
/// is learnt from it.
async fn read_answer(
    api: &Api,
    credential: usize,
    model: Option<&str>,
    mut conn: UpstreamConn,
    within: Option<Duration>,
) -> Result<Answer, ApiError> {
    let pool = &api.pool;
    let c = pool.credential(credential);
    let target = &api.upstreams[c.upstream].target;
    let limit = within.unwrap_or(target.timeouts.response);
    let deadline = Deadline::after(limit, Step::Response);
    let head_buffer = api.settings.upstream_head_buffer;
    match read_head(&mut conn, Instant::now(), false, deadline, head_buffer).await {
        Ok((head, leftover)) => {
            judge(api, credential, Some(model), &head, &leftover)?;
            Ok(Answer {
                origin: c.upstream,
                conn,
                head,
                leftover,
                deadline,
            })
        }
        Err(e) => {
            pool.report(credential, model, Outcome::Transient, pool.now_ms());
            Err(e.to_api_error(&target.name))
        }
    }
}

/// Records who holds and who owns the object the upstream made.
async fn record(
    api: &Api,
    credential: usize,
    kind: Kind,
    caller: Option<&str>,
    body: &[u8],
    req: &Request,
) {
    let mut id = None;
    let _ = members(body, |key, value| {
        if key == "id" {
            id = (value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\"")))
            .and_then(unescape)
            .map(|v| v.into_owned());
        }
    });
    let c = api.pool.credential(credential);
    let upstream = api.pool.upstream_name(c.upstream);
    let Some(id) = id else {
        log::error!(
            "{}: the upstream {upstream:?} answered a create without an id; the object cannot be \
             reached through the gateway",
            req.id
        );
        return;
    };
    let record = Record {
        id: id.clone(),
        kind,
        upstream: upstream.to_string(),
        credential: c.name.clone(),
        owner: owner_of(caller).to_string(),
        created_ms: creation_time(unix_ms(SystemTime::now())),
    };
    if api.objects.records.put(record).await.is_err() {
        log::error!(
            "{}: {id} was created through {upstream}/{} but could not be recorded: requests \
             for it through the gateway will get 404",
            req.id,
            c.name
        );
    }
}

/// When an object was made, in Unix ms, never the same twice in a process: lists are newest
/// first, and two objects made in one millisecond must still come back in the order they were
/// made (with equal times, the order would be the ids', which are random).
fn creation_time(now_ms: u64) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now_ms.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

fn body_stop(e: crate::server::incoming::BodyError) -> Stop {
    match e.to_api_error() {
        Some(e) => Stop::Error(e),
        None => Stop::Gone,
    }
}

fn invalid_batch(why: &str) -> ApiError {
    ApiError::invalid_request(format!("the batch body: {why}").into())
}

/// Answers a create that stopped before the upstream answered; the connection closes, as the
/// client's body was not read to its end.
async fn stopped(client: &mut TcpStream, req: &Request, stop: Stop) -> io::Result<After> {
    match stop {
        Stop::Error(e) => {
            let out = e.to_response(req.id.as_str(), false);
            req.exchange.answered(e.status, &out);
            write_all(client, out).await?;
            // The connection loop lingers before it closes: the client may still be sending.
            Ok(After::Close)
        }
        Stop::Gone | Stop::Upstream(_) => Ok(After::Close),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn creation_times_never_repeat_and_follow_the_clock() {
        let a = super::creation_time(1_000);
        let b = super::creation_time(1_000);
        let c = super::creation_time(5_000_000_000_000);
        assert!(a >= 1_000 && b > a, "{a} {b}");
        assert_eq!(c, 5_000_000_000_000);
        assert!(super::creation_time(10) > c);
    }
}
