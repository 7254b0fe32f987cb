//! The AWS event-stream frame reader (`dialect::bedrock::eventstream::FrameReader`). Byte 0:
//! its low bit makes every frame's CRCs right (`fix_crcs`) so that mutations reach lengths and
//! headers; the rest picks the reader's frame cap. Then a split recipe and the stream.
//! Asserts: the frames read, and how the stream ended (a frame error, or `finish`), are the same
//! however the stream is split; every frame is at most the cap; the reader never holds more
//! than the cap; after an error it gives only that error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::dialect::bedrock::eventstream::{FrameError, FrameReader, MIN_FRAME};
use ringgate_fuzz::{fix_crcs, pieces, recipe};

fn run(parts: &[&[u8]], cap: usize) -> (Vec<String>, Result<(), FrameError>) {
    let mut reader = FrameReader::new(cap);
    let mut frames = Vec::new();
    for p in parts {
        let fed = reader.feed(p, |frame| {
            let headers = frame.headers().collect::<Vec<_>>();
            assert!(MIN_FRAME + frame.payload().len() <= cap.max(MIN_FRAME));
            frames.push(format!("{headers:?} {:?}", frame.payload()));
            Ok::<(), FrameError>(())
        });
        assert!(reader.held() <= cap.max(MIN_FRAME));
        if let Err(e) = fed {
            assert_eq!(reader.feed(b"", |_| Ok::<(), FrameError>(())), Err(e));
            assert_eq!(reader.finish(), Err(e));
            return (frames, Err(e));
        }
    }
    (frames, reader.finish())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let cap = (mode >> 1) as usize * 8;
    let (sizes, stream) = recipe(rest);
    let mut stream = stream.to_vec();
    if mode & 1 == 1 {
        fix_crcs(&mut stream);
    }
    let whole = run(&[&stream], cap);
    let split = run(&pieces(&stream, &sizes), cap);
    assert_eq!(whole, split);
});
