//! Upstream response heads: `upstream::response::parse` then `ResponseHead::new`.
//! Asserts: no panic; the same bytes parse the same way twice; a complete head's length is
//! within the input and the head alone parses to the same length; the framing follows RFC 9112
//! (no body for HEAD, 1xx, 204, 304; a body delimited by close means no keep-alive).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringgate::upstream::response::{parse, ResponseFraming, ResponseHead};

fuzz_target!(|data: &[u8]| {
    let first = parse(data);
    assert_eq!(format!("{first:?}"), format!("{:?}", parse(data)));
    let Ok(Some((len, layout))) = first else {
        return;
    };
    assert!(len > 0 && len <= data.len());
    let raw = Bytes::copy_from_slice(&data[..len]);
    let Ok(Some((alone, again))) = parse(&raw) else {
        panic!("the head alone does not parse");
    };
    assert_eq!(alone, len);
    for (layout, to_head) in [(layout, false), (again, true)] {
        let Ok(h) = ResponseHead::new(raw.clone(), layout, to_head) else {
            continue;
        };
        let bodiless = to_head || h.status < 200 || h.status == 204 || h.status == 304;
        assert_eq!(bodiless, h.framing == ResponseFraming::None);
        if h.framing == ResponseFraming::UntilClose {
            assert!(!h.keep_alive);
        }
        let _ = (h.reason(), h.headers().count(), h.is_event_stream());
    }
});
