//! Collecting a request body into one `Bytes`, whatever its framing.
//!
//! The body is kept whole because a failed upstream attempt must be replayable to another
//! credential without reading the client again. The size limit is enforced as bytes arrive (and
//! up front for a declared length), so an oversized body costs nothing before it is refused.

use bytes::{Bytes, BytesMut};

use super::chunked::ChunkedDecoder;
use super::error::{ApiError, ErrorType};
use super::head::BodyFraming;

const INITIAL_CAPACITY_CAP: u64 = 1 << 20;

pub struct BodyCollector {
    body: BytesMut,
    limit: u64,
    kind: Kind,
}

enum Kind {
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
}

impl BodyCollector {
    /// Starts collecting a body. A declared length over `limit` is refused at once.
    pub fn new(framing: BodyFraming, limit: u64) -> Result<BodyCollector, ApiError> {
        let kind = match framing {
            BodyFraming::None => Kind::Length { remaining: 0 },
            BodyFraming::Length(n) if n > limit => return Err(too_large(limit)),
            BodyFraming::Length(n) => Kind::Length { remaining: n },
            BodyFraming::Chunked => Kind::Chunked(ChunkedDecoder::new()),
        };
        let capacity = match kind {
            // A declared length is a claim, not bytes received: grow into it as data arrives.
            Kind::Length { remaining } => remaining.min(INITIAL_CAPACITY_CAP) as usize,
            Kind::Chunked(_) => 0,
        };
        Ok(BodyCollector {
            body: BytesMut::with_capacity(capacity),
            limit,
            kind,
        })
    }

    pub fn is_complete(&self) -> bool {
        match &self.kind {
            Kind::Length { remaining } => *remaining == 0,
            Kind::Chunked(d) => d.is_done(),
        }
    }

    /// Takes body bytes from `input`; returns how many it consumed. Bytes after the end of the
    /// body are left for the caller (they begin the next request).
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, ApiError> {
        match &mut self.kind {
            Kind::Length { remaining } => {
                let take = (*remaining).min(input.len() as u64) as usize;
                self.body.extend_from_slice(&input[..take]);
                *remaining -= take as u64;
                Ok(take)
            }
            Kind::Chunked(decoder) => {
                let mut at = 0;
                while at < input.len() && !decoder.is_done() {
                    let step = decoder
                        .step(&input[at..])
                        .map_err(|e| ApiError::invalid_request(e.to_string().into()))?;
                    if let Some(d) = step.data {
                        if (self.body.len() + d.len()) as u64 > self.limit {
                            return Err(too_large(self.limit));
                        }
                        self.body
                            .extend_from_slice(&input[at + d.start..at + d.end]);
                    }
                    at += step.consumed;
                }
                Ok(at)
            }
        }
    }

    /// Bytes still expected for a declared length (0 for chunked bodies, which cannot say).
    pub fn remaining_declared(&self) -> u64 {
        match &self.kind {
            Kind::Length { remaining } => *remaining,
            Kind::Chunked(_) => 0,
        }
    }

    /// The body collected so far, taken out for a direct read into its spare capacity.
    pub fn take_buffer(&mut self) -> BytesMut {
        std::mem::take(&mut self.body)
    }

    /// Puts the buffer back after a direct read of `n` new bytes (already appended to it).
    pub fn restore_buffer(&mut self, buf: BytesMut, n: usize) {
        self.body = buf;
        if let Kind::Length { remaining } = &mut self.kind {
            *remaining -= n as u64;
        }
    }

    pub fn finish(self) -> Bytes {
        self.body.freeze()
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        413,
        ErrorType::RequestTooLarge,
        format!("request body is larger than the gateway's limit of {limit} bytes (server.max_body_bytes)").into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_body_leaves_the_rest() {
        let mut c = BodyCollector::new(BodyFraming::Length(5), 100).unwrap();
        assert_eq!(c.feed(b"hel").unwrap(), 3);
        assert!(!c.is_complete());
        assert_eq!(c.feed(b"loGET /").unwrap(), 2);
        assert!(c.is_complete());
        assert_eq!(&c.finish()[..], b"hello");
    }

    #[test]
    fn declared_length_over_limit_is_refused_up_front() {
        let e = BodyCollector::new(BodyFraming::Length(101), 100)
            .err()
            .unwrap();
        assert_eq!(e.status, 413);
        assert_eq!(e.kind, ErrorType::RequestTooLarge);
    }

    #[test]
    fn chunked_body_over_limit_is_refused() {
        let mut c = BodyCollector::new(BodyFraming::Chunked, 4).unwrap();
        assert_eq!(c.feed(b"3\r\nabc\r\n").unwrap(), 8);
        assert_eq!(c.feed(b"2\r\nde\r\n").unwrap_err().status, 413);
    }

    #[test]
    fn chunked_body_completes_and_leaves_the_rest() {
        let mut c = BodyCollector::new(BodyFraming::Chunked, 100).unwrap();
        let input = b"3\r\nabc\r\n0\r\n\r\nPOST";
        assert_eq!(c.feed(input).unwrap(), input.len() - 4);
        assert!(c.is_complete());
        assert_eq!(&c.finish()[..], b"abc");
    }

    #[test]
    fn bad_chunked_body_is_a_400() {
        let mut c = BodyCollector::new(BodyFraming::Chunked, 100).unwrap();
        assert_eq!(c.feed(b"zz\r\n").unwrap_err().status, 400);
    }
}
