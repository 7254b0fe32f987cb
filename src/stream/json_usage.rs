//! The token usage of a non-streaming answer, read while its body is relayed.
//!
//! A non-streaming Messages response is one JSON object whose top-level `usage` member feeds the
//! access log and the token metrics, just as the usage events of a stream do. The relay forwards
//! the body through a fixed buffer and never holds all of it, so the object cannot be parsed
//! whole: [`UsageScanner`] follows just enough of the JSON grammar (strings, escapes, nesting)
//! to find that member as the pieces go by, copies only its value, and reads its four counts. The
//! text of the answer, which is most of the body, is skipped with `memchr` and never copied.

use super::tally::Usage;

/// The most bytes of a `usage` value worth keeping: real ones are a few hundred bytes, and
/// anything larger is not the object we are after and must not grow memory.
const MAX_USAGE: usize = 4096;

const KEY: &[u8] = b"usage";

/// Finds the top-level "usage" object of a JSON body fed in pieces.
#[derive(Default)]
pub struct UsageScanner {
    /// Open objects and arrays; saturating, since only depths 1 and 2 matter.
    depth: u32,
    in_string: bool,
    /// The previous byte was the backslash of an escape inside a string.
    escaped: bool,
    /// The top-level value ended or was not an object: the rest of the body is not looked at.
    done: bool,
    /// At depth 1, the next string is a member name.
    expect_key: bool,
    /// Reading a depth-1 member name whose first `n` bytes match `usage` so far.
    key: Option<usize>,
    /// The last member name was `usage` and its `:` has not come yet.
    after_key: bool,
    /// The `:` after `usage` came and its value has not started.
    awaiting_value: bool,
    capturing: bool,
    captured: Vec<u8>,
    found: Option<Usage>,
}

impl UsageScanner {
    pub fn new() -> UsageScanner {
        UsageScanner::default()
    }

    /// Takes the next bytes of the body (pieces may split anywhere, even inside a key or an escape).
    pub fn feed(&mut self, piece: &[u8]) {
        // Where the part of the `usage` value inside this piece begins, copied in one go when
        // the value or the piece ends rather than byte by byte.
        let mut capture_from = 0;
        let mut i = 0;
        while i < piece.len() && !self.done {
            if self.in_string {
                i = self.skip_string(piece, i);
                continue;
            }
            let b = piece[i];
            i += 1;
            if self.depth == 0 && b != b'{' {
                // Only an object has members; anything else is not a Messages response.
                self.done = !is_space(b);
                continue;
            }
            if self.depth == 1 && self.after_key && !is_space(b) {
                self.after_key = false;
                if b == b':' {
                    self.awaiting_value = true;
                    continue;
                }
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    if self.depth == 1 {
                        self.value_is_not_an_object();
                        if self.expect_key {
                            self.expect_key = false;
                            self.key = Some(0);
                        }
                    }
                }
                b'{' | b'[' => {
                    self.expect_key |= self.depth == 0;
                    if self.depth == 1 && self.awaiting_value {
                        self.awaiting_value = false;
                        if b == b'{' {
                            self.capturing = true;
                            self.captured.clear();
                            capture_from = i - 1;
                        }
                    }
                    self.depth = self.depth.saturating_add(1);
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.done = true;
                    } else if self.depth == 1 && self.capturing {
                        self.capturing = false;
                        if self.keep(&piece[capture_from..i]) {
                            self.found = usage_of(&self.captured);
                        }
                        self.captured = Vec::new();
                    }
                }
                b',' if self.depth == 1 => {
                    self.value_is_not_an_object();
                    self.expect_key = true;
                }
                _ if is_space(b) => {}
                _ if self.depth == 1 => self.value_is_not_an_object(),
                _ => {}
            }
        }
        if self.capturing && !self.keep(&piece[capture_from..]) {
            self.capturing = false;
            self.captured = Vec::new();
        }
    }

    /// The usage found so far (the last complete top-level "usage" object), parsed into
    /// crate::stream::tally::Usage; None if none was found or it did not parse.
    pub fn usage(&self) -> Option<Usage> {
        self.found
    }

    /// Moves past string content from `i`, up to and including the closing quote if it is in
    /// this piece; returns where scanning goes on.
    fn skip_string(&mut self, piece: &[u8], mut i: usize) -> usize {
        if self.escaped {
            // The escaped byte (for `\u`, the hex digits that follow are plain content anyway).
            self.escaped = false;
            self.key = None;
            i += 1;
        }
        let rest = &piece[i..];
        let Some(at) = memchr::memchr2(b'"', b'\\', rest) else {
            self.match_key(rest);
            return piece.len();
        };
        self.match_key(&rest[..at]);
        if rest[at] == b'\\' {
            self.escaped = true;
        } else {
            self.in_string = false;
            if self.key.take() == Some(KEY.len()) {
                self.after_key = true;
                // A later `usage` member replaces an earlier one, as the last duplicate key
                // does for a parser that takes the whole body.
                self.found = None;
            }
        }
        i + at + 1
    }

    /// Compares the next bytes of a depth-1 member name with `usage`. A name containing an
    /// escape never matches: the upstream writes `usage` plainly, and decoding is not worth it.
    fn match_key(&mut self, bytes: &[u8]) {
        if let Some(n) = self.key {
            let end = n + bytes.len();
            self.key = (end <= KEY.len() && KEY[n..end] == *bytes).then_some(end);
        }
    }

    /// A depth-1 value began with something other than `{`; if it is the value of `usage`,
    /// there is no usage.
    fn value_is_not_an_object(&mut self) {
        if self.awaiting_value {
            self.awaiting_value = false;
            self.found = None;
        }
    }

    /// Adds bytes of the `usage` value, unless that would take it past the bound.
    fn keep(&mut self, bytes: &[u8]) -> bool {
        if self.captured.len() + bytes.len() > MAX_USAGE {
            return false;
        }
        self.captured.extend_from_slice(bytes);
        true
    }
}

/// The token counts of a `usage` object; `None` when it is not one, or a count is not a whole
/// number (`null` counts as none).
fn usage_of(object: &[u8]) -> Option<Usage> {
    let mut usage = Usage::default();
    let mut well_typed = true;
    crate::json::skim::members(object, |key, raw| {
        let count = match key {
            "input_tokens" => &mut usage.input_tokens,
            "output_tokens" => &mut usage.output_tokens,
            "cache_creation_input_tokens" => &mut usage.cache_creation_input_tokens,
            "cache_read_input_tokens" => &mut usage.cache_read_input_tokens,
            _ => return,
        };
        match raw {
            b"null" => *count = 0,
            digits => match std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
            {
                Some(n) => *count = n,
                None => well_typed = false,
            },
        }
    })
    .ok()?;
    well_typed.then_some(usage)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &[u8] = br#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"say \"usage\":{\"input_tokens\":999} and a\\"},{"type":"tool_use","id":"toolu_1","name":"f","input":{"usage":{"input_tokens":777},"a\\":"\\\"usage\":{"}}],"model":"claude-haiku-4-5","stop_reason":"tool_use","usage" : {"input_tokens":10,"cache_creation_input_tokens":2,"cache_read_input_tokens":3,"output_tokens":5,"service_tier":"standard","server_tool_use":{"web_search_requests":0}}}"#;

    const EXPECTED: Usage = Usage {
        input_tokens: 10,
        output_tokens: 5,
        cache_creation_input_tokens: 2,
        cache_read_input_tokens: 3,
    };

    fn scan<P: AsRef<[u8]>>(pieces: impl IntoIterator<Item = P>) -> Option<Usage> {
        let mut s = UsageScanner::new();
        for p in pieces {
            s.feed(p.as_ref());
        }
        s.usage()
    }

    #[test]
    fn a_normal_response() {
        let body = br#"{"id":"msg_1","type":"message","content":[{"type":"text","text":"Hi"}],"usage":{"input_tokens":10,"output_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}"#;
        let want = Usage {
            input_tokens: 10,
            output_tokens: 5,
            ..Usage::default()
        };
        assert_eq!(scan([body]), Some(want));
        assert_eq!(scan([BODY]), Some(EXPECTED));
    }

    #[test]
    fn byte_by_byte_and_every_split() {
        assert_eq!(scan(BODY.chunks(1)), Some(EXPECTED));
        for at in 0..=BODY.len() {
            let (a, b) = BODY.split_at(at);
            assert_eq!(scan([a, b]), Some(EXPECTED), "split at {at}");
        }
    }

    #[test]
    fn a_nested_usage_is_not_the_one() {
        let body = br#"{"content":[{"type":"tool_use","input":{"usage":{"input_tokens":1}}}],"x":{"usage":{"input_tokens":2}},"usage":{"input_tokens":3}}"#;
        assert_eq!(scan([body]).map(|u| u.input_tokens), Some(3));
        let only_nested = br#"{"content":[{"input":{"usage":{"input_tokens":1}}}]}"#;
        assert_eq!(scan([only_nested]), None);
    }

    #[test]
    fn usage_text_inside_a_string_is_not_the_one() {
        let body = br#"{"text":"\"usage\":{\"input_tokens\":999}","usage":{"input_tokens":4}}"#;
        assert_eq!(scan([body]).map(|u| u.input_tokens), Some(4));
        let only_text =
            br#"{"text":"\"usage\":{\"input_tokens\":999}","t":"\u0022usage\u0022:{}"}"#;
        assert_eq!(scan([only_text]), None);
        assert_eq!(scan([br#"{"text":"\",\"usage\":{}}"}"#]), None);
    }

    #[test]
    fn an_escaped_backslash_ends_a_string() {
        let body = b"{\"text\":\"a\\\\\",\"usage\":{\"output_tokens\":6}}";
        assert_eq!(scan([body]).map(|u| u.output_tokens), Some(6));
    }

    #[test]
    fn no_usage() {
        assert_eq!(scan([br#"{"id":"msg_1","content":[]}"#]), None);
        let near_misses = br#"{"usages":{},"usag":{},"usage\n":{},"x":1}"#;
        assert_eq!(scan([near_misses]), None);
        assert_eq!(scan([br#"[{"usage":{"input_tokens":1}}]"#]), None);
        assert_eq!(scan([b""]), None);
    }

    #[test]
    fn a_truncated_body() {
        assert_eq!(scan([&BODY[..BODY.len() - 20]]), None);
        let before_usage = br#"{"content":[{"text":"\"us"#;
        assert_eq!(scan([before_usage]), None);
    }

    #[test]
    fn a_huge_usage_is_ignored() {
        let mut body = br#"{"usage":{"input_tokens":1,"pad":""#.to_vec();
        body.extend_from_slice(&[b'x'; 2 * MAX_USAGE]);
        body.extend_from_slice(br#""},"id":"msg_1"}"#);
        assert_eq!(scan([&body]), None);
        let mut s = UsageScanner::new();
        for p in body.chunks(100) {
            s.feed(p);
            assert!(s.captured.capacity() <= 2 * MAX_USAGE);
        }
        assert_eq!(s.usage(), None);
    }

    #[test]
    fn garbage_never_panics() {
        let deep = [b'{'; 100_000];
        let mut rng = fastrand::Rng::with_seed(7);
        let noise: Vec<u8> = (0..50_000)
            .map(|i| if i == 0 { b'{' } else { rng.u8(..) })
            .collect();
        let tricky = [&b"{\"usage\":"[..], &deep, &[b'}'; 100_010]].concat();
        for body in [
            &deep[..],
            &noise,
            b"not json",
            b"}}}]]]\"\\",
            &tricky,
            b"{\"usage\":{\"\\",
        ] {
            assert_eq!(scan([body]), None);
            assert_eq!(scan(body.chunks(7)), None);
        }
    }

    #[test]
    fn usage_that_is_not_an_object() {
        for body in [
            &br#"{"usage":null}"#[..],
            br#"{"usage": 5, "x": {"input_tokens":1}}"#,
            br#"{"usage":"{\"input_tokens\":1}"}"#,
            br#"{"usage":[{"input_tokens":1}]}"#,
            br#"{"usage":{"input_tokens":"ten"}}"#,
            br#"{"usage":{"input_tokens":1},"usage":null}"#,
        ] {
            assert_eq!(scan([body]), None, "{}", String::from_utf8_lossy(body));
        }
    }

    /// A JSON string holding `text` (made only of the characters the generator below uses).
    fn json_string(text: &str) -> String {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        format!("\"{escaped}\"")
    }

    proptest! {
        #[test]
        fn splitting_never_changes_the_answer(
            texts in prop::collection::vec("(\"usage\":\\{|[\"\\\\{}\\[\\], :a-z]|é|\n){0,40}", 0..4),
            nested in any::<bool>(),
            tokens in any::<[u32; 4]>(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut content: Vec<String> = texts
                .iter()
                .map(|t| format!(r#"{{"type":"text","text":{}}}"#, json_string(t)))
                .collect();
            if nested {
                content.insert(0, r#"{"type":"tool_use","input":{"usage":{"input_tokens":9}}}"#.into());
            }
            let body = format!(
                r#"{{"id":"msg_1","content":[{}],"usage":{{"input_tokens":{},"output_tokens":{},"cache_creation_input_tokens":{},"cache_read_input_tokens":{}}}}}"#,
                content.join(","), tokens[0], tokens[1], tokens[2], tokens[3],
            );
            let body = body.as_bytes();
            let unsplit = scan([body]);
            prop_assert_eq!(unsplit.map(|u| u.input_tokens), Some(u64::from(tokens[0])));
            let (mut pieces, mut rest) = (Vec::new(), body);
            for cut in cuts {
                let (piece, after) = rest.split_at(cut.index(rest.len() + 1));
                pieces.push(piece);
                rest = after;
            }
            pieces.push(rest);
            prop_assert_eq!(scan(pieces), unsplit);
        }
    }
}
