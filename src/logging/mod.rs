//! The process's log on stderr: ordinary records, filtered `RUST_LOG`-style and written as text
//! or JSON, and the access log, one line per request, batched off the request path.
//!
//! Ordinary records are rare and are written at once ([`logger`]); access lines are many and go
//! through a per-thread buffer ([`buffer`]) to a writer thread ([`sink`]), so a worker never
//! waits on stderr. The logger is one process-wide static: `install` is for the binary; a
//! gateway started in-process by a test leaves it alone and `apply` does nothing.

mod buffer;
mod line;
mod logger;
mod sink;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use crate::config::{LogConfig, LogFormat};
use logger::{Logger, State};

pub use buffer::{access, dropped_lines, finish, flush_thread};

static LOGGER: OnceLock<Logger> = OnceLock::new();
/// Set only once `log::set_logger` accepted ours: with another logger in place (a test's), the
/// copies below must not claim that access lines are wanted.
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Copies of what the request path asks for, so it asks with one atomic load.
static ACCESS: AtomicBool = AtomicBool::new(false);
static FORMAT: AtomicU8 = AtomicU8::new(TEXT);
/// Orders concurrent `apply`s, so the copies above match the state that was stored last.
static APPLYING: Mutex<()> = Mutex::new(());

const TEXT: u8 = 0;
const JSON: u8 = 1;

/// Installs the process logger (once; later calls do nothing): RUST_LOG or "info", text format,
/// access log on.
pub fn install() {
    let mut first = false;
    let logger = LOGGER.get_or_init(|| {
        first = true;
        Logger::new(State::new(&LogConfig::default(), rust_log()))
    });
    if first && log::set_logger(logger).is_ok() {
        INSTALLED.store(true, Relaxed);
        publish(logger);
    }
}

/// Applies `[log]`: the filter (RUST_LOG, when set in the environment, wins over config.level),
/// the format, whether access lines are written. Takes effect at once for every thread (a
/// reload calls it again). A no-op when install() was never called (in-process tests).
pub fn apply(config: &LogConfig) {
    let Some(logger) = LOGGER.get().filter(|_| INSTALLED.load(Relaxed)) else {
        return;
    };
    let _order = APPLYING.lock().unwrap_or_else(|e| e.into_inner());
    logger.store(State::new(config, rust_log()));
    publish(logger);
}

/// Whether access lines are wanted now: installed, config.access, and the filter enables target
/// "ringgate::access" at Info. One atomic load: it is called once per request.
pub fn access_enabled() -> bool {
    ACCESS.load(Relaxed)
}

/// The current format (what access lines must be written in).
pub fn format() -> LogFormat {
    match FORMAT.load(Relaxed) {
        JSON => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

fn rust_log() -> Option<String> {
    std::env::var("RUST_LOG").ok()
}

/// Makes the stored state visible to what does not read it through the logger: the `log`
/// macros' level gate and the request path's copies.
fn publish(logger: &Logger) {
    let state = logger.state();
    log::set_max_level(state.max_level());
    FORMAT.store(
        match state.format {
            LogFormat::Text => TEXT,
            LogFormat::Json => JSON,
        },
        Relaxed,
    );
    ACCESS.store(state.wants_access(), Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    // Unit tests never install the process logger (it is the test harness's process too).
    #[test]
    fn apply_does_nothing_until_installed() {
        apply(&LogConfig {
            format: LogFormat::Json,
            ..LogConfig::default()
        });
        assert!(!access_enabled());
        assert_eq!(format(), LogFormat::Text);
    }
}
