//! Request heads: parsed with httparse, checked against the rules that keep a proxy safe.
//!
//! The head is kept as one `Bytes` (split off the connection buffer, no copy) with ranges into it,
//! so a request costs one small vector of header ranges and nothing per header. The checks here
//! are the ones request smuggling and desync attacks live on: one unambiguous body framing, or
//! the request is refused.

use std::ops::Range;

use bytes::Bytes;

use super::error::ApiError;

/// The most header lines a request may carry (431 beyond).
pub const MAX_HEADERS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Patch,
    Options,
    Other,
}

impl Method {
    fn from_token(t: &str) -> Method {
        match t {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

/// How the request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head. Header names and values are borrowed from `raw`.
#[derive(Debug, Clone)]
pub struct RequestHead {
    raw: Bytes,
    pub method: Method,
    method_range: Range<usize>,
    target: Range<usize>,
    /// Where the path ends inside `target` (the query, if any, follows).
    path_end: usize,
    pub minor_version: u8,
    headers: Vec<(Range<usize>, Range<usize>)>,
    pub framing: BodyFraming,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

/// The outcome of feeding the bytes received so far to the parser.
#[derive(Debug)]
pub enum Parse {
    /// The head is not complete yet.
    Partial,
    /// The head is complete and `len` bytes long; build it with [`RequestHead::from_parts`].
    Complete(Parts),
}

/// A complete head's layout, as offsets into the buffer it was parsed from.
#[derive(Debug)]
pub struct Parts {
    pub len: usize,
    method: Range<usize>,
    target: Range<usize>,
    minor_version: u8,
    headers: Vec<(Range<usize>, Range<usize>)>,
}

/// Parses the start of `buf`. Errors are the client's fault and carry the response to send.
pub fn parse(buf: &[u8]) -> Result<Parse, ApiError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parse::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ApiError::head_too_large(format!(
                "the request has more than {MAX_HEADERS} header lines"
            )))
        }
        Err(e) => {
            return Err(ApiError::invalid_request(
                format!("malformed HTTP request: {e}").into(),
            ))
        }
    };
    let range = |s: &[u8]| range_in(buf, s);
    let method = range(req.method.unwrap_or_default().as_bytes());
    let target = range(req.path.unwrap_or_default().as_bytes());
    let headers = req
        .headers
        .iter()
        .map(|h| (range(h.name.as_bytes()), range(h.value)))
        .collect();
    Ok(Parse::Complete(Parts {
        len,
        method,
        target,
        minor_version: req.version.unwrap_or(1),
        headers,
    }))
}

impl RequestHead {
    /// Builds the head from the bytes it was parsed from (exactly `parts.len` of them) and checks
    /// its framing and target.
    pub fn from_parts(raw: Bytes, parts: Parts) -> Result<RequestHead, ApiError> {
        let method =
            Method::from_token(std::str::from_utf8(&raw[parts.method.clone()]).unwrap_or(""));
        let target = &raw[parts.target.clone()];
        if target.first() != Some(&b'/') {
            return Err(ApiError::invalid_request(
                "the request target must be a path starting with '/'".into(),
            ));
        }
        let path_end = target
            .iter()
            .position(|&b| b == b'?')
            .unwrap_or(target.len());
        let mut head = RequestHead {
            raw,
            method,
            method_range: parts.method,
            target: parts.target,
            path_end,
            minor_version: parts.minor_version,
            headers: parts.headers,
            framing: BodyFraming::None,
            keep_alive: parts.minor_version == 1,
            expect_continue: false,
        };
        head.check_headers()?;
        Ok(head)
    }

    fn check_headers(&mut self) -> Result<(), ApiError> {
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut saw_te = false;
        let mut connection_close = false;
        let mut connection_keep_alive = false;
        let mut expect_continue = false;
        for (name, value) in self.headers() {
            if name.eq_ignore_ascii_case("content-length") {
                let v = parse_content_length(value).ok_or_else(|| {
                    ApiError::invalid_request("invalid Content-Length header".into())
                })?;
                if length.is_some_and(|l| l != v) {
                    return Err(ApiError::invalid_request(
                        "conflicting Content-Length headers".into(),
                    ));
                }
                length = Some(v);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Only a lone "chunked" is a framing we can delimit safely.
                if saw_te || !value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                    return Err(ApiError::invalid_request(
                        "unsupported Transfer-Encoding: only a single \"chunked\" is accepted"
                            .into(),
                    ));
                }
                saw_te = true;
                chunked = true;
            } else if name.eq_ignore_ascii_case("connection") {
                for token in value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    connection_close |= token.eq_ignore_ascii_case(b"close");
                    connection_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case("expect") {
                if value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                    expect_continue = true;
                } else {
                    return Err(ApiError::new(
                        417,
                        super::error::ErrorType::InvalidRequest,
                        "unsupported Expect header: only 100-continue is accepted".into(),
                    ));
                }
            }
        }
        if chunked && length.is_some() {
            return Err(ApiError::invalid_request(
                "a request may not carry both Content-Length and Transfer-Encoding".into(),
            ));
        }
        if chunked && self.minor_version == 0 {
            return Err(ApiError::invalid_request(
                "chunked Transfer-Encoding is not allowed in HTTP/1.0".into(),
            ));
        }
        self.framing = match (chunked, length) {
            (true, _) => BodyFraming::Chunked,
            (false, Some(0) | None) => BodyFraming::None,
            (false, Some(n)) => BodyFraming::Length(n),
        };
        self.keep_alive = if self.minor_version == 1 {
            !connection_close
        } else {
            connection_keep_alive && !connection_close
        };
        self.expect_continue = expect_continue && self.framing != BodyFraming::None;
        Ok(())
    }

    pub fn method_str(&self) -> &str {
        std::str::from_utf8(&self.raw[self.method_range.clone()]).unwrap_or("")
    }

    /// Path and query, exactly as sent.
    pub fn target(&self) -> &str {
        std::str::from_utf8(&self.raw[self.target.clone()]).unwrap_or("/")
    }

    pub fn path(&self) -> &str {
        &self.target()[..self.path_end]
    }

    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| {
            // httparse only accepts token characters in names, which are ASCII.
            let name = std::str::from_utf8(&self.raw[n.clone()]).unwrap_or("");
            (name, &self.raw[v.clone()])
        })
    }

    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// Where `part` (a slice httparse returned) lies inside `buf`. httparse may hand back a static
/// empty slice (an empty reason phrase or header value) that is not inside `buf` at all: that is
/// an empty range.
pub(crate) fn range_in(buf: &[u8], part: &[u8]) -> Range<usize> {
    let base = buf.as_ptr() as usize;
    let start = part.as_ptr() as usize;
    if part.is_empty() || start < base || start + part.len() > base + buf.len() {
        return 0..0;
    }
    start - base..start - base + part.len()
}

/// A Content-Length value: digits only (no sign, no list), within u64.
pub(crate) fn parse_content_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<RequestHead, ApiError> {
        let raw = Bytes::copy_from_slice(text.as_bytes());
        match parse(&raw)? {
            Parse::Complete(parts) => {
                assert_eq!(parts.len, raw.len());
                RequestHead::from_parts(raw.slice(..parts.len), parts)
            }
            Parse::Partial => panic!("partial"),
        }
    }

    #[test]
    fn parses_a_messages_request() {
        let h = head("POST /v1/messages?beta=true HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nX-Api-Key: k\r\n\r\n").unwrap();
        assert_eq!(h.method, Method::Post);
        assert_eq!(h.path(), "/v1/messages");
        assert_eq!(h.target(), "/v1/messages?beta=true");
        assert_eq!(h.framing, BodyFraming::Length(12));
        assert!(h.keep_alive);
        assert_eq!(h.header("x-api-key"), Some(&b"k"[..]));
    }

    #[test]
    fn partial_until_blank_line() {
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(),
            Parse::Partial
        ));
    }

    #[test]
    fn keep_alive_rules() {
        assert!(
            !head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(!head("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert!(
            head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .unwrap()
                .keep_alive
        );
    }

    #[test]
    fn framing_is_unambiguous_or_refused() {
        let chunked = head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(chunked.framing, BodyFraming::Chunked);
        for bad in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET http://evil/ HTTP/1.1\r\n\r\n",
        ] {
            let e = head(bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
        }
        assert_eq!(
            head("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")
                .unwrap()
                .framing,
            BodyFraming::Length(5)
        );
    }

    #[test]
    fn expectations() {
        let h =
            head("POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n").unwrap();
        assert!(h.expect_continue);
        assert_eq!(
            head("POST / HTTP/1.1\r\nExpect: teapot\r\n\r\n")
                .unwrap_err()
                .status,
            417
        );
    }

    #[test]
    fn malformed_and_oversized() {
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(parse(b"\x00\x01garbage\r\n\r\n").unwrap_err().status, 400);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
        let e = parse(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()).unwrap_err();
        assert_eq!(e.status, 431);
    }
}
