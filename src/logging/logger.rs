//! The `log::Log` the process installs, kept apart from the statics in `mod.rs` so a test can
//! build one of its own and swap its state without touching the process's logger.
//!
//! What it does now (filter, format, whether access lines pass) sits behind an `ArcSwap`: a
//! record costs one lock-free load, and a reload never makes a worker wait.

use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use log::{Level, LevelFilter, Log, Metadata, Record};

use super::line;
use crate::access_log::TARGET as ACCESS_TARGET;
use crate::config::{LogConfig, LogFormat};

/// The directives in force: `RUST_LOG` when it is set (and not blank: an exported but empty
/// variable is more often an accident than a wish to log errors only), else `log.level`.
/// Pure, so tests need not touch the process's environment.
pub fn spec(env: Option<String>, level: &str) -> String {
    env.filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| level.to_owned())
}

/// One configuration of the logger, replaced whole.
pub struct State {
    pub filter: env_filter::Filter,
    pub format: LogFormat,
    /// `log.access`.
    pub access: bool,
}

impl State {
    /// `config` with `RUST_LOG` (`env`) taking precedence over its level.
    pub fn new(config: &LogConfig, env: Option<String>) -> State {
        let mut builder = env_filter::Builder::new();
        // `log.level` was validated with the config; a bad `RUST_LOG` directive is reported on
        // stderr and skipped, the others kept, as env_logger does.
        builder.parse(&spec(env, &config.level));
        State {
            filter: builder.build(),
            format: config.format,
            access: config.access,
        }
    }

    /// Whether access lines are wanted: `log.access`, and the filter lets their target through
    /// at info (so `ringgate::access=off` turns them off too).
    pub fn wants_access(&self) -> bool {
        let metadata = Metadata::builder()
            .level(Level::Info)
            .target(ACCESS_TARGET)
            .build();
        self.access && self.filter.enabled(&metadata)
    }

    /// What `log::set_max_level` must be, so filtered-out macros cost a comparison.
    pub fn max_level(&self) -> LevelFilter {
        self.filter.filter()
    }
}

pub struct Logger {
    state: ArcSwap<State>,
}

impl Logger {
    pub fn new(state: State) -> Logger {
        Logger {
            state: ArcSwap::from_pointee(state),
        }
    }

    /// Takes effect for the next record, on every thread.
    pub fn store(&self, state: State) {
        self.state.store(Arc::new(state));
    }

    pub fn state(&self) -> arc_swap::Guard<Arc<State>> {
        self.state.load()
    }

    /// `record`'s line with its newline, or `None` when it is filtered out.
    pub fn line(&self, record: &Record<'_>, now: SystemTime) -> Option<String> {
        let state = self.state.load();
        if !state.filter.matches(record) || (record.target() == ACCESS_TARGET && !state.access) {
            return None;
        }
        let mut out = String::with_capacity(128);
        line::record(record, state.format, now, &mut out);
        out.push('\n');
        Some(out)
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.state.load().filter.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if let Some(line) = self.line(record, SystemTime::now()) {
            // One write of the whole line under the lock: records from different threads
            // never interleave, nor with the access log's batches.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
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

    fn record<'a>(target: &'a str, level: Level, args: std::fmt::Arguments<'a>) -> Record<'a> {
        Record::builder()
            .target(target)
            .level(level)
            .args(args)
            .build()
    }

    #[test]
    fn rust_log_wins_over_the_configured_level() {
        assert_eq!(spec(Some("debug".into()), "warn"), "debug");
        assert_eq!(spec(Some("  ".into()), "warn"), "warn");
        assert_eq!(spec(None, "warn"), "warn");
        let s = State::new(&config("warn", true), Some("ringgate=debug".into()));
        assert_eq!(s.max_level(), LevelFilter::Debug);
        let s = State::new(&config("warn", true), None);
        assert_eq!(s.max_level(), LevelFilter::Warn);
    }

    #[test]
    fn a_bad_rust_log_directive_is_skipped() {
        let s = State::new(&config("warn", true), Some("debug,ringgate=loud".into()));
        assert_eq!(s.max_level(), LevelFilter::Debug);
    }

    #[test]
    fn access_follows_the_switch_and_the_filter() {
        for (level, access, wanted) in [
            ("info", true, true),
            ("info", false, false),
            ("warn", true, false),
            ("info,ringgate::access=off", true, false),
            ("warn,ringgate::access=info", true, true),
        ] {
            let s = State::new(&config(level, access), None);
            assert_eq!(s.wants_access(), wanted, "{level} access={access}");
        }
    }

    #[test]
    fn a_stored_state_applies_to_the_next_record() {
        let logger = Logger::new(State::new(&config("info", true), None));
        let now = SystemTime::UNIX_EPOCH;
        let debug = record("ringgate::upstream", Level::Debug, format_args!("d"));
        let info = record("ringgate::upstream", Level::Info, format_args!("i"));
        assert!(!logger.enabled(debug.metadata()));
        assert!(logger.line(&debug, now).is_none());
        assert_eq!(
            logger.line(&info, now).as_deref(),
            Some("1970-01-01T00:00:00.000Z INFO  ringgate::upstream] i\n")
        );

        let json = LogConfig {
            format: LogFormat::Json,
            ..config("debug", true)
        };
        logger.store(State::new(&json, None));
        assert!(logger.enabled(debug.metadata()));
        assert_eq!(
            logger.line(&debug, now).as_deref(),
            Some(
                "{\"time\":\"1970-01-01T00:00:00.000Z\",\"level\":\"DEBUG\",\
                 \"target\":\"ringgate::upstream\",\"message\":\"d\"}\n"
            )
        );
    }

    #[test]
    fn access_records_through_the_macros_follow_the_switch() {
        let logger = Logger::new(State::new(&config("info", true), None));
        let now = SystemTime::UNIX_EPOCH;
        let access = record(ACCESS_TARGET, Level::Info, format_args!("made already"));
        assert_eq!(logger.line(&access, now).as_deref(), Some("made already\n"));
        logger.store(State::new(&config("info", false), None));
        assert!(logger.line(&access, now).is_none());
    }
}
