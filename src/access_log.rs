//! The access log: one line per request, as text or as JSON, with what an operator asks of a
//! request afterwards (who, which model, which credential, how long, how many tokens) and
//! nothing a client would not want kept: never a key, never a prompt, never a query string.
//!
//! Lines are built here and handed to [`crate::logging`], which batches them per worker and
//! writes them off the request path.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use crate::config::LogFormat;
use crate::exchange::Summary;
use crate::json::write as json;

/// Where the access lines go: the target that `log.level` / `RUST_LOG` filter them by.
pub const TARGET: &str = "ringgate::access";

/// A model id longer than this is cut in the log (they are a few dozen bytes; a client could
/// send megabytes).
const MAX_MODEL: usize = 256;

/// Writes `summary`'s line (when access lines are wanted; the caller checks).
pub fn write(summary: &Summary<'_>) {
    let format = crate::logging::format();
    let now = SystemTime::now();
    crate::logging::access(|out| line(summary, format, now, out));
}

/// Appends the line for `s`, without its newline.
pub fn line(s: &Summary<'_>, format: LogFormat, now: SystemTime, out: &mut String) {
    let time = humantime::format_rfc3339_millis(now);
    let f = &s.facts;
    let model = s.model.map(cut);
    let json = format == LogFormat::Json;
    if json {
        let _ = write!(
            out,
            "{{\"time\":\"{time}\",\"type\":\"access\",\"request_id\":"
        );
        json::push_str(out, s.id);
        let strings = [
            ("client", s.client),
            ("method", Some(s.method)),
            ("path", Some(s.path)),
            ("route", Some(s.route)),
            ("model", model),
        ];
        for (k, v) in strings {
            json_field(out, k, v);
        }
        let _ = write!(out, ",\"stream\":{},\"status\":{}", s.stream, f.status);
        json_field(out, "upstream", s.upstream);
        json_field(out, "credential", s.credential);
    } else {
        let _ = write!(out, "{time} access {} ", s.id);
        text_value(out, Some(s.method));
        out.push(' ');
        text_value(out, Some(s.path));
        let _ = write!(out, " {} client=", f.status);
        text_value(out, s.client);
        out.push_str(" model=");
        text_value(out, model);
        let _ = write!(out, " stream={} upstream=", s.stream);
        text_value(out, s.upstream);
        out.push('/');
        text_value(out, s.credential);
    }
    // The numbers, under their JSON and their text names.
    let none = if json { "null" } else { "-" };
    let u = &f.usage;
    let numbers: [(&str, &str, &dyn std::fmt::Display); 12] = [
        ("attempts", "attempts", &f.attempts),
        ("ttfb_ms", "ttfb_ms", &Ms(f.first_byte, none)),
        ("duration_ms", "duration_ms", &Ms(Some(f.duration), none)),
        ("overhead_ms", "overhead_ms", &Ms(Some(f.overhead()), none)),
        ("input_tokens", "tokens_in", &u.input_tokens),
        ("output_tokens", "tokens_out", &u.output_tokens),
        (
            "cache_creation_input_tokens",
            "cache_write",
            &u.cache_creation_input_tokens,
        ),
        (
            "cache_read_input_tokens",
            "cache_read",
            &u.cache_read_input_tokens,
        ),
        ("body_bytes_in", "bytes_in", &s.body_in),
        ("body_bytes_out", "bytes_out", &f.body_out),
        ("client_writes", "writes", &f.client_writes),
        ("events", "events", &f.events),
    ];
    for (json_name, text_name, v) in numbers {
        let _ = match json {
            true => write!(out, ",\"{json_name}\":{v}"),
            false => write!(out, " {text_name}={v}"),
        };
    }
    let outcome = f.ending.as_str();
    let _ = match json {
        true => write!(out, ",\"outcome\":\"{outcome}\"}}"),
        false => write!(out, " outcome={outcome}"),
    };
}

/// Milliseconds with three decimals, or the text for none, written in place.
struct Ms(Option<Duration>, &'static str);

impl std::fmt::Display for Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            // In whole microseconds: float formatting cost more than the rest of the line.
            Some(d) => {
                let us = d.as_micros();
                write!(f, "{}.{:03}", us / 1000, us % 1000)
            }
            None => f.write_str(self.1),
        }
    }
}

fn cut(model: &str) -> &str {
    if model.len() <= MAX_MODEL {
        return model;
    }
    let mut end = MAX_MODEL;
    while !model.is_char_boundary(end) {
        end -= 1;
    }
    &model[..end]
}

fn json_field(out: &mut String, key: &str, value: Option<&str>) {
    let _ = write!(out, ",\"{key}\":");
    match value {
        Some(v) => json::push_str(out, v),
        None => out.push_str("null"),
    }
}

/// A value as it is when it is one plain word, else as a JSON string (so a client's model id
/// can never break a line or forge a field); `-` when absent.
fn text_value(out: &mut String, value: Option<&str>) {
    match value {
        None | Some("") => out.push('-'),
        Some(v)
            if v.bytes()
                .all(|b| b.is_ascii_graphic() && !b"\"\\=".contains(&b)) =>
        {
            out.push_str(v)
        }
        Some(v) => json::push_str(out, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Ending, Facts};
    use crate::stream::tally::Usage;

    fn summary(model: Option<&'static str>) -> Summary<'static> {
        Summary {
            id: "req_abc",
            method: "POST",
            path: "/v1/messages",
            route: "messages",
            client: Some("team-a"),
            model,
            stream: true,
            upstream: Some("anthropic"),
            credential: Some("primary"),
            body_in: 120,
            facts: Facts {
                status: 200,
                ending: Ending::Complete,
                attempts: 2,
                first_byte: Some(Duration::from_micros(12_345)),
                duration: Duration::from_millis(456),
                upstream_time: Duration::from_micros(455_950),
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 20,
                    cache_creation_input_tokens: 3,
                    cache_read_input_tokens: 4,
                },
                body_out: 4567,
                client_writes: 12,
                events: 70,
                event_stream: true,
            },
        }
    }

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_684_506_123)
    }

    #[test]
    fn text_lines() {
        let mut out = String::new();
        line(
            &summary(Some("claude-sonnet-4-5")),
            LogFormat::Text,
            at(),
            &mut out,
        );
        assert_eq!(
            out,
            "2025-12-02T14:08:26.123Z access req_abc POST /v1/messages 200 client=team-a \
             model=claude-sonnet-4-5 stream=true upstream=anthropic/primary attempts=2 \
             ttfb_ms=12.345 duration_ms=456.000 overhead_ms=0.050 tokens_in=10 tokens_out=20 \
             cache_write=3 cache_read=4 bytes_in=120 bytes_out=4567 writes=12 events=70 \
             outcome=complete"
        );
    }

    #[test]
    fn a_hostile_model_id_stays_inside_its_field() {
        let mut out = String::new();
        line(
            &summary(Some("x y\nstatus=500 \"")),
            LogFormat::Text,
            at(),
            &mut out,
        );
        assert!(!out.contains('\n'));
        assert!(
            out.contains(r#"model="x y\nstatus=500 \"" stream"#),
            "{out}"
        );
        let long: &'static str = "é".repeat(300).leak();
        out.clear();
        line(&summary(Some(long)), LogFormat::Json, at(), &mut out);
        let cut = "é".repeat(MAX_MODEL / 2);
        assert!(out.contains(&format!("\"{cut}\"")), "{out}");
    }

    #[test]
    fn json_lines_parse_and_carry_every_field() {
        let mut out = String::new();
        let mut s = summary(Some("m\"1"));
        s.client = None;
        s.facts.first_byte = None;
        line(&s, LogFormat::Json, at(), &mut out);
        let v: simd_json::OwnedValue = simd_json::from_slice(&mut out.clone().into_bytes())
            .unwrap_or_else(|e| panic!("{e}: {out}"));
        use simd_json::prelude::*;
        assert_eq!(v["time"].as_str(), Some("2025-12-02T14:08:26.123Z"));
        assert_eq!(v["type"].as_str(), Some("access"));
        assert_eq!(v["model"].as_str(), Some("m\"1"));
        assert!(v["client"].is_null() && v["ttfb_ms"].is_null());
        assert_eq!(v["status"].as_u64(), Some(200));
        assert_eq!(v["stream"].as_bool(), Some(true));
        assert_eq!(v["attempts"].as_u64(), Some(2));
        assert_eq!(v["duration_ms"].as_f64(), Some(456.0));
        assert_eq!(v["cache_read_input_tokens"].as_u64(), Some(4));
        assert_eq!(v["credential"].as_str(), Some("primary"));
        assert_eq!(v["outcome"].as_str(), Some("complete"));
    }
}
