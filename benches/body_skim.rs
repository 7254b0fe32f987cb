//! What finding the model costs: every JSON request body is skimmed for its top-level `model`,
//! `stream` and `metadata.user_id` before any upstream is chosen, stepping over everything else
//! (the whole conversation) without parsing it. Its cost grows with the body, and agent clients
//! resend the whole conversation on every turn, so bodies of 100 KiB and more are common.
//!
//! Two bodies: a short first turn (~300 B) and a long agent conversation (~100 KiB) in the key
//! order the Python SDK writes (`messages` before `model`), whose text, tool inputs and tool
//! results hold `"model"` and `"stream"` keys of their own, escaped and nested.
//!
//! The alias lookup that follows the skim (`Skim::model`, then `ModelsConfig::resolve`) is
//! measured on both bodies too. The splice that then writes the model id into the body
//! (`api::forward::splice`) is private and not measured here: it is one copy of the body.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringgate::config::ModelsConfig;
use ringgate::json::skim::skim;

/// The alias both bodies ask for, and the model id it stands for.
const ALIAS: &str = "sonnet";
const MODEL_ID: &str = "claude-sonnet-4-5-20250929";
/// How large the long conversation grows (it stops at the first turn past this).
const LARGE: usize = 100 * 1024;

const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(3);

fn small_body() -> String {
    format!(
        concat!(
            r#"{{"model":"{}","max_tokens":1024,"stream":true,"#,
            r#""system":"You are a concise assistant.","#,
            r#""messages":[{{"role":"user","content":"Write a haiku about io_uring submission queues, and explain each line in one sentence."}}],"#,
            r#""metadata":{{"user_id":"user_7f3a9c2e41b84d0f9e6a5b1c8d2e4f60"}},"temperature":0.7}}"#
        ),
        ALIAS
    )
}

/// One turn of an agent at work: a user message whose text quotes JSON, an assistant answer with
/// a tool call, and the tool's result (a file with escapes of every kind).
fn push_turn(out: &mut String, i: usize) {
    let _ = write!(
        out,
        concat!(
            r#"{{"role":"user","content":[{{"type":"text","text":"Step {i}: the config says {{\"model\": \"claude-3-haiku\", \"stream\": true}} but the client sends \"stream\": false. Why does the request \"model\" field win? Look at src/api/forward.rs and tell me.\n\nThanks!"}}]}},"#,
            r#"{{"role":"assistant","content":[{{"type":"text","text":"Let me read the file that decides which \"model\" is used."}},"#,
            r#"{{"type":"tool_use","id":"toolu_01A{i:05}","name":"read_file","input":{{"path":"src/api/forward.rs","model":"grep","options":{{"stream":false,"lines":[1,200],"model":null}}}}}}]}},"#,
            r#"{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"toolu_01A{i:05}","content":[{{"type":"text","text":"pub async fn forward(api: &Api, req: &Request) {{\n    let skimmed = skim(&req.body)?;\n    let stream = skimmed.is_stream(); // \"stream\": true\n    let model = skimmed.model(&req.body).map(|m| api.models.resolve(m));\n    log::info!(\"{{}}: model={{model:?}} \\u00e9\\t{{}}\", req.id, stream);\n}}\n// {{\"model\":\"nested\",\"stream\":true,\"metadata\":{{\"user_id\":\"x\"}}}}\n"}}]}}]}},"#
        ),
        i = i
    );
}

fn large_body() -> String {
    let mut messages = String::from("[");
    let mut turn = 0;
    while messages.len() < LARGE {
        push_turn(&mut messages, turn);
        turn += 1;
    }
    messages.push_str(r#"{"role":"user","content":"Now fix it."}]"#);
    format!(
        concat!(
            r#"{{"max_tokens":32000,"messages":{},"model":"{}","#,
            r#""metadata":{{"user_id":"user_7f3a9c2e41b84d0f9e6a5b1c8d2e4f60_account__session_0b9e"}},"#,
            r#""stream":true,"system":[{{"type":"text","text":"You are an agent for software engineering.","cache_control":{{"type":"ephemeral"}}}}],"#,
            r#""tools":[{{"name":"read_file","description":"Reads a file.","input_schema":{{"type":"object","properties":{{"path":{{"type":"string"}},"model":{{"type":"string"}}}},"required":["path"]}}}}]}}"#
        ),
        messages, ALIAS
    )
}

fn models() -> ModelsConfig {
    ModelsConfig {
        aliases: BTreeMap::from([
            ("haiku".to_string(), "claude-haiku-4-5-20251001".to_string()),
            (ALIAS.to_string(), MODEL_ID.to_string()),
            ("opus".to_string(), "claude-opus-4-1-20250805".to_string()),
        ]),
    }
}

fn skim_bodies(c: &mut Criterion) {
    let models = models();
    let bodies = [("small", small_body()), ("large", large_body())];
    for (name, body) in &bodies {
        // The bodies are valid JSON whose top-level keys the skim finds, lookalikes and all.
        simd_json::to_owned_value(&mut body.clone().into_bytes()).expect("valid JSON");
        let s = skim(body.as_bytes()).expect("skims");
        assert_eq!(s.model(body.as_bytes()).as_deref(), Some(ALIAS), "{name}");
        assert!(s.is_stream() && s.user_id.is_some(), "{name}");
    }
    assert!(bodies[0].1.len() < 400 && bodies[1].1.len() >= LARGE);

    let mut g = c.benchmark_group("body_skim");
    g.warm_up_time(WARM_UP).measurement_time(MEASURE);
    for (name, body) in &bodies {
        let body = body.as_bytes();
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("skim", name), body, |b, body| {
            b.iter(|| black_box(skim(black_box(body))))
        });
        // What `forward` does before the splice: the model, escapes decoded, then its alias.
        g.bench_with_input(BenchmarkId::new("skim + alias", name), body, |b, body| {
            b.iter(|| {
                let s = skim(black_box(body)).unwrap();
                let requested = s.model(body);
                let id = requested.as_deref().map(|m| models.alias(m).unwrap_or(m));
                black_box(id == Some(MODEL_ID))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, skim_bodies);
criterion_main!(benches);
