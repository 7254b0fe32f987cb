//! The chunked transfer-coding decoder, as a pure state machine.
//!
//! It is fed whatever bytes a read produced, however they are split, and points at the payload
//! inside them rather than copying it: the request reader copies payload into the kept body, the
//! upstream relay compacts it in place inside its fixed buffer. Framing is strict (CRLF only,
//! hex sizes that fit in 64 bits, bounded extensions), because a proxy that guesses at framing
//! is a proxy that can be desynchronised.

use std::fmt;
use std::ops::Range;

/// Longest chunk extension or trailer line tolerated; they carry nothing we use.
const MAX_LINE_EXTRA: u32 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size {
        value: u64,
        digits: u8,
    },
    /// Whitespace after the size, which may only lead to `;extension` or CR.
    SizeWs {
        value: u64,
    },
    /// A `;extension`, until CR.
    SizeExtra {
        value: u64,
        seen: u32,
    },
    SizeLf {
        value: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the final empty line.
    TrailerStart,
    TrailerLine {
        seen: u32,
    },
    TrailerLf,
    FinalLf,
    Done,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedError(&'static str);

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid chunked encoding: {}", self.0)
    }
}

impl std::error::Error for ChunkedError {}

/// One step over the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Input bytes consumed by this step.
    pub consumed: usize,
    /// Payload found inside `input[..consumed]`, if any.
    pub data: Option<Range<usize>>,
}

#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size {
                value: 0,
                digits: 0,
            },
        }
    }

    /// True once the terminating chunk and trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes framing bytes until it finds payload (returned as a range of `input`), runs out
    /// of input, or reaches the end. Bytes after the end are not consumed.
    pub fn step(&mut self, input: &[u8]) -> Result<Step, ChunkedError> {
        let mut i = 0;
        while i < input.len() {
            if let State::Data { remaining } = self.state {
                let take = remaining.min((input.len() - i) as u64) as usize;
                let left = remaining - take as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data { remaining: left }
                };
                return Ok(Step {
                    consumed: i + take,
                    data: Some(i..i + take),
                });
            }
            if self.state == State::Done {
                break;
            }
            self.state = self.advance(input[i])?;
            i += 1;
        }
        Ok(Step {
            consumed: i,
            data: None,
        })
    }

    fn advance(&self, b: u8) -> Result<State, ChunkedError> {
        Ok(match self.state {
            State::Size { value, digits } => match (b, hex(b)) {
                (_, Some(d)) => {
                    if digits >= 16 {
                        return Err(ChunkedError("chunk size too large"));
                    }
                    State::Size {
                        value: value << 4 | d as u64,
                        digits: digits + 1,
                    }
                }
                _ if digits == 0 => return Err(ChunkedError("expected a hex chunk size")),
                (b'\r', _) => State::SizeLf { value },
                (b';', _) => State::SizeExtra { value, seen: 0 },
                (b' ' | b'\t', _) => State::SizeWs { value },
                _ => return Err(ChunkedError("bad character after chunk size")),
            },
            State::SizeWs { value } => match b {
                b' ' | b'\t' => State::SizeWs { value },
                b';' => State::SizeExtra { value, seen: 0 },
                b'\r' => State::SizeLf { value },
                _ => return Err(ChunkedError("bad character after chunk size")),
            },
            State::SizeExtra { value, seen } => match b {
                b'\r' => State::SizeLf { value },
                b'\n' => return Err(ChunkedError("bare LF in chunk size line")),
                _ if seen >= MAX_LINE_EXTRA => {
                    return Err(ChunkedError("chunk extension too long"))
                }
                _ => State::SizeExtra {
                    value,
                    seen: seen + 1,
                },
            },
            State::SizeLf { value } => match (b, value) {
                (b'\n', 0) => State::TrailerStart,
                (b'\n', remaining) => State::Data { remaining },
                _ => return Err(ChunkedError("expected LF after chunk size")),
            },
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err(ChunkedError("chunk data longer than its size")),
            },
            State::DataLf => match b {
                b'\n' => State::Size {
                    value: 0,
                    digits: 0,
                },
                _ => return Err(ChunkedError("expected LF after chunk data")),
            },
            State::TrailerStart => match b {
                b'\r' => State::FinalLf,
                b'\n' => return Err(ChunkedError("bare LF in trailer")),
                _ => State::TrailerLine { seen: 1 },
            },
            State::TrailerLine { seen } => match b {
                b'\r' => State::TrailerLf,
                b'\n' => return Err(ChunkedError("bare LF in trailer")),
                _ if seen >= MAX_LINE_EXTRA => return Err(ChunkedError("trailer line too long")),
                _ => State::TrailerLine { seen: seen + 1 },
            },
            State::TrailerLf => match b {
                b'\n' => State::TrailerStart,
                _ => return Err(ChunkedError("expected LF after trailer")),
            },
            State::FinalLf => match b {
                b'\n' => State::Done,
                _ => return Err(ChunkedError("expected LF at end of body")),
            },
            State::Data { .. } | State::Done => unreachable!("handled by step"),
        })
    }

    /// Decodes `buf` in place: payload is moved to the front. Reports the payload length and
    /// how many input bytes were consumed (everything, unless the body ended inside `buf`), and
    /// the framing error if one was met: the payload decoded before it is still good.
    pub fn decode_in_place(&mut self, buf: &mut [u8]) -> InPlace {
        let (mut read, mut written) = (0, 0);
        while read < buf.len() && !self.is_done() {
            match self.step(&buf[read..]) {
                Ok(step) => {
                    if let Some(d) = step.data {
                        buf.copy_within(read + d.start..read + d.end, written);
                        written += d.len();
                    }
                    read += step.consumed;
                }
                Err(e) => {
                    return InPlace {
                        data: written,
                        consumed: read,
                        error: Some(e),
                    }
                }
            }
        }
        InPlace {
            data: written,
            consumed: read,
            error: None,
        }
    }
}

/// The outcome of [`ChunkedDecoder::decode_in_place`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InPlace {
    /// Payload bytes now at the front of the buffer.
    pub data: usize,
    pub consumed: usize,
    pub error: Option<ChunkedError>,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Appends `data` to `out` as one chunk (size line, data, CRLF). `data` must not be empty: an
/// empty chunk is the last one.
pub fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    use std::io::Write;
    debug_assert!(!data.is_empty());
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk of a body with no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize, bool), ChunkedError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut at = 0;
        while at < input.len() && !d.is_done() {
            let s = d.step(&input[at..])?;
            if let Some(r) = s.data {
                out.extend_from_slice(&input[at + r.start..at + r.end]);
            }
            at += s.consumed;
        }
        Ok((out, at, d.is_done()))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let body = b"5;name=v\r\nhello\r\n6 ;x\r\n world\r\n0 \r\nX-T: 1\r\n\r\nNEXT";
        let (out, used, done) = decode_all(body).unwrap();
        assert_eq!(out, b"hello world");
        assert!(done);
        assert_eq!(&body[used..], b"NEXT");
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let body = b"a\r\n0123456789\r\n1\r\nX\r\n0\r\n\r\n";
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        for &b in body.iter() {
            let s = d.step(&[b]).unwrap();
            assert_eq!(s.consumed, 1);
            if s.data.is_some() {
                out.push(b);
            }
        }
        assert!(d.is_done());
        assert_eq!(out, b"0123456789X");
    }

    #[test]
    fn in_place_compacts_payload() {
        let mut buf = b"3\r\nabc\r\n2\r\nde\r\n".to_vec();
        let mut d = ChunkedDecoder::new();
        let r = d.decode_in_place(&mut buf);
        assert_eq!((r.data, r.consumed, r.error), (5, buf.len(), None));
        assert_eq!(&buf[..5], b"abcde");
        assert!(!d.is_done());
    }

    #[test]
    fn in_place_keeps_payload_before_an_error() {
        let mut buf = b"3\r\nabc\r\nzz".to_vec();
        let r = ChunkedDecoder::new().decode_in_place(&mut buf);
        assert_eq!(r.data, 3);
        assert_eq!(&buf[..3], b"abc");
        assert!(r.error.is_some());
    }

    #[test]
    fn rejects_bad_framing() {
        for bad in [
            &b"x\r\n"[..],
            b"5\r\nhello!\r\n",
            b"5\nhello\r\n",
            b"3\r\nabc\n",
            b"11111111111111111\r\n",
            b"\r\n",
            b"0\r\n\n",
            b"0 a\r\n\r\n",
            b"1 5\r\nA\r\n0\r\n\r\n",
        ] {
            assert!(
                decode_all(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn huge_extension_is_refused() {
        let mut body = b"1;".to_vec();
        body.extend(std::iter::repeat_n(b'a', MAX_LINE_EXTRA as usize + 1));
        assert!(decode_all(&body).is_err());
    }

    #[test]
    fn chunk_format() {
        let mut v = Vec::new();
        push_chunk(&mut v, &[b'x'; 255]);
        assert_eq!(&v[..4], b"ff\r\n");
        assert_eq!(&v[4..259], &[b'x'; 255]);
        assert_eq!(&v[259..], b"\r\n");
    }
}
