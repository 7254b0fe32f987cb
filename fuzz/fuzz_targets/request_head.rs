//! Request heads from clients: `http::head::parse` then `RequestHead::from_parts`.
//! Asserts: no panic; the same bytes parse the same way twice; a complete head's length is
//! within the input, every shorter prefix of it is still partial, and the head alone parses to
//! the same length; a built head keeps the invariants the rest of the gateway relies on; a
//! refusal is a 4xx.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringgate::http::head::{parse, BodyFraming, Parse, RequestHead};

fuzz_target!(|data: &[u8]| {
    let first = parse(data);
    assert_eq!(format!("{first:?}"), format!("{:?}", parse(data)));
    let parts = match first {
        Ok(Parse::Complete(parts)) => parts,
        Ok(Parse::Partial) => return,
        Err(e) => {
            assert!((400..500).contains(&e.status), "{e:?}");
            return;
        }
    };
    let len = parts.len;
    assert!(len > 0 && len <= data.len());
    assert!(
        matches!(parse(&data[..len - 1]), Ok(Parse::Partial)),
        "a strict prefix of a complete head is not partial"
    );
    let alone = match parse(&data[..len]) {
        Ok(Parse::Complete(p)) => p,
        other => panic!("the head alone parses as {other:?}"),
    };
    assert_eq!(format!("{parts:?}"), format!("{alone:?}"));
    match RequestHead::from_parts(Bytes::copy_from_slice(&data[..len]), parts) {
        Ok(h) => {
            assert!(h.target().starts_with('/'));
            assert!(h.target().starts_with(h.path()));
            assert!(h.minor_version <= 1);
            if let BodyFraming::Length(n) = h.framing {
                assert!(n > 0);
            }
            if h.expect_continue {
                assert_ne!(h.framing, BodyFraming::None);
            }
            let cl = h
                .headers()
                .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"));
            let te = h
                .headers()
                .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
            assert!(
                !(cl.count() > 0 && te.count() > 0),
                "both framings accepted"
            );
            let _ = h.method_str();
        }
        Err(e) => assert!((400..500).contains(&e.status), "{e:?}"),
    }
});
