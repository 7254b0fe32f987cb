//! What a test asks of one mock answer beyond its size: tool calls, a finish reason, and the
//! awkward ways real servers cut their streams.
//!
//! Like the shape headers ([`super::shape`]), these are request headers, so they reach the mock
//! through a gateway in between, and a test can ask for exactly the answer it wants to see the
//! gateway translate:
//!
//! - `x-mock-tool-calls: N` (1 to 8): when the request offers tools, the answer is N parallel
//!   calls of them instead of text (see [`super::script`]).
//! - `x-mock-finish: REASON`: the answer ends with this finish reason, verbatim (`content_filter`
//!   for OpenAI, `SAFETY` for Gemini: a refusal). Letters, digits and `_`, at most 32.
//! - `x-mock-quirks: a,b,...`: stream in the awkward ways real servers do ([`QUIRKS`]); names the
//!   mock does not know are ignored, so a test written for a newer mock still runs.
//!
//! A value out of range is a 400 naming the header.

use crate::http::ApiError;

pub const TOOL_CALLS_HEADER: &str = "x-mock-tool-calls";
pub const FINISH_HEADER: &str = "x-mock-finish";
pub const QUIRKS_HEADER: &str = "x-mock-quirks";

/// The most parallel tool calls one answer may be asked for.
pub const MAX_TOOL_CALLS: usize = 8;

/// One awkward way of streaming that some real server has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Quirk {
    /// OpenAI: the argument fragments of parallel calls interleaved by index.
    Interleave = 1 << 0,
    /// OpenAI: a call's id and name come in a chunk after its first argument fragment.
    LateId = 1 << 1,
    /// OpenAI: empty `"content": ""` and `"content": null` deltas between the real ones.
    Noise = 1 << 2,
    /// OpenAI: no `data: [DONE]` at the end.
    NoDone = 1 << 3,
    /// OpenAI: the last delta and the `finish_reason` in one chunk.
    CombinedFinish = 1 << 4,
    /// OpenAI: the usage on the finish chunk instead of a chunk of its own after it.
    UsageInFinish = 1 << 5,
    /// OpenAI: reasoning as `reasoning` (vLLM ≥ 0.9, OpenRouter), not `reasoning_content`.
    ReasoningField = 1 << 6,
    /// OpenAI: tool call arguments one character per chunk.
    BytewiseArgs = 1 << 7,
    /// OpenAI: `: OPENROUTER PROCESSING` comment lines and `data: : keepalive` between events.
    Comments = 1 << 8,
    /// OpenAI and Gemini: lines end in `\r\n`.
    Crlf = 1 << 9,
    /// Gemini: the thought signature in a part of its own after the thoughts.
    SignatureOnly = 1 << 10,
}

/// Every quirk, by the name `x-mock-quirks` gives it.
pub const QUIRKS: &[(&str, Quirk)] = &[
    ("interleave", Quirk::Interleave),
    ("late-id", Quirk::LateId),
    ("noise", Quirk::Noise),
    ("no-done", Quirk::NoDone),
    ("combined-finish", Quirk::CombinedFinish),
    ("usage-in-finish", Quirk::UsageInFinish),
    ("reasoning-field", Quirk::ReasoningField),
    ("bytewise-args", Quirk::BytewiseArgs),
    ("comments", Quirk::Comments),
    ("crlf", Quirk::Crlf),
    ("signature-only", Quirk::SignatureOnly),
];

/// A set of quirks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quirks(u16);

impl Quirks {
    /// The quirks named in a comma-separated list (case-insensitive, spaces ignored); unknown
    /// names are skipped.
    pub fn parse(list: &str) -> Quirks {
        let mut set = Quirks::default();
        for name in list.split(',').map(str::trim) {
            if let Some((_, q)) = QUIRKS.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                set = set.with(*q);
            }
        }
        set
    }

    pub fn with(self, q: Quirk) -> Quirks {
        Quirks(self.0 | q as u16)
    }

    pub fn has(self, q: Quirk) -> bool {
        self.0 & q as u16 != 0
    }
}

/// What the headers of one request asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    /// `x-mock-tool-calls`: this many parallel tool calls.
    pub tool_calls: Option<usize>,
    /// `x-mock-finish`: this finish reason, verbatim.
    pub finish: Option<String>,
    pub quirks: Quirks,
}

impl Directives {
    /// Reads the directive headers through `header` (a case-insensitive lookup).
    pub fn from_headers<'a>(
        header: impl Fn(&str) -> Option<&'a [u8]>,
    ) -> Result<Directives, ApiError> {
        let text = |name: &str| -> Result<Option<&'a str>, ApiError> {
            header(name)
                .map(|v| std::str::from_utf8(v).map(str::trim))
                .transpose()
                .map_err(|_| refuse(name, "expected ASCII text"))
        };
        let tool_calls = match text(TOOL_CALLS_HEADER)? {
            None => None,
            Some(v) => Some(
                v.parse::<usize>()
                    .ok()
                    .filter(|n| {
                        (1..=MAX_TOOL_CALLS).contains(n) && v.bytes().all(|b| b.is_ascii_digit())
                    })
                    .ok_or_else(|| {
                        refuse(
                            TOOL_CALLS_HEADER,
                            &format!("expected a whole number from 1 to {MAX_TOOL_CALLS}"),
                        )
                    })?,
            ),
        };
        let finish = match text(FINISH_HEADER)? {
            None => None,
            Some(v) if is_reason(v) => Some(v.to_string()),
            Some(_) => {
                return Err(refuse(
                    FINISH_HEADER,
                    "expected a finish reason: 1 to 32 letters, digits or _",
                ))
            }
        };
        let quirks = text(QUIRKS_HEADER)?.map_or_else(Quirks::default, Quirks::parse);
        Ok(Directives {
            tool_calls,
            finish,
            quirks,
        })
    }
}

/// A finish reason fit to be written into an answer as it is.
fn is_reason(v: &str) -> bool {
    (1..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn refuse(name: &str, what: &str) -> ApiError {
    ApiError::invalid_request(format!("{name}: {what}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(headers: &[(&str, &str)]) -> Result<Directives, ApiError> {
        Directives::from_headers(|name| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes())
        })
    }

    #[test]
    fn no_headers_ask_for_nothing() {
        assert_eq!(read(&[]).unwrap(), Directives::default());
    }

    #[test]
    fn headers_are_read() {
        let d = read(&[
            ("x-mock-tool-calls", " 3 "),
            ("x-mock-finish", "content_filter"),
            ("x-mock-quirks", "interleave, LATE-ID,bogus,,crlf"),
        ])
        .unwrap();
        assert_eq!(d.tool_calls, Some(3));
        assert_eq!(d.finish.as_deref(), Some("content_filter"));
        for (name, q) in QUIRKS {
            let on = matches!(*name, "interleave" | "late-id" | "crlf");
            assert_eq!(d.quirks.has(*q), on, "{name}");
        }
    }

    #[test]
    fn every_quirk_has_its_own_bit_and_name() {
        let all = QUIRKS
            .iter()
            .fold(Quirks::default(), |set, (_, q)| set.with(*q));
        assert_eq!(all.0.count_ones() as usize, QUIRKS.len());
        let names = QUIRKS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(",");
        assert_eq!(Quirks::parse(&names), all);
    }

    #[test]
    fn bad_values_are_a_400_naming_the_header() {
        for (name, value) in [
            ("x-mock-tool-calls", "0"),
            ("x-mock-tool-calls", "9"),
            ("x-mock-tool-calls", "+2"),
            ("x-mock-tool-calls", "two"),
            ("x-mock-finish", ""),
            ("x-mock-finish", "stop\"}"),
            ("x-mock-finish", &"X".repeat(33)),
        ] {
            let e = read(&[(name, value)]).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(
                e.message.contains(name),
                "{name}: {value:?} -> {}",
                e.message
            );
        }
    }
}
