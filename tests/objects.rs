//! Batches and files through a gateway, over real sockets: each object reached through the
//! credential that created it and by its owner only, lists cut from the gateway's records,
//! `results_url` pointing at the gateway, bodies streamed both ways, batch models renamed on the
//! way, and the records kept across a restart.
//!
//! The upstream is scripted here as a small Anthropic API with one workspace per key: an object
//! made with one key is 404 for another, so a read that went through the wrong credential fails.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const KEYS: &str = "[[api_keys]]\nname = \"team-a\"\nkey = \"ck-a\"\n\
                    [[api_keys]]\nname = \"team-b\"\nkey = \"ck-b\"\n";

/// An object the scripted upstream holds: the key that made it, its JSON, its content.
#[derive(Clone)]
struct Held {
    key: String,
    object: Value,
    content: Vec<u8>,
}

/// A scripted Anthropic API that keeps batches and files per key.
struct Api {
    upstream: Upstream,
    objects: Arc<Mutex<HashMap<String, Held>>>,
}

/// Keeps an object made with `key` and answers with it.
fn hold(
    objects: &mut HashMap<String, Held>,
    id: &str,
    key: String,
    object: &Value,
    content: Vec<u8>,
) -> Action {
    let held = Held {
        key,
        object: object.clone(),
        content,
    };
    objects.insert(id.to_string(), held);
    json_answer(200, object)
}

fn key_of(r: &Received) -> String {
    r.headers("x-api-key").concat()
}

fn json_answer(status: u16, v: &Value) -> Action {
    Action::Send(
        vec![json_response(status, &v.to_string(), "")],
        Duration::ZERO,
    )
}

fn not_found() -> Action {
    json_answer(
        404,
        &json!({"type":"error","error":{"type":"not_found_error","message":"no such object"}}),
    )
}

impl Api {
    fn start() -> Api {
        let objects: Arc<Mutex<HashMap<String, Held>>> = Arc::default();
        let held = objects.clone();
        let count = Arc::new(Mutex::new(0u32));
        let upstream = Upstream::start(move |r| {
            let mut objects = held.lock().unwrap();
            let key = key_of(r);
            let line = r.request_line().to_string();
            let mut parts = line.split(' ');
            let (method, target) = (parts.next().unwrap(), parts.next().unwrap());
            let path = target.split('?').next().unwrap();
            let mut n = count.lock().unwrap();
            match (method, path) {
                ("POST", "/v1/files") => {
                    *n += 1;
                    let id = format!("file_{n:04}");
                    let object = json!({"id": id, "type": "file", "filename": "f.bin",
                        "mime_type": "application/octet-stream", "size_bytes": r.body.len(),
                        "created_at": "2026-12-07T00:00:00Z", "downloadable": true});
                    hold(&mut objects, &id, key, &object, r.body.clone())
                }
                ("POST", "/v1/messages/batches") => {
                    *n += 1;
                    let id = format!("msgbatch_{n:04}");
                    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                    let models: Vec<Value> = (body["requests"].as_array().into_iter().flatten())
                        .map(|q| q["params"]["model"].clone())
                        .collect();
                    let object = json!({"id": id, "type": "message_batch",
                        "processing_status": "ended", "models_seen": models,
                        "results_url": format!("https://api.anthropic.com/v1/messages/batches/{id}/results")});
                    let results = b"{\"custom_id\":\"a\",\"result\":{\"type\":\"succeeded\"}}\n";
                    hold(&mut objects, &id, key, &object, results.to_vec())
                }
                _ => {
                    let rest = (path.strip_prefix("/v1/files/"))
                        .or_else(|| path.strip_prefix("/v1/messages/batches/"));
                    let Some(rest) = rest else { return not_found() };
                    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
                    let Some(held) = objects.get(id).filter(|h| h.key == key).cloned() else {
                        return not_found();
                    };
                    match (method, tail) {
                        ("GET", "") => json_answer(200, &held.object),
                        ("POST", "cancel") => json_answer(200, &held.object),
                        ("DELETE", "") => {
                            objects.remove(id);
                            json_answer(200, &json!({"id": id, "type": "deleted"}))
                        }
                        ("GET", "content" | "results") => {
                            let mut raw = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                                held.content.len()
                            )
                            .into_bytes();
                            raw.extend_from_slice(&held.content);
                            Action::Send(vec![raw], Duration::ZERO)
                        }
                        _ => not_found(),
                    }
                }
            }
        });
        Api { upstream, objects }
    }

    /// The key each recorded request of `path_part` carried, in order.
    fn keys_for(&self, path_part: &str) -> Vec<String> {
        (self.upstream.requests().iter())
            .filter(|r| r.request_line().contains(path_part))
            .map(key_of)
            .collect()
    }
}

/// A state directory of the test's own.
fn state_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringgate-objects-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A gateway with two credentials for `up` and two client keys.
fn config(up: SocketAddr, dir: &std::path::Path, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n{extra}\n[state]\ndir = {dir:?}\n\
         [[upstreams]]\nname = \"up\"\nkind = \"anthropic\"\nbase_url = \"http://{up}\"\n\
         [[upstreams.credentials]]\nname = \"a\"\napi_key = \"key-a\"\n\
         [[upstreams.credentials]]\nname = \"b\"\napi_key = \"key-b\"\n{KEYS}"
    )
}

fn call(gw: SocketAddr, method: &str, target: &str, key: &str, body: &[u8]) -> Response {
    let mut raw = format!(
        "{method} {target} HTTP/1.1\r\nHost: gw.test\r\nx-api-key: {key}\r\n\
         anthropic-beta: files-api-2025-04-14\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    request(gw, &raw)
}

/// The ids on a list's page, in order.
fn ids_in(page: &Value) -> Vec<&str> {
    (page["data"].as_array().unwrap().iter())
        .map(|o| o["id"].as_str().unwrap())
        .collect()
}

fn json_of(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

#[test]
fn files_are_reached_through_their_credential_and_by_their_owner_only() {
    let api = Api::start();
    let dir = state_dir("files");
    let admin = "[admin]\nlisten = \"127.0.0.1:0\"\n";
    let gw = gateway(&(config(api.upstream.addr, &dir, "") + admin));
    let addr = gw.local_addr();

    let mut ids = Vec::new();
    for i in 0..4 {
        let body = vec![b'0' + i as u8; 1000 + i];
        let r = call(addr, "POST", "/v1/files", "ck-a", &body);
        assert_eq!(r.status, 200, "{}", r.text());
        ids.push(json_of(&r)["id"].as_str().unwrap().to_string());
    }
    // Round-robin spread the uploads over both credentials.
    let creators = api.keys_for("POST /v1/files");
    assert!(creators.contains(&"key-a".into()) && creators.contains(&"key-b".into()));

    for (i, id) in ids.iter().enumerate() {
        let r = call(addr, "GET", &format!("/v1/files/{id}"), "ck-a", b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let r = call(addr, "GET", &format!("/v1/files/{id}/content"), "ck-a", b"");
        assert_eq!((r.status, r.body.len()), (200, 1000 + i));
        // The other team is told it does not exist, and the upstream is not asked.
        let before = api.upstream.requests().len();
        for target in [format!("/v1/files/{id}"), format!("/v1/files/{id}/content")] {
            let r = call(addr, "GET", &target, "ck-b", b"");
            assert_eq!(r.status, 404, "{}", r.text());
            assert_eq!(json_of(&r)["error"]["type"], "not_found_error");
        }
        let r = call(addr, "DELETE", &format!("/v1/files/{id}"), "ck-b", b"");
        assert_eq!(r.status, 404);
        assert_eq!(api.upstream.requests().len(), before);
    }
    // Every read went through the key that created the object (the upstream would 404 otherwise).
    let held = api.objects.lock().unwrap().clone();
    for r in api.upstream.requests() {
        if let Some(id) = r
            .request_line()
            .split('/')
            .nth(3)
            .map(|s| s.split([' ', '?']).next().unwrap())
        {
            if let Some(h) = held.get(id) {
                assert_eq!(key_of(&r), h.key, "{}", r.request_line());
            }
        }
    }

    // Lists: newest first, paginated, only the caller's.
    let r = call(addr, "GET", "/v1/files?limit=3", "ck-a", b"");
    let page = json_of(&r);
    assert_eq!(
        ids_in(&page),
        [&ids[3], &ids[2], &ids[1]].map(String::as_str)
    );
    assert_eq!(
        (page["has_more"].as_bool(), page["last_id"].as_str()),
        (Some(true), Some(ids[1].as_str()))
    );
    let r = call(
        addr,
        "GET",
        &format!("/v1/files?limit=3&after_id={}", ids[1]),
        "ck-a",
        b"",
    );
    let page = json_of(&r);
    assert_eq!(page["data"][0]["id"], ids[0].as_str());
    assert_eq!(page["has_more"], false);
    let r = call(
        addr,
        "GET",
        &format!("/v1/files?before_id={}", ids[1]),
        "ck-a",
        b"",
    );
    assert_eq!(ids_in(&json_of(&r)), [&ids[3], &ids[2]].map(String::as_str));
    let r = call(addr, "GET", "/v1/files", "ck-b", b"");
    assert_eq!(json_of(&r)["data"].as_array().unwrap().len(), 0);

    // Operations: the routes in the metrics, each owner's ids in the admin view.
    let admin_addr = gw.admin_addr().unwrap();
    let metrics = request(admin_addr, b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n").text();
    for route in ["files", "file", "file_content"] {
        let line = format!("ringgate_requests_total{{route=\"{route}\",status=\"200\"");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    let view = request(
        admin_addr,
        b"GET /admin/objects HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let view: Value = serde_json::from_slice(&view.body).unwrap();
    assert_eq!(view["owners"][0]["owner"], "team-a");
    assert_eq!(view["owners"][0]["files"].as_array().unwrap().len(), 4);
    assert_eq!(view["owners"].as_array().unwrap().len(), 1);

    // Delete: through the creating key; then the id is gone for its owner too.
    let r = call(
        addr,
        "DELETE",
        &format!("/v1/files/{}", ids[0]),
        "ck-a",
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let before = api.upstream.requests().len();
    let r = call(addr, "GET", &format!("/v1/files/{}", ids[0]), "ck-a", b"");
    assert_eq!(r.status, 404);
    assert_eq!(
        api.upstream.requests().len(),
        before,
        "answered from the records"
    );

    // A restart keeps the records: reads still find their credential.
    gw.shutdown();
    let gw = gateway(&config(api.upstream.addr, &dir, ""));
    let addr = gw.local_addr();
    let r = call(
        addr,
        "GET",
        &format!("/v1/files/{}/content", ids[3]),
        "ck-a",
        b"",
    );
    assert_eq!((r.status, r.body.len()), (200, 1003));
    let r = call(addr, "GET", "/v1/files", "ck-a", b"");
    assert_eq!(json_of(&r)["data"].as_array().unwrap().len(), 3);
    let r = call(addr, "GET", &format!("/v1/files/{}", ids[3]), "ck-b", b"");
    assert_eq!(r.status, 404);
    gw.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_batch_goes_where_its_first_model_is_served_with_every_model_renamed() {
    let (one, two) = (Api::start(), Api::start());
    let dir = state_dir("batches");
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[state]\ndir = {dir:?}\n\
         [models.aliases]\nsonnet = \"claude-sonnet-4-5\"\n\
         [[upstreams]]\nname = \"one\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\nmodels = [\"claude-sonnet-*\"]\n\
         [upstreams.model_names]\n\"claude-sonnet-4-5\" = \"claude-sonnet-4-5-20250929\"\n\
         [[upstreams.credentials]]\nname = \"a\"\napi_key = \"key-a\"\n\
         [[upstreams]]\nname = \"two\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\nmodels = [\"claude-haiku-*\"]\n\
         [[upstreams.credentials]]\nname = \"b\"\napi_key = \"key-b\"\n",
        one.upstream.addr, two.upstream.addr
    );
    let gw = gateway(&toml);
    let addr = gw.local_addr();
    let batch = |models: &[&str]| {
        let requests: Vec<Value> = (models.iter().enumerate())
            .map(|(i, m)| {
                json!({"custom_id": format!("r{i}"), "params": {"model": m, "max_tokens": 8,
                "messages": [{"role": "user", "content": "{\"model\": \"decoy\"}"}]}})
            })
            .collect();
        serde_json::to_vec_pretty(&json!({ "requests": requests })).unwrap()
    };

    let r = call(
        addr,
        "POST",
        "/v1/messages/batches",
        "ck-a",
        &batch(&["sonnet", "claude-sonnet-4-5"]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let object = json_of(&r);
    assert_eq!(
        object["models_seen"],
        json!(["claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"])
    );
    let sent = one
        .upstream
        .requests()
        .into_iter()
        .find(|q| q.request_line().starts_with("POST"))
        .unwrap();
    let sent: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        sent["requests"][0]["params"]["messages"][0]["content"],
        "{\"model\": \"decoy\"}"
    );
    // results_url points at the gateway, as the client reached it.
    let id = object["id"].as_str().unwrap().to_string();
    let want = format!("http://gw.test/v1/messages/batches/{id}/results");
    assert_eq!(object["results_url"], want.as_str());
    let r = call(
        addr,
        "GET",
        &format!("/v1/messages/batches/{id}"),
        "ck-a",
        b"",
    );
    assert_eq!(json_of(&r)["results_url"], want.as_str());
    let r = call(
        addr,
        "GET",
        &format!("/v1/messages/batches/{id}/results"),
        "ck-a",
        b"",
    );
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\"custom_id\":\"a\""), "{}", r.text());
    let r = call(addr, "GET", "/v1/messages/batches", "ck-a", b"");
    assert_eq!(json_of(&r)["data"][0]["results_url"], want.as_str());
    let r = call(
        addr,
        "POST",
        &format!("/v1/messages/batches/{id}/cancel"),
        "ck-a",
        b"",
    );
    assert_eq!(r.status, 200);

    // A model served by the other upstream: refused, and nothing reaches either upstream whole.
    let posts = |api: &Api| api.keys_for("POST /v1/messages/batches").len();
    let before = (posts(&one), posts(&two));
    let r = call(
        addr,
        "POST",
        "/v1/messages/batches",
        "ck-a",
        &batch(&["sonnet", "claude-haiku-4-5"]),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("claude-haiku-4-5"), "{}", r.text());
    assert_eq!((posts(&one), posts(&two)), before);
    // The first model decides: a haiku batch goes to the other upstream.
    let r = call(
        addr,
        "POST",
        "/v1/messages/batches",
        "ck-b",
        &batch(&["claude-haiku-4-5"]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(posts(&two), before.1 + 1);
    // Not JSON: 400 from the gateway.
    let r = call(
        addr,
        "POST",
        "/v1/messages/batches",
        "ck-a",
        b"{\"requests\": [}",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    gw.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn uploads_stream_within_their_limit_and_an_aborted_one_makes_nothing() {
    let api = Api::start();
    let dir = state_dir("uploads");
    let gw = gateway(&config(
        api.upstream.addr,
        &dir,
        "max_upload_bytes = 3000000\nmax_body_bytes = 1000",
    ));
    let addr = gw.local_addr();

    // Far above max_body_bytes, within max_upload_bytes, sent in chunks: it all arrives.
    let data: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    let mut c = Client::connect(addr);
    c.send(b"POST /v1/files HTTP/1.1\r\nHost: gw\r\nx-api-key: ck-a\r\nTransfer-Encoding: chunked\r\n\r\n");
    for piece in data.chunks(300_000) {
        c.send(&chunk(piece));
    }
    c.send(b"0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.text());
    let id = json_of(&r)["id"].as_str().unwrap().to_string();
    assert_eq!(api.objects.lock().unwrap()[&id].content, data);
    let r = call(addr, "GET", &format!("/v1/files/{id}/content"), "ck-a", b"");
    assert!(r.body == data, "the download is the upload");

    // Over the limit: a declared length at once, chunks when they pass it.
    let r = request(addr, b"POST /v1/files HTTP/1.1\r\nHost: gw\r\nx-api-key: ck-a\r\nContent-Length: 3000001\r\n\r\n");
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("max_upload_bytes"));
    let mut c = Client::connect(addr);
    c.send(b"POST /v1/files HTTP/1.1\r\nHost: gw\r\nx-api-key: ck-a\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..4 {
        c.send(&chunk(&[b'x'; 1_000_000]));
    }
    assert_eq!(c.response().status, 413);

    // A client that goes away mid-upload: the upstream request is abandoned unfinished.
    let uploads = || api.keys_for("POST /v1/files").len();
    let before = uploads();
    let mut c = Client::connect(addr);
    c.send(b"POST /v1/files HTTP/1.1\r\nHost: gw\r\nx-api-key: ck-a\r\nContent-Length: 2000000\r\n\r\n");
    c.send(&[b'y'; 500_000]);
    c.stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(c);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(uploads(), before, "no upload completed upstream");
    // The worker goes on serving.
    let r = call(addr, "GET", "/v1/files", "ck-a", b"");
    assert_eq!(r.status, 200);

    // An upload with a wrong key is refused before its body is invited.
    let mut c = Client::connect(addr);
    c.send(b"POST /v1/files HTTP/1.1\r\nHost: gw\r\nx-api-key: nope\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 401);
    // Without Expect, the body it sends anyway does not cost it the answer.
    let mut c = Client::connect(addr);
    c.send(
        b"POST /v1/files HTTP/1.1\r\nHost: gw\r\nx-api-key: nope\r\nContent-Length: 400000\r\n\r\n",
    );
    c.send(&[b'z'; 400_000]);
    assert_eq!(c.response().status, 401);
    // With a good key the body is invited, then forwarded.
    let mut c = Client::connect(addr);
    c.send(b"POST /v1/files HTTP/1.1\r\nHost: gw\r\nx-api-key: ck-a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 100);
    c.send(b"0123456789");
    assert_eq!(c.response().status, 200);
    gw.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn other_paths_are_forwarded_only_when_listed() {
    let up = Upstream::start(|r| {
        let body = json!({"path": r.request_line(), "key": key_of(r)});
        json_answer(200, &body)
    });
    let dir = state_dir("forward");
    let off = gateway(&config(up.addr, &dir, ""));
    let r = call(off.local_addr(), "GET", "/v1/skills", "ck-a", b"");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("/v1/messages/batches"), "{}", r.text());
    off.shutdown();
    assert!(up.requests().is_empty());

    let on = gateway(&config(up.addr, &dir, "").replace(
        "[state]",
        "[routing]\nforward_paths = [\"/v1/skills\"]\n[state]",
    ));
    let addr = on.local_addr();
    let r = call(addr, "GET", "/v1/skills/s1/versions?limit=2", "ck-a", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = json_of(&r);
    assert_eq!(seen["path"], "GET /v1/skills/s1/versions?limit=2 HTTP/1.1");
    assert!(["key-a", "key-b"].contains(&seen["key"].as_str().unwrap()));
    for p in ["/v1/skillsets", "/v1/organizations/users"] {
        assert_eq!(call(addr, "GET", p, "ck-a", b"").status, 404, "{p}");
    }
    assert_eq!(call(addr, "GET", "/v1/skills", "wrong", b"").status, 401);
    on.shutdown();

    let refused = ringgate::Config::parse(
        &config(up.addr, &dir, "").replace(
            "[state]",
            "[routing]\nforward_paths = [\"/v1/organizations\"]\n[state]",
        ),
        "t",
        &|_| None,
    );
    assert!(refused.unwrap_err().to_string().contains("never forwarded"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn creates_fail_over_before_their_first_byte_and_reads_stay_with_their_credential() {
    let api = Api::start();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let dir = state_dir("failover");
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[state]\ndir = {dir:?}\n\
         [routing]\nstrategy = \"fill-first\"\n\
         [[upstreams]]\nname = \"dead\"\nkind = \"anthropic\"\nbase_url = \"http://{dead_addr}\"\npriority = 2\n\
         [[upstreams.credentials]]\nname = \"d\"\napi_key = \"key-d\"\n\
         [[upstreams]]\nname = \"up\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\npriority = 1\n\
         [[upstreams.credentials]]\nname = \"a\"\napi_key = \"key-a\"\n\
         [[upstreams.credentials]]\nname = \"b\"\napi_key = \"key-b\"\n{KEYS}",
        api.upstream.addr
    );
    let gw = gateway(&toml);
    let addr = gw.local_addr();
    // The first choice cannot be reached: the upload goes to the next credential, whole.
    let r = call(addr, "POST", "/v1/files", "ck-a", &[b'q'; 100_000]);
    assert_eq!(r.status, 200, "{}", r.text());
    let id = json_of(&r)["id"].as_str().unwrap().to_string();
    assert_eq!(api.keys_for("POST /v1/files"), ["key-a"]);
    assert_eq!(api.objects.lock().unwrap()[&id].content.len(), 100_000);

    // Credential a cools after a rate limit on a message; the file it holds is still read
    // through it, and new creates go to b.
    let a = gw.pool().find("up", "a").unwrap();
    let now = gw.pool().now_ms();
    gw.pool().report(
        a,
        None,
        ringgate::routing::health::Outcome::RateLimited {
            retry_after_ms: Some(60_000),
        },
        now,
    );
    let r = call(addr, "GET", &format!("/v1/files/{id}/content"), "ck-a", b"");
    assert_eq!((r.status, r.body.len()), (200, 100_000));
    assert_eq!(api.keys_for(&format!("/v1/files/{id}/content")), ["key-a"]);
    let r = call(addr, "POST", "/v1/files", "ck-a", b"second");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(api.keys_for("POST /v1/files"), ["key-a", "key-b"]);
    gw.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
