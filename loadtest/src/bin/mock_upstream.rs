//! `mock-upstream`: a fast, Anthropic-shaped upstream for tests and benchmarks.
//!
//! Serves the same answers as ringgate's built-in mock (one implementation, in the library) as a
//! separate process, so the gateway can be measured and tested in front of a real upstream server.
//! Prints `listening on ADDR` on stdout once it accepts connections.
//!
//! `--fault-for-key` makes one credential fail while others work, and `--log-requests` logs each
//! answer (key fingerprint, status, millisecond timestamp) on stderr, so a test can check from
//! this side how a gateway spread its attempts over its credentials.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use ringgate::mock::answers;
use ringgate::mock::server::{MockServer, MockServerOptions, REQUEST_LOG_TARGET};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "mock-upstream",
    about = "An Anthropic-shaped mock upstream server"
)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Pause between streamed events, in milliseconds.
    #[arg(long, default_value_t = 0)]
    event_interval_ms: u64,
    /// Require this x-api-key (or one of the --fault-for-key keys) on every request (401
    /// otherwise).
    #[arg(long)]
    api_key: Option<String>,
    /// Answer every request carrying this x-api-key with FAULT, as if it sent `x-mock-fault:
    /// FAULT` (a request's own x-mock-fault wins). Repeatable.
    #[arg(long, value_name = "KEY=FAULT", value_parser = key_fault)]
    fault_for_key: Vec<(String, String)>,
    /// Log each answered request on stderr (`answered METHOD PATH key=FINGERPRINT
    /// status=STATUS`), with millisecond timestamps.
    #[arg(long)]
    log_requests: bool,
}

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
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"));
    if args.log_requests {
        // Added after RUST_LOG is read, so the flag wins for its one target whatever RUST_LOG
        // says about it; milliseconds, so a test can measure the spacing of attempts.
        logger
            .filter_module(REQUEST_LOG_TARGET, log::LevelFilter::Debug)
            .format_timestamp_millis();
    }
    logger.init();
    let server = match MockServer::start(MockServerOptions {
        listen: args.listen,
        workers: args.workers,
        event_interval: Duration::from_millis(args.event_interval_ms),
        api_key: args.api_key,
        key_faults: args.fault_for_key,
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mock-upstream: cannot start: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on {}", server.addr);
    let _ = std::io::stdout().flush();
    let shutdown = server.shutdown_signal();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .expect("signal handlers");
    std::thread::spawn(move || {
        signals.forever().next();
        shutdown.raise();
    });
    server.wait();
}
