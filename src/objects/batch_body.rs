//! Rewriting the body of a Message Batch create request as it streams through.
//!
//! `POST /v1/messages/batches` carries `{"requests":[{"custom_id":…,"params":{"model":…,…}},…]}`
//! and may be hundreds of megabytes, so the gateway forwards it as it arrives and never holds it
//! whole. It still has to see the model of every request (a batch goes to one upstream, chosen by
//! its first request, and a batch whose requests need different upstreams is refused) and to
//! write in each the model id its upstream knows (aliases, per-upstream names). [`BatchBody`]
//! does both in one pass: a push-fed JSON lexer with a small stack, fed the body in whatever
//! pieces it arrives in, writing it out again as it goes.
//!
//! What it guarantees:
//! - Only `requests[i].params.model` string values are touched: from the top-level object, key
//!   `requests`, an array, an element object, key `params`, an object, key `model`. Keys are
//!   compared decoded (`"mod\u0065l"` is `model`), as the upstream's parser reads them. A `model`
//!   anywhere else (top level, messages, tool inputs, objects nested in `params`, a `requests`
//!   that is not an array) is never touched, nor a `model` whose value is not a string (the
//!   upstream rejects it). A key given twice is handled each time, where it is, as a streaming
//!   parser would.
//! - Every other byte is written out as it came: a body no rename applies to comes out identical.
//!   A replacement is written as a JSON string, escaped where JSON requires.
//! - Bounded memory whatever it is fed: output leaves as input arrives, except the bytes of a
//!   request's model string in progress (at most [`MAX_MODEL`] bytes as written; longer is an
//!   error). Keys are matched on a copy of at most [`MAX_KEY`] bytes (a longer key matches
//!   nothing) and nesting is at most [`MAX_DEPTH`] levels. Work per byte is constant; string
//!   contents, the bulk of a batch, are crossed with `memchr`.
//! - It is not a full validator (numbers and literals are only delimited, and the contents of
//!   strings other than a request's model are not checked), but broken structure is an error,
//!   never a panic or a forwarded mess: a bracket that does not close its container, a missing
//!   `:` or `,`, a trailing comma, a top-level value that is not an object, anything but
//!   whitespace after it, and ([`BatchBody::finish`]) a body that ends inside it. The gateway
//!   answers 400 then rather than forward the rest.

use std::fmt;

use memchr::memchr2;

use crate::json::skim::unescape;
use crate::json::write::push_str_bytes;

/// Deepest nesting accepted (objects and arrays).
pub const MAX_DEPTH: usize = 256;
/// Longest request model string accepted, in bytes as written between its quotes.
pub const MAX_MODEL: usize = 1024;
/// Longest key compared, in bytes as written: enough for `"requests"` with every character
/// written as a `\u` escape (48 bytes).
pub const MAX_KEY: usize = 64;

/// Why a body was refused. Once [`BatchBody::feed`] has returned one, it returns it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Not JSON, or not a JSON object: what was expected at byte `at` of the body.
    Syntax { at: u64, expected: &'static str },
    /// Nested deeper than [`MAX_DEPTH`] at byte `at`.
    TooDeep { at: u64 },
    /// `requests[request].params.model` is longer than [`MAX_MODEL`] bytes.
    ModelTooLong { request: usize },
    /// `requests[request].params.model` is not a valid JSON string (bad escape, lone surrogate,
    /// control character, invalid UTF-8).
    BadModel { request: usize },
    /// The body ended (after `at` bytes) inside its JSON.
    Truncated { at: u64 },
    /// The rename callback refused a model, with this message.
    Refused(String),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Syntax { at, expected } => {
                write!(f, "invalid JSON at byte {at}: expected {expected}")
            }
            BatchError::TooDeep { at } => {
                write!(f, "JSON nested deeper than {MAX_DEPTH} levels at byte {at}")
            }
            BatchError::ModelTooLong { request } => write!(
                f,
                "requests[{request}].params.model is longer than {MAX_MODEL} bytes"
            ),
            BatchError::BadModel { request } => write!(
                f,
                "requests[{request}].params.model is not a valid JSON string"
            ),
            BatchError::Truncated { at } => {
                write!(f, "the body ended inside its JSON, after {at} bytes")
            }
            BatchError::Refused(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for BatchError {}

/// An open container, and where it sits on the path to `requests[i].params`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    /// The top-level object.
    Top,
    /// An array under the top-level key `requests`.
    Requests,
    /// An object element of [`Frame::Requests`].
    Request,
    /// An object under the key `params` of a [`Frame::Request`].
    Params,
    /// Any other object.
    Object,
    /// Any other array.
    Array,
}

impl Frame {
    fn is_object(self) -> bool {
        !matches!(self, Frame::Requests | Frame::Array)
    }
}

/// What the value after the last key is, if it is on the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    None,
    Requests,
    Params,
    Model,
}

/// What the string in progress is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Str {
    /// An object key (copied, when its object is on the path, to be compared at its end).
    Key,
    /// Any value but a request's model: passed through.
    Value,
    /// A request's model: held back until its end.
    Model,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the top-level object.
    Start,
    /// A value must come (after `:`, or after `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ValueOrClose,
    /// After `{`: a key or `}`.
    KeyOrClose,
    /// After `,` in an object: a key.
    Key,
    /// After a key.
    Colon,
    /// After a value in a container: `,` or the container's end.
    CommaOrClose,
    /// In a number or a literal.
    Scalar,
    /// In a string; `escaped` after its backslash.
    Str { kind: Str, escaped: bool },
    /// The top-level object is closed: only whitespace may follow.
    Done,
}

/// The streaming rewriter of one batch create body. Feed it the body with [`BatchBody::feed`],
/// in pieces split anywhere, then call [`BatchBody::finish`].
///
/// ```
/// use ringgate::objects::batch_body::BatchBody;
///
/// let mut body = BatchBody::new();
/// let mut out = Vec::new();
/// let mut rename = |m: &str| Ok((m == "sonnet").then(|| "claude-sonnet-4-5".to_string()));
/// body.feed(br#"{"requests":[{"custom_id":"a","params":{"mod"#, &mut out, &mut rename).unwrap();
/// body.feed(br#"el":"sonnet","max_tokens":9}}]}"#, &mut out, &mut rename).unwrap();
/// body.finish().unwrap();
/// assert_eq!(body.models_seen(), 1);
/// assert_eq!(
///     out,
///     br#"{"requests":[{"custom_id":"a","params":{"model":"claude-sonnet-4-5","max_tokens":9}}]}"#
/// );
/// ```
#[derive(Debug, Clone)]
pub struct BatchBody {
    state: State,
    /// The open containers, innermost last (at most [`MAX_DEPTH`]).
    stack: Vec<Frame>,
    /// Set by a key on the path, for the value that follows it.
    pending: Target,
    /// Whether the key in progress is in an object on the path (and so copied to `key`).
    collecting: bool,
    /// The key in progress as written; `key_len > MAX_KEY` when it did not fit.
    key: [u8; MAX_KEY],
    key_len: usize,
    /// The request model string in progress as written, between its quotes.
    model: Vec<u8>,
    /// Values started so far in the innermost `requests` array (the index of the current one,
    /// plus one), for error messages.
    elements: usize,
    models: usize,
    /// Bytes fed before the current piece.
    offset: u64,
    error: Option<BatchError>,
}

impl Default for BatchBody {
    fn default() -> Self {
        BatchBody::new()
    }
}

/// What [`BatchBody::feed`] calls with each request's model, decoded: `Ok(Some(new))` writes `new`
/// in its place, `Ok(None)` keeps the model as it was written, `Err(message)` refuses the body.
pub type Rename<'a> = dyn FnMut(&str) -> Result<Option<String>, String> + 'a;

impl BatchBody {
    pub fn new() -> BatchBody {
        BatchBody {
            state: State::Start,
            stack: Vec::with_capacity(16),
            pending: Target::None,
            collecting: false,
            key: [0; MAX_KEY],
            key_len: 0,
            model: Vec::new(),
            elements: 0,
            models: 0,
            offset: 0,
            error: None,
        }
    }

    /// Takes the next bytes of the body (split anywhere) and appends what can be written of it to
    /// `out`: all of it, but for a request's model string not yet ended, which follows once it
    /// has. For each `requests[i].params.model` that is a JSON string, calls `rename` with it
    /// decoded (see [`Rename`]). An error ends the body: this and every later call return it, and
    /// `out` then holds part of it, to be dropped.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        rename: &mut Rename<'_>,
    ) -> Result<(), BatchError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let result = self.run(input, out, rename);
        self.offset += input.len() as u64;
        if let Err(error) = &result {
            self.error = Some(error.clone());
        }
        result
    }

    /// The body has ended: an error if its JSON has not (or if [`BatchBody::feed`] failed).
    pub fn finish(&self) -> Result<(), BatchError> {
        match &self.error {
            Some(error) => Err(error.clone()),
            None if self.state == State::Done => Ok(()),
            None => Err(BatchError::Truncated { at: self.offset }),
        }
    }

    /// How many request models (string values of `requests[i].params.model`) were seen so far.
    pub fn models_seen(&self) -> usize {
        self.models
    }

    fn run(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        rename: &mut Rename<'_>,
    ) -> Result<(), BatchError> {
        let mut i = 0;
        // `input[emit..i]` is read but not yet written out (and is not part of a model).
        let mut emit = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Str {
                    kind,
                    escaped: true,
                } => {
                    self.take(kind, &input[i..=i])?;
                    self.state = State::Str {
                        kind,
                        escaped: false,
                    };
                    i += 1;
                }
                State::Str { kind, .. } => {
                    let Some(len) = memchr2(b'"', b'\\', &input[i..]) else {
                        self.take(kind, &input[i..])?;
                        i = input.len();
                        continue;
                    };
                    let end = i + len;
                    self.take(kind, &input[i..end])?;
                    i = end + 1;
                    if input[end] == b'\\' {
                        self.take(kind, b"\\")?;
                        self.state = State::Str {
                            kind,
                            escaped: true,
                        };
                        continue;
                    }
                    match kind {
                        Str::Key => self.end_key(),
                        Str::Value => self.end_value(),
                        Str::Model => {
                            self.end_model(out, rename)?;
                            emit = i;
                        }
                    }
                }
                State::Scalar => {
                    while i < input.len() && is_scalar(input[i]) {
                        i += 1;
                    }
                    if i < input.len() {
                        self.end_value();
                    }
                }
                _ if matches!(b, b' ' | b'\t' | b'\n' | b'\r') => i += 1,
                State::Start => {
                    if b != b'{' {
                        return Err(self.syntax(i, "the body to be a JSON object"));
                    }
                    self.open(Frame::Top, i)?;
                    i += 1;
                }
                State::Value | State::ValueOrClose => {
                    if b == b']' && self.state == State::ValueOrClose {
                        self.close();
                        i += 1;
                        continue;
                    }
                    if self.stack.last() == Some(&Frame::Requests) {
                        self.elements += 1;
                    }
                    match b {
                        b'{' | b'[' => {
                            let frame = self.child(b == b'{');
                            self.open(frame, i)?;
                        }
                        b'"' if self.pending == Target::Model => {
                            out.extend_from_slice(&input[emit..i]);
                            self.model.clear();
                            self.state = State::Str {
                                kind: Str::Model,
                                escaped: false,
                            };
                        }
                        b'"' => {
                            self.state = State::Str {
                                kind: Str::Value,
                                escaped: false,
                            }
                        }
                        b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => self.state = State::Scalar,
                        _ => return Err(self.syntax(i, "a value")),
                    }
                    self.pending = Target::None;
                    i += 1;
                }
                State::KeyOrClose | State::Key => {
                    match b {
                        b'"' => {
                            self.collecting = matches!(
                                self.stack.last(),
                                Some(Frame::Top | Frame::Request | Frame::Params)
                            );
                            self.key_len = 0;
                            self.state = State::Str {
                                kind: Str::Key,
                                escaped: false,
                            };
                        }
                        b'}' if self.state == State::KeyOrClose => self.close(),
                        _ => return Err(self.syntax(i, "a key")),
                    }
                    i += 1;
                }
                State::Colon => {
                    if b != b':' {
                        return Err(self.syntax(i, "':'"));
                    }
                    self.state = State::Value;
                    i += 1;
                }
                State::CommaOrClose => {
                    let object = self.stack.last().is_some_and(|f| f.is_object());
                    match b {
                        b',' if object => self.state = State::Key,
                        b',' => self.state = State::Value,
                        b'}' if object => self.close(),
                        b']' if !object => self.close(),
                        _ if object => return Err(self.syntax(i, "',' or '}'")),
                        _ => return Err(self.syntax(i, "',' or ']'")),
                    }
                    i += 1;
                }
                State::Done => {
                    return Err(self.syntax(i, "nothing after the top-level object"));
                }
            }
        }
        if !matches!(
            self.state,
            State::Str {
                kind: Str::Model,
                ..
            }
        ) {
            out.extend_from_slice(&input[emit..]);
        }
        Ok(())
    }

    /// Keeps what it needs of the string bytes `bytes`: a key's on the path, a model's.
    fn take(&mut self, kind: Str, bytes: &[u8]) -> Result<(), BatchError> {
        match kind {
            Str::Key if self.collecting && self.key_len <= MAX_KEY => {
                let end = self.key_len + bytes.len();
                if end <= MAX_KEY {
                    self.key[self.key_len..end].copy_from_slice(bytes);
                }
                self.key_len = end.min(MAX_KEY + 1);
            }
            Str::Key | Str::Value => {}
            Str::Model => {
                if self.model.len() + bytes.len() > MAX_MODEL {
                    return Err(BatchError::ModelTooLong {
                        request: self.request(),
                    });
                }
                self.model.extend_from_slice(bytes);
            }
        }
        Ok(())
    }

    /// A key has ended: is it the next step of the path?
    fn end_key(&mut self) {
        self.state = State::Colon;
        self.pending = Target::None;
        if !self.collecting || self.key_len > MAX_KEY {
            return;
        }
        let (name, target) = match self.stack.last() {
            Some(Frame::Top) => ("requests", Target::Requests),
            Some(Frame::Request) => ("params", Target::Params),
            Some(Frame::Params) => ("model", Target::Model),
            _ => return,
        };
        let raw = &self.key[..self.key_len];
        let matches = if raw.contains(&b'\\') {
            unescape(raw).is_some_and(|key| key == name)
        } else {
            raw == name.as_bytes()
        };
        if matches {
            self.pending = target;
        }
    }

    /// A request's model string has ended (its bytes are in `self.model`): writes it or its
    /// replacement.
    fn end_model(&mut self, out: &mut Vec<u8>, rename: &mut Rename<'_>) -> Result<(), BatchError> {
        let raw = &self.model[..];
        let name = match raw.iter().all(|&b| b >= 0x20) {
            true => unescape(raw),
            false => None,
        };
        let Some(name) = name else {
            return Err(BatchError::BadModel {
                request: self.request(),
            });
        };
        self.models += 1;
        match rename(&name).map_err(BatchError::Refused)? {
            Some(new) => push_str_bytes(out, &new),
            None => {
                out.push(b'"');
                out.extend_from_slice(raw);
                out.push(b'"');
            }
        }
        self.end_value();
        Ok(())
    }

    /// The container to open for `{` (`object`) or `[` here.
    fn child(&self, object: bool) -> Frame {
        match (self.stack.last(), self.pending, object) {
            (Some(Frame::Top), Target::Requests, false) => Frame::Requests,
            (Some(Frame::Requests), _, true) => Frame::Request,
            (Some(Frame::Request), Target::Params, true) => Frame::Params,
            (_, _, true) => Frame::Object,
            (_, _, false) => Frame::Array,
        }
    }

    fn open(&mut self, frame: Frame, i: usize) -> Result<(), BatchError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(BatchError::TooDeep {
                at: self.offset + i as u64,
            });
        }
        if frame == Frame::Requests {
            self.elements = 0;
        }
        self.stack.push(frame);
        self.state = match frame.is_object() {
            true => State::KeyOrClose,
            false => State::ValueOrClose,
        };
        Ok(())
    }

    fn close(&mut self) {
        self.stack.pop();
        self.end_value();
    }

    /// A value has ended: what may follow it.
    fn end_value(&mut self) {
        self.state = match self.stack.is_empty() {
            true => State::Done,
            false => State::CommaOrClose,
        };
    }

    /// The index of the request being read, in its `requests` array.
    fn request(&self) -> usize {
        self.elements.saturating_sub(1)
    }

    fn syntax(&self, i: usize, expected: &'static str) -> BatchError {
        BatchError::Syntax {
            at: self.offset + i as u64,
            expected,
        }
    }
}

/// Bytes that can continue a number or a literal.
fn is_scalar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

#[cfg(test)]
#[path = "batch_body_tests.rs"]
mod tests;
