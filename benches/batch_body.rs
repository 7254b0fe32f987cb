//! What rewriting a batch costs: a Message Batch create body streams through
//! `objects::batch_body::BatchBody`, which sees every `requests[i].params.model` and writes the
//! upstream's model id in its place. Batches run to hundreds of MB, so its throughput bounds how
//! fast the gateway can forward one.
//!
//! One body of ~1 MiB: 256 requests, each a short agent conversation whose text and tool inputs
//! hold `"model"` keys of their own, fed in 16 KiB reads (the relay's buffer). Two cases: every
//! model renamed (an alias), and every model kept (the bytes copied as they are).

use std::fmt::Write;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringgate::objects::batch_body::BatchBody;

const REQUESTS: usize = 256;
const READ: usize = 16 * 1024;
const ALIAS: &str = "sonnet";
const MODEL_ID: &str = "claude-sonnet-4-5-20250929";

const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(3);

fn body() -> String {
    let mut out = String::from(r#"{"requests":["#);
    for i in 0..REQUESTS {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            concat!(
                r#"{{"custom_id":"req-{i:06}","params":{{"model":"{alias}","max_tokens":1024,"#,
                r#""system":"You are an agent for software engineering.","messages":["#,
                r#"{{"role":"user","content":[{{"type":"text","text":"Step {i}: the config says {{\"model\": \"claude-3-haiku\"}} but the client sends another. Why does the request \"model\" field win?\n\nThanks!"}}]}},"#,
                r#"{{"role":"assistant","content":[{{"type":"text","text":"Let me read the file."}},"#,
                r#"{{"type":"tool_use","id":"toolu_01A{i:05}","name":"read_file","input":{{"path":"src/api/forward.rs","model":"grep","options":{{"lines":[1,200],"model":null}}}}}}]}},"#,
                r#"{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"toolu_01A{i:05}","content":"pub async fn forward(api: &Api, req: &Request) {{\n    let skimmed = skim(&req.body)?;\n    let model = skimmed.model(&req.body).map(|m| api.models.resolve(m));\n    log::info!(\"{{}}: model={{model:?}} \\u00e9\\t\", req.id);\n}}\n// {{\"model\":\"nested\",\"stream\":true}}\n{pad}"}}]}}]}}}}"#
            ),
            i = i,
            alias = ALIAS,
            pad = "lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(64),
        );
    }
    out.push_str("]}");
    out
}

fn rewrite(body: &[u8], out: &mut Vec<u8>, rename: bool) -> usize {
    out.clear();
    let mut parser = BatchBody::new();
    let mut callback = |m: &str| Ok((rename && m == ALIAS).then(|| MODEL_ID.to_string()));
    for read in body.chunks(READ) {
        parser.feed(read, out, &mut callback).unwrap();
    }
    parser.finish().unwrap();
    parser.models_seen()
}

fn batch_body(c: &mut Criterion) {
    let body = body();
    let body = body.as_bytes();
    let mut out = Vec::with_capacity(body.len() * 2);
    // The body is valid JSON, and every request's model is found.
    serde_json::from_slice::<serde_json::Value>(body).expect("valid JSON");
    assert_eq!(rewrite(body, &mut out, true), REQUESTS);
    assert!(body.len() >= 1 << 20);

    let mut g = c.benchmark_group("batch_body");
    g.warm_up_time(WARM_UP).measurement_time(MEASURE);
    g.throughput(Throughput::Bytes(body.len() as u64));
    for (name, rename) in [("rename", true), ("keep", false)] {
        g.bench_with_input(BenchmarkId::new(name, "1MiB"), body, |b, body| {
            b.iter(|| black_box(rewrite(black_box(body), &mut out, rename)))
        });
    }
    g.finish();
}

criterion_group!(benches, batch_body);
criterion_main!(benches);
