//! Building response heads.
//!
//! Heads are written into one `Vec` that the body is usually appended to, so a small response
//! leaves in a single write.

use std::io::Write;

/// A response head being built.
pub struct ResponseHead {
    buf: Vec<u8>,
}

impl ResponseHead {
    pub fn new(status: u16) -> ResponseHead {
        Self::with_reason(status, reason(status).as_bytes())
    }

    /// A status line with the reason phrase given (e.g. relayed from an upstream).
    pub fn with_reason(status: u16, reason: &[u8]) -> ResponseHead {
        let mut buf = Vec::with_capacity(512);
        // Writing a number into a Vec cannot fail.
        let _ = write!(buf, "HTTP/1.1 {status} ");
        buf.extend_from_slice(reason);
        buf.extend_from_slice(b"\r\n");
        ResponseHead { buf }
    }

    /// The head of a JSON document the gateway writes itself: its type, the request's id, and
    /// `connection: close` when the client did not ask to keep the connection.
    pub fn json(status: u16, request_id: &str, keep_alive: bool) -> ResponseHead {
        let mut head = Self::new(status);
        head.header("content-type", b"application/json")
            .header("request-id", request_id.as_bytes());
        if !keep_alive {
            head.header("connection", b"close");
        }
        head
    }

    /// Header lines already written out (`name: value\r\n` each).
    pub fn lines(&mut self, lines: &str) -> &mut Self {
        self.buf.extend_from_slice(lines.as_bytes());
        self
    }

    pub fn header(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(value);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// Ends the head of a response with a body of `len` bytes.
    pub fn finish_with_length(mut self, len: u64) -> Vec<u8> {
        let _ = write!(self.buf, "content-length: {len}\r\n\r\n");
        self.buf
    }

    /// The whole response: this head and `body`, in one buffer.
    pub fn finish_with_body(self, body: &[u8]) -> Vec<u8> {
        let mut out = self.finish_with_length(body.len() as u64);
        out.extend_from_slice(body);
        out
    }

    /// Ends the head of a response whose body ends when the connection closes.
    pub fn finish_without_length(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b"\r\n");
        self.buf
    }

    /// Ends the head of a chunked response.
    pub fn finish_chunked(mut self) -> Vec<u8> {
        self.header("transfer-encoding", b"chunked");
        self.buf.extend_from_slice(b"\r\n");
        self.buf
    }
}

/// The reason phrase for statuses the gateway produces itself.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Unknown",
    }
}
