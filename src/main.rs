//! The `ringgate` command: a thin shell over the library.
//!
//! Parses the command line, loads and validates the config, starts the gateway, reloads it on
//! SIGHUP and drains it on SIGINT or SIGTERM (`lifecycle::signals`). Everything else lives in the
//! library, where the tests reach it too.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ringgate::config::{Config, UpstreamKind};
use ringgate::lifecycle::{signals, Source};
use ringgate::Gateway;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ringgate",
    version,
    about = "An io_uring gateway for the Anthropic Messages API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway. Without --config: listen on 127.0.0.1:8080 and forward to the Anthropic
    /// API with ANTHROPIC_API_KEY, or serve the built-in mock upstream when it is not set.
    Serve {
        /// The configuration file (TOML); see examples/ringgate.toml.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Listen on this address instead of the configured one (e.g. 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// Number of worker threads (0 = one per available core).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Validate a configuration file, print a summary, and exit.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    ringgate::logging::install();
    let code = match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log::error!("{message}");
            ExitCode::FAILURE
        }
    };
    ringgate::logging::finish();
    code
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Check { config } => {
            let c = Config::load(&config).map_err(|e| e.to_string())?;
            c.listen_addrs().map_err(|e| e.to_string())?;
            println!("{}: ok", config.display());
            print!("{}", summary(&c));
            for note in c.warnings() {
                println!("  note: {note}");
            }
            Ok(())
        }
        Command::Serve {
            config,
            listen,
            workers,
        } => {
            // The command line's overrides apply to every load of the file, reloads included.
            let overrides = move |mut c: Config| {
                if let Some(l) = &listen {
                    c.server.listen = ringgate::config::Listen::One(l.clone());
                }
                if let Some(w) = workers {
                    c.server.workers = w;
                }
                c
            };
            let c = overrides(match &config {
                Some(path) => Config::load(path).map_err(|e| e.to_string())?,
                None => Config::default_for_env(std::env::var("ANTHROPIC_API_KEY").ok()),
            });
            if config.is_none() && c.upstreams[0].kind == UpstreamKind::Mock {
                log::warn!(
                    "ANTHROPIC_API_KEY is not set: serving the BUILT-IN MOCK upstream (canned answers, no real model). \
                     Set ANTHROPIC_API_KEY or pass --config to forward to a real upstream."
                );
            }
            let reload: Option<Source> = config.map(|path| -> Source {
                std::sync::Arc::new(move || {
                    Config::load(&path)
                        .map(&overrides)
                        .map_err(|e| e.to_string())
                })
            });
            serve(c, reload)
        }
    }
}

fn serve(config: Config, reload: Option<Source>) -> Result<(), String> {
    ringgate::logging::apply(&config.log);
    let summary = summary(&config);
    for note in config.warnings() {
        log::warn!("{note}");
    }
    match ringgate::runtime::raise_open_files_limit() {
        Ok(n) => log::debug!("open files limit: {n}"),
        Err(e) => log::warn!("cannot raise the open files limit: {e}"),
    }
    let handle = Gateway::start(config).map_err(|e| format!("cannot start: {e}"))?;
    if let Some(source) = reload {
        handle.control().set_source(source);
    }
    for line in summary.lines() {
        log::info!("{}", line.trim());
    }
    for (name, addr) in handle.mock_upstreams() {
        log::info!("upstream {name:?}: built-in mock serving on {addr}");
    }
    for addr in handle.local_addrs() {
        log::info!(
            "listening on {addr} ({} workers, {})",
            handle.workers(),
            handle.driver().name()
        );
    }
    if let Some(addr) = handle.admin_addr() {
        log::info!("admin listener on {addr}");
    }
    signals::spawn(handle.control()).map_err(|e| format!("cannot install signal handlers: {e}"))?;
    handle.wait();
    log::info!("stopped");
    Ok(())
}

/// What a config amounts to, one line per upstream; never a key.
fn summary(c: &Config) -> String {
    let mut s = String::new();
    for u in &c.upstreams {
        let target = match &u.base_url {
            Some(url) => url.to_string(),
            None => "built-in mock".into(),
        };
        let mut creds: Vec<&str> = u.credentials.iter().map(|c| c.name.as_str()).collect();
        if creds.is_empty() {
            creds.push(ringgate::routing::pool::KEYLESS);
        }
        let via = match &u.proxy {
            Some(p) => format!(" via proxy {}", p.url),
            None => String::new(),
        };
        s.push_str(&format!(
            "  upstream {:?} ({:?}) -> {target}{via}; models {:?}; credentials {:?}\n",
            u.name, u.kind, u.models, creds
        ));
    }
    s
}
