//! Reading an upstream's Server-Sent Events, whatever the reads cut them into.
//!
//! OpenAI-compatible servers and Gemini both stream `data:` lines of JSON, but each in its own
//! hygiene: lines may end in `\r\n`, comment lines (`: OPENROUTER PROCESSING`) and keep-alives
//! come between events, an `event:` line may name an error, and a connection may close without the
//! blank line that ends the last event. This reader turns any split of such a byte stream into the
//! same sequence of [`Event`]s, following the SSE rules (WHATWG HTML §9.2.6) for fields, comments
//! and multi-line data.
//!
//! It never holds more than one event: the data of an event whose every line arrived in one read
//! is handed on without a copy, and only an event cut by a read is kept, up to `max_event` bytes.
//! An event longer than that is an error ([`TooLong`]), not a buffer that grows without end.

use crate::stream::translate::Translate;

/// What a dialect's stream decoder does with an upstream's events.
pub trait Events {
    /// One whole event: what the client gets of it goes to `out`.
    fn event(&mut self, e: Event<'_>, out: &mut Vec<u8>) -> Result<(), String>;

    /// The stream ended after its last event: the rest of the client's stream, or why the
    /// upstream's stream was not whole.
    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), String>;
}

/// A translation stage for an upstream's event stream: the reader, and the decoder its events
/// go to.
pub struct SseStage<E> {
    reader: SseReader,
    events: E,
}

impl<E> SseStage<E> {
    pub fn over(events: E, max_event: usize) -> SseStage<E> {
        SseStage {
            reader: SseReader::new(max_event),
            events,
        }
    }
}

impl<E: Events> Translate for SseStage<E> {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let events = &mut self.events;
        self.reader.feed(input, |e| events.event(e, out))
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let events = &mut self.events;
        self.reader.finish(|e| events.event(e, out))?;
        self.events.end(out)
    }
}

impl From<TooLong> for String {
    fn from(t: TooLong) -> String {
        format!("sent an event longer than {} bytes", t.0)
    }
}

/// One event: its `event:` name, if it had one, and its data lines joined by `\n`.
#[derive(Debug, PartialEq, Eq)]
pub struct Event<'a> {
    pub name: Option<&'a [u8]>,
    pub data: &'a [u8],
}

/// An event, or a line that never ends, grew past the limit.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLong(pub usize);

#[derive(Debug)]
pub struct SseReader {
    max_event: usize,
    /// The start of a line that the last read cut.
    line: Vec<u8>,
    /// The event being read: its data lines so far (joined) and its name.
    data: Vec<u8>,
    has_data: bool,
    name: Vec<u8>,
    has_name: bool,
}

impl SseReader {
    pub fn new(max_event: usize) -> SseReader {
        SseReader {
            max_event,
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            name: Vec::new(),
            has_name: false,
        }
    }

    /// Reads `input`, calling `each` for every event it completes. `each` may stop the reading
    /// with an error of its own, which is returned as it is.
    pub fn feed<E: From<TooLong>>(
        &mut self,
        mut input: &[u8],
        mut each: impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if !self.line.is_empty() {
            // Finish the line the last read cut, then go on in `input` itself.
            let Some(end) = memchr::memchr(b'\n', input) else {
                return self.keep_line(input).map_err(E::from);
            };
            let mut line = std::mem::take(&mut self.line);
            line.extend_from_slice(&input[..end]);
            input = &input[end + 1..];
            let next_blank = starts_blank(input);
            let r = self.line(&line, next_blank, &mut each);
            line.clear();
            self.line = line;
            r?;
        }
        while let Some(end) = memchr::memchr(b'\n', input) {
            let (line, rest) = (&input[..end], &input[end + 1..]);
            self.line(line, starts_blank(rest), &mut each)?;
            input = rest;
        }
        self.keep_line(input).map_err(E::from)
    }

    /// The stream ended: an event that lacked only its blank line is still an event.
    pub fn finish<E: From<TooLong>>(
        &mut self,
        mut each: impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line(&line, false, &mut each)?;
        }
        self.dispatch(&mut each)
    }

    /// Bytes held for an event not yet complete (what a limit bounds).
    pub fn held(&self) -> usize {
        self.line.len() + self.data.len()
    }

    fn keep_line(&mut self, part: &[u8]) -> Result<(), TooLong> {
        if self.held() + part.len() > self.max_event {
            return Err(TooLong(self.max_event));
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    /// One line (without its `\n`). `next_blank`: the line after it is here and blank, so an
    /// event that is this one data line can be handed on without being copied.
    fn line<E: From<TooLong>>(
        &mut self,
        line: &[u8],
        next_blank: bool,
        each: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return self.dispatch(each);
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" if next_blank && !self.has_data => {
                // The whole event is in this read: hand it on as it lies.
                let name = self.has_name.then_some(&self.name[..]);
                each(Event { name, data: value })?;
                self.has_name = false;
                self.name.clear();
                Ok(())
            }
            b"data" => {
                if self.held() + value.len() + 1 > self.max_event {
                    return Err(TooLong(self.max_event).into());
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
                Ok(())
            }
            b"event" => {
                self.name.clear();
                self.name.extend_from_slice(&value[..value.len().min(64)]);
                self.has_name = true;
                Ok(())
            }
            // `id`, `retry` and unknown fields mean nothing to a relay.
            _ => Ok(()),
        }
    }

    fn dispatch<E>(&mut self, each: &mut impl FnMut(Event<'_>) -> Result<(), E>) -> Result<(), E> {
        let r = if self.has_data {
            let name = self.has_name.then_some(&self.name[..]);
            each(Event {
                name,
                data: &self.data,
            })
        } else {
            Ok(())
        };
        self.has_data = false;
        self.data.clear();
        self.has_name = false;
        self.name.clear();
        if self.data.capacity() > 64 * 1024 {
            // A rare large event is not worth holding on to for the rest of the stream.
            self.data = Vec::new();
        }
        r
    }
}

/// Whether `rest` begins with a blank line (`\n` or `\r\n`).
fn starts_blank(rest: &[u8]) -> bool {
    rest.first() == Some(&b'\n') || rest.starts_with(b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Stop(TooLong);
    impl From<TooLong> for Stop {
        fn from(t: TooLong) -> Stop {
            Stop(t)
        }
    }

    /// The events of `input` fed in the pieces `cuts` makes, as (name, data) strings.
    fn events(input: &[u8], cuts: &[usize], max: usize) -> Result<Vec<(String, String)>, Stop> {
        let mut r = SseReader::new(max);
        let mut got = Vec::new();
        let mut each = |e: Event<'_>| {
            got.push((
                String::from_utf8_lossy(e.name.unwrap_or(b"-")).into_owned(),
                String::from_utf8_lossy(e.data).into_owned(),
            ));
            Ok::<(), Stop>(())
        };
        let mut at = 0;
        for &cut in cuts.iter().chain([input.len()].iter()) {
            r.feed(&input[at..cut], &mut each)?;
            at = cut;
        }
        r.finish(&mut each)?;
        Ok(got)
    }

    const STREAM: &[u8] = b": OPENROUTER PROCESSING\n\ndata: {\"a\":1}\n\ndata: {\"b\":\r\ndata: 2}\r\n\r\nevent: error\ndata: {\"error\":{}}\n\nid: 7\nretry: 10\ndata\n\ndata: [DONE]";

    fn expected() -> Vec<(String, String)> {
        [
            ("-", "{\"a\":1}"),
            ("-", "{\"b\":\n2}"),
            ("error", "{\"error\":{}}"),
            ("-", ""),
            ("-", "[DONE]"),
        ]
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_string()))
        .collect()
    }

    #[test]
    fn fields_comments_crlf_and_an_unended_last_event() {
        assert_eq!(events(STREAM, &[], 1 << 20).unwrap(), expected());
    }

    #[test]
    fn every_split_gives_the_same_events() {
        for a in 0..=STREAM.len() {
            for b in a..=STREAM.len() {
                assert_eq!(
                    events(STREAM, &[a, b], 1 << 20).unwrap(),
                    expected(),
                    "cut at {a} and {b}"
                );
            }
        }
    }

    #[test]
    fn an_endless_line_or_event_is_refused_at_the_limit() {
        let long = [b"data: ".as_slice(), &[b'x'; 100]].concat();
        assert_eq!(events(&long, &[50], 64), Err(Stop(TooLong(64))));
        let many = b"data: 0123456789\ndata: 0123456789\ndata: 0123456789\n".repeat(3);
        assert_eq!(events(&many, &[], 64), Err(Stop(TooLong(64))));
        assert!(events(b"data: short\n\n", &[3], 64).is_ok());
    }

    #[test]
    fn an_error_from_the_caller_stops_the_reading() {
        let mut r = SseReader::new(1024);
        let mut seen = 0;
        let e = r.feed(b"data: 1\n\ndata: 2\n\n", |_| {
            seen += 1;
            Err(Stop(TooLong(0)))
        });
        assert!(e.is_err());
        assert_eq!(seen, 1);
    }
}
