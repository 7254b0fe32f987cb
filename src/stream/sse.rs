//! Where Server-Sent Events end, found incrementally as bytes arrive.
//!
//! A client can only use whole events, so the relay cuts what it forwards at event boundaries: a
//! blank line. Lines may end in `\n` or `\r\n` (the Anthropic API uses the former), so a boundary is
//! a `\n` that follows another line's `\n`, directly or through one `\r`. A bare `\r` as a line end
//! is not recognised. The scanner looks at each byte once however the stream is split into reads,
//! and remembers the bytes just before its window when an oversized event had to be cut in two, so
//! a boundary straddling that cut is still found.

/// Scans the bytes a relay holds, reporting each event as it is completed.
#[derive(Debug, Default)]
pub struct EventScanner {
    /// Bytes below this offset have been examined.
    scanned: usize,
    /// Start of the event being received (== the end of the complete events held).
    ready: usize,
    /// The two bytes before offset 0 when the current event was partly flushed already
    /// (`\0` otherwise, which matches nothing).
    before: [u8; 2],
    /// The event at offset 0 began before the window (it was split): it has been reported.
    continued: bool,
}

/// One complete event found by [`EventScanner::scan`].
#[derive(Debug, PartialEq, Eq)]
pub struct Found {
    /// Where the event lies in the held bytes (it ends with its blank line).
    pub range: std::ops::Range<usize>,
    /// The end of an event whose beginning was already forwarded (and reported) in an earlier
    /// cut; `range` then holds only its remainder.
    pub continued: bool,
}

impl EventScanner {
    pub fn new() -> EventScanner {
        EventScanner::default()
    }

    /// Bytes at the front of the held data that form complete events.
    pub fn ready(&self) -> usize {
        self.ready
    }

    /// Whether the bytes held behind the complete events (if any) belong to an event already
    /// partly forwarded.
    pub fn mid_event(&self) -> bool {
        self.continued
    }

    /// Examines `held` (everything held, of which only the bytes after the last call are new) and
    /// calls `found` for each event completed, in order.
    pub fn scan(&mut self, held: &[u8], mut found: impl FnMut(Found)) {
        let mut from = self.scanned.max(self.ready);
        while let Some(i) = memchr::memchr(b'\n', &held[from..]).map(|i| from + i) {
            from = i + 1;
            if self.ends_event(held, i) {
                found(Found {
                    range: self.ready..i + 1,
                    continued: std::mem::take(&mut self.continued),
                });
                self.ready = i + 1;
                self.before = [0; 2];
            }
        }
        self.scanned = held.len();
    }

    /// Whether the `\n` at `i` ends a blank line inside the current event.
    fn ends_event(&self, held: &[u8], i: usize) -> bool {
        let at = |k: usize| -> u8 {
            // Offsets before the current event are not part of it; before 0 lies the split-off
            // beginning of the current event, if any.
            match i.checked_sub(k) {
                Some(j) if j >= self.ready => held[j],
                Some(_) => 0,
                None if self.ready == 0 && k - i <= 2 => self.before[2 - (k - i)],
                None => 0,
            }
        };
        at(1) == b'\n' || (at(1) == b'\r' && at(2) == b'\n')
    }

    /// The first `cut` held bytes were forwarded. A cut beyond the complete events splits the
    /// current event (it alone filled the buffer); its remainder is then reported as `continued`.
    pub fn consumed(&mut self, held: &[u8], cut: usize) {
        if cut > self.ready {
            // Remember the last two bytes of the event so far: those of its part in the window,
            // after those of an earlier part if it had one (only the current event counts).
            let part = &held[self.ready..cut];
            let earlier = if self.ready == 0 { self.before } else { [0; 2] };
            self.before = match part.len() {
                1 => [earlier[1], part[0]],
                n => [part[n - 2], part[n - 1]],
            };
            self.continued = true;
            self.ready = 0;
        } else {
            self.ready -= cut;
        }
        self.scanned = self.scanned.saturating_sub(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` one after another into a growing buffer, never consuming; returns the
    /// events found.
    fn events(pieces: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = EventScanner::new();
        let mut held = Vec::new();
        let mut out = Vec::new();
        for p in pieces {
            held.extend_from_slice(p);
            s.scan(&held, |f| out.push(held[f.range].to_vec()));
        }
        out
    }

    #[test]
    fn finds_each_event_once() {
        let e = events(&[b"event: a\ndata: 1\n\nevent: b\nda", b"ta: 2\n", b"\n"]);
        assert_eq!(e, [&b"event: a\ndata: 1\n\n"[..], b"event: b\ndata: 2\n\n"]);
    }

    #[test]
    fn knows_crlf_and_mixed_line_ends() {
        assert_eq!(events(&[b"data: 1\r\n\r\nx"]), [b"data: 1\r\n\r\n"]);
        assert_eq!(
            events(&[b"data: 1\r\n", b"\r", b"\n"]),
            [b"data: 1\r\n\r\n"]
        );
        assert_eq!(events(&[b"data: 1\n\r\n"]), [b"data: 1\n\r\n"]);
        assert_eq!(events(&[b"data: 1\r\n\n"]), [b"data: 1\r\n\n"]);
        assert!(events(&[b"data: 1\ndata: 2\n", b"\r"]).is_empty());
        assert!(events(&[b"data: 1\r\r"]).is_empty());
    }

    #[test]
    fn a_blank_line_must_follow_a_line_of_the_same_event() {
        // The `\n` that ended the previous event does not pair with a new lone `\n`.
        let e = events(&[b"data: 1\n\n", b"\n", b"data: 2\n\n"]);
        assert_eq!(e, [&b"data: 1\n\n"[..], b"\ndata: 2\n\n"]);
    }

    #[test]
    fn consuming_shifts_the_window() {
        let mut s = EventScanner::new();
        let mut held = b"data: 1\n\ndata: 2".to_vec();
        s.scan(&held, |_| {});
        assert_eq!(s.ready(), 9);
        s.consumed(&held, 9);
        held.drain(..9);
        assert_eq!(s.ready(), 0);
        held.extend_from_slice(b"\n\n");
        let mut found = Vec::new();
        s.scan(&held, |f| found.push(f));
        assert_eq!(
            found,
            [Found {
                range: 0..9,
                continued: false
            }]
        );
    }

    #[test]
    fn a_split_right_after_whole_events_looks_back_only_into_its_event() {
        // `\r\n\n` is an event (a blank CRLF line, then a blank line); it is cut after its `\r`,
        // which must not pair with the `\n` that ended the event before it.
        let held = b"data: 1\n\n\r\n\ndata: 2\n\n";
        let mut s = EventScanner::new();
        s.scan(&held[..10], |_| {});
        assert_eq!(s.ready(), 9);
        s.consumed(&held[..10], 10);
        let rest = &held[10..];
        let mut found = Vec::new();
        s.scan(rest, |f| found.push((rest[f.range].to_vec(), f.continued)));
        assert_eq!(
            found,
            [(b"\n\n".to_vec(), true), (b"data: 2\n\n".to_vec(), false)]
        );
    }

    #[test]
    fn a_boundary_straddling_a_split_is_found() {
        for split in 1..=3 {
            // The event is cut at three places inside its closing `\r\n\r\n`.
            let event = b"data: xxx\r\n\r\n";
            let cut = event.len() - 5 + split;
            let mut s = EventScanner::new();
            let mut held = event[..cut].to_vec();
            s.scan(&held, |_| panic!("no event is complete yet"));
            s.consumed(&held, cut);
            held.clear();
            held.extend_from_slice(&event[cut..]);
            held.extend_from_slice(b"data: next\n\n");
            let mut found = Vec::new();
            s.scan(&held, |f| found.push(f));
            let rest = event.len() - cut;
            assert_eq!(
                found,
                [
                    Found {
                        range: 0..rest,
                        continued: true
                    },
                    Found {
                        range: rest..rest + 12,
                        continued: false
                    }
                ],
                "split at {cut}"
            );
            assert!(!s.mid_event());
        }
    }
}
