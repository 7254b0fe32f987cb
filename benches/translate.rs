//! What translation costs per upstream chunk: the OpenAI and Gemini stream decoders turning a
//! streamed answer of 64 text deltas of 60 bytes into Anthropic events (one upstream event per
//! read, as a live stream arrives), the OpenAI decoder on parallel tool calls with interleaved
//! argument fragments, the Bedrock decoder unwrapping the same answer from event-stream frames
//! (and one of 2 KiB deltas), and the request encoders on a Claude Code-sized request (a long
//! system prompt, twenty tools, a conversation with tool results), Bedrock's with its SigV4
//! signature. The target: a translated 60-byte text delta costs under 1 µs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringgate::dialect::events::MessageHead;
use ringgate::dialect::request::MessagesRequest;
use ringgate::dialect::tools::ToolNames;
use ringgate::dialect::{bedrock, gemini, openai, Context};
use ringgate::stream::translate::Translate;
use serde_json::json;

const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(3);
const DELTAS: usize = 64;

fn context() -> Context {
    Context {
        head: MessageHead {
            id: "msg_bench".into(),
            model: "claude-sonnet-4-5".into(),
            input_tokens: 1000,
        },
        stream: true,
        request_id: "req_bench".into(),
        ..Context::default()
    }
}

/// 60 bytes of text for delta `i`, with a quote and a newline to escape.
fn text(i: usize) -> String {
    let mut t = format!("{i:04} the submission queue holds \"entries\" in order\n");
    t.truncate(60);
    while t.len() < 60 {
        t.push('x');
    }
    t
}

/// One `data:` event per read.
fn events(chunks: impl IntoIterator<Item = serde_json::Value>) -> Vec<Vec<u8>> {
    chunks
        .into_iter()
        .map(|c| format!("data: {c}\n\n").into_bytes())
        .collect()
}

fn openai_text() -> Vec<Vec<u8>> {
    let delta = |d: serde_json::Value| {
        json!({"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1733000000,"model":"deepseek-chat",
               "system_fingerprint":"fp_bench","choices":[{"index":0,"delta":d,"logprobs":null,"finish_reason":null}]})
    };
    let mut chunks = vec![delta(json!({"role":"assistant","content":""}))];
    chunks.extend((0..DELTAS).map(|i| delta(json!({"content": text(i)}))));
    chunks.push(
        json!({"id":"chatcmpl-bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}),
    );
    chunks.push(json!({"id":"chatcmpl-bench","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":64}}));
    let mut out = events(chunks);
    out.push(b"data: [DONE]\n\n".to_vec());
    out
}

fn openai_tools() -> Vec<Vec<u8>> {
    let call = |i: usize, c: serde_json::Value| {
        let mut c = c;
        c["index"] = json!(i);
        json!({"id":"chatcmpl-bench","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[c]}}]})
    };
    let mut chunks = Vec::new();
    for i in 0..4 {
        chunks.push(call(i, json!({"id": format!("call_{i}"), "type":"function","function":{"name":"read_file","arguments":""}})));
    }
    for piece in [
        "{\"path\": ",
        "\"src/dialect/",
        "openai/stream",
        ".rs\", \"lines",
        "\": [1, 200]}",
    ] {
        for i in 0..4 {
            chunks.push(call(i, json!({"function": {"arguments": piece}})));
        }
    }
    chunks.push(json!({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}));
    let mut out = events(chunks);
    out.push(b"data: [DONE]\n\n".to_vec());
    out
}

fn gemini_text() -> Vec<Vec<u8>> {
    events((0..DELTAS).map(|i| {
        let mut candidate = json!({"content":{"role":"model","parts":[{"text": text(i)}]},"index":0});
        if i + 1 == DELTAS {
            candidate["finishReason"] = json!("STOP");
        }
        json!({"candidates":[candidate],"usageMetadata":{"promptTokenCount":1000,"candidatesTokenCount":i,"totalTokenCount":1000 + i},
               "modelVersion":"gemini-2.5-flash","responseId":"bench"})
    }))
}

/// An Anthropic stream of `DELTAS` text deltas of `bytes` bytes, one event-stream frame per
/// event (one frame per read), as Bedrock sends it.
fn bedrock_text(bytes: usize) -> Vec<Vec<u8>> {
    let event =
        |v: serde_json::Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap());
    let mut events = vec![
        event(
            json!({"type":"message_start","message":{"id":"msg_bdrk_bench","type":"message","role":"assistant",
            "model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,
            "usage":{"input_tokens":1000,"output_tokens":1}}}),
        ),
        event(
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
        ),
    ];
    events.extend((0..DELTAS).map(|i| {
        let text = text(i).repeat(bytes.div_ceil(60))[..bytes].to_string();
        event(json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":text}}))
    }));
    events.push(event(json!({"type":"content_block_stop","index":0})));
    events.push(event(
        json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},
        "usage":{"output_tokens":64}}),
    ));
    events.push(event(json!({"type":"message_stop"})));
    events
        .iter()
        .map(|e| ringgate::mock::bedrock::frame_of(e))
        .collect()
}

/// Decodes a whole stream, one read at a time; returns the bytes written.
fn decode(mut d: Box<dyn Translate>, reads: &[Vec<u8>], out: &mut Vec<u8>) -> usize {
    out.clear();
    for r in reads {
        d.feed(r, out).expect("a good stream");
    }
    d.finish(out).expect("a good end");
    out.len()
}

/// A stream to decode: its name, its reads, and the decoder for it.
type Case = (&'static str, Vec<Vec<u8>>, fn() -> Box<dyn Translate>);

fn streams(c: &mut Criterion) {
    let cases: [Case; 5] = [
        ("openai text", openai_text(), || {
            Box::new(openai::stream::StreamDecoder::new(context()))
        }),
        ("openai parallel tool calls", openai_tools(), || {
            Box::new(openai::stream::StreamDecoder::new(context()))
        }),
        ("gemini text", gemini_text(), || {
            Box::new(gemini::stream::StreamDecoder::new(context()))
        }),
        ("bedrock text", bedrock_text(60), || {
            Box::new(bedrock::stream::StreamDecoder::new())
        }),
        ("bedrock 2 KiB deltas", bedrock_text(2048), || {
            Box::new(bedrock::stream::StreamDecoder::new())
        }),
    ];
    let mut g = c.benchmark_group("translate_stream");
    g.warm_up_time(WARM_UP).measurement_time(MEASURE);
    let mut out = Vec::with_capacity(64 * 1024);
    for (name, reads, make) in &cases {
        let produced = decode(make(), reads, &mut out);
        ringgate::dialect::grammar::check(&out).expect("a valid stream");
        assert!(produced > 0);
        // Per upstream chunk: the figure to hold against the 1 µs target.
        g.throughput(Throughput::Elements(reads.len() as u64));
        g.bench_with_input(BenchmarkId::new("per chunk", name), reads, |b, reads| {
            b.iter(|| decode(make(), black_box(reads), &mut out))
        });
    }
    g.finish();
}

/// A request the size Claude Code sends: a long system prompt, twenty tools with schemas, a
/// conversation with text, tool calls and their results.
fn claude_code_request() -> Vec<u8> {
    let schema = json!({"type":"object","properties":{"path":{"type":"string","description":"The file to read"},
        "offset":{"type":"integer"},"limit":{"type":"integer"}},"required":["path"],"additionalProperties":false,
        "$schema":"http://json-schema.org/draft-07/schema#"});
    let tools: Vec<_> = (0..20)
        .map(|i| json!({"name": format!("tool_{i}"), "description": "Reads a file from the local filesystem. ".repeat(20), "input_schema": schema}))
        .collect();
    let mut messages = Vec::new();
    for i in 0..10 {
        messages.push(json!({"role":"user","content":[{"type":"text","text":"Please look at the file and tell me what it does. ".repeat(10)}]}));
        messages.push(json!({"role":"assistant","content":[{"type":"text","text":"Let me read it."},
            {"type":"tool_use","id":format!("toolu_{i}"),"name":"tool_1","input":{"path":"src/lib.rs"}}]}));
        messages.push(json!({"role":"user","content":[{"type":"tool_result","tool_use_id":format!("toolu_{i}"),
            "content":"fn main() { println!(\"hello\"); }\n".repeat(40)}]}));
    }
    json!({"model":"claude-sonnet-4-5","max_tokens":32000,"stream":true,
           "system":[{"type":"text","text":"You are Claude Code. ".repeat(300)}],
           "tools":tools,"messages":messages,"thinking":{"type":"enabled","budget_tokens":8000}})
    .to_string()
    .into_bytes()
}

fn encoders(c: &mut Criterion) {
    let body = claude_code_request();
    let mut g = c.benchmark_group("translate_request");
    g.warm_up_time(WARM_UP).measurement_time(MEASURE);
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function(BenchmarkId::new("openai", body.len()), |b| {
        b.iter(|| {
            let req = MessagesRequest::parse(black_box(&body)).unwrap();
            openai::request::encode(
                &req,
                "deepseek-chat",
                &openai::Options::default(),
                &mut ToolNames::default(),
            )
            .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("gemini", body.len()), |b| {
        b.iter(|| {
            let req = MessagesRequest::parse(black_box(&body)).unwrap();
            gemini::request::encode(&req, "gemini-2.5-flash", false, &mut ToolNames::default())
                .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("bedrock, signed", body.len()), |b| {
        use bedrock::sigv4::{sign, Credentials, Request, Scope, BEDROCK};
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: Some("session-token"),
        };
        let scope = Scope {
            region: "us-east-1",
            service: BEDROCK,
        };
        b.iter(|| {
            let (path, body) = bedrock::request::encode(
                black_box(&body),
                "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                Some("interleaved-thinking-2025-05-14"),
                true,
                false,
            )
            .unwrap();
            let request = Request {
                method: "POST",
                host: "bedrock-runtime.us-east-1.amazonaws.com",
                path: &path,
                query: "",
                headers: &[
                    ("accept", "application/vnd.amazon.eventstream"),
                    ("content-type", "application/json"),
                ],
                body: &body,
            };
            sign(&request, &creds, &scope, std::time::SystemTime::now())
        })
    });
    g.finish();
}

criterion_group!(benches, streams, encoders);
criterion_main!(benches);
