//! Upstream response heads: parsed with httparse, framing decided the way RFC 9112 says.
//!
//! The gateway relays status, reason and headers faithfully but must know exactly where the body
//! ends, both to relay it and (with pooling) to know whether the connection can be reused.

use std::ops::Range;

use bytes::Bytes;

use crate::http::head::{parse_content_length, range_in};

/// Header lines accepted from an upstream.
const MAX_HEADERS: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body (204, 304, 1xx, or a response to HEAD).
    None,
    Length(u64),
    Chunked,
    /// Delimited by the upstream closing the connection.
    UntilClose,
}

#[derive(Debug, Clone)]
pub struct ResponseHead {
    raw: Bytes,
    pub status: u16,
    reason: Range<usize>,
    headers: Vec<(Range<usize>, Range<usize>)>,
    pub framing: ResponseFraming,
    /// The upstream did not ask to close the connection.
    pub keep_alive: bool,
}

/// Parses a response head at the start of `buf`: `Ok(None)` if incomplete, else the head's
/// length and layout, to be built with [`ResponseHead::new`].
pub fn parse(buf: &[u8]) -> Result<Option<(usize, Layout)>, String> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    let range = |s: &[u8]| range_in(buf, s);
    Ok(Some((
        len,
        Layout {
            status: resp.code.unwrap_or(0),
            minor_version: resp.version.unwrap_or(1),
            reason: range(resp.reason.unwrap_or("").as_bytes()),
            headers: resp
                .headers
                .iter()
                .map(|h| (range(h.name.as_bytes()), range(h.value)))
                .collect(),
        },
    )))
}

#[derive(Debug)]
pub struct Layout {
    status: u16,
    minor_version: u8,
    reason: Range<usize>,
    headers: Vec<(Range<usize>, Range<usize>)>,
}

impl ResponseHead {
    /// Builds the head from exactly the bytes it was parsed from.
    pub fn new(raw: Bytes, layout: Layout, request_was_head: bool) -> Result<ResponseHead, String> {
        let mut head = ResponseHead {
            raw,
            status: layout.status,
            reason: layout.reason,
            headers: layout.headers,
            framing: ResponseFraming::UntilClose,
            keep_alive: layout.minor_version == 1,
        };
        let mut length = None;
        // Transfer-Encoding overrides Content-Length wherever it stands (RFC 9112 §6.3): the
        // body is chunked if the final coding is chunked, else it runs until close.
        let mut final_coding_chunked = None;
        let mut close = false;
        for (name, value) in head.headers() {
            if name.eq_ignore_ascii_case("content-length") {
                let v = parse_content_length(value).ok_or("invalid Content-Length in response")?;
                if length.is_some_and(|l| l != v) {
                    return Err("conflicting Content-Length headers in response".into());
                }
                length = Some(v);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                let last = value
                    .rsplit(|&b| b == b',')
                    .next()
                    .map(<[u8]>::trim_ascii)
                    .unwrap_or_default();
                final_coding_chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                close |= value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
            }
        }
        if final_coding_chunked.is_some() {
            length = None;
        }
        let chunked = final_coding_chunked == Some(true);
        head.keep_alive &= !close;
        head.framing =
            if request_was_head || head.status < 200 || head.status == 204 || head.status == 304 {
                ResponseFraming::None
            } else if chunked {
                ResponseFraming::Chunked
            } else if let Some(n) = length {
                ResponseFraming::Length(n)
            } else {
                head.keep_alive = false;
                ResponseFraming::UntilClose
            };
        Ok(head)
    }

    pub fn reason(&self) -> &[u8] {
        &self.raw[self.reason.clone()]
    }

    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| {
            (
                std::str::from_utf8(&self.raw[n.clone()]).unwrap_or(""),
                &self.raw[v.clone()],
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// True for `text/event-stream` bodies.
    pub fn is_event_stream(&self) -> bool {
        self.header("content-type").is_some_and(|v| {
            let v = v.trim_ascii();
            v.len() >= 17 && v[..17].eq_ignore_ascii_case(b"text/event-stream")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str, was_head: bool) -> Result<ResponseHead, String> {
        let raw = Bytes::copy_from_slice(text.as_bytes());
        let (len, layout) = parse(&raw)?.expect("complete");
        ResponseHead::new(raw.slice(..len), layout, was_head)
    }

    #[test]
    fn framing_rules() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", false).unwrap();
        assert_eq!(h.framing, ResponseFraming::Length(7));
        assert!(h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream; charset=utf-8\r\n\r\n", false).unwrap();
        assert_eq!(h.framing, ResponseFraming::Chunked);
        assert!(h.is_event_stream());
        let h = head("HTTP/1.1 200 OK\r\n\r\n", false).unwrap();
        assert_eq!(
            (h.framing, h.keep_alive),
            (ResponseFraming::UntilClose, false)
        );
        assert_eq!(
            head(
                "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                false
            )
            .unwrap()
            .framing,
            ResponseFraming::None
        );
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
                .unwrap()
                .framing,
            ResponseFraming::None
        );
        assert!(
            !head(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
                false
            )
            .unwrap()
            .keep_alive
        );
        assert_eq!(
            head(
                "HTTP/1.1 529 Overloaded\r\nContent-Length: 0\r\n\r\n",
                false
            )
            .unwrap()
            .reason(),
            b"Overloaded"
        );
    }

    #[test]
    fn transfer_encoding_overrides_content_length_in_any_order() {
        for text in [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            let h = head(text, false).unwrap();
            assert_eq!(
                (h.framing, h.keep_alive),
                (ResponseFraming::UntilClose, false),
                "{text}"
            );
        }
        let h = head(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(h.framing, ResponseFraming::Chunked);
    }

    #[test]
    fn status_line_without_reason() {
        let h = head("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false).unwrap();
        assert_eq!((h.status, h.reason()), (200, &b""[..]));
    }

    #[test]
    fn bad_heads_are_errors() {
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(head(
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false
        )
        .is_err());
        assert!(parse(b"SMTP ready\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\n").unwrap().is_none());
    }
}
