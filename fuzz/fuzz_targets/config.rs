//! The config loader (`Config::parse`, no environment variables set).
//! Asserts: never panics, whatever the text; a config it accepts has upstreams and answers
//! `warnings()` without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Key files are read from disk at load; a fuzzer naming /dev/zero would only test the disk.
    if text.contains("_file") {
        return;
    }
    if let Ok(config) = Config::parse(text, "fuzz.toml", &|_| None) {
        assert!(!config.upstreams.is_empty());
        let _ = config.warnings();
    }
});
