//! One attempt of a request: one credential, one upstream connection, and either the answer
//! relayed to the client or a failure the caller may fail over from.
//!
//! Nothing reaches the client until the upstream has answered with a status that is the
//! request's own (not a rate limit, an outage or a refused key) and, for a body, its first bytes
//! have arrived. Until then every failure is returned to the caller, with the connection and the
//! upstream's answer kept, so the last one can still be relayed as it is.

use std::io;
use std::time::{Instant, SystemTime};

use bytes::BytesMut;
use monoio::net::TcpStream;

use super::headers;
use super::outgoing::Outgoing;
use super::Api;
use crate::credentials::cell::Refusal;
use crate::dialect::{self, health, Context};
use crate::exchange::Ending;
use crate::http::ApiError;
use crate::lifecycle::phase::{self, Phase};
use crate::routing::health::{unix_ms, Outcome};
use crate::server::conn::Request;
use crate::server::io::{client_gone, write_all, ClientWatch};
use crate::stream::relay::{relay, ClientFraming, Failure, RelayEnd, RelayStats, Response};
use crate::stream::translate::Translate;
use crate::upstream::client::{exchange, Deadline, Step, UpstreamError};
use crate::upstream::conn::UpstreamConn;
use crate::upstream::dial::dial;
use crate::upstream::response::{ResponseFraming, ResponseHead};

/// What one attempt is: the request as it goes upstream, and the credential it goes with.
pub struct Plan<'a> {
    pub req: &'a Request,
    /// What goes upstream: the client's body in the upstream's words.
    pub outgoing: &'a Outgoing,
    pub stream: bool,
    pub credential: usize,
    /// This attempt is the credential's probe after a cooldown.
    pub probe: bool,
    /// The resolved model, for the credential's health.
    pub model: Option<&'a str>,
    /// Shared by the attempts of one request, so a pipelined request is looked for only once.
    pub watch_client: &'a ClientWatch,
}

pub enum Attempt {
    /// The response went to the client (completely or not): the request is over.
    Relayed(Relayed),
    /// Nothing reached the client; another credential may be tried.
    Failed(Failed),
    /// The client left while the upstream was still answering.
    ClientGone,
    /// The gateway's drain timeout passed while the upstream was still answering.
    ShuttingDown,
    /// The upstream counts no tokens for this model (Bedrock counts for some only): the gateway
    /// counts them itself.
    NotCounted,
}

/// A response relayed to the client, and how it ended.
pub struct Relayed {
    pub status: u16,
    pub end: RelayEnd,
    pub stats: RelayStats,
    /// The client's connection closes after it.
    pub close: bool,
}

/// A failed attempt, with what the client gets if it is the last.
pub enum Failed {
    /// No usable response: connect, TLS, send or head failure, or a timeout.
    Transport(UpstreamError),
    /// A response whose status says the credential cannot serve now (429, 5xx, 401, 403). Kept
    /// whole, so the last one can be relayed as it is.
    Status {
        outcome: Outcome,
        answer: Box<UpstreamAnswer>,
    },
    /// A good status, but the body failed before its first byte (or event) was relayed.
    Body(Failure),
    /// The credential has no value to send: a fetched one not fetched yet, or expired with its
    /// refresh failing (why, naming where it comes from, never a secret).
    NoCredential(String),
}

/// An upstream's answer whose body has not been read yet.
pub struct UpstreamAnswer {
    /// Its upstream, where the connection goes back to when the body has been read.
    pub origin: usize,
    pub conn: UpstreamConn,
    pub head: ResponseHead,
    /// Body bytes read with the head.
    pub leftover: BytesMut,
    /// When the whole response must be in (non-streaming requests).
    pub deadline: Option<Deadline>,
    /// For an upstream of another dialect: what its answer's decoder needs, and whether the
    /// answer is a token count.
    pub translation: Option<(Context, bool)>,
}

impl UpstreamAnswer {
    /// Puts the connection of an answer not relayed back in the pool when the body already
    /// came whole with the head (an error's short JSON usually does), else closes it.
    pub fn discard(self, api: &Api) {
        // Exactly the body: a byte more belongs to no response and spoils the connection.
        let complete = match self.head.framing {
            ResponseFraming::None => self.leftover.is_empty(),
            ResponseFraming::Length(n) => self.leftover.len() as u64 == n,
            ResponseFraming::Chunked | ResponseFraming::UntilClose => false,
        };
        if complete && self.head.keep_alive {
            api.conns.put(self.origin, self.conn);
        }
    }
}

impl Failed {
    /// How the credential is judged for it.
    pub fn outcome(&self) -> Outcome {
        match self {
            Failed::Status { outcome, .. } => *outcome,
            // The upstream answered nothing in time, or its body broke: that can be one model
            // or one slow generation, so only this credential × model cools.
            Failed::Transport(UpstreamError::TimedOut(Step::FirstByte | Step::Response, _))
            | Failed::Body(_) => Outcome::Transient,
            // Until the refresher gets a value; other credentials serve meanwhile.
            Failed::NoCredential(_) => Outcome::Transient,
            // It could not be reached or spoke no HTTP: no other key would fare better there.
            Failed::Transport(_) => Outcome::Unreachable,
        }
    }

    /// Why, in words for the log (never a key).
    pub fn reason(&self) -> String {
        match self {
            Failed::Transport(e) => e.to_string(),
            Failed::Status { answer, .. } => format!("answered {}", answer.head.status),
            Failed::Body(f) => f.reason.clone(),
            Failed::NoCredential(why) => format!("its credential {why}"),
        }
    }

    /// Lets go of a failure that will not be relayed, keeping its connection when it can be.
    pub fn discard(self, api: &Api) {
        if let Failed::Status { answer, .. } = self {
            answer.discard(api);
        }
    }

    /// What the client gets when this was the last attempt. A refused key is the gateway's
    /// problem, never shown to the client as its own 401 or 403.
    pub fn into_answer(self, upstream: &str) -> LastAnswer {
        LastAnswer::Error(match self {
            // A fetched credential's first refusal is a passing fault, but still a refusal.
            Failed::Status { outcome, answer }
                if outcome == Outcome::AuthFailed || matches!(answer.head.status, 401 | 403) =>
            {
                ApiError::bad_gateway(format!(
                    "the upstream {upstream:?} refused the gateway's credential ({}); the gateway's \
                     log names it",
                    answer.head.status
                ))
            }
            Failed::Status { answer, .. } => return LastAnswer::Upstream(answer),
            Failed::Transport(e) => e.to_api_error(upstream),
            Failed::Body(f) => body_failure(upstream, &f),
            Failed::NoCredential(_) => ApiError::bad_gateway(format!(
                "the gateway has no usable credential for the upstream {upstream:?} now; its \
                 log says why"
            )),
        })
    }
}

/// The answer to a request whose attempts all failed.
pub enum LastAnswer {
    /// The gateway's own error.
    Error(ApiError),
    /// The upstream's answer, relayed as it is.
    Upstream(Box<UpstreamAnswer>),
}

/// The error for a response that failed before anything reached the client.
pub fn body_failure(upstream: &str, f: &Failure) -> ApiError {
    let message = format!("the upstream {upstream:?} {}", f.reason);
    if f.timed_out {
        ApiError::gateway_timeout(message)
    } else {
        ApiError::bad_gateway(message)
    }
}

/// Sends the request with the planned credential and relays the answer unless it failed. The
/// credential's health learns the outcome here.
pub async fn attempt(api: &Api, client: &mut TcpStream, plan: &Plan<'_>) -> Attempt {
    let started = Instant::now();
    let result = send(api, client, plan).await;
    let pool = &api.pool;
    let upstream_end = match &result {
        Attempt::Relayed(r) => r.stats.upstream_end,
        _ => None,
    };
    let spent = upstream_end
        .unwrap_or_else(Instant::now)
        .saturating_duration_since(started);
    plan.req.exchange.attempted(plan.credential, spent);
    let credential = pool.credential(plan.credential);
    api.recorder.attempt(
        pool.upstream_name(credential.upstream),
        &credential.name,
        outcome_label(&result),
    );
    match &result {
        Attempt::Failed(f) => {
            let outcome = f.outcome();
            if let Some(ms) = pool.report(plan.credential, plan.model, outcome, pool.now_ms()) {
                log_cooldown(api, plan, outcome, ms);
            }
        }
        Attempt::ClientGone | Attempt::ShuttingDown if plan.probe => {
            pool.abandon(plan.credential, plan.model)
        }
        _ => {}
    }
    result
}

async fn send(api: &Api, client: &mut TcpStream, plan: &Plan<'_>) -> Attempt {
    let credential = api.pool.credential(plan.credential);
    let upstream = &api.upstreams[credential.upstream];
    let target = &upstream.target;
    let now = SystemTime::now();
    let held = match credential.auth.hold(now) {
        Ok(held) => held,
        Err(why) => return Attempt::Failed(Failed::NoCredential(why)),
    };
    let head = plan
        .outgoing
        .head(plan.req, upstream, &held, plan.stream, now);
    let body = plan.outgoing.body(plan.req);
    let origin = credential.upstream;
    let (limit, step) = match plan.stream {
        true => (target.timeouts.first_byte, Step::FirstByte),
        false => (target.timeouts.response, Step::Response),
    };
    // From the request's first sending; a retry on a new connection does not restart it.
    let mut first_sent = None;
    let mut pooled = api.conns.take(origin);
    let (conn, deadline, (head, leftover)) = loop {
        let reused = pooled.is_some();
        let mut conn = match pooled.take() {
            Some(conn) => conn,
            None => match dial(target, &api.resolver).await {
                Ok(conn) => {
                    api.conns.opened();
                    conn
                }
                Err(e) => return Attempt::Failed(Failed::Transport(e)),
            },
        };
        // A reused connection may be the one the upstream is closing; then the request goes
        // again, once, on a new one: `exchange` copies the head into the buffer it writes.
        let head_buffer = api.settings.upstream_head_buffer;
        let deadline = *first_sent.get_or_insert_with(|| Deadline::after(limit, step));
        // A client that leaves while the upstream is still thinking (a long answer can take
        // minutes) aborts the request: the upstream connection is dropped and not reused.
        let exchanged = monoio::select! {
            r = exchange(&mut conn, &head, body, false, deadline, head_buffer) => r,
            _ = client_gone(client, plan.watch_client) => return Attempt::ClientGone,
            _ = phase::reached(Phase::Expired) => return Attempt::ShuttingDown,
        };
        match exchanged {
            Ok(answer) => break (conn, deadline, answer),
            Err(e) if reused && e.is_stale() => api.conns.stale_retry(),
            Err(e) => return Attempt::Failed(Failed::Transport(e)),
        }
    };
    let answer = UpstreamAnswer {
        origin,
        conn,
        head,
        leftover,
        deadline: (!plan.stream).then_some(deadline),
        translation: plan.outgoing.translation(),
    };
    let now = unix_ms(now);
    let (status, headers) = (answer.head.status, || answer.head.headers());
    if let Some(outcome) = health::outcome(upstream.dialect, status, headers, &answer.leftover, now)
    {
        // A fetched credential that was refused is fetched again before it is blamed.
        let outcome = match outcome {
            Outcome::AuthFailed if held.refused() == Refusal::Refreshing => Outcome::Transient,
            outcome => outcome,
        };
        let answer = Box::new(answer);
        return Attempt::Failed(Failed::Status { outcome, answer });
    }
    // The upstream took the credential: a probe has its answer at once, whatever the body does.
    let pool = &api.pool;
    pool.report(plan.credential, plan.model, Outcome::Success, pool.now_ms());
    let counting = answer.translation.as_ref().filter(|(_, count)| *count);
    if counting.is_some_and(|(c, _)| dialect::bedrock::count::counts_elsewhere(c.dialect, status)) {
        answer.discard(api);
        return Attempt::NotCounted;
    }
    match relay_answer(api, client, plan.req, answer, plan.watch_client).await {
        Ok(Relayed {
            end: RelayEnd::NotCommitted(f),
            ..
        }) => Attempt::Failed(Failed::Body(f)),
        Ok(relayed) => Attempt::Relayed(relayed),
        Err(_) => Attempt::ClientGone,
    }
}

/// How an attempt went, in one word (the `outcome` of the attempts metric).
fn outcome_label(attempt: &Attempt) -> &'static str {
    match attempt {
        Attempt::Relayed(_) | Attempt::NotCounted => "success",
        Attempt::ClientGone => "client_gone",
        Attempt::ShuttingDown => "cut_short",
        Attempt::Failed(f) => match f {
            Failed::Status {
                outcome: Outcome::RateLimited { .. },
                ..
            } => "rate_limited",
            Failed::Status {
                outcome: Outcome::AuthFailed,
                ..
            } => "key_refused",
            Failed::Status { answer, .. } if matches!(answer.head.status, 401 | 403) => {
                "key_refused"
            }
            Failed::Status { .. } => "upstream_error",
            Failed::Transport(UpstreamError::TimedOut(..)) => "timeout",
            Failed::Transport(_) => "unreachable",
            Failed::Body(f) if f.timed_out => "timeout",
            Failed::Body(_) => "upstream_error",
            Failed::NoCredential(_) => "no_credential",
        },
    }
}

/// Says once, when it begins, that a credential is cooling, why and for how long (by name,
/// never the key).
fn log_cooldown(api: &Api, plan: &Plan<'_>, outcome: Outcome, ms: u64) {
    let pool = &api.pool;
    let credential = pool.credential(plan.credential);
    let upstream = pool.upstream_name(credential.upstream);
    let name = &credential.name;
    let model = plan.model.unwrap_or("(no model)");
    match outcome {
        Outcome::AuthFailed => log::warn!(
            "upstream {upstream:?} refused credential {name:?}: disabled for {ms} ms; check its key"
        ),
        Outcome::RateLimited { .. } => log::info!(
            "upstream {upstream:?} rate-limited credential {name:?} for {model:?}: cooling {ms} ms"
        ),
        Outcome::Transient => log::warn!(
            "upstream {upstream:?} failed with credential {name:?} for {model:?}: cooling {ms} ms"
        ),
        Outcome::Unreachable => log::warn!(
            "upstream {upstream:?} could not be reached: avoided for {ms} ms, unless nothing \
             else can serve"
        ),
        Outcome::Success => {}
    }
}

/// Relays an upstream's answer to the client: its head rewritten, its body re-framed for the
/// client where needed.
pub async fn relay_answer(
    api: &Api,
    client: &mut TcpStream,
    req: &Request,
    answer: UpstreamAnswer,
    watch_client: &ClientWatch,
) -> io::Result<Relayed> {
    let UpstreamAnswer {
        origin,
        mut conn,
        head: up,
        leftover,
        deadline,
        translation,
    } = answer;
    let http11 = req.head.minor_version == 1;
    // A drain that began while the upstream was answering closes the connection after it.
    let keep_alive = req.head.keep_alive && !phase::draining();
    let id = req.id.as_str();
    let side = {
        let gateway = req.extra_headers.borrow();
        match translation {
            None => as_is(&up, id, http11, keep_alive, &gateway),
            Some((context, count_tokens)) => {
                let event_stream =
                    (200..300).contains(&up.status) && context.stream && !count_tokens;
                let answered = dialect::Answered {
                    status: up.status,
                    count_tokens,
                    error_type: (up.header("x-amzn-errortype"))
                        .and_then(|v| std::str::from_utf8(v).ok()),
                };
                match dialect::translator(context, &answered) {
                    // Claude on a cloud provider: the answer is the Anthropic API's own.
                    None => as_is(&up, id, http11, keep_alive, &gateway),
                    Some(stage) => {
                        translated(&up, id, http11, keep_alive, event_stream, stage, &gateway)
                    }
                }
            }
        }
    };
    let ClientSide {
        head: client_head,
        out,
        close,
        event_stream,
        translate,
    } = side;
    let (status, framing, upstream_keep_alive) = (up.status, up.framing, up.keep_alive);
    // The upstream's head shares its read buffer (`max_head_bytes`) with `leftover`: let go of
    // it now, so that the buffer is freed as soon as the relay has taken in `leftover`, not
    // held for as long as a stream runs.
    drop(up);
    let (end, stats) = if framing == ResponseFraming::None && translate.is_none() {
        let upstream_end = Some(Instant::now());
        write_all(client, client_head).await?;
        let reusable = leftover.is_empty();
        let stats = RelayStats {
            writes: 1,
            first_write: Some(Instant::now()),
            upstream_end,
            ..RelayStats::default()
        };
        (RelayEnd::Complete { reusable }, stats)
    } else {
        let response = Response {
            head: client_head,
            leftover,
            framing,
            out,
            event_stream,
            deadline,
            translate,
        };
        let _streaming = event_stream.then(|| api.recorder.stream());
        relay(
            &mut conn,
            client,
            response,
            &api.settings.relay,
            watch_client,
        )
        .await
    };
    let ending = match end {
        RelayEnd::Complete { .. } => Some(Ending::Complete),
        // Nothing reached the client: the exchange says so by having no status.
        RelayEnd::ClientGone if stats.first_write.is_none() => None,
        RelayEnd::ClientGone => Some(Ending::ClientGone),
        RelayEnd::UpstreamFailed(_) => Some(Ending::UpstreamFailed),
        RelayEnd::ShuttingDown { committed: true } => Some(Ending::CutShort),
        // The caller answers with an error of the gateway's own.
        RelayEnd::NotCommitted(_) | RelayEnd::ShuttingDown { committed: false } => None,
    };
    if let Some(ending) = ending {
        req.exchange.relayed(status, &stats, event_stream, ending);
    }
    if matches!(end, RelayEnd::Complete { reusable: true }) && upstream_keep_alive {
        api.conns.put(origin, conn);
    }
    Ok(Relayed {
        status,
        end,
        stats,
        close,
    })
}

/// How the client gets an answer: its head, its framing, and the stage that translates it.
struct ClientSide {
    head: Vec<u8>,
    out: ClientFraming,
    close: bool,
    event_stream: bool,
    translate: Option<Box<dyn Translate>>,
}

/// An Anthropic upstream's answer, relayed as it is: its head rewritten, its body re-framed
/// where the client needs it.
fn as_is(
    up: &ResponseHead,
    request_id: &str,
    http11: bool,
    keep_alive: bool,
    gateway: &str,
) -> ClientSide {
    let event_stream = up.is_event_stream();
    let (out, close) = match up.framing {
        // An event stream is re-framed as chunks even when the upstream sent a length, so the
        // relay can add keep-alive comments or an error event.
        ResponseFraming::Length(_) if event_stream && http11 => {
            (ClientFraming::Chunked, !keep_alive)
        }
        ResponseFraming::None | ResponseFraming::Length(_) => {
            (ClientFraming::Passthrough, !keep_alive)
        }
        ResponseFraming::Chunked | ResponseFraming::UntilClose if http11 => {
            (ClientFraming::Chunked, !keep_alive)
        }
        // An HTTP/1.0 client cannot read chunks: its body ends when the connection closes.
        ResponseFraming::Chunked | ResponseFraming::UntilClose => {
            (ClientFraming::Passthrough, true)
        }
    };
    let head = headers::client_response(up, request_id, event_stream, close, gateway);
    let head = match (up.framing, out) {
        (ResponseFraming::None, _) => head.finish_with_length(0),
        (_, ClientFraming::Chunked) => head.finish_chunked(),
        (ResponseFraming::Length(n), _) => head.finish_with_length(n),
        (_, ClientFraming::Passthrough) => head.finish_without_length(),
    };
    ClientSide {
        head,
        out,
        close,
        event_stream,
        translate: None,
    }
}

/// An answer of another dialect: a head of the gateway's own, and the body translated by
/// `stage`, so its length is not known in advance (chunks, or for HTTP/1.0 the connection's end).
fn translated(
    up: &ResponseHead,
    request_id: &str,
    http11: bool,
    keep_alive: bool,
    event_stream: bool,
    stage: Box<dyn Translate>,
    gateway: &str,
) -> ClientSide {
    let (out, close) = match http11 {
        true => (ClientFraming::Chunked, !keep_alive),
        false => (ClientFraming::Passthrough, true),
    };
    let head = headers::translated_response(up, request_id, event_stream, close, gateway);
    let head = match out {
        ClientFraming::Chunked => head.finish_chunked(),
        ClientFraming::Passthrough => head.finish_without_length(),
    };
    ClientSide {
        head,
        out,
        close,
        event_stream,
        translate: Some(stage),
    }
}
