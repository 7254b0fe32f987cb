//! The relay's translation stage: where an upstream that speaks another API has its answer
//! turned into the Anthropic answer the client reads.
//!
//! A stage sits between the bytes read from the upstream (framing already removed) and the
//! relay's buffer. It is pure, with no I/O: bytes in, in any split, and the client's bytes out.
//! The relay treats what comes out exactly as it treats a pass-through's bytes (the same flush
//! policy, keep-alives, usage tally and in-band errors), so a stage need only be right about the
//! bytes. Implementations are the dialect decoders (`crate::dialect`).

/// A translation stage. An `Err` carries why the upstream's answer cannot go on, worded to follow
/// "the upstream …" ("sent a chunk that is not JSON"): the relay then ends the client's response
/// as it ends a broken pass-through, after whatever whole events the stage had written.
pub trait Translate {
    /// Takes the next bytes of the upstream's body; appends what the client gets to `out`.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String>;

    /// The upstream's body ended cleanly: appends the rest of the client's body.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String>;
}
