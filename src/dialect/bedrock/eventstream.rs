//! Reading AWS event-stream frames (`application/vnd.amazon.eventstream`), whatever the reads
//! cut them into.
//!
//! Bedrock's `invoke-with-response-stream` does not answer in Server-Sent Events but in binary
//! frames: each one a prelude (total length, headers length, the prelude's CRC32), typed headers
//! (`:message-type`, `:event-type`, `:exception-type`, …), a payload, and a CRC32 of all of it
//! (TRANSLATION.md §3). This reader turns any split of such a byte stream into the same sequence
//! of [`Frame`]s, each checked whole before it is handed on: both CRCs, the lengths, and every
//! header.
//!
//! Like the SSE reader it never holds more than one frame: a frame wholly inside one read is
//! handed on as it lies, and only a frame cut by a read is kept, up to `max_frame` bytes. The
//! length a prelude states is checked as soon as the prelude is in, so a frame longer than the
//! cap is refused before any of its body is held (botocore's own limits, 24 MiB of payload and
//! 128 KiB of headers, are far more than one streamed event needs).
//! A stream that broke a rule cannot be resynchronised (nothing marks where the next frame
//! starts), so after an error the reader gives only that error.

use std::fmt;

/// Total length, headers length and the prelude's CRC.
const PRELUDE: usize = 12;
/// The message CRC that closes every frame.
const TRAILER: usize = 4;
/// The smallest frame: a prelude and a CRC, with no headers and no payload.
pub const MIN_FRAME: usize = PRELUDE + TRAILER;

/// One whole frame, checked: its headers (all well-formed, no name twice) and its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    headers: &'a [u8],
    payload: &'a [u8],
}

/// One header of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a str,
    pub value: HeaderValue<'a>,
}

/// A header's value, by its wire type (the number in brackets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderValue<'a> {
    /// (0) true, (1) false: the type is the value, no bytes follow.
    Bool(bool),
    /// (2) one signed byte.
    Byte(i8),
    /// (3)
    Int16(i16),
    /// (4)
    Int32(i32),
    /// (5)
    Int64(i64),
    /// (6) up to 65535 bytes.
    Bytes(&'a [u8]),
    /// (7) up to 65535 bytes of UTF-8.
    String(&'a str),
    /// (8) milliseconds since the Unix epoch.
    Timestamp(i64),
    /// (9)
    Uuid(&'a [u8; 16]),
}

impl<'a> Frame<'a> {
    /// The headers in the order they were sent.
    pub fn headers(&self) -> Headers<'a> {
        Headers { rest: self.headers }
    }

    /// The value of the header called `name`.
    pub fn header(&self, name: &str) -> Option<HeaderValue<'a>> {
        self.headers().find(|h| h.name == name).map(|h| h.value)
    }

    /// The value of the header called `name` if it is a string.
    pub fn string(&self, name: &str) -> Option<&'a str> {
        match self.header(name)? {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// `:message-type`: `event`, `exception` or `error`.
    pub fn message_type(&self) -> Option<&'a str> {
        self.string(":message-type")
    }

    /// `:event-type` of an event (`chunk` for Bedrock's stream).
    pub fn event_type(&self) -> Option<&'a str> {
        self.string(":event-type")
    }

    /// `:exception-type` of an exception (`throttlingException`, …).
    pub fn exception_type(&self) -> Option<&'a str> {
        self.string(":exception-type")
    }

    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// The headers of a [`Frame`], in order.
#[derive(Clone, Debug)]
pub struct Headers<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        // The frame's headers were all read once before it was handed on, so this cannot fail;
        // should it, the iteration just ends.
        let (header, used) = read_header(self.rest).ok()?;
        self.rest = &self.rest[used..];
        Some(header)
    }
}

/// Why a stream of frames cannot be read on. Each is worded to follow "the upstream …".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The CRC in the prelude is not that of its first 8 bytes.
    PreludeCrc { stated: u32, computed: u32 },
    /// The CRC that ends the frame is not that of the bytes before it.
    MessageCrc { stated: u32, computed: u32 },
    /// A total length below [`MIN_FRAME`].
    TooShort { total: u32 },
    /// A total length above the reader's cap.
    TooLong { total: u32, max: usize },
    /// A headers length that does not fit in the total length.
    HeadersLength { headers: u32, total: u32 },
    /// A header that cannot be read, at `offset` bytes from the frame's start.
    Header { offset: usize, fault: HeaderFault },
    /// The stream ended inside a frame, `held` bytes into it.
    Cut { held: usize },
}

/// What is wrong with a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderFault {
    /// A type number other than 0 to 9.
    UnknownType(u8),
    /// A name or value that runs past the end of the headers.
    PastEnd,
    /// A name or a string value that is not UTF-8.
    NotUtf8,
    /// A name that an earlier header of the frame has: which value would hold is not said.
    Duplicate,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::PreludeCrc { stated, computed } => write!(
                f,
                "sent an event-stream frame whose prelude CRC is {stated:#010x}, not {computed:#010x}"
            ),
            FrameError::MessageCrc { stated, computed } => write!(
                f,
                "sent an event-stream frame whose message CRC is {stated:#010x}, not {computed:#010x}"
            ),
            FrameError::TooShort { total } => write!(
                f,
                "sent an event-stream frame of {total} bytes, shorter than any frame ({MIN_FRAME})"
            ),
            FrameError::TooLong { total, max } => write!(
                f,
                "sent an event-stream frame of {total} bytes, longer than {max} bytes"
            ),
            FrameError::HeadersLength { headers, total } => write!(
                f,
                "sent an event-stream frame of {total} bytes with {headers} bytes of headers"
            ),
            FrameError::Header { offset, fault } => {
                let what = match fault {
                    HeaderFault::UnknownType(t) => format!("of unknown type {t}"),
                    HeaderFault::PastEnd => "that runs past the headers' end".to_string(),
                    HeaderFault::NotUtf8 => "that is not UTF-8".to_string(),
                    HeaderFault::Duplicate => "whose name an earlier header has".to_string(),
                };
                write!(
                    f,
                    "sent an event-stream frame with a header {what} (at byte {offset})"
                )
            }
            FrameError::Cut { held } => write!(
                f,
                "ended its event stream inside a frame, {held} bytes into it"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<FrameError> for String {
    fn from(e: FrameError) -> String {
        e.to_string()
    }
}

/// An incremental reader of event-stream frames.
#[derive(Debug)]
pub struct FrameReader {
    max_frame: usize,
    /// The start of a frame that a read cut: its prelude so far, then the frame so far.
    held: Vec<u8>,
    /// The total length of the held frame once its prelude is in and checked; 0 before.
    need: usize,
    /// The error that stopped the stream, given again to whoever reads on.
    failed: Option<FrameError>,
}

impl FrameReader {
    /// A reader that refuses frames longer than `max_frame` bytes (at least [`MIN_FRAME`]: a
    /// smaller cap is taken as that, so that a prelude can always be held).
    pub fn new(max_frame: usize) -> FrameReader {
        FrameReader {
            max_frame: max_frame.max(MIN_FRAME),
            held: Vec::new(),
            need: 0,
            failed: None,
        }
    }

    /// Reads `input`, calling `each` for every frame it completes. `each` may stop the reading
    /// with an error of its own, which is returned as it is: the frame it was given counts as
    /// read, the rest of `input` is left unread, and the stream is over for this reader.
    pub fn feed<E: From<FrameError>>(
        &mut self,
        mut input: &[u8],
        mut each: impl FnMut(Frame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if let Some(e) = self.failed {
            return Err(e.into());
        }
        if !self.held.is_empty() {
            input = match self.complete(input, &mut each)? {
                Some(rest) => rest,
                None => return Ok(()),
            };
        }
        // Frames wholly inside `input` go on as they lie.
        while input.len() >= PRELUDE {
            let total = self.frame_length(input)?;
            if input.len() < total {
                // Cut by the read: held below, its prelude already checked.
                self.need = total;
                self.held.reserve_exact(total);
                break;
            }
            let (frame, rest) = input.split_at(total);
            input = rest;
            each(whole(frame).map_err(|e| self.fail(e))?)?;
        }
        self.held.extend_from_slice(input);
        Ok(())
    }

    /// The stream ended: `Ok` if it ended between frames, else why not (a frame was cut, or an
    /// error stopped the reading before).
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.failed {
            Some(e) => Err(e),
            None if !self.held.is_empty() => Err(FrameError::Cut {
                held: self.held.len(),
            }),
            None => Ok(()),
        }
    }

    /// Bytes held for a frame not yet complete (what `max_frame` bounds).
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Goes on with the held frame from `input`: the rest of `input` once the frame is whole and
    /// handed on, `None` if `input` ran out first.
    fn complete<'i, E: From<FrameError>>(
        &mut self,
        mut input: &'i [u8],
        each: &mut impl FnMut(Frame<'_>) -> Result<(), E>,
    ) -> Result<Option<&'i [u8]>, E> {
        if self.need == 0 {
            let take = (PRELUDE - self.held.len()).min(input.len());
            self.held.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.held.len() < PRELUDE {
                return Ok(None);
            }
            let held = std::mem::take(&mut self.held);
            self.need = self.frame_length(&held)?;
            self.held = held;
            // Room for exactly the frame, which the cap bounds.
            self.held.reserve_exact(self.need - PRELUDE);
        }
        let take = (self.need - self.held.len()).min(input.len());
        self.held.extend_from_slice(&input[..take]);
        input = &input[take..];
        if self.held.len() < self.need {
            return Ok(None);
        }
        let mut held = std::mem::take(&mut self.held);
        self.need = 0;
        let frame = whole(&held).map_err(|e| self.fail(e))?;
        let r = each(frame);
        if held.capacity() <= 64 * 1024 {
            // Kept for the next cut frame; a rare large one is not worth holding on to.
            held.clear();
            self.held = held;
        }
        r.map(|()| Some(input))
    }

    /// The total length stated by the prelude at the start of `bytes`, once it is checked
    /// against the cap as well.
    fn frame_length(&mut self, bytes: &[u8]) -> Result<usize, FrameError> {
        let max = self.max_frame;
        let total = prelude(bytes).and_then(|total| {
            if total > max {
                Err(FrameError::TooLong {
                    total: total as u32,
                    max,
                })
            } else {
                Ok(total)
            }
        });
        total.map_err(|e| self.fail(e))
    }

    /// Remembers the error that stopped the stream, and lets go of what was held.
    fn fail(&mut self, e: FrameError) -> FrameError {
        self.failed = Some(e);
        self.held = Vec::new();
        self.need = 0;
        e
    }
}

/// The total length a prelude (the first 12 bytes of `bytes`) states, once its CRC and lengths
/// are checked.
fn prelude(bytes: &[u8]) -> Result<usize, FrameError> {
    let (total, headers) = (read_u32(bytes, 0), read_u32(bytes, 4));
    let stated = read_u32(bytes, 8);
    let computed = crc32fast::hash(&bytes[..8]);
    if stated != computed {
        return Err(FrameError::PreludeCrc { stated, computed });
    }
    if (total as usize) < MIN_FRAME {
        return Err(FrameError::TooShort { total });
    }
    if headers as usize > total as usize - MIN_FRAME {
        return Err(FrameError::HeadersLength { headers, total });
    }
    Ok(total as usize)
}

/// A whole frame (exactly its bytes, prelude already checked) as a [`Frame`], once its CRC and
/// headers are checked.
fn whole(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    let end = bytes.len() - TRAILER;
    let stated = read_u32(bytes, end);
    let computed = crc32fast::hash(&bytes[..end]);
    if stated != computed {
        return Err(FrameError::MessageCrc { stated, computed });
    }
    let headers_end = PRELUDE + read_u32(bytes, 4) as usize;
    let headers = &bytes[PRELUDE..headers_end];
    check_headers(headers).map_err(|(at, fault)| FrameError::Header {
        offset: PRELUDE + at,
        fault,
    })?;
    Ok(Frame {
        headers,
        payload: &bytes[headers_end..end],
    })
}

/// Past this many headers, names are sorted to find one given twice rather than compared in
/// pairs (Bedrock sends three), so that a frame of many tiny headers costs no more than its
/// size.
const FEW_HEADERS: usize = 16;

/// Reads every header of `headers`: the offset of the first bad one and what is wrong with it.
fn check_headers(headers: &[u8]) -> Result<(), (usize, HeaderFault)> {
    let mut few = [("", 0); FEW_HEADERS];
    let mut many: Vec<(&str, usize)> = Vec::new();
    let (mut at, mut count) = (0, 0);
    while at < headers.len() {
        let (h, used) = read_header(&headers[at..]).map_err(|f| (at, f))?;
        if count < FEW_HEADERS {
            if few[..count].iter().any(|&(name, _)| name == h.name) {
                return Err((at, HeaderFault::Duplicate));
            }
            few[count] = (h.name, at);
        } else {
            if count == FEW_HEADERS {
                many.extend_from_slice(&few);
            }
            many.push((h.name, at));
        }
        count += 1;
        at += used;
    }
    // Sorted by name then offset, a name given twice lies in neighbours; the first header to
    // repeat a name is the lowest second offset among them.
    many.sort_unstable();
    let repeat = many
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| w[1].1)
        .min();
    match repeat {
        Some(at) => Err((at, HeaderFault::Duplicate)),
        None => Ok(()),
    }
}

/// One header from the start of `bytes`, and the bytes it takes.
fn read_header(bytes: &[u8]) -> Result<(Header<'_>, usize), HeaderFault> {
    let name_len = *bytes.first().ok_or(HeaderFault::PastEnd)? as usize;
    let name = take(bytes, 1, name_len)?;
    let name = std::str::from_utf8(name).map_err(|_| HeaderFault::NotUtf8)?;
    let at = 1 + name_len;
    let kind = *bytes.get(at).ok_or(HeaderFault::PastEnd)?;
    let at = at + 1;
    let fixed = |n| take(bytes, at, n);
    let (value, len) = match kind {
        0 => (HeaderValue::Bool(true), 0),
        1 => (HeaderValue::Bool(false), 0),
        2 => (HeaderValue::Byte(fixed(1)?[0] as i8), 1),
        3 => (HeaderValue::Int16(i16::from_be_bytes(array(fixed(2)?))), 2),
        4 => (HeaderValue::Int32(i32::from_be_bytes(array(fixed(4)?))), 4),
        5 => (HeaderValue::Int64(i64::from_be_bytes(array(fixed(8)?))), 8),
        6 | 7 => {
            let n = u16::from_be_bytes(array(fixed(2)?)) as usize;
            let v = take(bytes, at + 2, n)?;
            let value = if kind == 6 {
                HeaderValue::Bytes(v)
            } else {
                HeaderValue::String(std::str::from_utf8(v).map_err(|_| HeaderFault::NotUtf8)?)
            };
            (value, 2 + n)
        }
        8 => (
            HeaderValue::Timestamp(i64::from_be_bytes(array(fixed(8)?))),
            8,
        ),
        9 => (
            HeaderValue::Uuid(fixed(16)?.try_into().expect("16 bytes")),
            16,
        ),
        t => return Err(HeaderFault::UnknownType(t)),
    };
    Ok((Header { name, value }, at + len))
}

/// `n` bytes of `bytes` from `at`, if they are there.
fn take(bytes: &[u8], at: usize, n: usize) -> Result<&[u8], HeaderFault> {
    bytes.get(at..at + n).ok_or(HeaderFault::PastEnd)
}

fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    b.try_into().expect("a slice of the array's length")
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array(&bytes[at..at + 4]))
}

#[cfg(test)]
#[path = "eventstream_tests.rs"]
mod tests;
