//! `mock-upstream`: a fast upstream for tests and benchmarks, in the Anthropic, OpenAI Chat
//! Completions, Gemini, Bedrock and Vertex dialects.
//!
//! Serves the same answers as ringgate's built-in mock (one implementation, in the library) as a
//! separate process, so the gateway can be measured and tested in front of a real upstream server.
//! Prints `listening on ADDR` on stdout once it accepts connections. `--dialect` narrows it to
//! one dialect's paths, so a test can check that a gateway asks the paths it should.
//!
//! `--fault-for-key` makes one credential fail while others work, and `--log-requests` logs each
//! answer (key fingerprint, status, millisecond timestamp) on stderr, so a test can check from
//! this side how a gateway spread its attempts over its credentials.
//!
//! `--tls-self-signed DIR` (or `--tls-cert`/`--tls-key`) serves HTTPS through a TLS front in the
//! same process (see `tls_front.rs`), and `--stats` prints how many connections were accepted
//! and requests answered on exit, so a benchmark can measure a gateway's connection reuse.
//!
//! A load generator shapes each answer with request headers, which pass through any gateway in
//! between (see `ringgate::mock::shape` and `--help`): `x-mock-deltas`, `x-mock-delta-bytes`
//! (each delta's text tagged with its index and send time), `x-mock-reply-bytes`,
//! `x-mock-event-interval-ms` and `x-mock-fault`; a test steers it with `x-mock-tool-calls`,
//! `x-mock-finish` and `x-mock-quirks` (see `ringgate::mock::directives`).

#[path = "../tls_front.rs"]
mod tls_front;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ringgate::dialect::Dialect;
use ringgate::mock::answers;
use ringgate::mock::server::{MockServer, MockServerOptions, MockStats, REQUEST_LOG_TARGET};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "mock-upstream",
    about = "A mock upstream server in the Anthropic, OpenAI, Gemini, Bedrock and Vertex dialects",
    after_help = SHAPE_HELP
)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on stdout). With TLS this is the
    /// TLS address.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Worker threads (one monoio runtime each); with TLS, as many again for the TLS front.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Pause between streamed events, in milliseconds.
    #[arg(long, default_value_t = 0)]
    event_interval_ms: u64,
    /// Serve only this dialect's paths (the others answer 404): anthropic (/v1/messages,
    /// /v1/messages/count_tokens, /v1/models, /v1/messages/batches, /v1/files), openai (/v1/chat/completions,
    /// /chat/completions), gemini (/v1beta/models/{model}:generateContent,
    /// :streamGenerateContent?alt=sse, :countTokens), bedrock (/model/{id}/invoke,
    /// /invoke-with-response-stream, /count-tokens), vertex (/v1/projects/{p}/locations/{r}/
    /// publishers/anthropic/models/{model}:rawPredict, :streamRawPredict), or all.
    #[arg(long, value_enum, default_value_t = DialectArg::All)]
    dialect: DialectArg,
    /// Require this API key (or one of the --fault-for-key keys) on every request (401
    /// otherwise; Gemini's 400 API_KEY_INVALID). Read from x-api-key, authorization: Bearer or
    /// x-goog-api-key.
    #[arg(long)]
    api_key: Option<String>,
    /// Answer every request carrying this API key with FAULT, as if it sent `x-mock-fault:
    /// FAULT` (a request's own x-mock-fault wins). Repeatable.
    #[arg(long, value_name = "KEY=FAULT", value_parser = key_fault)]
    fault_for_key: Vec<(String, String)>,
    /// Log each answered request on stderr (`answered METHOD PATH key=FINGERPRINT
    /// status=STATUS`), with millisecond timestamps.
    #[arg(long)]
    log_requests: bool,
    /// Serve HTTPS with a private CA generated at start: writes the CA to DIR/ca.pem (creating
    /// DIR if needed; give it to a gateway as `ca_file`) and serves a certificate it signs for
    /// localhost, 127.0.0.1 and ::1.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["tls_cert", "tls_key"])]
    tls_self_signed: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// On exit (SIGINT or SIGTERM), print `mock-upstream: connections=C requests=R` on stderr:
    /// C connections accepted on the listening address (TLS handshakes or not), R requests
    /// answered.
    #[arg(long)]
    stats: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DialectArg {
    Anthropic,
    Openai,
    Gemini,
    Bedrock,
    Vertex,
    All,
}

impl DialectArg {
    fn only(self) -> Option<Dialect> {
        match self {
            DialectArg::Anthropic => Some(Dialect::Anthropic),
            DialectArg::Openai => Some(Dialect::OpenAi),
            DialectArg::Gemini => Some(Dialect::Gemini),
            DialectArg::Bedrock => Some(Dialect::Bedrock),
            DialectArg::Vertex => Some(Dialect::Vertex),
            DialectArg::All => None,
        }
    }
}

const SHAPE_HELP: &str = "\
Request headers that shape one answer, in every dialect (a gateway in between forwards them):
  x-mock-deltas: N             a streaming answer of exactly N text deltas (0..=1000000),
                               with message_delta usage.output_tokens = N
  x-mock-delta-bytes: S        each delta's text is S bytes (default 60, at most 1 MiB; below 25
                               raised to 25): `#IIIIII@TTTTTTTTTTTTTTTT ` (index, send time in
                               µs since the UNIX epoch, stamped as the event is written) + `x`s;
                               N × (S + 115) at most 64 MiB (the stream is built in memory;
                               an OpenAI or Gemini event's own overhead instead of 115)
  x-mock-reply-bytes: B        a non-streaming answer with B bytes of text (at most 16 MiB)
  x-mock-event-interval-ms: I  pause between streamed events for this answer (an hour at most)
  x-mock-fault: FAULT          one of: rate_limit, overloaded, server_error, auth, permission
                               (error answers in the dialect's shape); drop_mid_stream,
                               fragmented, big_event, no_message_stop, error_in_stream (two
                               deltas, then an error event), garbage (two deltas, then a data
                               line that is not JSON)
An invalid value of any x-mock-* header is a 400 naming the header, in the dialect's shape.

Request headers that steer an OpenAI or Gemini answer:
  x-mock-tool-calls: N         with tools in the request, N parallel calls (1..=8) of them,
                               args {\"query\": <last user words>, \"n\": i}
  x-mock-finish: REASON        this finish reason, verbatim (content_filter, SAFETY: a refusal)
  x-mock-quirks: a,b,...       stream the way some real servers do (unknown names ignored):
                               OpenAI: interleave, late-id, noise, no-done, combined-finish,
                               usage-in-finish, reasoning-field, bytewise-args, comments;
                               both: crlf; Gemini: signature-only
The answer echoes the last user message; a conversation ending in tool results is answered with
`Tool NAME returned: CONTENT`. Reasoning comes first when asked for (reasoning_effort;
thinkingConfig.includeThoughts).";

fn key_fault(arg: &str) -> Result<(String, String), String> {
    // Fault names have no `=`; a key might.
    let Some((key, fault)) = arg.rsplit_once('=').filter(|(key, _)| !key.is_empty()) else {
        return Err("expected KEY=FAULT".into());
    };
    if !answers::is_fault(fault) {
        return Err(format!(
            "unknown fault {fault:?}; valid faults: {}",
            answers::FAULTS.join(", ")
        ));
    }
    Ok((key.to_string(), fault.to_string()))
}

fn main() {
    let args = Args::parse();
    // Benchmarks hold tens of thousands of streams.
    loadtest::limits::raise_open_files();
    // rustls warns once per connection about clients such as wrk that send an IP address as
    // SNI; a benchmark's log would be nothing else.
    let mut logger = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("warn,rustls=error"),
    );
    if args.log_requests {
        // Added after RUST_LOG is read, so the flag wins for its one target whatever RUST_LOG
        // says about it; milliseconds, so a test can measure the spacing of attempts.
        logger
            .filter_module(REQUEST_LOG_TARGET, log::LevelFilter::Debug)
            .format_timestamp_millis();
    }
    logger.init();
    if let Err(e) = run(args) {
        eprintln!("mock-upstream: cannot start: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let tls = match (&args.tls_self_signed, &args.tls_cert, &args.tls_key) {
        (Some(dir), _, _) => Some(tls_front::self_signed(dir)?),
        (None, Some(cert), Some(key)) => Some(tls_front::from_pem_files(cert, key)?),
        _ => None,
    }
    .map(tls_front::server_config)
    .transpose()?;
    let new_stats = || args.stats.then(|| MockStats::new(args.workers));
    // Requests are counted by the mock; connections where they are accepted: by the mock, or by
    // the TLS front in front of it.
    let (mock_stats, front_stats) = (new_stats(), new_stats());
    let server = MockServer::start(MockServerOptions {
        // Behind the TLS front, the plain mock listens on loopback only.
        listen: if tls.is_some() {
            SocketAddr::from(([127, 0, 0, 1], 0))
        } else {
            args.listen
        },
        workers: args.workers,
        event_interval: Duration::from_millis(args.event_interval_ms),
        api_key: args.api_key,
        key_faults: args.fault_for_key,
        stats: mock_stats.clone(),
        dialect: args.dialect.only(),
    })
    .map_err(|e| e.to_string())?;
    let shutdown = server.shutdown_signal();
    let front = match tls {
        Some(config) => Some(
            tls_front::TlsFront::start(
                args.listen,
                args.workers,
                server.driver,
                server.addr,
                config,
                front_stats.clone(),
                shutdown.clone(),
            )
            .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    // Before `listening on`, so a signal sent as soon as that line is read is handled.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    println!(
        "listening on {}",
        front.as_ref().map_or(server.addr, |f| f.addr)
    );
    let _ = std::io::stdout().flush();
    std::thread::spawn(move || {
        signals.forever().next();
        shutdown.raise();
    });
    server.wait();
    let accepted_by = match front {
        Some(front) => {
            front.wait();
            front_stats
        }
        None => mock_stats.clone(),
    };
    if let (Some(accepted_by), Some(mock)) = (accepted_by, mock_stats) {
        eprintln!(
            "mock-upstream: connections={} requests={}",
            accepted_by.connections(),
            mock.requests()
        );
    }
    Ok(())
}
