//! The answers of credential endpoints, which the gateway reads from the network: AWS STS's XML
//! (`credentials::aws::sts_answer`), IMDS's JSON (`imds_answer`), an OAuth token answer
//! (`credentials::google::token_answer`) and a Google service account key file
//! (`ServiceAccount::parse`). Byte 0 picks the parser.
//! Asserts: never panics; a token answer accepted has a non-empty token and, with
//! `expires_in`, an expiry after the time it was received; STS and IMDS keys accepted carry
//! an expiry.
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use ringgate::credentials::{aws, google};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 4 {
        0 => {
            if let Ok((_, expires)) = aws::sts_answer(text) {
                assert!(expires.is_some());
            }
        }
        1 => {
            if let Ok((_, expires)) = aws::imds_answer(text) {
                assert!(expires.is_some());
            }
        }
        2 => {
            let now = SystemTime::now();
            if let Ok((token, expires)) = google::token_answer(text, now) {
                assert!(!token.is_empty());
                if let Some(e) = expires {
                    assert!(e >= now);
                }
            }
        }
        _ => {
            let _ = google::ServiceAccount::parse(text);
        }
    }
});
