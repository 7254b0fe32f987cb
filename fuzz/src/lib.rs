//! What the fuzz targets share: how an input says where to split itself, an allocation counter
//! for the "bounded memory" assertions, and the event-stream frame builder that lets the fuzzer
//! past Bedrock's CRCs.
//!
//! Inputs that are fed in pieces start with a split recipe: byte 0 says how many recipe bytes
//! follow (`byte 0 % 8`), each recipe byte is one piece length (cycled until the payload is
//! covered), and the rest is the payload. With no recipe bytes the payload goes byte by byte.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The piece lengths an input asks for, and its payload.
pub fn recipe(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (vec![1], data);
    };
    let n = (n as usize % 8).min(rest.len());
    let sizes = rest[..n].iter().map(|&b| piece_len(b)).collect::<Vec<_>>();
    let sizes = if sizes.is_empty() { vec![1] } else { sizes };
    (sizes, &rest[n..])
}

/// A recipe byte as a piece length: mostly 1 to 32 bytes, sometimes a few hundred or thousand.
fn piece_len(b: u8) -> usize {
    match b {
        0..=0xdf => (b as usize % 32) + 1,
        _ => (b as usize - 0xdf) * 256,
    }
}

/// `payload` cut into pieces of the cycled `sizes`.
pub fn pieces<'a>(payload: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < payload.len() {
        let n = sizes[out.len() % sizes.len()]
            .max(1)
            .min(payload.len() - at);
        out.push(&payload[at..at + n]);
        at += n;
    }
    out
}

/// The system allocator, counting the bytes live and their peak.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, layout, new);
        if !q.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            let live = LIVE.fetch_add(new, Ordering::Relaxed) + new;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f`; its result and the most bytes it had allocated at once beyond what was live when
/// it began (the targets are single-threaded, so nothing else allocates meanwhile).
pub fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = f();
    (r, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

/// Recomputes the two CRCs of every frame in `bytes` (as far as their stated lengths reach), so
/// that what the fuzzer mutates is the frames' lengths, headers and payloads, not checksums it
/// could never guess.
pub fn fix_crcs(bytes: &mut [u8]) {
    let mut at = 0;
    while bytes.len() - at >= 16 {
        let total = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let prelude = crc32fast::hash(&bytes[at..at + 8]);
        bytes[at + 8..at + 12].copy_from_slice(&prelude.to_be_bytes());
        if total < 16 || total > bytes.len() - at {
            return;
        }
        let end = at + total;
        let message = crc32fast::hash(&bytes[at..end - 4]);
        bytes[end - 4..end].copy_from_slice(&message.to_be_bytes());
        at = end;
    }
}

/// One event-stream frame with string headers.
pub fn frame(headers: &[(&str, &[u8])], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value);
    }
    let total = 16 + h.len() + payload.len();
    let mut f = Vec::with_capacity(total);
    f.extend_from_slice(&(total as u32).to_be_bytes());
    f.extend_from_slice(&(h.len() as u32).to_be_bytes());
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(&h);
    f.extend_from_slice(payload);
    f.extend_from_slice(&[0; 4]);
    fix_crcs(&mut f);
    f
}

/// A Bedrock stream built from `spec`: records separated by `0xfe`, each a kind byte and its
/// content — a `chunk` event carrying the content as its (base64) Anthropic event, an
/// exception, an error frame, an event of another type, or a chunk whose payload is the content
/// as it is.
pub fn bedrock_stream(spec: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let mut out = Vec::new();
    for record in spec.split(|&b| b == 0xfe) {
        let Some((&kind, content)) = record.split_first() else {
            continue;
        };
        let event: &[(&str, &[u8])] = &[(":message-type", b"event"), (":event-type", b"chunk")];
        out.extend_from_slice(&match kind % 5 {
            0 => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(content);
                frame(event, format!("{{\"bytes\":\"{b64}\"}}").as_bytes())
            }
            1 => frame(
                &[
                    (":message-type", b"exception"),
                    (":exception-type", b"throttlingException"),
                ],
                content,
            ),
            2 => frame(
                &[
                    (":message-type", b"error"),
                    (":error-code", b"InternalFailure"),
                    (":error-message", content),
                ],
                b"",
            ),
            3 => frame(
                &[(":message-type", b"event"), (":event-type", content)],
                b"",
            ),
            _ => frame(event, content),
        });
    }
    out
}

/// Runs a translation stage over `parts` as the relay does (a failure stops the feeding): its
/// output and its failure.
pub fn drive(
    stage: &mut dyn ringgate::stream::translate::Translate,
    parts: &[&[u8]],
) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::new();
    for p in parts {
        if let Err(e) = stage.feed(p, &mut out) {
            return (out, Some(e));
        }
    }
    let end = stage.finish(&mut out).err();
    (out, end)
}

/// What a client gets from a stage's output and failure: the output, then the relay's in-band
/// error event after a failure. `None` when the failure came before any output (the client
/// gets an HTTP error instead).
pub fn client_gets(out: &[u8], failure: Option<&str>) -> Option<Vec<u8>> {
    let mut stream = out.to_vec();
    if let Some(reason) = failure {
        if stream.is_empty() {
            return None;
        }
        let event = serde_json::json!({
            "type": "error",
            "error": {"type": "api_error", "message": reason},
        });
        stream.extend_from_slice(format!("event: error\ndata: {event}\n\n").as_bytes());
    }
    Some(stream)
}

/// A bound on a stage's output for `input` bytes: generous (an upstream's shortest chunk can
/// become a longer Anthropic event), but linear, so that growth without end is caught.
pub fn output_bound(input: usize) -> usize {
    64 * input + (64 << 10)
}

/// The context a stream decoder is built with: a streamed answer to a request with a stop
/// sequence.
pub fn context() -> ringgate::dialect::Context {
    use ringgate::dialect::{events::MessageHead, Context};
    Context {
        head: MessageHead {
            id: "msg_fuzz".into(),
            model: "claude-fuzz".into(),
            input_tokens: 3,
        },
        stream: true,
        stop_sequences: vec!["STOP".into()],
        request_id: "req_fuzz".into(),
        ..Context::default()
    }
}

/// The checks every dialect stream target makes: the input (a split recipe, then the upstream's
/// bytes) gives the same output and failure whole and split; the output stays within
/// [`output_bound`]; and, when `grammar`, what the client gets is a valid Anthropic event stream
/// (`dialect::grammar::check`).
pub fn check_stage(
    make: impl Fn() -> Box<dyn ringgate::stream::translate::Translate>,
    sizes: &[usize],
    wire: &[u8],
    grammar: bool,
) -> Vec<u8> {
    let whole = drive(&mut *make(), &[wire]);
    let split = drive(&mut *make(), &pieces(wire, sizes));
    assert!(
        whole == split,
        "whole: {whole:?}\nsplit: {split:?}",
        whole = (String::from_utf8_lossy(&whole.0), &whole.1),
        split = (String::from_utf8_lossy(&split.0), &split.1),
    );
    assert!(whole.0.len() <= output_bound(wire.len()));
    if let Some(stream) = client_gets(&whole.0, whole.1.as_deref()) {
        if grammar {
            if let Err(e) = ringgate::dialect::grammar::check(&stream) {
                panic!("{e}\n{}", String::from_utf8_lossy(&stream));
            }
        }
    }
    whole.0
}
