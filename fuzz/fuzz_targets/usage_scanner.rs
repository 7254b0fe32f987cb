//! The usage scanner of non-streaming answers (`stream::json_usage::UsageScanner`), fed the
//! body in the recipe's pieces.
//! Asserts: the usage found is the same however the body is split; what the scanner allocates
//! stays under a fixed bound (it keeps at most 4 KiB of a `usage` value) whatever the body's size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::stream::json_usage::UsageScanner;
use ringgate_fuzz::{peak_during, pieces, recipe};

/// The scanner's own bound (4 KiB of a `usage` value), doubled for a vector's growth, and room
/// for reading the counts out of it.
const BOUND: usize = 16 << 10;

fuzz_target!(|data: &[u8]| {
    let (sizes, body) = recipe(data);
    let mut whole = UsageScanner::new();
    whole.feed(body);
    let parts = pieces(body, &sizes);
    let mut split = UsageScanner::new();
    let ((), peak) = peak_during(|| {
        for p in &parts {
            split.feed(p);
        }
    });
    assert!(
        peak <= BOUND,
        "{peak} bytes allocated for a {}-byte body",
        body.len()
    );
    assert_eq!(
        format!("{:?}", whole.usage()),
        format!("{:?}", split.usage())
    );
});
