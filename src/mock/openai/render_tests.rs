//! Tests of the whole `chat.completion` answer and of OpenAI's error shape, each parsed back.

use serde_json::{json, Value};

use super::*;
use crate::mock::answers::{answer, Request};
use crate::mock::script::Call;

fn script(pieces: &[&str], calls: usize, stop: Stop) -> Script {
    Script {
        reasoning: Vec::new(),
        pieces: pieces.iter().map(|p| p.to_string()).collect(),
        calls: (0..calls)
            .map(|i| Call {
                name: format!("tool{i}"),
                arguments: format!("{{\"query\":\"q\",\"n\":{i}}}"),
            })
            .collect(),
        stop,
        input_tokens: 7,
        output_tokens: (pieces.len() + calls) as u64,
        stamped: false,
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn a_completion_has_openais_fields() {
    let s = script(&["Hello", " you"], 0, Stop::End);
    let meta = Meta::new("gpt-\"x\"", 0);
    let v = parse(&completion(&s, &meta, Quirks::default()));
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["model"], "gpt-\"x\"");
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert!(choice.get("stop_reason").is_none());
    assert_eq!(
        choice["message"],
        json!({"role": "assistant", "content": "Hello you", "refusal": null})
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9,
               "prompt_tokens_details": {"cached_tokens": 0},
               "completion_tokens_details": {"reasoning_tokens": 0}})
    );
}

#[test]
fn calls_reasoning_and_stops_in_a_completion() {
    let mut s = script(&[], 2, Stop::ToolCalls);
    s.reasoning = vec!["Thinking".into(), " hard".into()];
    let meta = Meta::new("m", 2);
    let v = parse(&completion(&s, &meta, Quirks::default()));
    let message = &v["choices"][0]["message"];
    assert_eq!(message["content"], Value::Null);
    assert_eq!(message["reasoning_content"], "Thinking hard");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    for i in 0..2 {
        let call = &message["tool_calls"][i];
        assert_eq!(call["id"], meta.call_ids[i].as_str());
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], format!("tool{i}"));
        let args: Value = parse(call["function"]["arguments"].as_str().unwrap());
        assert_eq!(args, json!({"query": "q", "n": i}));
    }
    let quirky = Quirks::default().with(Quirk::ReasoningField);
    let v = parse(&completion(&s, &meta, quirky));
    assert_eq!(v["choices"][0]["message"]["reasoning"], "Thinking hard");
    assert!(v["choices"][0]["message"]
        .get("reasoning_content")
        .is_none());

    for (stop, finish, stop_reason) in [
        (Stop::MaxTokens, "length", Value::Null),
        (Stop::StopSequence("END".into()), "stop", json!("END")),
        (
            Stop::Forced("content_filter".into()),
            "content_filter",
            Value::Null,
        ),
    ] {
        let v = parse(&completion(
            &script(&["a"], 0, stop),
            &meta,
            Quirks::default(),
        ));
        assert_eq!(v["choices"][0]["finish_reason"], finish);
        assert_eq!(v["choices"][0]["stop_reason"], stop_reason);
    }
}

#[test]
fn errors_have_openais_shape() {
    for (fault, status, kind, code) in [
        ("rate_limit", 429, "requests", json!("rate_limit_exceeded")),
        ("overloaded", 503, "server_error", json!("overloaded")),
        ("server_error", 500, "server_error", Value::Null),
        (
            "auth",
            401,
            "invalid_request_error",
            json!("invalid_api_key"),
        ),
        (
            "permission",
            403,
            "request_forbidden",
            json!("permission_denied"),
        ),
    ] {
        let e = crate::mock::faults::error_fault(fault).unwrap();
        let Reply::Json {
            status: got,
            body,
            headers,
        } = error(&e)
        else {
            panic!()
        };
        assert_eq!(got, status, "{fault}");
        let v = parse(&body);
        assert_eq!(v["error"]["type"], kind, "{fault}");
        assert_eq!(v["error"]["code"], code, "{fault}");
        assert_eq!(v["error"]["param"], Value::Null);
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("mock: "));
        assert_eq!(
            headers.contains(&("retry-after", "1".into())),
            status == 429
        );
    }
    let Reply::Json { status, body, .. } = error(&ApiError::invalid_request("bad".into())) else {
        panic!()
    };
    assert_eq!(status, 400);
    assert_eq!(
        parse(&body),
        json!({"error": {"message": "bad", "type": "invalid_request_error", "param": null, "code": null}})
    );
}

fn post(body: &str, directives: Directives) -> Reply {
    answer(&Request {
        directives,
        ..Request::new("POST", "/v1/chat/completions", body.as_bytes())
    })
}

#[test]
fn answers_through_the_router() {
    let body = r#"{"model":"m","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}"#;
    let Reply::Json { status, body, .. } = post(body, Directives::default()) else {
        panic!()
    };
    assert_eq!(status, 200);
    let v = parse(&body);
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from the");
    assert_eq!(v["choices"][0]["finish_reason"], "length");

    // A refused request is a 400 in OpenAI's shape.
    let bad = r#"{"model":"m","messages":[{"role":"tool","tool_call_id":"x","content":"y"}]}"#;
    let Reply::Json { status, body, .. } = post(bad, Directives::default()) else {
        panic!()
    };
    assert_eq!(status, 400);
    assert_eq!(parse(&body)["error"]["type"], "invalid_request_error");

    let finish = Directives {
        finish: Some("content_filter".into()),
        ..Directives::default()
    };
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let Reply::Json { body, .. } = post(body, finish) else {
        panic!()
    };
    assert_eq!(
        parse(&body)["choices"][0]["finish_reason"],
        "content_filter"
    );
}
