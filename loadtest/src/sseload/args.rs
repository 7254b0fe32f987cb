//! The command line, and the checked plan of a run made from it.
//!
//! Everything that can be wrong with a run is found here, before any load: a mode given twice,
//! a URL that is not `http://host:port`, a header the tool sets itself, a number out of range.
//! The request a run sends is built here too, once: every request of the run is these bytes.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ringgate::config::IoDriver;
use ringgate::mock::server::MAX_EVENT_INTERVAL;
use ringgate::mock::shape;
use ringgate::runtime::Driver;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "sseload",
    about = "A stream-aware load generator for the Anthropic Messages API",
    long_about = "A stream-aware load generator for the Anthropic Messages API.\n\n\
        Sends POST {url}/v1/messages over HTTP/1.1 keep-alive connections, in a closed loop \
        (--concurrency, the default), an open loop (--rate) or hold mode (--hold), and checks \
        every streamed event. Stream shapes are asked of the mock upstream with x-mock-* headers \
        (see mock-upstream --help); each delta carries its send time, so the delay a gateway \
        adds to each event is measured."
)]
pub struct Args {
    /// Base URL, http:// only (host:port); requests go to POST {url}/v1/messages.
    #[arg(long)]
    pub url: String,
    /// Sent as x-api-key.
    #[arg(long, default_value = "sk-bench")]
    pub api_key: String,
    #[arg(long, default_value = "claude-sonnet-4-5-20250929")]
    pub model: String,
    /// Extra request header, repeatable (e.g. 'x-mock-fault: drop_mid_stream').
    #[arg(long = "header", value_name = "'Name: value'", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Client threads, each its own monoio runtime.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Closed loop (the default mode, 16 if not given): C connections, each sending its next
    /// request as soon as the previous answer is complete.
    #[arg(long, conflicts_with_all = ["rate", "hold"])]
    pub concurrency: Option<usize>,
    /// Open loop: R requests/s in total at evenly spaced scheduled times; latency counts from
    /// the scheduled time.
    #[arg(long, conflicts_with = "hold")]
    pub rate: Option<f64>,
    /// Open loop: the most connections kept open [default: 512].
    #[arg(long, requires = "rate")]
    pub connections: Option<usize>,
    /// Hold mode: open N concurrent streaming requests (one connection each), wait for all.
    /// Each lasts about deltas × interval: make that longer than N / ramp, or the first streams
    /// end before the last open.
    #[arg(long, conflicts_with = "requests")]
    pub hold: Option<usize>,
    /// Hold mode: streams opened per second [default: 2000].
    #[arg(long, requires = "hold")]
    pub ramp: Option<f64>,
    /// Measured seconds (closed/open loop).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring (closed/open loop): requests that end in it are not
    /// counted, and requests sent in it are not timed.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Stop after N measured requests instead of after --duration (closed/open loop).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Streaming requests ("stream": true); hold mode always streams.
    #[arg(long)]
    pub stream: bool,
    /// Deltas per stream, sent as x-mock-deltas.
    #[arg(long, default_value_t = 64)]
    pub deltas: u64,
    /// Bytes of text per delta, sent as x-mock-delta-bytes (below 25 the mock uses 25).
    #[arg(long, default_value_t = 60)]
    pub delta_bytes: u64,
    /// Pause between streamed events, ms, sent as x-mock-event-interval-ms (an hour at most).
    #[arg(long, default_value_t = 20)]
    pub interval_ms: u64,
    /// Non-stream: text bytes of each answer, sent as x-mock-reply-bytes [default: not sent].
    #[arg(long, conflicts_with_all = ["stream", "hold"])]
    pub reply_bytes: Option<u64>,
    /// Report the CPU time of this process over the measured window; repeatable (summed).
    #[arg(long = "cpu-pid", value_name = "PID")]
    pub cpu_pids: Vec<u32>,
    /// Report the resident memory of this process before the load and at its peak during the
    /// run (read every 2 ms); repeatable (summed).
    #[arg(long = "rss-pid", value_name = "PID")]
    pub rss_pids: Vec<u32>,
    /// A name for the run, in the table and the JSON.
    #[arg(long)]
    pub label: Option<String>,
    /// Also write the result as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Seconds a request may take beyond its stream's own length before it counts as a timeout.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// The client threads' I/O driver: io_uring where available (auto), or epoll.
    #[arg(long, value_enum, default_value_t = DriverChoice::Auto)]
    pub io_driver: DriverChoice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DriverChoice {
    Auto,
    #[value(name = "io_uring")]
    IoUring,
    Epoll,
}

/// How load is offered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Closed { concurrency: usize },
    Open { rate: f64, connections: usize },
    Hold { streams: usize, ramp: f64 },
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Closed { .. } => "closed",
            Mode::Open { .. } => "open",
            Mode::Hold { .. } => "hold",
        }
    }
}

/// Where requests go.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host:port` as given, for the Host header.
    pub authority: String,
    /// `{base path}/v1/messages`.
    pub path: String,
}

/// A checked run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub label: String,
    pub mode: Mode,
    pub stream: bool,
    pub threads: usize,
    pub target: Target,
    pub duration: Duration,
    pub warmup: Duration,
    pub requests: Option<u64>,
    pub deltas: u64,
    /// Bytes of text in each delta, as the mock makes them.
    pub delta_text_bytes: usize,
    /// How long one request may take before it is a timeout.
    pub timeout: Duration,
    /// Every request of the run.
    pub request: Vec<u8>,
    pub cpu_pids: Vec<u32>,
    pub rss_pids: Vec<u32>,
    pub json: Option<PathBuf>,
    pub driver: Driver,
}

/// Headers the tool sets itself, with the option that sets them.
const OWN_HEADERS: &[(&str, &str)] = &[
    ("host", "--url"),
    ("content-length", "(the body)"),
    ("transfer-encoding", "(the body)"),
    ("x-api-key", "--api-key"),
    (shape::DELTAS_HEADER, "--deltas"),
    (shape::DELTA_BYTES_HEADER, "--delta-bytes"),
    (shape::REPLY_BYTES_HEADER, "--reply-bytes"),
    ("x-mock-event-interval-ms", "--interval-ms"),
];

fn parse_header(arg: &str) -> Result<(String, String), String> {
    let (name, value) = arg.split_once(':').ok_or("expected 'Name: value'")?;
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("{name:?} is not a header name"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err("a header value cannot hold a line break".into());
    }
    if let Some((_, option)) = OWN_HEADERS
        .iter()
        .find(|(own, _)| own.eq_ignore_ascii_case(name))
    {
        return Err(format!("{name} is set by sseload; use {option}"));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

fn seconds(name: &str, v: f64, zero_ok: bool) -> Result<Duration, String> {
    if v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0)) && v < 1e9 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("--{name} must be a positive number of seconds"))
    }
}

fn positive(name: &str, v: usize) -> Result<usize, String> {
    if v == 0 {
        return Err(format!("--{name} must be at least 1"));
    }
    Ok(v)
}

/// `http://host:port[/base]` → the address to connect to, the Host header and the path.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--url {url:?}: only http:// URLs are supported"))?;
    let (authority, base) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if authority.is_empty() || base.contains('?') {
        return Err(format!("--url {url:?}: expected http://host:port"));
    }
    // A colon inside `[…]` belongs to an IPv6 address, not to a port.
    let has_port = authority
        .rfind(':')
        .is_some_and(|i| !authority[i..].contains(']'));
    let with_port = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("--url {url:?}: cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("--url {url:?}: {authority} has no address"))?;
    Ok(Target {
        addr,
        authority: authority.to_string(),
        path: format!("{}/v1/messages", base.trim_end_matches('/')),
    })
}

impl Plan {
    pub fn from_args(a: &Args) -> Result<Plan, String> {
        let target = parse_url(&a.url)?;
        let mode = match (a.rate, a.hold) {
            (Some(rate), _) => {
                if !(rate.is_finite() && rate > 0.0) {
                    return Err("--rate must be a positive number of requests per second".into());
                }
                Mode::Open {
                    rate,
                    connections: positive("connections", a.connections.unwrap_or(512))?,
                }
            }
            (None, Some(streams)) => {
                let ramp = a.ramp.unwrap_or(2000.0);
                if !(ramp.is_finite() && ramp > 0.0) {
                    return Err("--ramp must be a positive number of streams per second".into());
                }
                Mode::Hold {
                    streams: positive("hold", streams)?,
                    ramp,
                }
            }
            (None, None) => Mode::Closed {
                concurrency: positive("concurrency", a.concurrency.unwrap_or(16))?,
            },
        };
        if let Mode::Open { connections, .. } = mode {
            // Each thread needs a connection of its own to send its share of the rate.
            if connections < a.threads {
                return Err(format!(
                    "--connections ({connections}) must be at least --threads ({})",
                    a.threads
                ));
            }
        }
        let stream = a.stream || matches!(mode, Mode::Hold { .. });
        if a.deltas > shape::MAX_DELTAS {
            return Err(format!("--deltas must be at most {}", shape::MAX_DELTAS));
        }
        if a.delta_bytes > shape::MAX_DELTA_BYTES {
            return Err(format!(
                "--delta-bytes must be at most {}",
                shape::MAX_DELTA_BYTES
            ));
        }
        if stream
            && shape::stream_bytes(a.deltas as usize, a.delta_bytes as usize)
                > shape::MAX_STREAM_BYTES
        {
            return Err(format!(
                "--deltas × (--delta-bytes + {}) must be at most {} (the mock builds a stream \
                 in memory)",
                shape::DELTA_EVENT_BYTES,
                shape::MAX_STREAM_BYTES
            ));
        }
        let max_interval = MAX_EVENT_INTERVAL.as_millis() as u64;
        if a.interval_ms > max_interval {
            return Err(format!("--interval-ms must be at most {max_interval}"));
        }
        if a.reply_bytes.is_some_and(|b| b > shape::MAX_REPLY_BYTES) {
            return Err(format!(
                "--reply-bytes must be at most {}",
                shape::MAX_REPLY_BYTES
            ));
        }
        if a.requests == Some(0) {
            return Err("--requests must be at least 1".into());
        }
        let stream_length = if stream {
            // The mock pauses before every event but the first.
            Duration::from_millis(a.interval_ms.saturating_mul(a.deltas + 5))
        } else {
            Duration::ZERO
        };
        let mut plan = Plan {
            label: a.label.clone().unwrap_or_else(|| {
                format!("{}-{}", mode.name(), if stream { "stream" } else { "json" })
            }),
            mode,
            stream,
            threads: positive("threads", a.threads)?,
            target,
            duration: seconds("duration", a.duration, false)?,
            warmup: seconds("warmup", a.warmup, true)?,
            requests: a.requests,
            deltas: if stream { a.deltas } else { 0 },
            delta_text_bytes: (a.delta_bytes as usize).max(shape::TAG_BYTES),
            timeout: seconds("timeout", a.timeout, false)? + stream_length,
            request: Vec::new(),
            cpu_pids: a.cpu_pids.clone(),
            rss_pids: a.rss_pids.clone(),
            json: a.json.clone(),
            driver: Driver::choose(match a.io_driver {
                DriverChoice::Auto => IoDriver::Auto,
                DriverChoice::IoUring => IoDriver::IoUring,
                DriverChoice::Epoll => IoDriver::Epoll,
            })
            .map_err(|e| format!("--io-driver: {e}"))?,
        };
        plan.request = request_bytes(a, &plan);
        Ok(plan)
    }
}

/// The one request of a run, head and body.
fn request_bytes(a: &Args, plan: &Plan) -> Vec<u8> {
    let body = serde_json::json!({
        "model": a.model,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": plan.stream,
    })
    .to_string();
    let mut head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\nx-api-key: {}\r\nanthropic-version: 2023-06-01\r\n\
         content-type: application/json\r\n",
        plan.target.path, plan.target.authority, a.api_key
    );
    if plan.stream {
        head += &format!(
            "{}: {}\r\n{}: {}\r\nx-mock-event-interval-ms: {}\r\n",
            shape::DELTAS_HEADER,
            a.deltas,
            shape::DELTA_BYTES_HEADER,
            a.delta_bytes,
            a.interval_ms
        );
    } else if let Some(bytes) = a.reply_bytes {
        head += &format!("{}: {bytes}\r\n", shape::REPLY_BYTES_HEADER);
    }
    for (name, value) in &a.headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += &format!("content-length: {}\r\n\r\n{body}", body.len());
    head.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let args =
            Args::try_parse_from(["sseload"].iter().chain(args)).map_err(|e| e.to_string())?;
        Plan::from_args(&args)
    }

    #[test]
    fn modes_and_defaults() {
        let p = plan(&["--url", "http://127.0.0.1:9"]).unwrap();
        assert_eq!(p.mode, Mode::Closed { concurrency: 16 });
        assert!(!p.stream);
        assert_eq!(p.target.path, "/v1/messages");
        assert_eq!(p.timeout, Duration::from_secs(60));
        let p = plan(&["--url", "http://127.0.0.1:9/base/", "--rate", "100"]).unwrap();
        assert_eq!(
            p.mode,
            Mode::Open {
                rate: 100.0,
                connections: 512
            }
        );
        assert_eq!(p.target.path, "/base/v1/messages");
        let p = plan(&[
            "--url",
            "http://localhost:9",
            "--hold",
            "5",
            "--deltas",
            "10",
        ])
        .unwrap();
        assert_eq!(
            p.mode,
            Mode::Hold {
                streams: 5,
                ramp: 2000.0
            }
        );
        assert!(p.stream);
        assert_eq!(p.timeout, Duration::from_millis(60_000 + 15 * 20));
        assert_eq!(p.label, "hold-stream");
    }

    #[test]
    fn the_request_carries_the_shape() {
        let p = plan(&[
            "--url",
            "http://127.0.0.1:9",
            "--stream",
            "--deltas",
            "8",
            "--interval-ms",
            "5",
            "--header",
            "x-mock-fault: drop_mid_stream",
            "--model",
            "m\"x",
        ])
        .unwrap();
        let text = String::from_utf8(p.request).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1:9\r\n"));
        for line in [
            "x-api-key: sk-bench",
            "x-mock-deltas: 8",
            "x-mock-delta-bytes: 60",
            "x-mock-event-interval-ms: 5",
            "x-mock-fault: drop_mid_stream",
            &format!("content-length: {}", body.len()),
        ] {
            assert!(head.contains(&format!("\r\n{line}")), "{line} in {head}");
        }
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["stream"], true);
        assert_eq!(v["model"], "m\"x");
        assert_eq!(v["max_tokens"], 1024);
        let p = plan(&["--url", "http://127.0.0.1:9", "--reply-bytes", "100"]).unwrap();
        let text = String::from_utf8(p.request).unwrap();
        assert!(
            text.contains("\r\nx-mock-reply-bytes: 100\r\n") && !text.contains("x-mock-deltas")
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        for args in [
            &["--url", "https://127.0.0.1:9"][..],
            &["--url", "127.0.0.1:9"],
            &["--url", "http://"],
            &["--url", "http://no-such-host.invalid:9"],
            &["--url", "http://127.0.0.1:9", "--rate", "10", "--hold", "3"],
            &[
                "--url",
                "http://127.0.0.1:9",
                "--concurrency",
                "2",
                "--rate",
                "10",
            ],
            &["--url", "http://127.0.0.1:9", "--connections", "2"],
            &["--url", "http://127.0.0.1:9", "--rate", "0"],
            // Each thread keeps a connection of its own: 4 threads cannot keep to 2.
            &[
                "--url",
                "http://127.0.0.1:9",
                "--rate",
                "10",
                "--connections",
                "2",
                "--threads",
                "4",
            ],
            &["--url", "http://127.0.0.1:9", "--concurrency", "0"],
            &["--url", "http://127.0.0.1:9", "--threads", "0"],
            &["--url", "http://127.0.0.1:9", "--duration", "0"],
            &[
                "--url",
                "http://127.0.0.1:9",
                "--stream",
                "--reply-bytes",
                "5",
            ],
            &[
                "--url",
                "http://127.0.0.1:9",
                "--header",
                "x-mock-deltas: 5",
            ],
            &["--url", "http://127.0.0.1:9", "--header", "no colon"],
            &["--url", "http://127.0.0.1:9", "--deltas", "1000001"],
            // Past the runtime's timers: a client thread panicked on its deadline.
            &[
                "--url",
                "http://127.0.0.1:9",
                "--stream",
                "--interval-ms",
                "18446744073709551615",
            ],
            &[
                "--url",
                "http://127.0.0.1:9",
                "--hold",
                "1",
                "--interval-ms",
                "3600001",
            ],
            &[
                "--url",
                "http://127.0.0.1:9",
                "--stream",
                "--deltas",
                "100000",
                "--delta-bytes",
                "1000",
            ],
            &[
                "--url",
                "http://127.0.0.1:9",
                "--hold",
                "3",
                "--requests",
                "4",
            ],
        ] {
            assert!(plan(args).is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn urls() {
        let t = parse_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (t.addr.port(), t.authority.as_str()),
            (8080, "127.0.0.1:8080")
        );
        assert_eq!(parse_url("http://127.0.0.1").unwrap().addr.port(), 80);
        let t = parse_url("http://[::1]:81/x").unwrap();
        assert_eq!((t.addr.port(), t.path.as_str()), (81, "/x/v1/messages"));
        assert_eq!(parse_url("http://[::1]").unwrap().addr.port(), 80);
    }
}
