//! The OpenAI stream decoder (`dialect::openai::stream::StreamDecoder`): arbitrary upstream bytes,
//! whole and in the recipe's pieces.
//! Asserts: no panic; the same output and failure however the stream is split; the output is
//! bounded (linear in the input); what the client gets (the output, then the relay's in-band
//! error after a failure) is a valid Anthropic event stream (`dialect::grammar::check`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::dialect::openai::stream::StreamDecoder;
use ringgate_fuzz::{check_stage, context, recipe};

fuzz_target!(|data: &[u8]| {
    let (sizes, wire) = recipe(data);
    check_stage(
        || Box::new(StreamDecoder::new(context())),
        &sizes,
        wire,
        true,
    );
});
