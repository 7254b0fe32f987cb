//! Checking streamed JSON text piece by piece: how much of it can still be the start of a valid
//! JSON object.
//!
//! A tool call's arguments reach the gateway as fragments of JSON text, and clients parse what
//! they have received after every fragment (the Anthropic SDKs do, in a partial mode that accepts
//! an unfinished document but not a wrong one). An upstream model can produce arguments that go
//! wrong halfway; relayed as they are, they would break the client's stream. So every fragment
//! goes through [`JsonPrefix`] first, and only the part that keeps the text a valid prefix of an
//! object is passed on. It is a pushdown automaton over bytes: constant work per byte, memory only
//! for the nesting (bounded by [`MAX_DEPTH`]).

/// Deepest nesting accepted (as serde_json's default recursion limit).
pub const MAX_DEPTH: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Before the top-level object.
    Start,
    /// A value (after `:`, after `[` or `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ValueOrEnd,
    /// After `{`: a key or `}`.
    KeyOrEnd,
    /// After `,` in an object.
    Key,
    Colon,
    /// After a value inside a container.
    CommaOrEnd,
    /// The top-level object is closed: only whitespace may follow.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    None,
    /// Inside a string; `key` if it is a member name.
    Str {
        key: bool,
    },
    /// After a backslash in a string.
    Escape {
        key: bool,
    },
    /// Reading the hex digits of a `\u` escape: how many are still due.
    Unicode {
        key: bool,
        due: u8,
    },
    Number(Num),
    /// Inside `true`, `false` or `null`: the rest still due.
    Literal(&'static [u8]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    E,
    ESign,
    Exp,
}

impl Num {
    /// Whether a number may end here.
    fn may_end(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::Exp)
    }

    fn next(self, b: u8) -> Option<Num> {
        Some(match (self, b) {
            (Num::Minus, b'0') => Num::Zero,
            (Num::Minus, b'1'..=b'9') => Num::Int,
            (Num::Int, b'0'..=b'9') => Num::Int,
            (Num::Zero | Num::Int, b'.') => Num::Dot,
            (Num::Dot | Num::Frac, b'0'..=b'9') => Num::Frac,
            (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Num::E,
            (Num::E, b'+' | b'-') => Num::ESign,
            (Num::E | Num::ESign | Num::Exp, b'0'..=b'9') => Num::Exp,
            _ => return None,
        })
    }
}

/// The state of one JSON text being checked.
#[derive(Clone, Debug)]
pub struct JsonPrefix {
    expect: Expect,
    token: Token,
    /// Open containers: `true` for an object.
    stack: Vec<bool>,
    /// A byte was refused: nothing more is accepted.
    broken: bool,
}

impl Default for JsonPrefix {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonPrefix {
    pub fn new() -> JsonPrefix {
        JsonPrefix {
            expect: Expect::Start,
            token: Token::None,
            stack: Vec::new(),
            broken: false,
        }
    }

    /// Takes the next piece of text; returns how many of its bytes keep the whole a valid prefix
    /// of a JSON object: all of them, or those before the first that cannot. After a refusal,
    /// nothing more is taken.
    pub fn feed(&mut self, text: &[u8]) -> usize {
        if self.broken {
            return 0;
        }
        for (i, &b) in text.iter().enumerate() {
            if !self.byte(b) {
                self.broken = true;
                return i;
            }
        }
        text.len()
    }

    /// The object is complete (its closing brace was read).
    pub fn is_complete(&self) -> bool {
        self.expect == Expect::Done
    }

    /// Nothing but whitespace was read yet.
    pub fn is_empty(&self) -> bool {
        self.expect == Expect::Start
    }

    /// Some byte was refused.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    fn byte(&mut self, b: u8) -> bool {
        match self.token {
            Token::None => self.structural(b),
            Token::Str { key } => {
                match b {
                    b'"' => {
                        self.token = Token::None;
                        self.expect = if key {
                            Expect::Colon
                        } else {
                            self.after_value()
                        };
                    }
                    b'\\' => self.token = Token::Escape { key },
                    0..=0x1f => return false,
                    _ => {}
                }
                true
            }
            Token::Escape { key } => {
                self.token = match b {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Token::Str { key },
                    b'u' => Token::Unicode { key, due: 4 },
                    _ => return false,
                };
                true
            }
            Token::Unicode { key, due } => {
                if !b.is_ascii_hexdigit() {
                    return false;
                }
                self.token = match due {
                    1 => Token::Str { key },
                    _ => Token::Unicode { key, due: due - 1 },
                };
                true
            }
            Token::Number(n) => match n.next(b) {
                Some(n) => {
                    self.token = Token::Number(n);
                    true
                }
                None if n.may_end() => {
                    self.token = Token::None;
                    self.expect = self.after_value();
                    self.structural(b)
                }
                None => false,
            },
            Token::Literal(rest) => {
                if rest[0] != b {
                    return false;
                }
                if rest.len() == 1 {
                    self.token = Token::None;
                    self.expect = self.after_value();
                } else {
                    self.token = Token::Literal(&rest[1..]);
                }
                true
            }
        }
    }

    /// A byte between tokens.
    fn structural(&mut self, b: u8) -> bool {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            return true;
        }
        match (self.expect, b) {
            (Expect::Start, b'{') => self.open(true),
            (Expect::Value | Expect::ValueOrEnd, _) => self.value(b),
            (Expect::KeyOrEnd | Expect::Key, b'"') => {
                self.token = Token::Str { key: true };
                true
            }
            (Expect::KeyOrEnd, b'}') | (Expect::CommaOrEnd, b'}') if self.top() == Some(true) => {
                self.close()
            }
            (Expect::CommaOrEnd, b']') if self.top() == Some(false) => self.close(),
            (Expect::Colon, b':') => {
                self.expect = Expect::Value;
                true
            }
            (Expect::CommaOrEnd, b',') => {
                self.expect = match self.top() {
                    Some(true) => Expect::Key,
                    _ => Expect::Value,
                };
                true
            }
            _ => false,
        }
    }

    /// The first byte of a value (or, after `[`, a `]`).
    fn value(&mut self, b: u8) -> bool {
        match b {
            b'{' => self.open(true),
            b'[' => self.open(false),
            b']' if self.expect == Expect::ValueOrEnd => self.close(),
            b'"' => {
                self.token = Token::Str { key: false };
                true
            }
            b'-' => {
                self.token = Token::Number(Num::Minus);
                true
            }
            b'0' => {
                self.token = Token::Number(Num::Zero);
                true
            }
            b'1'..=b'9' => {
                self.token = Token::Number(Num::Int);
                true
            }
            b't' => {
                self.token = Token::Literal(b"rue");
                true
            }
            b'f' => {
                self.token = Token::Literal(b"alse");
                true
            }
            b'n' => {
                self.token = Token::Literal(b"ull");
                true
            }
            _ => false,
        }
    }

    fn open(&mut self, object: bool) -> bool {
        if self.stack.len() >= MAX_DEPTH {
            return false;
        }
        self.stack.push(object);
        self.expect = if object {
            Expect::KeyOrEnd
        } else {
            Expect::ValueOrEnd
        };
        true
    }

    fn close(&mut self) -> bool {
        self.stack.pop();
        self.expect = self.after_value();
        true
    }

    fn top(&self) -> Option<bool> {
        self.stack.last().copied()
    }

    fn after_value(&self) -> Expect {
        if self.stack.is_empty() {
            Expect::Done
        } else {
            Expect::CommaOrEnd
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(text: &str) -> (usize, bool) {
        let mut p = JsonPrefix::new();
        let n = p.feed(text.as_bytes());
        (n, p.is_complete())
    }

    #[test]
    fn whole_objects_are_accepted_and_complete() {
        for text in [
            "{}",
            " {\"a\": 1} ",
            r#"{"a":[1,-2.5e+3,0,0.1,true,false,null,"x\"y\\u00e9",{"b":[]}],"c":{}}"#,
            "{\"k\":\"\u{1F600}\"}",
        ] {
            assert_eq!(accepted(text), (text.len(), true), "{text}");
        }
    }

    #[test]
    fn every_prefix_of_a_valid_object_is_accepted_and_incomplete() {
        let text = r#"{"city": "Paris", "days": [1, 2.50, -3e2], "ok": true, "n": null}"#;
        for end in 0..text.len() {
            assert_eq!(accepted(&text[..end]), (end, false), "{}", &text[..end]);
        }
    }

    #[test]
    fn the_first_wrong_byte_is_where_acceptance_stops() {
        for (text, at) in [
            ("[1]", 0),
            ("\"x\"", 0),
            ("{\"a\" 1}", 5),
            ("{\"a\":1}}", 7),
            ("{\"a\":01}", 6),
            ("{\"a\":1.}", 7),
            ("{\"a\":tru}", 8),
            ("{\"a\":\"\\x\"}", 7),
            ("{\"a\":\"\\u12g4\"}", 10),
            ("{\"a\":[1,]}", 8),
            ("{,}", 1),
            ("{\"a\":\"\n\"}", 6),
            ("{\"a\":1]", 6),
        ] {
            assert_eq!(accepted(text).0, at, "{text}");
        }
        let mut p = JsonPrefix::new();
        assert_eq!(p.feed(b"{\"a\" x"), 5);
        assert!(p.is_broken());
        assert_eq!(p.feed(b"}"), 0);
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "{\"a\":".to_string() + &"[".repeat(MAX_DEPTH);
        assert_eq!(accepted(&deep).0, deep.len() - 1);
    }

    #[test]
    fn pieces_are_the_same_as_the_whole() {
        let text = br#"{"q": "a \"b\" \u00e9", "n": [10, 2e-3]}"#;
        for cut in 0..text.len() {
            let mut p = JsonPrefix::new();
            assert_eq!(p.feed(&text[..cut]), cut);
            assert_eq!(p.feed(&text[cut..]), text.len() - cut);
            assert!(p.is_complete());
        }
    }
}
