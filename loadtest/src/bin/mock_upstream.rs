//! `mock-upstream`: a fast, Anthropic-shaped upstream for tests and benchmarks.
//!
//! Serves the same answers as ringgate's built-in mock (one implementation, in the library) as a
//! separate process, so the gateway can be measured and tested in front of a real upstream server.
//! Prints `listening on ADDR` on stdout once it accepts connections.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use ringgate::mock::server::{MockServer, MockServerOptions};

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
    /// Require this x-api-key on every request (401 otherwise).
    #[arg(long)]
    api_key: Option<String>,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    let server = match MockServer::start(MockServerOptions {
        listen: args.listen,
        workers: args.workers,
        event_interval: Duration::from_millis(args.event_interval_ms),
        api_key: args.api_key,
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
