//! The gateway in front of upstreams of other dialects, over real sockets: what it sends them
//! (path, credential header, translated body, model names), and what the client gets back
//! (Anthropic events and messages that a strict client accumulates, Anthropic errors), with the
//! relay's promises kept: failover before the first event, in-band errors after it.

mod support;

use std::time::Duration;

use ringgate::dialect::grammar::{check, Accumulated};
use serde_json::{json, Value};
use support::*;

const STREAM: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
const WHOLE: &str =
    r#"{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#;

/// A gateway whose only upstream is an OpenAI-compatible server at `addr`.
fn openai_gateway(addr: std::net::SocketAddr, extra: &str) -> ringgate::GatewayHandle {
    gateway(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n\
         [[upstreams]]\nname = \"vllm\"\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\n{extra}\n\
         [upstreams.model_names]\n\"claude-sonnet-4-5\" = \"deepseek-chat\"\n\
         [[upstreams.credentials]]\nname = \"primary\"\napi_key = \"sk-upstream-secret\"\n"
    ))
}

/// A chunked OpenAI stream: one chunk per `data:` event, then `[DONE]` and the last chunk.
fn openai_stream(chunks: &[Value]) -> Vec<Vec<u8>> {
    let mut pieces = vec![SSE_HEAD.to_vec()];
    for c in chunks {
        pieces.push(chunk(format!("data: {c}\n\n").as_bytes()));
    }
    pieces.push(chunk(b"data: [DONE]\n\n"));
    pieces.push(b"0\r\n\r\n".to_vec());
    pieces
}

fn text_chunk(text: &str) -> Value {
    json!({"id":"c","object":"chat.completion.chunk","model":"deepseek-chat",
           "choices":[{"index":0,"delta":{"content":text},"finish_reason":null}]})
}

fn finish_chunk(reason: &str) -> Value {
    json!({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":reason}]})
}

fn usage_chunk() -> Value {
    json!({"id":"c","object":"chat.completion.chunk","choices":[],
           "usage":{"prompt_tokens":9,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":4}}})
}

fn accumulated(r: &Response) -> Accumulated {
    check(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.text()))
}

#[test]
fn an_openai_stream_is_translated_and_the_request_too() {
    let up = Upstream::start(|_| {
        Action::Send(
            openai_stream(&[
                text_chunk("Hello"),
                text_chunk(" there"),
                finish_chunk("stop"),
                usage_chunk(),
            ]),
            Duration::from_millis(5),
        )
    });
    let gw = openai_gateway(up.addr, "");
    let r = request(
        gw.local_addr(),
        &messages_request(STREAM, "anthropic-beta: x\r\nx-trace: 7\r\n"),
    );
    assert_eq!(r.status, 200);
    assert!(r.complete);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/event-stream; charset=utf-8")
    );
    let acc = accumulated(&r);
    assert_eq!(acc.text(), "Hello there");
    assert_eq!(
        acc.model, "claude-sonnet-4-5",
        "the model as the client named it"
    );
    assert_eq!(acc.stop_reason.as_deref(), Some("end_turn"));
    assert_eq!(acc.usage["input_tokens"], 5);
    assert_eq!(acc.usage["cache_read_input_tokens"], 4);
    assert_eq!(acc.usage["output_tokens"], 2);
    assert_eq!(
        acc.id,
        format!("msg_{}", &r.header("request-id").unwrap()[4..])
    );

    let sent = &up.requests()[0];
    assert_eq!(sent.request_line(), "POST /v1/chat/completions HTTP/1.1");
    assert_eq!(sent.headers("authorization"), ["Bearer sk-upstream-secret"]);
    assert_eq!(sent.headers("x-trace"), ["7"]);
    for gone in ["x-api-key", "anthropic-beta", "anthropic-version"] {
        assert!(sent.headers(gone).is_empty(), "{gone} was sent");
    }
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body["model"], "deepseek-chat",
        "the upstream's name for the model"
    );
    assert_eq!(body["messages"], json!([{"role":"user","content":"hi"}]));
    assert_eq!(
        (body["stream"].clone(), body["stream_options"].clone()),
        (json!(true), json!({"include_usage": true}))
    );
}

#[test]
fn a_whole_openai_answer_is_a_whole_message() {
    let answer = json!({"id":"c","object":"chat.completion","choices":[{"index":0,"finish_reason":"tool_calls",
        "message":{"role":"assistant","content":"Looking.","tool_calls":[{"id":"call_1","type":"function",
        "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}}],
        "usage":{"prompt_tokens":12,"completion_tokens":7}})
    .to_string();
    let up = Upstream::start(move |_| {
        Action::Send(vec![json_response(200, &answer, "")], Duration::ZERO)
    });
    let gw = openai_gateway(up.addr, "");
    let r = request(gw.local_addr(), &messages_request(WHOLE, ""));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let m: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(m["type"], "message");
    assert_eq!(m["content"][0], json!({"type":"text","text":"Looking."}));
    assert_eq!(
        m["content"][1],
        json!({"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}})
    );
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(m["usage"]["output_tokens"], 7);
    // The connection is kept for the next request.
    assert_eq!(up.connections.lock().unwrap().clone(), 1);
}

#[test]
fn upstream_errors_become_anthropic_errors() {
    for (status, body, kind, extra) in [
        (
            400,
            r#"{"error":{"message":"max_tokens too large","type":"invalid_request_error"}}"#,
            "invalid_request_error",
            "",
        ),
        (
            404,
            r#"{"error":"model 'x' not found"}"#,
            "not_found_error",
            "",
        ),
        (
            422,
            r#"{"object":"error","message":"bad schema","code":422}"#,
            "invalid_request_error",
            "",
        ),
    ] {
        let up = Upstream::start(move |_| {
            Action::Send(vec![json_response(status, body, extra)], Duration::ZERO)
        });
        let gw = openai_gateway(up.addr, "");
        let r = request(gw.local_addr(), &messages_request(STREAM, ""));
        assert_eq!(r.status, status);
        let e: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(e["type"], "error");
        assert_eq!(e["error"]["type"], kind, "{body}");
        assert_eq!(e["request_id"], r.header("request-id").unwrap().as_str());
        assert!(!e["error"]["message"].as_str().unwrap().is_empty());
    }
}

#[test]
fn a_refused_key_disables_the_credential() {
    let up = Upstream::start(|_| {
        Action::Send(
            vec![json_response(
                401,
                r#"{"error":{"message":"Incorrect API key provided: sk-up****"}}"#,
                "",
            )],
            Duration::ZERO,
        )
    });
    let gw = openai_gateway(up.addr, "");
    // The only credential is disabled at once: the client is told so (a 429, as for an
    // Anthropic upstream), and the next request does not reach the upstream.
    for _ in 0..2 {
        let r = request(gw.local_addr(), &messages_request(WHOLE, ""));
        assert_eq!(r.status, 429);
        assert!(
            r.text().contains("disabled after the upstream refused"),
            "{}",
            r.text()
        );
        assert!(
            !r.text().contains("sk-up"),
            "nothing of the upstream's message"
        );
    }
    assert_eq!(up.requests().len(), 1);
}

#[test]
fn a_rate_limited_openai_upstream_fails_over_to_an_anthropic_one() {
    let limited = Upstream::start(|_| {
        Action::Send(
            vec![json_response(
                429,
                r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#,
                "retry-after: 30\r\n",
            )],
            Duration::ZERO,
        )
    });
    let events = sse_events(3);
    let anthropic = Upstream::start(move |_| Action::Send(sse_pieces(&events), Duration::ZERO));
    let gw = gateway(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n\
         [[upstreams]]\nname = \"vllm\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\npriority = 1\n\
         [[upstreams.credentials]]\nname = \"o\"\napi_key = \"k1\"\n\
         [[upstreams]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\n\
         [[upstreams.credentials]]\nname = \"a\"\napi_key = \"k2\"\n",
        limited.addr, anthropic.addr
    ));
    for _ in 0..2 {
        let r = request(gw.local_addr(), &messages_request(STREAM, ""));
        assert_eq!(r.status, 200);
        assert!(r.text().contains("event: message_stop"), "{}", r.text());
    }
    // The 429 cooled the OpenAI credential for its retry-after: the second request went
    // straight to the Anthropic upstream.
    assert_eq!(
        (limited.requests().len(), anthropic.requests().len()),
        (1, 2)
    );
}

#[test]
fn an_error_before_the_first_event_fails_over_and_after_it_ends_in_band() {
    // The first upstream answers 200, then an error before anything else: nothing reached the
    // client, so the second is tried.
    let early = Upstream::start(|_| {
        let mut pieces = vec![SSE_HEAD.to_vec()];
        pieces.push(chunk(
            b"data: {\"error\":{\"message\":\"provider down\",\"code\":502}}\n\n",
        ));
        pieces.push(b"0\r\n\r\n".to_vec());
        Action::Send(pieces, Duration::ZERO)
    });
    let late = Upstream::start(|_| {
        let mut pieces = openai_stream(&[text_chunk("par"), text_chunk("tial")]);
        pieces.truncate(3);
        pieces.push(chunk(
            b"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"overloaded_error\"}}\n\n",
        ));
        pieces.push(b"0\r\n\r\n".to_vec());
        Action::Send(pieces, Duration::ZERO)
    });
    let gw = gateway(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n\
         [[upstreams]]\nname = \"first\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\npriority = 1\n\
         [[upstreams]]\nname = \"second\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\n",
        early.addr, late.addr
    ));
    let r = request(gw.local_addr(), &messages_request(STREAM, ""));
    assert_eq!(r.status, 200);
    let acc = accumulated(&r);
    assert_eq!(acc.text(), "partial");
    assert_eq!(
        acc.error,
        Some(("overloaded_error".into(), "overloaded".into()))
    );
    assert_eq!((early.requests().len(), late.requests().len()), (1, 1));
}

#[test]
fn broken_upstream_streams_end_with_an_in_band_error_after_the_whole_events() {
    for (tail, reason) in [
        (&b"data: {\"choices\": [oops\n\n"[..], "not JSON"),
        (b"", "before its finish_reason"),
    ] {
        let tail = tail.to_vec();
        let up = Upstream::start(move |_| {
            let mut pieces = openai_stream(&[text_chunk("kept")]);
            pieces.truncate(2);
            if !tail.is_empty() {
                pieces.push(chunk(&tail));
            }
            pieces.push(b"0\r\n\r\n".to_vec());
            Action::Send(pieces, Duration::ZERO)
        });
        let gw = openai_gateway(up.addr, "");
        let mut c = Client::connect(gw.local_addr());
        c.send(&messages_request(STREAM, ""));
        let r = c.response();
        assert_eq!(r.status, 200);
        assert!(r.complete);
        let acc = accumulated(&r);
        assert_eq!(acc.text(), "kept");
        let (kind, message) = acc.error.expect("an in-band error");
        assert_eq!(kind, "api_error");
        assert!(message.contains(reason), "{message}");
        assert!(c.is_closed(), "a failed stream closes the connection");
    }
}

#[test]
fn count_tokens_for_an_openai_upstream_is_counted_here() {
    let up = Upstream::start(|_| Action::Stall);
    let gw = openai_gateway(up.addr, "");
    let body =
        r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hello, world"}]}"#;
    let raw = format!(
        "POST /v1/messages/count_tokens HTTP/1.1\r\nHost: g\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = request(gw.local_addr(), raw.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"input_tokens": 8})
    );
    assert!(up.requests().is_empty(), "no upstream call");
}

#[test]
fn a_body_that_cannot_be_translated_is_the_clients_error() {
    let up = Upstream::start(|_| Action::Stall);
    let gw = openai_gateway(up.addr, "");
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":[{"type":"web_search_tool_result","content":[]}]}]}"#;
    let r = request(gw.local_addr(), &messages_request(body, ""));
    assert_eq!(r.status, 400);
    let e: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("web_search_tool_result"));
    assert!(up.requests().is_empty());
}

#[test]
fn model_names_rename_the_model_for_an_anthropic_upstream_too() {
    let events = sse_events(2);
    let up = Upstream::start(move |_| Action::Send(sse_pieces(&events), Duration::ZERO));
    let gw = gateway(&config_for(
        up.addr,
        "",
        "[upstreams.model_names]\n\"claude-sonnet-4-5\" = \"claude-sonnet-4-5@20250929\"\n",
    ));
    let r = request(gw.local_addr(), &messages_request(STREAM, ""));
    assert_eq!(r.status, 200);
    let sent: Value = serde_json::from_slice(&up.requests()[0].body).unwrap();
    assert_eq!(sent["model"], "claude-sonnet-4-5@20250929");
    assert_eq!(sent["messages"], json!([{"role":"user","content":"hi"}]));
}

#[test]
fn an_http10_client_gets_the_translated_stream_until_the_close() {
    let up = Upstream::start(|_| {
        Action::Send(
            openai_stream(&[text_chunk("old"), finish_chunk("stop")]),
            Duration::ZERO,
        )
    });
    let gw = openai_gateway(up.addr, "");
    let raw = String::from_utf8(messages_request(STREAM, "")).unwrap();
    let raw = raw.replacen("HTTP/1.1", "HTTP/1.0", 1);
    let r = request(gw.local_addr(), raw.as_bytes());
    assert!(r.head.starts_with("HTTP/1.1 200"), "{}", r.head);
    assert!(r.header("transfer-encoding").is_none() && r.header("content-length").is_none());
    assert_eq!(accumulated(&r).text(), "old");
}

/// A gateway whose only upstream is a Gemini server at `addr`.
fn gemini_gateway(addr: std::net::SocketAddr) -> ringgate::GatewayHandle {
    gateway(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n\
         [[upstreams]]\nname = \"gemini\"\nkind = \"gemini\"\nbase_url = \"http://{addr}\"\n\
         [upstreams.model_names]\n\"claude-sonnet-4-5\" = \"gemini-2.5-flash\"\n\
         [[upstreams.credentials]]\nname = \"g\"\napi_key = \"AIza-secret\"\n"
    ))
}

#[test]
fn a_gemini_stream_is_translated_and_its_tokens_counted_upstream() {
    let up = Upstream::start(|req| {
        if req.request_line().contains(":countTokens") {
            return Action::Send(
                vec![json_response(200, r#"{"totalTokens": 42}"#, "")],
                Duration::ZERO,
            );
        }
        let events = [
            json!({"candidates":[{"content":{"role":"model","parts":[{"text":"Bon"}]},"index":0}],"modelVersion":"gemini-2.5-flash"}),
            json!({"candidates":[{"content":{"role":"model","parts":[{"text":"jour"}]},"finishReason":"STOP","index":0}],
                   "usageMetadata":{"promptTokenCount":6,"candidatesTokenCount":2,"thoughtsTokenCount":3}}),
        ];
        let mut pieces = vec![SSE_HEAD.to_vec()];
        for e in events {
            pieces.push(chunk(format!("data: {e}\r\n\r\n").as_bytes()));
        }
        pieces.push(b"0\r\n\r\n".to_vec());
        Action::Send(pieces, Duration::ZERO)
    });
    let gw = gemini_gateway(up.addr);
    let r = request(gw.local_addr(), &messages_request(STREAM, ""));
    assert_eq!(r.status, 200);
    let acc = accumulated(&r);
    assert_eq!(acc.text(), "Bonjour");
    assert_eq!(
        (
            acc.usage["input_tokens"].clone(),
            acc.usage["output_tokens"].clone()
        ),
        (json!(6), json!(5))
    );
    let sent = &up.requests()[0];
    assert_eq!(
        sent.request_line(),
        "POST /v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse HTTP/1.1"
    );
    assert_eq!(sent.headers("x-goog-api-key"), ["AIza-secret"]);
    assert!(sent.headers("authorization").is_empty());
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body["contents"],
        json!([{"role":"user","parts":[{"text":"hi"}]}])
    );
    assert_eq!(body["generationConfig"]["maxOutputTokens"], 64);

    let count = r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}"#;
    let raw = format!(
        "POST /v1/messages/count_tokens HTTP/1.1\r\nHost: g\r\nContent-Length: {}\r\n\r\n{count}",
        count.len()
    );
    let r = request(gw.local_addr(), raw.as_bytes());
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"input_tokens": 42})
    );
    let sent = &up.requests()[1];
    assert_eq!(
        sent.request_line(),
        "POST /v1beta/models/gemini-2.5-flash:countTokens HTTP/1.1"
    );
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body["generateContentRequest"]["model"],
        "models/gemini-2.5-flash"
    );
}

#[test]
fn a_gemini_key_that_is_not_valid_disables_the_credential() {
    let up = Upstream::start(|_| {
        let body = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
        Action::Send(vec![json_response(400, body, "")], Duration::ZERO)
    });
    let gw = gemini_gateway(up.addr);
    for _ in 0..2 {
        let r = request(gw.local_addr(), &messages_request(WHOLE, ""));
        assert_eq!(r.status, 429, "{}", r.text());
        assert!(
            r.text().contains("disabled after the upstream refused"),
            "{}",
            r.text()
        );
    }
    assert_eq!(up.requests().len(), 1);
}

#[test]
fn a_translated_stream_still_running_at_the_drain_timeout_ends_in_band() {
    let up = Upstream::start(|_| {
        let chunks: Vec<Value> = (0..40).map(|i| text_chunk(&format!("w{i} "))).collect();
        Action::Send(openai_stream(&chunks), Duration::from_millis(50))
    });
    let gw = gateway(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\ndrain_timeout_ms = 300\n\
         [[upstreams]]\nname = \"vllm\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\n",
        up.addr
    ));
    let mut c = Client::connect(gw.local_addr());
    c.send(&messages_request(STREAM, ""));
    std::thread::sleep(Duration::from_millis(200));
    assert!(gw.control().drain());
    let r = c.response();
    assert_eq!(r.status, 200);
    assert!(r.complete, "ended properly");
    let acc = accumulated(&r);
    assert!(acc.text().starts_with("w0 w1 "), "{}", acc.text());
    let (kind, message) = acc.error.expect("an in-band error at the drain timeout");
    assert_eq!(kind, "overloaded_error");
    assert!(message.contains("shutting down"), "{message}");
}
