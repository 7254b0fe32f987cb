//! The process's log on stderr: ordinary records, filtered `RUST_LOG`-style and written as text
//! or JSON, and the access log, one line per request, batched off the request path.
//!
//! The filter and the format can change at any time (a reload applies `[log]`), so the logger
//! keeps them behind an `ArcSwap`: a record costs one lock-free load, never a lock shared with
//! the reload. Ordinary records are rare and are written at once; access lines are many and
//! go through [`sink`], so a worker never waits on stderr.

mod line;
mod sink;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::access_log::TARGET as ACCESS_TARGET;
use crate::config::{LogConfig, LogFormat};

/// What the logger does now.
struct State {
    filter: env_filter::Filter,
    format: LogFormat,
}

struct Logger {
    state: ArcSwap<State>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();
/// Access lines are wanted (installed, `log.access`, and the filter lets their target through).
static ACCESS: AtomicBool = AtomicBool::new(false);
static FORMAT: AtomicU8 = AtomicU8::new(0);

/// Installs the process logger (once; later calls do nothing): `RUST_LOG` or `info`, text, the
/// access log on.
pub fn install() {
    let mut installed = false;
    let logger = LOGGER.get_or_init(|| {
        installed = true;
        Logger {
            state: ArcSwap::from_pointee(state(&LogConfig::default(), env_spec())),
        }
    });
    if installed && log::set_logger(logger).is_ok() {
        publish(logger, &LogConfig::default());
    }
}

/// Applies `[log]` at once, for every thread; `RUST_LOG`, when set, wins over `level`. Does
/// nothing when [`install`] was not called (a gateway started in-process by a test).
pub fn apply(config: &LogConfig) {
    if let Some(logger) = LOGGER.get() {
        logger.state.store(Arc::new(state(config, env_spec())));
        publish(logger, config);
    }
}

/// Whether access lines are wanted now: one atomic load, for the request path.
pub fn access_enabled() -> bool {
    ACCESS.load(Relaxed)
}

/// The format lines are written in now.
pub fn format() -> LogFormat {
    match FORMAT.load(Relaxed) {
        1 => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

pub use sink::{access, dropped_lines, finish, flush_thread};

fn env_spec() -> Option<String> {
    std::env::var("RUST_LOG").ok()
}

/// The directives in force: `RUST_LOG` when it is set and not blank, else `log.level`.
fn spec(config: &LogConfig, env: Option<String>) -> String {
    env.filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| config.level.clone())
}

fn state(config: &LogConfig, env: Option<String>) -> State {
    let spec = spec(config, env);
    let mut builder = env_filter::Builder::new();
    // `log.level` was validated; a bad RUST_LOG falls back to `info` rather than to nothing.
    if builder.try_parse(&spec).is_err() {
        builder = env_filter::Builder::new();
        builder.filter_level(LevelFilter::Info);
    }
    State {
        filter: builder.build(),
        format: config.format,
    }
}

fn publish(logger: &Logger, config: &LogConfig) {
    let state = logger.state.load();
    log::set_max_level(state.filter.filter());
    FORMAT.store(u8::from(state.format == LogFormat::Json), Relaxed);
    ACCESS.store(config.access && access_passes(&state.filter), Relaxed);
}

fn access_passes(filter: &env_filter::Filter) -> bool {
    let metadata = Metadata::builder()
        .level(Level::Info)
        .target(ACCESS_TARGET)
        .build();
    filter.enabled(&metadata)
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.state.load().filter.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        let state = self.state.load();
        if !state.filter.matches(record) {
            return;
        }
        let mut out = String::with_capacity(128);
        line::record(record, state.format, std::time::SystemTime::now(), &mut out);
        out.push('\n');
        use std::io::Write;
        let _ = std::io::stderr().lock().write_all(out.as_bytes());
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(level: &str, access: bool) -> LogConfig {
        LogConfig {
            level: level.into(),
            access,
            ..LogConfig::default()
        }
    }

    #[test]
    fn rust_log_wins_over_the_configured_level() {
        let c = config("warn", true);
        assert_eq!(spec(&c, Some("debug".into())), "debug");
        assert_eq!(spec(&c, Some("  ".into())), "warn");
        assert_eq!(spec(&c, None), "warn");
        let s = state(&c, Some("ringgate=debug".into()));
        assert_eq!(s.filter.filter(), LevelFilter::Debug);
    }

    #[test]
    fn a_bad_rust_log_falls_back_to_info() {
        let s = state(&config("warn", true), Some("ringgate=loud".into()));
        assert_eq!(s.filter.filter(), LevelFilter::Info);
    }

    #[test]
    fn the_access_target_follows_the_filter() {
        for (level, passes) in [
            ("info", true),
            ("warn", false),
            ("info,ringgate::access=off", false),
            ("warn,ringgate::access=info", true),
        ] {
            let s = state(&config(level, true), None);
            assert_eq!(access_passes(&s.filter), passes, "{level}");
        }
    }
}
