//! The Bedrock stream decoder (`dialect::bedrock::stream::StreamDecoder`). Byte 0 picks how the
//! rest (a split recipe, then the stream) is read: raw event-stream bytes; the same with every
//! frame's CRCs made right (`fix_crcs`), so mutations reach the lengths, headers and payloads;
//! or records the harness turns into frames (`bedrock_stream`: chunks carrying base64 events,
//! exceptions, error frames, other events).
//! Asserts: no panic; the same output and failure however the stream is split; the output is
//! bounded (linear in the input); it is well-framed Server-Sent Events: `event: <name>` and one
//! `data:` line per event, nothing after an `error` event. The decoder passes Claude's own
//! events through as Bedrock wraps them (as the pass-through relays the Anthropic API's), so
//! their order is the upstream's and `grammar::check` is not asserted here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::dialect::bedrock::stream::StreamDecoder;
use ringgate_fuzz::{bedrock_stream, check_stage, fix_crcs, recipe};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (sizes, spec) = recipe(rest);
    let wire = match mode % 3 {
        0 => spec.to_vec(),
        1 => {
            let mut w = spec.to_vec();
            fix_crcs(&mut w);
            w
        }
        _ => bedrock_stream(spec),
    };
    let out = check_stage(|| Box::new(StreamDecoder::new()), &sizes, &wire, false);
    // Bytes of an event are passed through as they are; the framing is what is checked.
    let text = String::from_utf8_lossy(&out);
    let mut events = text.split("\n\n").collect::<Vec<_>>();
    assert_eq!(events.pop(), Some(""), "the output ends inside an event");
    for (i, event) in events.iter().enumerate() {
        let (name, data) = event.split_once('\n').expect("an event of two lines");
        let name = name.strip_prefix("event: ").expect("an event line");
        let data = data.strip_prefix("data: ").expect("a data line");
        assert!(!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        assert!(!data.contains(['\n', '\r']), "a data line broken in two");
        assert!(
            name != "error" || i == events.len() - 1,
            "an event after an error"
        );
    }
});
