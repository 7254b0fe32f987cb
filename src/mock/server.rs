//! The mock upstream as an HTTP server: the answers of [`super::answers`], on real sockets.
//!
//! Used by the gateway's built-in mock (on loopback, served by the gateway's own workers) and by
//! the `mock-upstream` load-test binary. Streams are paced so that a demo visibly streams and a
//! benchmark can model a model's token rate.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use monoio::net::TcpStream;

use super::answers::{self, Delivery, Reply};
use crate::http::chunked::{push_chunk, LAST_CHUNK};
use crate::http::response::ResponseHead;
use crate::http::{ApiError, ErrorType};
use crate::runtime::{accept_loop, bind_group, Driver, Workers};
use crate::server::conn::{After, Handler, Limits, Request};
use crate::server::io::write_all;
use crate::shutdown::Shutdown;

pub struct MockHandler {
    event_interval: Duration,
    /// When set, requests must carry exactly this `x-api-key`.
    api_key: Option<String>,
}

impl MockHandler {
    pub fn new(event_interval: Duration, api_key: Option<String>) -> MockHandler {
        MockHandler {
            event_interval,
            api_key,
        }
    }
}

/// Writes `out` at once, or (fragmented) in pieces of 1 to 7 bytes; returns it emptied.
async fn write_out(
    stream: &mut TcpStream,
    out: Vec<u8>,
    delivery: Delivery,
) -> io::Result<Vec<u8>> {
    if delivery != Delivery::Fragmented {
        let mut out = write_all(stream, out).await?;
        out.clear();
        return Ok(out);
    }
    let mut rng = fastrand::Rng::with_seed(out.len() as u64);
    let mut at = 0;
    while at < out.len() {
        let n = rng.usize(1..=7).min(out.len() - at);
        write_all(stream, out[at..at + n].to_vec()).await?;
        at += n;
    }
    Ok(Vec::new())
}

impl Handler for MockHandler {
    async fn handle(&self, stream: &mut TcpStream, req: Request) -> io::Result<After> {
        let authorized = match &self.api_key {
            None => true,
            Some(k) => req.head.header("x-api-key") == Some(k.as_bytes()),
        };
        let reply = if authorized {
            let fault = req
                .head
                .header("x-mock-fault")
                .and_then(|v| std::str::from_utf8(v).ok());
            answers::answer(&answers::Request {
                method: req.head.method_str(),
                path: req.head.path(),
                fault,
                body: &req.body,
            })
        } else {
            answers::error(&ApiError::new(
                401,
                ErrorType::Authentication,
                "invalid x-api-key".into(),
            ))
        };
        match reply {
            Reply::Json {
                status,
                body,
                headers,
            } => {
                let mut head = ResponseHead::new(status);
                head.header("content-type", b"application/json")
                    .header("request-id", answers::request_id().as_bytes());
                for (name, value) in &headers {
                    head.header(name, value.as_bytes());
                }
                let mut out = head.finish_with_length(body.len() as u64);
                out.extend_from_slice(body.as_bytes());
                write_all(stream, out).await?;
                Ok(After::KeepAlive)
            }
            Reply::Stream { events, delivery } => {
                let mut head = ResponseHead::new(200);
                head.header("content-type", b"text/event-stream; charset=utf-8")
                    .header("cache-control", b"no-cache")
                    .header("request-id", answers::request_id().as_bytes());
                let mut out = head.finish_chunked();
                // `x-mock-event-interval-ms` paces one answer differently from the default.
                let interval = req
                    .head
                    .header("x-mock-event-interval-ms")
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                    .map_or(self.event_interval, Duration::from_millis);
                let paced = !interval.is_zero() && delivery != Delivery::Fragmented;
                for (i, event) in events.iter().enumerate() {
                    if delivery == Delivery::DropAfter(i) {
                        // Simulated crash: what was sent so far goes out, then the stream stops
                        // without its end.
                        write_all(stream, out).await?;
                        return Ok(After::Close);
                    }
                    if i > 0 && paced {
                        monoio::time::sleep(interval).await;
                    }
                    push_chunk(&mut out, event.as_bytes());
                    if i + 1 == events.len() {
                        out.extend_from_slice(LAST_CHUNK);
                    }
                    if (paced && delivery == Delivery::Whole) || i + 1 == events.len() {
                        out = write_out(stream, out, delivery).await?;
                    }
                }
                Ok(After::KeepAlive)
            }
        }
    }
}

/// Options of a standalone mock upstream server.
#[derive(Clone, Debug)]
pub struct MockServerOptions {
    pub listen: SocketAddr,
    pub workers: usize,
    pub event_interval: Duration,
    pub api_key: Option<String>,
}

/// A running standalone mock upstream.
pub struct MockServer {
    pub addr: SocketAddr,
    pub driver: Driver,
    workers: Workers,
}

impl MockServer {
    pub fn start(opts: MockServerOptions) -> io::Result<MockServer> {
        let driver = Driver::choose(crate::config::IoDriver::Auto)?;
        let mut group = bind_group(opts.listen, opts.workers.max(1))?;
        let addr = group[0].local_addr()?;
        let shutdown = Shutdown::new();
        let mut workers = Workers::new(shutdown.clone());
        let limits = Limits {
            max_head_bytes: 64 * 1024,
            max_body_bytes: 64 * 1024 * 1024,
            head_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
        };
        for index in 0..group.len() {
            let listener = group.pop().expect("one per worker");
            let (opts, limits, shutdown) = (opts.clone(), limits.clone(), shutdown.clone());
            workers.spawn(index, false, driver, move || async move {
                let handler = Rc::new(MockHandler::new(opts.event_interval, opts.api_key));
                monoio::spawn(accept_loop(
                    listener,
                    handler,
                    Rc::new(limits),
                    shutdown.clone(),
                ));
                shutdown.wait().await;
            })?;
        }
        Ok(MockServer {
            addr,
            driver,
            workers,
        })
    }

    pub fn shutdown_signal(&self) -> Shutdown {
        self.workers.shutdown.clone()
    }

    pub fn wait(mut self) {
        self.workers.join();
    }

    pub fn shutdown(mut self) {
        self.workers.stop();
    }
}
