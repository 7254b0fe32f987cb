//! What a request head costs before the gateway can pick a credential: parsing the head a client
//! SDK sends to `POST /v1/messages` (httparse, then the framing and keep-alive checks), and
//! writing the head that goes upstream in its place (hop-by-hop headers dropped, the client's key
//! swapped for the upstream's). Both run once per request, on the worker's thread, before the
//! first upstream byte is sent.
//!
//! The head is one the official Python SDK sends (its `x-stainless-*` headers included) for a
//! streamed request with a beta: 17 headers, 657 bytes.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringgate::api::headers::{upstream_request, Outbound};
use ringgate::http::head::{parse, BodyFraming, Parse, RequestHead};
use std::hint::black_box;
use std::time::Duration;

/// The client's head, as it arrives (the body follows it on the wire).
const HEAD: &str = concat!(
    "POST /v1/messages?beta=true HTTP/1.1\r\n",
    "Host: gateway.internal:8080\r\n",
    "Accept-Encoding: gzip, deflate\r\n",
    "Connection: keep-alive\r\n",
    "Accept: application/json\r\n",
    "Content-Type: application/json\r\n",
    "User-Agent: Anthropic/Python 0.69.0\r\n",
    "X-Stainless-Lang: python\r\n",
    "X-Stainless-Package-Version: 0.69.0\r\n",
    "X-Stainless-OS: Linux\r\n",
    "X-Stainless-Arch: x64\r\n",
    "X-Stainless-Runtime: CPython\r\n",
    "X-Stainless-Runtime-Version: 3.12.3\r\n",
    "x-stainless-retry-count: 0\r\n",
    "anthropic-version: 2023-06-01\r\n",
    "anthropic-beta: interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14\r\n",
    "x-api-key: sk-ant-api03-gw-Xq7Lm2Vb9Rt4Ks1Pz8Nc3Hf6Jd5Wy0Ga-client-key-of-one-team-aBcDeF\r\n",
    "Content-Length: 48213\r\n",
    "\r\n",
);
const HEADERS: usize = 17;
/// What the gateway sends instead of the client's key.
const UPSTREAM_KEY: &str =
    "sk-ant-api03-Rk2nV8cQ1xZ7tY4uW9sL3pE6hG0jF5dA-upstream-credential-number-one-AAAA";
const BODY_LEN: usize = 48_213;

const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(3);

/// The head as the connection loop builds it from the bytes of one read.
fn request_head(raw: &Bytes) -> RequestHead {
    match parse(raw) {
        Ok(Parse::Complete(parts)) => {
            match RequestHead::from_parts(raw.slice(..parts.len), parts) {
                Ok(head) => head,
                Err(e) => panic!("refused: {e:?}"),
            }
        }
        other => panic!("not a complete head: {other:?}"),
    }
}

fn outbound() -> Outbound<'static> {
    Outbound {
        path_prefix: "",
        host: "api.anthropic.com",
        api_key: Some(UPSTREAM_KEY),
        default_version: "2023-06-01",
        body_len: BODY_LEN as u64,
        chunked: false,
        stream: true,
        line: None,
    }
}

fn head(c: &mut Criterion) {
    let raw = Bytes::from_static(HEAD.as_bytes());
    let req = request_head(&raw);
    assert_eq!(req.headers().count(), HEADERS);
    assert_eq!(req.framing, BodyFraming::Length(BODY_LEN as u64));
    let up = upstream_request(&req, &outbound());
    assert!(up.ends_with(b"\r\n\r\n") && !up.windows(10).any(|w| w == b"client-key"));

    let mut g = c.benchmark_group("request_head");
    g.warm_up_time(WARM_UP).measurement_time(MEASURE);
    g.throughput(Throughput::Bytes(HEAD.len() as u64));

    g.bench_function("parse (httparse + offsets)", |b| {
        b.iter(|| match parse(black_box(&raw)) {
            Ok(Parse::Complete(parts)) => black_box(parts),
            _ => unreachable!(),
        })
    });
    // What the connection loop does per request: the checks run over every header.
    g.bench_function("parse + from_parts", |b| {
        b.iter(|| black_box(request_head(black_box(&raw))))
    });
    let out = outbound();
    g.bench_function("upstream_request", |b| {
        b.iter(|| black_box(upstream_request(black_box(&req), black_box(&out))))
    });
    g.bench_function("parse + from_parts + upstream_request", |b| {
        b.iter(|| {
            let req = request_head(black_box(&raw));
            black_box(upstream_request(&req, black_box(&out)))
        })
    });
    g.finish();
}

criterion_group!(benches, head);
criterion_main!(benches);
