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

use super::answers::{self, Reply};
use crate::http::chunked::{chunk_header, LAST_CHUNK};
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
            Reply::Stream { events, drop_after } => {
                let mut head = ResponseHead::new(200);
                head.header("content-type", b"text/event-stream; charset=utf-8")
                    .header("cache-control", b"no-cache")
                    .header("request-id", answers::request_id().as_bytes());
                let mut out = head.finish_chunked();
                for (i, event) in events.iter().enumerate() {
                    if drop_after == Some(i) {
                        // Simulated crash: what was sent so far goes out, then the stream stops
                        // without its end.
                        write_all(stream, out).await?;
                        return Ok(After::Close);
                    }
                    if i > 0 && !self.event_interval.is_zero() {
                        monoio::time::sleep(self.event_interval).await;
                    }
                    chunk_header(event.len(), &mut out);
                    out.extend_from_slice(event.as_bytes());
                    out.extend_from_slice(b"\r\n");
                    if i + 1 == events.len() {
                        out.extend_from_slice(LAST_CHUNK);
                    }
                    if !self.event_interval.is_zero() || i + 1 == events.len() {
                        write_all(stream, std::mem::take(&mut out)).await?;
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
