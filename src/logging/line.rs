//! How an ordinary log record looks on stderr: a text line close to env_logger's, or one JSON
//! object for log shippers.

use std::fmt::Write;
use std::time::SystemTime;

use log::Record;

use crate::access_log::TARGET as ACCESS_TARGET;
use crate::config::LogFormat;
use crate::json::write as json;

/// Appends `record`'s line (without its newline). A record of the access log's target is a
/// line already made: it is written as it is.
pub fn record(record: &Record<'_>, format: LogFormat, now: SystemTime, out: &mut String) {
    if record.target() == ACCESS_TARGET {
        let _ = write!(out, "{}", record.args());
        return;
    }
    let time = humantime::format_rfc3339_millis(now);
    match format {
        LogFormat::Text => {
            let _ = write!(
                out,
                "{time} {:<5} {}] {}",
                record.level(),
                record.target(),
                record.args()
            );
        }
        LogFormat::Json => {
            let _ = write!(
                out,
                "{{\"time\":\"{time}\",\"level\":\"{}\",\"target\":",
                record.level()
            );
            json::push_str(out, record.target());
            out.push_str(",\"message\":");
            match record.args().as_str() {
                Some(message) => json::push_str(out, message),
                None => json::push_str(out, &record.args().to_string()),
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_684_506_123)
    }

    fn line(format: LogFormat, target: &str, message: std::fmt::Arguments<'_>) -> String {
        let r = Record::builder()
            .level(log::Level::Warn)
            .target(target)
            .args(message)
            .build();
        let mut out = String::new();
        record(&r, format, at(), &mut out);
        out
    }

    #[test]
    fn text() {
        assert_eq!(
            line(
                LogFormat::Text,
                "ringgate::upstream",
                format_args!("listening on x")
            ),
            "2025-12-02T14:08:26.123Z WARN  ringgate::upstream] listening on x"
        );
    }

    #[test]
    fn json_escapes_what_it_must() {
        let got = line(
            LogFormat::Json,
            "t\"",
            format_args!("a \"b\"\n\u{1}\u{1f}\tc\\ é {}", 1),
        );
        assert_eq!(
            got,
            r#"{"time":"2025-12-02T14:08:26.123Z","level":"WARN","target":"t\"","message":"a \"b\"\n\u0001\u001f\tc\\ é 1"}"#
        );
        // A message without arguments takes the path that does not format it first.
        let got = line(LogFormat::Json, "t", format_args!("x\r\"y\""));
        assert!(got.ends_with(r#""message":"x\r\"y\""}"#), "{got}");
    }

    #[test]
    fn access_lines_pass_as_they_are() {
        let got = line(LogFormat::Json, ACCESS_TARGET, format_args!("made already"));
        assert_eq!(got, "made already");
    }
}
