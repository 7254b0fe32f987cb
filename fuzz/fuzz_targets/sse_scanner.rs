//! The SSE boundary scanner (`stream::sse::EventScanner`), driven as the relay drives it: the
//! stream arrives in the recipe's pieces into a window of at most `cap` bytes (byte 0), and
//! after each scan the relay forwards the complete events, or (byte 1) everything it holds, and
//! cuts an event that alone fills the window.
//! Asserts: the events found end exactly where a scan of the whole stream says they end, however
//! the stream was split and cut; an event is reported `continued` exactly when its beginning was
//! forwarded before it completed; the window never grows past its cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::stream::sse::EventScanner;
use ringgate_fuzz::{pieces, recipe};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cap = 4 + data[0] as usize;
    let flush_all = data[1] & 1 == 1;
    let (sizes, stream) = recipe(&data[2..]);

    let mut reference = Vec::new();
    let mut whole = EventScanner::new();
    whole.scan(stream, |f| {
        assert!(!f.continued);
        reference.push(f.range.end);
    });
    assert_eq!(whole.ready(), reference.last().copied().unwrap_or(0));

    let mut sc = EventScanner::new();
    let mut held: Vec<u8> = Vec::new();
    let mut base = 0;
    let mut ends = Vec::new();
    for mut piece in pieces(stream, &sizes) {
        while !piece.is_empty() {
            let n = piece.len().min(cap - held.len());
            held.extend_from_slice(&piece[..n]);
            piece = &piece[n..];
            let mut expect_from = sc.ready();
            sc.scan(&held, |f| {
                assert_eq!(f.range.start, expect_from);
                expect_from = f.range.end;
                let start = ends.last().copied().unwrap_or(0);
                assert_eq!(
                    f.continued,
                    start < base,
                    "continued flag at {}",
                    base + f.range.end
                );
                ends.push(base + f.range.end);
            });
            let cut = if flush_all || held.len() == cap {
                held.len()
            } else {
                sc.ready()
            };
            sc.consumed(&held, cut);
            held.drain(..cut);
            base += cut;
            assert!(held.len() < cap);
        }
    }
    assert_eq!(ends, reference);
});
