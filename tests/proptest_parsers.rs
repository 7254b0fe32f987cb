//! Property tests for the pure parsers: request heads, chunked coding, body collection, the JSON
//! skim and upstream response heads (the stream pieces have their own file).
//!
//! Every property compares the code under test with something computed independently (the
//! generator's own knowledge, a reference decoder written here, simd-json, or a brute-force
//! scan), so each can fail if the parser is wrong.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config as ProptestConfig;

use ringgate::http::body::BodyCollector;
use ringgate::http::chunked::ChunkedDecoder;
use ringgate::http::head::{self, BodyFraming, Method, Parse, RequestHead};
use ringgate::http::ApiError;
use ringgate::json::skim::{skim, unescape};
use ringgate::upstream::response::{self, ResponseFraming, ResponseHead};

use simd_json::prelude::*;

/// No regression files: this test may only add itself to the repository.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------------------------------------
// Shared helpers
// ------------------------------------------------------------------------------------------------

/// One edit to a byte string; the index is taken modulo the length.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation(interesting: &'static [u8]) -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![any::<u8>(), select(interesting)];
    prop_oneof![
        4 => (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        3 => (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => any::<usize>().prop_map(Mutation::Delete),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(buf: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        let len = buf.len();
        match *m {
            Mutation::Replace(i, b) if len > 0 => buf[i % len] = b,
            Mutation::Insert(i, b) => buf.insert(i % (len + 1), b),
            Mutation::Delete(i) if len > 0 => {
                buf.remove(i % len);
            }
            Mutation::Truncate(i) => buf.truncate(i % (len + 1)),
            _ => {}
        }
    }
}

/// Piece lengths for feeding a stream: the sizes are cycled until `total` is covered.
fn pieces(total: usize, sizes: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut k = 0;
    while at < total {
        let n = sizes[k % sizes.len()].max(1).min(total - at);
        out.push(n);
        at += n;
        k += 1;
    }
    out
}

/// Tiny splits (1–7 bytes) or larger ones.
fn split_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![vec(1usize..=7, 1..12), vec(1usize..=300, 1..6)]
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn digits_value(v: &[u8]) -> Option<u64> {
    let v = trim_ows(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

// ------------------------------------------------------------------------------------------------
// 1. Request heads
// ------------------------------------------------------------------------------------------------

const METHODS: &[(&str, Method)] = &[
    ("GET", Method::Get),
    ("HEAD", Method::Head),
    ("POST", Method::Post),
    ("PUT", Method::Put),
    ("DELETE", Method::Delete),
    ("PATCH", Method::Patch),
    ("OPTIONS", Method::Options),
    ("PROPFIND", Method::Other),
    ("X-CUSTOM", Method::Other),
    ("get", Method::Other),
];

const CONNECTION_VALUES: &[&str] = &["close", "keep-alive", "Keep-Alive", "upgrade, CLOSE", "TE"];

#[derive(Debug, Clone)]
enum GenFraming {
    None,
    /// Value, sent twice, extra leading zeros.
    Length(u64, bool, usize),
    /// Spelling of "chunked".
    Chunked(&'static str),
    /// Framing headers that do not delimit the body unambiguously: must be refused with 400.
    Ambiguous(&'static [(&'static str, &'static str)]),
}

const AMBIGUOUS: &[&[(&str, &str)]] = &[
    &[("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
    &[("Transfer-Encoding", "chunked"), ("content-length", "0")],
    &[("Content-Length", "5"), ("Content-Length", "6")],
    &[("Content-Length", "5"), ("Content-Length", "05, 5")],
    &[
        ("Transfer-Encoding", "chunked"),
        ("Transfer-Encoding", "chunked"),
    ],
    &[("Transfer-Encoding", "gzip, chunked")],
    &[("Transfer-Encoding", "chunked, gzip")],
    &[("Transfer-Encoding", "identity")],
    &[("Transfer-Encoding", "chunked;q=1")],
    &[("Transfer-Encoding", "")],
    &[("Content-Length", "+5")],
    &[("Content-Length", "-1")],
    &[("Content-Length", "5 5")],
    &[("Content-Length", "5,5")],
    &[("Content-Length", "0x10")],
    &[("Content-Length", "1e3")],
    &[("Content-Length", "")],
    &[("Content-Length", "18446744073709551616")],
];

#[derive(Debug, Clone)]
struct GenHead {
    method: usize,
    path: String,
    query: Option<String>,
    minor: u8,
    custom: Vec<(String, String)>,
    framing: GenFraming,
    connection: Option<&'static str>,
    expect: bool,
    /// Whitespace choices around header values, cycled.
    ows: Vec<u8>,
}

impl GenHead {
    fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    /// All header lines, before shuffling.
    fn lines(&self) -> Vec<(String, String)> {
        let mut lines = self.custom.clone();
        match &self.framing {
            GenFraming::None => {}
            GenFraming::Length(n, twice, zeros) => {
                let digits = n.to_string();
                let zeros = (*zeros).min(19 - digits.len());
                let v = format!("{}{digits}", "0".repeat(zeros));
                lines.push(("Content-Length".into(), v.clone()));
                if *twice {
                    lines.push(("content-length".into(), v));
                }
            }
            GenFraming::Chunked(spelling) => {
                lines.push(("Transfer-Encoding".into(), (*spelling).into()));
            }
            GenFraming::Ambiguous(headers) => {
                lines.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
            }
        }
        if let Some(c) = self.connection {
            lines.push(("Connection".into(), c.into()));
        }
        if self.expect {
            lines.push(("Expect".into(), "100-continue".into()));
        }
        lines
    }

    fn render(&self, lines: &[(String, String)]) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.{}\r\n",
            METHODS[self.method].0,
            self.target(),
            self.minor
        );
        for (k, (name, value)) in lines.iter().enumerate() {
            let ows = |j: usize| match self.ows[(2 * k + j) % self.ows.len()] % 4 {
                0 => " ",
                1 => "",
                2 => "\t",
                _ => "  ",
            };
            out.push_str(&format!("{name}:{}{value}{}\r\n", ows(0), ows(1)));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    fn expected_framing(&self) -> BodyFraming {
        match self.framing {
            GenFraming::None | GenFraming::Length(0, _, _) => BodyFraming::None,
            GenFraming::Length(n, _, _) => BodyFraming::Length(n),
            GenFraming::Chunked(_) => BodyFraming::Chunked,
            GenFraming::Ambiguous(_) => unreachable!("refused"),
        }
    }

    fn expected_keep_alive(&self) -> bool {
        let tokens: Vec<String> = self
            .connection
            .unwrap_or("")
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        let close = tokens.iter().any(|t| t == "close");
        let keep = tokens.iter().any(|t| t == "keep-alive");
        if self.minor == 1 {
            !close
        } else {
            keep && !close
        }
    }
}

fn gen_framing() -> impl Strategy<Value = GenFraming> {
    prop_oneof![
        Just(GenFraming::None),
        (
            prop_oneof![0u64..1000, 0u64..=9_999_999_999_999_999_999],
            any::<bool>(),
            0usize..3
        )
            .prop_map(|(n, t, z)| GenFraming::Length(n, t, z)),
        select(&["chunked", "Chunked", "CHUNKED"][..]).prop_map(GenFraming::Chunked),
        select(AMBIGUOUS).prop_map(GenFraming::Ambiguous),
    ]
}

fn gen_head() -> impl Strategy<Value = (GenHead, Vec<(String, String)>)> {
    let custom = vec(
        ("[A-Za-z][A-Za-z0-9-]{0,10}", "([!-~]([ !-~]{0,20}[!-~])?)?"),
        0..8,
    )
    .prop_map(|hs| {
        // Names that cannot collide with the framing headers.
        hs.into_iter()
            .enumerate()
            .map(|(i, (n, v))| (format!("X{i}-{n}"), v))
            .collect::<Vec<_>>()
    });
    // Sometimes one name twice (in another case, with another value): lookups find the first.
    let custom = (
        custom,
        proptest::option::of((any::<usize>(), "[!-~]{1,10}")),
    )
        .prop_map(|(mut hs, dup)| {
            if let (Some((i, v)), false) = (dup, hs.is_empty()) {
                let name = hs[i % hs.len()].0.to_ascii_uppercase();
                hs.push((name, v));
            }
            hs
        });
    (
        0..METHODS.len(),
        "/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,30}",
        proptest::option::of("[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,30}"),
        0u8..=1,
        custom,
        gen_framing(),
        proptest::option::of(select(CONNECTION_VALUES)),
        any::<bool>(),
        vec(any::<u8>(), 1..8),
    )
        .prop_map(
            |(method, path, query, minor, custom, framing, connection, expect, ows)| GenHead {
                method,
                path,
                query,
                minor,
                custom,
                framing,
                connection,
                expect,
                ows,
            },
        )
        .prop_flat_map(|g| {
            let lines = g.lines();
            (Just(g), Just(lines).prop_shuffle())
        })
}

/// Parses `buf` as a request head: `Ok(None)` when partial.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, RequestHead)>, ApiError> {
    match head::parse(buf)? {
        Parse::Partial => Ok(None),
        Parse::Complete(parts) => {
            let len = parts.len;
            assert!(len <= buf.len(), "Complete({len}) for {} bytes", buf.len());
            let raw = Bytes::copy_from_slice(&buf[..len]);
            RequestHead::from_parts(raw, parts).map(|h| Some((len, h)))
        }
    }
}

/// What every accepted head must satisfy, whatever bytes it came from.
fn check_head_invariants(h: &RequestHead) {
    let m = h.method_str();
    assert!(
        !m.is_empty() && m.bytes().all(is_tchar),
        "method {m:?} is not a token"
    );
    let target = h.target();
    assert!(target.starts_with('/'), "target {target:?}");
    let path = h.path();
    assert!(target.starts_with(path));
    assert!(!path.contains('?'));
    assert!(path.len() == target.len() || target.as_bytes()[path.len()] == b'?');

    let cls: Vec<&[u8]> = h
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v)
        .collect();
    let tes: Vec<&[u8]> = h
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        .map(|(_, v)| v)
        .collect();
    match h.framing {
        BodyFraming::Chunked => {
            assert!(cls.is_empty(), "chunked with Content-Length {cls:?}");
            assert_eq!(tes.len(), 1);
            assert!(trim_ows(tes[0]).eq_ignore_ascii_case(b"chunked"));
            assert_eq!(h.minor_version, 1);
        }
        BodyFraming::Length(n) => {
            assert!(n > 0);
            assert!(tes.is_empty(), "length with Transfer-Encoding {tes:?}");
            assert!(!cls.is_empty());
            for v in &cls {
                assert_eq!(digits_value(v), Some(n), "Content-Length {v:?} vs {n}");
            }
        }
        BodyFraming::None => {
            assert!(tes.is_empty());
            for v in &cls {
                assert_eq!(digits_value(v), Some(0));
            }
        }
    }
    if h.expect_continue {
        assert_ne!(h.framing, BodyFraming::None);
    }
    let close = h
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .any(|(_, v)| {
            v.split(|&b| b == b',')
                .any(|t| trim_ows(t).eq_ignore_ascii_case(b"close"))
        });
    if close || h.minor_version == 0 && h.header("connection").is_none() {
        assert!(!h.keep_alive);
    }
}

const HEAD_TOKENS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b" ",
    b"/",
    b"/v1/messages",
    b"?a=b",
    b"HTTP/1.1",
    b"HTTP/1.0",
    b"\r\n",
    b"\r",
    b"\n",
    b":",
    b": ",
    b"Content-Length",
    b"Transfer-Encoding",
    b"chunked",
    b"Connection",
    b"close",
    b"Expect",
    b"100-continue",
    b"5",
    b"-1",
    b"\t",
    b",",
    b"\0",
    b"\xff",
    b"x",
    b"http://h/",
];

fn head_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..200),
        vec(select(HEAD_TOKENS), 0..40).prop_map(|ts| ts.concat()),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn head_arbitrary_bytes_never_panic(buf in head_like_bytes()) {
        if let Ok(Some((_, h))) = parse_head(&buf) {
            check_head_invariants(&h);
        }
    }

    #[test]
    fn head_mutations_never_panic_and_keep_invariants(
        (g, lines) in gen_head(),
        muts in vec(mutation(b" \t\r\n:/?,;0123456789-aAzZ\0\x7f\x80"), 1..4),
    ) {
        let mut buf = g.render(&lines);
        apply(&mut buf, &muts);
        if let Ok(Some((len, h))) = parse_head(&buf) {
            prop_assert!(buf[..len].ends_with(b"\n"));
            check_head_invariants(&h);
        }
    }

    #[test]
    fn head_round_trips((g, lines) in gen_head(), trailing in vec(any::<u8>(), 0..16)) {
        let text = g.render(&lines);
        let mut buf = text.clone();
        buf.extend_from_slice(&trailing);
        let parsed = parse_head(&buf);
        if matches!(g.framing, GenFraming::Chunked(_)) && g.minor == 0 {
            let e = parsed.expect_err("chunked HTTP/1.0 must be refused");
            prop_assert_eq!(e.status, 400);
            return Ok(());
        }
        if let GenFraming::Ambiguous(headers) = g.framing {
            match parsed {
                Err(e) => prop_assert_eq!(e.status, 400),
                Ok(h) => panic!("ambiguous framing {headers:?} accepted: {h:?}"),
            }
            return Ok(());
        }
        let (len, h) = match parsed {
            Ok(Some(x)) => x,
            other => panic!("valid head not accepted: {other:?}\n{}", String::from_utf8_lossy(&text)),
        };
        prop_assert_eq!(len, text.len());
        check_head_invariants(&h);
        prop_assert_eq!(h.method, METHODS[g.method].1);
        prop_assert_eq!(h.method_str(), METHODS[g.method].0);
        prop_assert_eq!(h.target(), g.target());
        prop_assert_eq!(h.path(), g.path.as_str());
        prop_assert_eq!(h.minor_version, g.minor);
        prop_assert_eq!(h.framing, g.expected_framing());
        prop_assert_eq!(h.keep_alive, g.expected_keep_alive());
        prop_assert_eq!(h.expect_continue, g.expect && g.expected_framing() != BodyFraming::None);
        prop_assert_eq!(h.headers().count(), lines.len());
        for (name, _) in &g.custom {
            let first = lines
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes());
            prop_assert_eq!(h.header(name), first);
            prop_assert_eq!(h.header(&name.to_ascii_lowercase()), first);
            prop_assert_eq!(h.header(&name.to_ascii_uppercase()), first);
        }
        prop_assert_eq!(h.header("y-not-sent"), None);
    }

    #[test]
    fn head_strict_prefixes_are_partial((g, lines) in gen_head()) {
        let text = g.render(&lines);
        for cut in 0..text.len() {
            match head::parse(&text[..cut]) {
                Ok(Parse::Partial) => {}
                Ok(Parse::Complete(p)) => panic!("prefix of {cut} bytes complete at {}", p.len),
                Err(e) => panic!(
                    "prefix {:?} refused: {}",
                    String::from_utf8_lossy(&text[..cut]),
                    e.message
                ),
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// 2. Chunked coding
// ------------------------------------------------------------------------------------------------

/// How to encode a payload.
#[derive(Debug, Clone)]
struct Chunking {
    sizes: Vec<usize>,
    /// Extension choice per chunk, cycled.
    exts: Vec<u8>,
    upper: bool,
    /// Leading zeros on sizes (a legal spelling).
    zeros: usize,
    trailers: Vec<String>,
}

#[derive(Debug, Clone)]
struct Encoded {
    bytes: Vec<u8>,
    /// Positions of the CR and LF bytes that delimit the framing.
    crlf: Vec<usize>,
    /// Positions of chunk-size hex digits.
    size_digits: Vec<usize>,
}

const EXTS: &[&str] = &[
    "",
    "",
    ";name",
    ";name=value",
    ";a=\"quoted ; value\"",
    " ;bws=1",
    "\t;x",
    ";a=1;b=2",
];

fn encode_chunked(payload: &[u8], c: &Chunking) -> Encoded {
    let mut e = Encoded {
        bytes: Vec::new(),
        crlf: Vec::new(),
        size_digits: Vec::new(),
    };
    let crlf = |e: &mut Encoded| {
        e.crlf.push(e.bytes.len());
        e.crlf.push(e.bytes.len() + 1);
        e.bytes.extend_from_slice(b"\r\n");
    };
    let size_line = |e: &mut Encoded, n: usize, k: usize| {
        let hex = if c.upper {
            format!("{n:X}")
        } else {
            format!("{n:x}")
        };
        let pad = if c.zeros == PAD_TO_16 {
            16 - hex.len()
        } else {
            c.zeros
        };
        let hex = format!("{}{hex}", "0".repeat(pad));
        for b in hex.bytes() {
            e.size_digits.push(e.bytes.len());
            e.bytes.push(b);
        }
        let ext = EXTS[c.exts[k % c.exts.len()] as usize % EXTS.len()];
        e.bytes.extend_from_slice(ext.as_bytes());
        crlf(e);
    };
    let mut at = 0;
    let mut k = 0;
    while at < payload.len() {
        let n = c.sizes[k % c.sizes.len()].min(payload.len() - at);
        size_line(&mut e, n, k);
        e.bytes.extend_from_slice(&payload[at..at + n]);
        crlf(&mut e);
        at += n;
        k += 1;
    }
    size_line(&mut e, 0, k);
    for t in &c.trailers {
        e.bytes.extend_from_slice(t.as_bytes());
        crlf(&mut e);
    }
    crlf(&mut e);
    e
}

/// `Chunking::zeros` value asking for sizes of exactly 16 hex digits, the most allowed.
const PAD_TO_16: usize = usize::MAX;

fn chunking(zeros: bool) -> impl Strategy<Value = Chunking> {
    (
        vec(1usize..=80, 1..6),
        vec(any::<u8>(), 1..6),
        any::<bool>(),
        if zeros {
            prop_oneof![0usize..3, Just(PAD_TO_16)].boxed()
        } else {
            Just(0usize).boxed()
        },
        vec("[A-Za-z][A-Za-z0-9-]{0,8}: [ -~]{0,12}", 0..3),
    )
        .prop_map(|(sizes, exts, upper, zeros, trailers)| Chunking {
            sizes,
            exts,
            upper,
            zeros,
            trailers,
        })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Done {
        payload: Vec<u8>,
        consumed: usize,
    },
    Incomplete {
        payload: Vec<u8>,
    },
    /// With the payload delivered before the error.
    Invalid {
        payload: Vec<u8>,
    },
}

/// Drives `ChunkedDecoder::step` over `input` fed in pieces, checking the step contract on the
/// way: progress on every call, payload ranges inside what was consumed, and `is_done` exactly
/// when the terminator has been consumed (only known for valid input, so `end` is optional).
fn run_step(input: &[u8], sizes: &[usize], end: Option<usize>) -> Outcome {
    let mut d = ChunkedDecoder::new();
    let mut payload = Vec::new();
    let mut base = 0;
    for n in pieces(input.len(), sizes) {
        let piece = &input[base..base + n];
        let mut at = 0;
        while at < piece.len() && !d.is_done() {
            let s = match d.step(&piece[at..]) {
                Ok(s) => s,
                Err(_) => return Outcome::Invalid { payload },
            };
            assert!(s.consumed >= 1, "no progress on non-empty input");
            assert!(at + s.consumed <= piece.len());
            if let Some(r) = s.data {
                assert!(
                    !r.is_empty() && r.end <= s.consumed,
                    "{r:?} vs {}",
                    s.consumed
                );
                payload.extend_from_slice(&piece[at + r.start..at + r.end]);
            }
            at += s.consumed;
            if let Some(end) = end {
                assert_eq!(d.is_done(), base + at == end, "done at {}", base + at);
            }
        }
        if d.is_done() {
            // Nothing more is taken once done.
            let s = d.step(&input[base + at..]).expect("step after done");
            assert_eq!(
                s,
                ringgate::http::chunked::Step {
                    consumed: 0,
                    data: None
                }
            );
            return Outcome::Done {
                payload,
                consumed: base + at,
            };
        }
        base += n;
    }
    Outcome::Incomplete { payload }
}

/// `decode_in_place` over the same pieces, as the relay uses it.
fn run_in_place(input: &[u8], sizes: &[usize]) -> Outcome {
    let mut d = ChunkedDecoder::new();
    let mut payload = Vec::new();
    let mut base = 0;
    for n in pieces(input.len(), sizes) {
        let mut buf = input[base..base + n].to_vec();
        let r = d.decode_in_place(&mut buf);
        let (written, read) = (r.data, r.consumed);
        assert!(read <= n && written <= read);
        // Payload decoded before an error is still good.
        payload.extend_from_slice(&buf[..written]);
        if r.error.is_some() {
            return Outcome::Invalid { payload };
        }
        if d.is_done() {
            return Outcome::Done {
                payload,
                consumed: base + read,
            };
        }
        assert_eq!(read, n, "not done, yet input was left unread");
        base += n;
    }
    Outcome::Incomplete { payload }
}

fn hexval(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

/// An independent decoder for RFC 9112 §7.1 chunked coding. It is as lenient as ringgate
/// documents being (any bytes in an extension after ';' and in trailer lines, whitespace before
/// ';' or the CR) and strict where framing is decided: 1–16 hex digits, then optional whitespace,
/// then ';' or CRLF, exact data lengths and CRLF everywhere.
fn reference_chunked(input: &[u8]) -> Outcome {
    let mut i = 0;
    let mut payload = Vec::new();
    macro_rules! need {
        () => {
            if i >= input.len() {
                return Outcome::Incomplete { payload };
            }
        };
    }
    macro_rules! expect {
        ($b:expr) => {
            need!();
            if input[i] != $b {
                return Outcome::Invalid {
                    payload: Vec::new(),
                };
            }
            i += 1;
        };
    }
    loop {
        let mut size = 0u64;
        let mut digits = 0;
        loop {
            need!();
            match hexval(input[i]) {
                Some(_) if digits == 16 => {
                    return Outcome::Invalid {
                        payload: Vec::new(),
                    }
                }
                Some(d) => {
                    size = size << 4 | d;
                    digits += 1;
                    i += 1;
                }
                None => break,
            }
        }
        if digits == 0 {
            return Outcome::Invalid {
                payload: Vec::new(),
            };
        }
        loop {
            need!();
            if !matches!(input[i], b' ' | b'\t') {
                break;
            }
            i += 1;
        }
        if input[i] == b';' {
            loop {
                need!();
                match input[i] {
                    b'\r' => break,
                    b'\n' => {
                        return Outcome::Invalid {
                            payload: Vec::new(),
                        }
                    }
                    _ => i += 1,
                }
            }
        }
        expect!(b'\r');
        expect!(b'\n');
        if size == 0 {
            break;
        }
        let avail = (input.len() - i) as u64;
        if avail < size {
            payload.extend_from_slice(&input[i..]);
            return Outcome::Incomplete { payload };
        }
        let size = size as usize;
        payload.extend_from_slice(&input[i..i + size]);
        i += size;
        expect!(b'\r');
        expect!(b'\n');
    }
    loop {
        need!();
        if input[i] == b'\r' {
            i += 1;
            expect!(b'\n');
            return Outcome::Done {
                payload,
                consumed: i,
            };
        }
        loop {
            need!();
            match input[i] {
                b'\r' => break,
                b'\n' => {
                    return Outcome::Invalid {
                        payload: Vec::new(),
                    }
                }
                _ => i += 1,
            }
        }
        expect!(b'\r');
        expect!(b'\n');
    }
}

fn same_verdict(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Invalid { .. }, Outcome::Invalid { .. }) => true,
        (Outcome::Incomplete { .. }, Outcome::Incomplete { .. }) => true,
        (x @ Outcome::Done { .. }, y @ Outcome::Done { .. }) => x == y,
        _ => false,
    }
}

const CHUNK_TOKENS: &[&[u8]] = &[
    b"0",
    b"1",
    b"5",
    b"a",
    b"F",
    b"g",
    b"\r\n",
    b"\r",
    b"\n",
    b";",
    b" ",
    b"\t",
    b"=",
    b"x",
    b"\r\n\r\n",
    b"hello",
    b"0\r\n\r\n",
    b"X-T: 1",
];

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn chunked_decodes_any_split(
        payload in vec(any::<u8>(), 0..300),
        c in chunking(true),
        rest in prop_oneof![Just(b"GET / HTTP/1.1\r\n\r\n".to_vec()), vec(any::<u8>(), 0..20)],
        sizes in split_sizes(),
    ) {
        let enc = encode_chunked(&payload, &c);
        let end = enc.bytes.len();
        let mut input = enc.bytes.clone();
        input.extend_from_slice(&rest);
        let want = Outcome::Done { payload: payload.clone(), consumed: end };
        prop_assert_eq!(&run_step(&input, &sizes, Some(end)), &want);
        prop_assert_eq!(&run_in_place(&input, &sizes), &want);
        prop_assert_eq!(&reference_chunked(&input), &want);
        // Without its last byte the body is not finished, and everything before is payload.
        let cut = run_step(&enc.bytes[..end - 1], &sizes, Some(end));
        prop_assert_eq!(cut, Outcome::Incomplete { payload });
    }

    #[test]
    fn chunked_broken_crlf_is_an_error(
        payload in vec(any::<u8>(), 0..200),
        c in chunking(true),
        pick in any::<usize>(),
        byte in any::<u8>(),
        sizes in split_sizes(),
    ) {
        let enc = encode_chunked(&payload, &c);
        let at = enc.crlf[pick % enc.crlf.len()];
        let mut input = enc.bytes.clone();
        prop_assume!(input[at] != byte);
        input[at] = byte;
        let got = run_step(&input, &sizes, None);
        prop_assert!(matches!(got, Outcome::Invalid { .. }), "{:?}: {:?}", String::from_utf8_lossy(&input), got);
        let got = run_in_place(&input, &sizes);
        prop_assert!(matches!(got, Outcome::Invalid { .. }), "{:?}: {:?}", String::from_utf8_lossy(&input), got);
    }

    #[test]
    fn chunked_size_digit_made_non_hex_is_an_error(
        // No CR in the payload, so a shortened size can never meet a CRLF where it stops.
        payload in vec(any::<u8>().prop_map(|b| if b == b'\r' { b'R' } else { b }), 0..200),
        c in chunking(false),
        pick in any::<usize>(),
        byte in any::<u8>().prop_filter("non-hex", |b| !b.is_ascii_hexdigit()),
        sizes in split_sizes(),
    ) {
        let enc = encode_chunked(&payload, &c);
        let at = enc.size_digits[pick % enc.size_digits.len()];
        let mut input = enc.bytes.clone();
        input[at] = byte;
        let got = run_step(&input, &sizes, None);
        prop_assert!(matches!(got, Outcome::Invalid { .. }), "{:?}: {:?}", String::from_utf8_lossy(&input), got);
        let got = run_in_place(&input, &sizes);
        prop_assert!(matches!(got, Outcome::Invalid { .. }), "{:?}: {:?}", String::from_utf8_lossy(&input), got);
    }

    #[test]
    fn chunked_mutations_agree_with_reference(
        payload in vec(any::<u8>(), 0..120),
        c in chunking(true),
        muts in vec(mutation(b"\r\n;: \t0123456789abcdefABCDEFgxz"), 1..4),
        sizes in split_sizes(),
    ) {
        let mut input = encode_chunked(&payload, &c).bytes;
        apply(&mut input, &muts);
        let got = run_step(&input, &sizes, None);
        let reference = reference_chunked(&input);
        prop_assert!(
            same_verdict(&got, &reference),
            "input {:?}: ringgate {:?}, reference {:?}",
            String::from_utf8_lossy(&input), got, reference
        );
        prop_assert!(same_verdict(&run_in_place(&input, &sizes), &reference));
    }

    #[test]
    fn chunked_size_line_grammar(
        chunks in vec(
            (0usize..=16, vec(any::<u8>(), 1..20), vec(select(&b" \t;ax=0\"-"[..]), 0..4)),
            0..4,
        ),
        last_suffix in vec(select(&b" \t;ax=0\"-"[..]), 0..4),
        sizes in split_sizes(),
    ) {
        let mut input = Vec::new();
        for (zeros, data, suffix) in &chunks {
            // Leading zeros take the size to up to 18 digits; more than 16 must be refused.
            input.extend_from_slice("0".repeat(*zeros).as_bytes());
            input.extend_from_slice(format!("{:x}", data.len()).as_bytes());
            input.extend_from_slice(suffix);
            input.extend_from_slice(b"\r\n");
            input.extend_from_slice(data);
            input.extend_from_slice(b"\r\n");
        }
        input.extend_from_slice(b"0");
        input.extend_from_slice(&last_suffix);
        input.extend_from_slice(b"\r\n\r\n");
        let got = run_step(&input, &sizes, None);
        let reference = reference_chunked(&input);
        prop_assert!(
            same_verdict(&got, &reference),
            "input {:?}: ringgate {:?}, reference {:?}",
            String::from_utf8_lossy(&input), got, reference
        );
    }

    #[test]
    fn chunked_arbitrary_bytes_are_split_independent(
        input in prop_oneof![
            vec(any::<u8>(), 0..200),
            vec(select(CHUNK_TOKENS), 0..40).prop_map(|ts| ts.concat()),
        ],
        sizes in split_sizes(),
    ) {
        let whole = run_step(&input, &[usize::MAX], None);
        let split = run_step(&input, &sizes, None);
        let bytewise = run_step(&input, &[1], None);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(&whole, &bytewise);
        prop_assert_eq!(&run_in_place(&input, &sizes), &whole);
        if let Outcome::Done { consumed, .. } = whole {
            prop_assert!(input[..consumed].ends_with(b"\r\n\r\n"));
        }
    }
}

// ------------------------------------------------------------------------------------------------
// 3. Body collection
// ------------------------------------------------------------------------------------------------

/// Feeds `input` in pieces the way a connection does: unconsumed bytes stay buffered.
/// Returns the body and the leftover bytes, or the error.
fn collect(
    framing: BodyFraming,
    limit: u64,
    input: &[u8],
    sizes: &[usize],
    body_end: usize,
) -> Result<(Bytes, Vec<u8>), ApiError> {
    let mut c = BodyCollector::new(framing, limit)?;
    let mut pending: Vec<u8> = Vec::new();
    let mut consumed = 0;
    let mut base = 0;
    let all = pieces(input.len(), sizes);
    let mut k = 0;
    loop {
        assert_eq!(c.is_complete(), consumed == body_end, "consumed {consumed}");
        if c.is_complete() {
            break;
        }
        if k == all.len() {
            panic!("input ran out before the body completed");
        }
        pending.extend_from_slice(&input[base..base + all[k]]);
        base += all[k];
        k += 1;
        let n = c.feed(&pending)?;
        assert!(n <= pending.len());
        if !c.is_complete() {
            assert_eq!(n, pending.len(), "an unfinished body left input unread");
        }
        pending.drain(..n);
        consumed += n;
    }
    pending.extend_from_slice(&input[base..]);
    Ok((c.finish(), pending))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn body_collects_exactly_the_body(
        payload in vec(any::<u8>(), 0..400),
        chunked in any::<bool>(),
        c in chunking(true),
        rest in prop_oneof![Just(b"POST /v1/messages HTTP/1.1\r\n".to_vec()), vec(any::<u8>(), 0..20)],
        slack in prop_oneof![-3i64..=3, 0i64..100_000],
        sizes in split_sizes(),
    ) {
        let (framing, mut input) = if chunked {
            (BodyFraming::Chunked, encode_chunked(&payload, &c).bytes)
        } else if payload.is_empty() {
            (BodyFraming::None, Vec::new())
        } else {
            (BodyFraming::Length(payload.len() as u64), payload.clone())
        };
        let body_end = input.len();
        input.extend_from_slice(&rest);
        let limit = (payload.len() as i64 + slack).max(0) as u64;
        match collect(framing, limit, &input, &sizes, body_end) {
            Ok((body, leftover)) => {
                prop_assert!(payload.len() as u64 <= limit, "{} bytes accepted over a limit of {limit}", payload.len());
                prop_assert_eq!(&body[..], &payload[..]);
                prop_assert_eq!(leftover, rest);
            }
            Err(e) => {
                prop_assert!(payload.len() as u64 > limit, "refused within the limit: {}", e.message);
                prop_assert_eq!(e.status, 413);
            }
        }
    }

    #[test]
    fn body_garbage_chunked_never_panics(
        input in vec(select(CHUNK_TOKENS), 0..40).prop_map(|ts| ts.concat()),
        limit in 0u64..64,
        sizes in split_sizes(),
    ) {
        let mut c = BodyCollector::new(BodyFraming::Chunked, limit).unwrap();
        let mut base = 0;
        for n in pieces(input.len(), &sizes) {
            match c.feed(&input[base..base + n]) {
                Ok(used) => {
                    prop_assert!(used <= n);
                    if !c.is_complete() {
                        prop_assert_eq!(used, n);
                    }
                }
                Err(e) => {
                    prop_assert!(e.status == 400 || e.status == 413);
                    return Ok(());
                }
            }
            if c.is_complete() {
                break;
            }
            base += n;
        }
        prop_assert!(c.finish().len() as u64 <= limit);
    }
}

// ------------------------------------------------------------------------------------------------
// 4. The JSON skim, against simd-json
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Num(&'static str),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "42",
    "3.25",
    "1e10",
    "-0.5E-3",
    "1E+2",
    "123456789",
];

const STR_FRAGMENTS: &[&str] = &[
    "model",
    "stream",
    "\"model\":\"fake\"",
    "{\"stream\":true}",
    "\"",
    "\\",
    "\\\"",
    "/",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\\u0022",
    "\n",
    "\t",
    "\u{1}",
    "\u{1f}",
    "\u{7f}",
    "é",
    "😀",
    "\u{2028}",
    " ",
    "claude-sonnet-4-5",
];

const KEYS: &[&str] = &[
    "messages",
    "metadata",
    "max_tokens",
    "system",
    "Model",
    "MODEL",
    "models",
    "mode",
    "model ",
    " model",
    "stream_",
    "Stream",
    "streams",
    "model\"",
    "user_id",
    "x",
];

fn json_string() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![
            3 => select(STR_FRAGMENTS).prop_map(String::from),
            1 => any::<char>().prop_map(String::from),
        ],
        0..6,
    )
    .prop_map(|v| v.concat())
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(KEYS).prop_map(String::from),
        1 => select(&["model", "stream"][..]).prop_map(String::from),
        1 => json_string(),
    ]
}

fn json_value() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        select(NUMBERS).prop_map(J::Num),
        json_string().prop_map(J::Str),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(J::Arr),
            vec((json_key(), inner), 0..5).prop_map(J::Obj),
        ]
    })
}

/// Serialises with whitespace and escape spellings chosen by `choices` (cycled).
struct Ser<'a> {
    out: String,
    choices: &'a [u8],
    at: usize,
}

impl Ser<'_> {
    fn pick(&mut self) -> u8 {
        let c = self.choices[self.at % self.choices.len()];
        self.at += 1;
        c
    }

    fn ws(&mut self) {
        let w = match self.pick() % 8 {
            0 => " ",
            1 => "\n  ",
            2 => "\t",
            3 => "\r\n",
            _ => "",
        };
        self.out.push_str(w);
    }

    fn u_escape(&mut self, ch: char) {
        let mut units = [0u16; 2];
        for u in ch.encode_utf16(&mut units) {
            if self.pick() % 2 == 0 {
                self.out.push_str(&format!("\\u{u:04x}"));
            } else {
                self.out.push_str(&format!("\\u{u:04X}"));
            }
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for ch in s.chars() {
            let c = self.pick();
            match ch {
                '"' if c % 3 != 0 => self.out.push_str("\\\""),
                '\\' if c % 3 != 0 => self.out.push_str("\\\\"),
                '/' if c % 3 == 1 => self.out.push_str("\\/"),
                '\n' if c % 2 == 0 => self.out.push_str("\\n"),
                '\t' if c % 2 == 0 => self.out.push_str("\\t"),
                '"' | '\\' | '\u{0}'..='\u{1f}' => self.u_escape(ch),
                _ if c % 7 == 0 => self.u_escape(ch),
                _ => self.out.push(ch),
            }
        }
        self.out.push('"');
    }

    fn value(&mut self, v: &J) {
        match v {
            J::Null => self.out.push_str("null"),
            J::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => self.out.push_str(n),
            J::Str(s) => self.string(s),
            J::Arr(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.ws();
                    self.value(item);
                    self.ws();
                }
                self.out.push(']');
            }
            J::Obj(entries) => self.object(entries),
        }
    }

    fn object(&mut self, entries: &[(String, J)]) {
        self.out.push('{');
        for (i, (k, v)) in entries.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.ws();
            self.string(k);
            self.ws();
            self.out.push(':');
            self.ws();
            self.value(v);
            self.ws();
        }
        if entries.is_empty() {
            self.ws();
        }
        self.out.push('}');
    }
}

#[derive(Debug, Clone)]
struct Doc {
    entries: Vec<(String, J)>,
    choices: Vec<u8>,
}

impl Doc {
    fn render(&self) -> Vec<u8> {
        let mut s = Ser {
            out: String::new(),
            choices: &self.choices,
            at: 0,
        };
        s.ws();
        s.object(&self.entries);
        s.ws();
        s.out.into_bytes()
    }
}

fn gen_doc() -> impl Strategy<Value = Doc> {
    let model = prop_oneof![
        8 => json_string().prop_map(J::Str),
        1 => Just(J::Null),
        1 => Just(J::Num("1")),
        1 => Just(J::Arr(vec![J::Str("m".into())])),
        1 => json_value(),
    ];
    let stream = prop_oneof![
        8 => any::<bool>().prop_map(J::Bool),
        1 => Just(J::Null),
        1 => Just(J::Num("1")),
        1 => Just(J::Str("true".into())),
        1 => Just(J::Arr(vec![J::Bool(true)])),
        1 => json_value(),
    ];
    (
        vec((json_key(), json_value()), 0..6),
        proptest::option::of((model, any::<usize>())),
        proptest::option::of((stream, any::<usize>())),
        vec(any::<u8>(), 1..32),
        proptest::option::of((
            vec((json_key(), json_value()), 0..3),
            json_string(),
            any::<usize>(),
        )),
    )
        .prop_map(|(mut entries, model, stream, choices, metadata)| {
            if let Some((mut fields, user_id, at)) = metadata {
                fields.insert(at % (fields.len() + 1), ("user_id".into(), J::Str(user_id)));
                let at = at % (entries.len() + 1);
                entries.insert(at, ("metadata".into(), J::Obj(fields)));
            }
            if let Some((v, at)) = model {
                let at = at % (entries.len() + 1);
                entries.insert(at, ("model".into(), v));
            }
            if let Some((v, at)) = stream {
                let at = at % (entries.len() + 1);
                entries.insert(at, ("stream".into(), v));
            }
            Doc { entries, choices }
        })
}

/// What simd-json says about the top level of a document.
#[derive(Debug, PartialEq)]
enum Oracle {
    Rejected,
    NotAnObject,
    Object {
        model_keys: usize,
        stream_keys: usize,
        model: Option<String>,
        stream: Option<bool>,
        /// The last `metadata` object's last `user_id`, when that is a string.
        user_id: Option<String>,
    },
}

fn oracle(body: &[u8]) -> Oracle {
    let mut copy = body.to_vec();
    let Ok(tape) = simd_json::to_tape(&mut copy) else {
        return Oracle::Rejected;
    };
    let value = tape.as_value();
    let Some(obj) = value.as_object() else {
        return Oracle::NotAnObject;
    };
    let (mut model_keys, mut stream_keys, mut model, mut stream) = (0, 0, None, None);
    let mut user_id = None;
    for (k, v) in obj.iter() {
        if k == "model" {
            model_keys += 1;
            model = v.as_str().map(String::from);
        } else if k == "stream" {
            stream_keys += 1;
            stream = v.as_bool();
        } else if k == "metadata" {
            let last = v.as_object().and_then(|m| {
                let mut found = None;
                for (k, v) in m.iter() {
                    if k == "user_id" {
                        found = Some(v.as_str().map(String::from));
                    }
                }
                found.flatten()
            });
            user_id = last;
        }
    }
    Oracle::Object {
        model_keys,
        stream_keys,
        model,
        stream,
        user_id,
    }
}

/// Skim and oracle must agree on any document the oracle accepts.
fn check_skim_against_oracle(body: &[u8]) -> Result<(), TestCaseError> {
    let got = skim(body);
    let shown = String::from_utf8_lossy(body);
    match oracle(body) {
        Oracle::Rejected => {}
        Oracle::NotAnObject => prop_assert!(got.is_err(), "non-object accepted: {shown:?}"),
        Oracle::Object {
            model_keys,
            stream_keys,
            model,
            stream,
            user_id,
        } => {
            if model_keys > 1 || stream_keys > 1 {
                prop_assert!(got.is_err(), "duplicate key accepted: {shown:?}");
            } else {
                let s = match got {
                    Ok(s) => s,
                    Err(e) => {
                        return Err(TestCaseError::fail(format!(
                            "valid JSON refused ({}): {shown:?}",
                            e.0
                        )))
                    }
                };
                let m = s.model(body).map(|m| m.into_owned());
                prop_assert_eq!(&m, &model, "model of {:?}", shown);
                prop_assert_eq!(s.stream, stream, "stream of {:?}", shown);
                let u = s
                    .user_id(body)
                    .map(|raw| unescape(raw).map(|u| u.into_owned()));
                prop_assert_eq!(u, user_id.map(Some), "metadata.user_id of {:?}", shown);
            }
        }
    }
    Ok(())
}

const JSON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b":",
    b",",
    b" ",
    b"\"model\"",
    b"\"stream\"",
    b"true",
    b"false",
    b"null",
    b"1",
    b"-",
    b"\"x\"",
    b"\\u",
    b"0041",
    b"\xff",
    b"\n",
];

const JSON_INTERESTING: &[u8] = b"{}[]\",:\\ \n\tntfu0-e.\x00\x1f\x7f\xc3\xff";

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn skim_agrees_with_simd_json(doc in gen_doc()) {
        let body = doc.render();
        // The generator only writes valid JSON objects.
        let o = oracle(&body);
        prop_assert!(matches!(o, Oracle::Object { .. }), "generator wrote {:?}", String::from_utf8_lossy(&body));
        check_skim_against_oracle(&body)?;
        // And the oracle agrees with what was generated.
        let s = skim(&body);
        let model_keys = doc.entries.iter().filter(|(k, _)| k == "model").count();
        let stream_keys = doc.entries.iter().filter(|(k, _)| k == "stream").count();
        if model_keys <= 1 && stream_keys <= 1 {
            let s = s.expect("checked above");
            let want_model = doc.entries.iter().find_map(|(k, v)| match v {
                J::Str(m) if k == "model" => Some(m.clone()),
                _ => None,
            });
            let want_stream = doc.entries.iter().find_map(|(k, v)| match v {
                J::Bool(b) if k == "stream" => Some(*b),
                _ => None,
            });
            prop_assert_eq!(s.model(&body).map(|m| m.into_owned()), want_model);
            prop_assert_eq!(s.stream, want_stream);
            prop_assert_eq!(s.is_stream(), want_stream == Some(true));
        } else {
            prop_assert!(s.is_err());
        }
    }

    #[test]
    fn skim_mutated_documents(
        doc in gen_doc(),
        muts in vec(mutation(JSON_INTERESTING), 1..4),
    ) {
        let mut body = doc.render();
        apply(&mut body, &muts);
        check_skim_against_oracle(&body)?;
    }

    #[test]
    fn skim_arbitrary_bytes(
        body in prop_oneof![
            vec(any::<u8>(), 0..200),
            vec(select(JSON_TOKENS), 0..40).prop_map(|ts| ts.concat()),
        ],
    ) {
        if let Ok(s) = skim(&body) {
            if let Some(r) = &s.model {
                prop_assert!(r.start <= r.end && r.end <= body.len());
                prop_assert!(s.model(&body).is_some(), "model range does not decode");
            }
        }
        check_skim_against_oracle(&body)?;
    }
}

// ------------------------------------------------------------------------------------------------
// 5. Upstream response heads
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum GenLength {
    None,
    One(u64),
    Twice(u64),
    Conflicting(u64, u64),
}

#[derive(Debug, Clone)]
struct GenResponse {
    minor: u8,
    status: u16,
    reason: String,
    custom: Vec<(String, String)>,
    length: GenLength,
    /// Transfer codings, split over one or two header lines (HTTP/1.1 only).
    te: Vec<Vec<&'static str>>,
    close: bool,
    request_was_head: bool,
}

impl GenResponse {
    fn lines(&self) -> Vec<(String, String)> {
        let mut lines = self.custom.clone();
        match self.length {
            GenLength::None => {}
            GenLength::One(n) => lines.push(("Content-Length".into(), n.to_string())),
            GenLength::Twice(n) => {
                lines.push(("Content-Length".into(), n.to_string()));
                lines.push(("content-length".into(), n.to_string()));
            }
            GenLength::Conflicting(a, b) => {
                lines.push(("Content-Length".into(), a.to_string()));
                lines.push(("Content-Length".into(), b.to_string()));
            }
        }
        for codings in &self.te {
            lines.push(("Transfer-Encoding".into(), codings.join(", ")));
        }
        if self.close {
            lines.push(("Connection".into(), "close".into()));
        }
        lines
    }

    fn render(&self, lines: &[(String, String)]) -> Vec<u8> {
        let mut out = format!("HTTP/1.{} {} {}\r\n", self.minor, self.status, self.reason);
        for (n, v) in lines {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// RFC 9112 §6.3, in order. `lines` are the header lines in the order they were sent.
    fn expected(&self, lines: &[(String, String)]) -> Want {
        let conflicting = matches!(self.length, GenLength::Conflicting(..));
        if conflicting && self.te.is_empty() {
            return Want::Refused;
        }
        let framing = if self.request_was_head
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304
        {
            ResponseFraming::None
        } else if !self.te.is_empty() {
            // Transfer-Encoding overrides Content-Length, wherever the lines are; the codings
            // of all its lines form one list, and only a final "chunked" delimits the body.
            let codings: Vec<&str> = lines
                .iter()
                .filter(|(n, _)| n == "Transfer-Encoding")
                .flat_map(|(_, v)| v.split(',').map(str::trim))
                .collect();
            if codings.last() == Some(&"chunked") {
                ResponseFraming::Chunked
            } else {
                ResponseFraming::UntilClose
            }
        } else {
            match self.length {
                GenLength::One(n) | GenLength::Twice(n) => ResponseFraming::Length(n),
                _ => ResponseFraming::UntilClose,
            }
        };
        let keep_alive = self.minor == 1 && !self.close && framing != ResponseFraming::UntilClose;
        Want::Head {
            framing,
            keep_alive,
            may_refuse: conflicting,
        }
    }
}

#[derive(Debug)]
enum Want {
    Refused,
    Head {
        framing: ResponseFraming,
        keep_alive: bool,
        /// Conflicting lengths beside a Transfer-Encoding: they do not decide the framing
        /// (RFC 9112 §6.3 rule 3), so refusing the response is as good as ignoring them.
        may_refuse: bool,
    },
}

const CODINGS: &[&str] = &["chunked", "gzip", "deflate", "br"];

fn gen_response() -> impl Strategy<Value = (GenResponse, Vec<(String, String)>)> {
    let status = prop_oneof![
        select(&[100u16, 101, 200, 204, 206, 304, 400, 429, 500, 529][..]),
        100u16..=599,
    ];
    let length = prop_oneof![
        Just(GenLength::None),
        any::<u64>().prop_map(GenLength::One),
        (0u64..10_000).prop_map(GenLength::Twice),
        (0u64..100, 100u64..200).prop_map(|(a, b)| GenLength::Conflicting(a, b)),
    ];
    let te = vec(vec(select(CODINGS), 1..3), 0..3);
    (
        0u8..=1,
        status,
        "([!-~]([ !-~]{0,16}[!-~])?)?",
        vec(("[A-Za-z][A-Za-z0-9-]{0,10}", "[!-~]{1,20}"), 0..5),
        length,
        te,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(minor, status, reason, custom, length, te, close, request_was_head)| GenResponse {
                minor,
                status,
                reason,
                custom: custom
                    .into_iter()
                    .enumerate()
                    .map(|(i, (n, v))| (format!("X{i}-{n}"), v))
                    .collect(),
                length,
                te: if minor == 1 { te } else { Vec::new() },
                close,
                request_was_head,
            },
        )
        .prop_flat_map(|g| {
            let lines = g.lines();
            (Just(g), Just(lines).prop_shuffle())
        })
}

const RESPONSE_TOKENS: &[&[u8]] = &[
    b"HTTP/1.1 200\r\n",
    b"\x80",
    b"HTTP/1.1 ",
    b"HTTP/1.0 ",
    b"200",
    b"204",
    b"101",
    b" OK",
    b"\r\n",
    b"\n",
    b"Content-Length: ",
    b"Transfer-Encoding: ",
    b"chunked",
    b"gzip",
    b",",
    b"5",
    b"Connection: close",
    b":",
    b" ",
    b"\xff",
];

fn parse_response(buf: &[u8], was_head: bool) -> Result<Option<(usize, ResponseHead)>, String> {
    match response::parse(buf)? {
        None => Ok(None),
        Some((len, layout)) => {
            assert!(len <= buf.len());
            ResponseHead::new(Bytes::copy_from_slice(&buf[..len]), layout, was_head)
                .map(|h| Some((len, h)))
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn response_round_trips((g, lines) in gen_response(), trailing in vec(any::<u8>(), 0..16)) {
        let text = g.render(&lines);
        let mut buf = text.clone();
        buf.extend_from_slice(&trailing);
        for cut in 0..text.len() {
            prop_assert!(matches!(response::parse(&text[..cut]), Ok(None)), "prefix of {} bytes", cut);
        }
        let got = parse_response(&buf, g.request_was_head);
        let shown = String::from_utf8_lossy(&text);
        match g.expected(&lines) {
            Want::Refused => prop_assert!(got.is_err(), "conflicting lengths accepted: {shown:?}"),
            Want::Head { may_refuse: true, .. } if got.is_err() => {}
            Want::Head { framing, keep_alive, .. } => {
                let (len, h) = match got {
                    Ok(Some(x)) => x,
                    other => panic!("valid response not accepted: {other:?}\n{shown}"),
                };
                prop_assert_eq!(len, text.len());
                prop_assert_eq!(h.status, g.status);
                prop_assert_eq!(h.reason(), g.reason.as_bytes());
                prop_assert_eq!(h.framing, framing, "framing of {:?}", shown);
                prop_assert_eq!(h.keep_alive, keep_alive, "keep-alive of {:?}", shown);
                for (n, v) in &g.custom {
                    prop_assert_eq!(h.header(&n.to_ascii_lowercase()), Some(v.as_bytes()));
                }
            }
        }
    }

    #[test]
    fn response_status_line_forms(
        minor in 0u8..=1,
        status in 100u16..=599,
        form in 0u8..3,
        reason in "[!-~]([ !-~]{0,16}[!-~])?",
        lf_only in any::<bool>(),
    ) {
        // A reason phrase, none at all (no SP after the code, allowed by httparse), or one with
        // obs-text (which httparse reports as empty).
        let eol: &[u8] = if lf_only { b"\n" } else { b"\r\n" };
        let mut buf = format!("HTTP/1.{minor} {status}").into_bytes();
        match form {
            0 => buf.extend_from_slice(format!(" {reason}").as_bytes()),
            1 => {}
            _ => {
                buf.extend_from_slice(format!(" {reason}").as_bytes());
                buf.push(0xe9);
            }
        }
        buf.extend_from_slice(eol);
        buf.extend_from_slice(b"Content-Length: 0");
        buf.extend_from_slice(eol);
        buf.extend_from_slice(eol);
        let (len, h) = parse_response(&buf, false)
            .expect("a valid status line")
            .expect("complete");
        prop_assert_eq!(len, buf.len());
        prop_assert_eq!(h.status, status);
        let want: &[u8] = if form == 0 { reason.as_bytes() } else { b"" };
        prop_assert_eq!(h.reason(), want);
    }

    #[test]
    fn response_arbitrary_bytes_never_panic(
        buf in prop_oneof![
            vec(any::<u8>(), 0..200),
            vec(select(RESPONSE_TOKENS), 0..30).prop_map(|ts| ts.concat()),
        ],
        was_head in any::<bool>(),
    ) {
        if let Ok(Some((_, h))) = parse_response(&buf, was_head) {
            match h.framing {
                ResponseFraming::Chunked => prop_assert!(h.header("transfer-encoding").is_some()),
                ResponseFraming::Length(n) => {
                    for (name, v) in h.headers() {
                        if name.eq_ignore_ascii_case("content-length") {
                            prop_assert_eq!(digits_value(v), Some(n));
                        }
                    }
                }
                ResponseFraming::None => prop_assert!(
                    was_head || h.status < 200 || h.status == 204 || h.status == 304
                ),
                ResponseFraming::UntilClose => prop_assert!(!h.keep_alive),
            }
        }
    }
}
