//! Batches and files over real sockets: a mock server, asked as the SDK asks it.

use std::time::Duration;

use serde_json::Value;

use crate::dialect::Dialect;
use crate::mock::server::tests::{send, Got};
use crate::mock::server::{MockServer, MockServerOptions, MockStats};

const BETA: &str =
    "anthropic-beta: message-batches-2024-09-24\r\nanthropic-beta: x, files-api-2025-04-14\r\n";

fn mock(dialect: Option<Dialect>, stats: Option<std::sync::Arc<MockStats>>) -> MockServer {
    MockServer::start(MockServerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        // Two workers: what one keeps, the other sees.
        workers: 2,
        event_interval: Duration::ZERO,
        api_key: None,
        key_faults: Vec::new(),
        stats,
        dialect,
    })
    .unwrap()
}

fn key(k: &str) -> String {
    format!("x-api-key: {k}\r\n")
}

fn request(id: &str) -> String {
    format!(
        r#"{{"custom_id":"{id}","params":{{"model":"claude-x","max_tokens":30,"messages":[{{"role":"user","content":"say {id}"}}]}}}}"#
    )
}

#[test]
fn a_batch_is_created_read_listed_answered_and_deleted() {
    let stats = MockStats::new(2);
    let server = mock(None, Some(stats.clone()));
    let body = format!("{{\"requests\":[{},{}]}}", request("one"), request("two"));
    let extra = format!("{}x-mock-batch-ms: 150\r\n", key("k1"));
    let created = send(
        &server,
        "POST",
        "/v1/messages/batches",
        &extra,
        body.as_bytes(),
    );
    assert_eq!(created.status, 200);
    let v = created.json();
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["processing_status"], "in_progress");
    assert_eq!(v["request_counts"]["processing"], 2);

    let path = format!("/v1/messages/batches/{id}");
    let got = send(&server, "GET", &format!("{path}/results"), &key("k1"), b"");
    assert_eq!(got.status, 400);
    assert_eq!(got.json()["error"]["type"], "invalid_request_error");
    // Another key: no such batch, and nothing listed.
    let got = send(&server, "GET", &path, &key("k2"), b"");
    assert_eq!(got.status, 404);
    assert_eq!(got.json()["error"]["type"], "not_found_error");
    let got = send(&server, "GET", "/v1/messages/batches", &key("k2"), b"");
    assert_eq!(got.json()["data"], serde_json::json!([]));

    std::thread::sleep(Duration::from_millis(200));
    let v = send(&server, "GET", &path, &key("k1"), b"").json();
    assert_eq!(v["processing_status"], "ended");
    assert_eq!(v["request_counts"]["succeeded"], 2);
    let results_url = format!("https://api.anthropic.com{path}/results");
    assert_eq!(v["results_url"], results_url.as_str());
    let v = send(
        &server,
        "GET",
        "/v1/messages/batches?limit=5",
        &key("k1"),
        b"",
    )
    .json();
    assert_eq!(
        (&v["first_id"], &v["has_more"]),
        (&Value::from(id.as_str()), &Value::from(false))
    );

    let got = send(&server, "GET", &format!("{path}/results"), &key("k1"), b"");
    assert_eq!(got.status, 200);
    assert!(
        got.head.contains("content-type: application/binary"),
        "{}",
        got.head
    );
    let text = String::from_utf8(got.body).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["custom_id"], "one");
    assert_eq!(lines[1]["custom_id"], "two");
    assert_eq!(lines[1]["result"]["message"]["role"], "assistant");

    assert_eq!(send(&server, "DELETE", &path, &key("k2"), b"").status, 404);
    let v = send(&server, "DELETE", &path, &key("k1"), b"").json();
    assert_eq!(
        v,
        serde_json::json!({"id": id, "type": "message_batch_deleted"})
    );
    assert_eq!(send(&server, "GET", &path, &key("k1"), b"").status, 404);
    let got = send(&server, "PUT", &path, &key("k1"), b"");
    assert_eq!(got.status, 405);
    assert!(got.head.contains("allow: get, delete"), "{}", got.head);
    assert_eq!(stats.requests(), 11);
    server.shutdown();
}

#[test]
fn a_canceled_batch_ends_with_its_requests_canceled() {
    let server = mock(None, None);
    let body = format!("{{\"requests\":[{}]}}", request("c"));
    let extra = format!("{}x-mock-batch-ms: 100\r\n", key("k"));
    let v = send(
        &server,
        "POST",
        "/v1/messages/batches",
        &extra,
        body.as_bytes(),
    )
    .json();
    let path = format!("/v1/messages/batches/{}", v["id"].as_str().unwrap());
    let v = send(&server, "POST", &format!("{path}/cancel"), &key("k"), b"").json();
    assert_eq!(v["processing_status"], "canceling");
    assert!(v["cancel_initiated_at"].is_string());
    std::thread::sleep(Duration::from_millis(150));
    let got = send(&server, "GET", &format!("{path}/results"), &key("k"), b"");
    let line: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(line["result"]["type"], "canceled");
    server.shutdown();
}

fn upload(server: &MockServer, k: &str, name: &str, data: &[u8]) -> Got {
    let mut body = format!(
        "preamble\r\n--bnd\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n--bnd--\r\n");
    let extra = format!(
        "{BETA}{}content-type: multipart/form-data; boundary=\"bnd\"\r\n",
        key(k)
    );
    send(server, "POST", "/v1/files", &extra, &body)
}

#[test]
fn a_file_is_uploaded_listed_read_and_deleted() {
    let server = mock(None, None);
    // Larger than a chunk of the answer, and every byte value.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let got = upload(&server, "k1", "data.bin", &data);
    assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
    let v = got.json();
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["size_bytes"], data.len());
    assert_eq!(v["filename"], "data.bin");

    let with_beta = |k: &str| format!("{BETA}{}", key(k));
    let path = format!("/v1/files/{id}");
    let v = send(&server, "GET", "/v1/files?beta=true", &with_beta("k1"), b"").json();
    assert_eq!(v["data"][0]["id"], id.as_str());
    let v = send(&server, "GET", "/v1/files", &with_beta("k2"), b"").json();
    assert_eq!(v["data"], serde_json::json!([]));
    let v = send(&server, "GET", &path, &with_beta("k1"), b"").json();
    assert_eq!(v["mime_type"], "application/octet-stream");
    assert_eq!(
        send(&server, "GET", &path, &with_beta("k2"), b"").status,
        404
    );

    let got = send(
        &server,
        "GET",
        &format!("{path}/content"),
        &with_beta("k1"),
        b"",
    );
    assert_eq!(got.status, 200);
    assert!(got
        .head
        .contains(&format!("content-length: {}", data.len())));
    assert!(got.head.contains("content-type: application/octet-stream"));
    assert!(got.body == data, "the bytes differ");
    let got = send(
        &server,
        "GET",
        &format!("{path}/content"),
        &with_beta("k2"),
        b"",
    );
    assert_eq!(got.status, 404);

    // Without the beta: refused, naming it.
    let got = send(&server, "GET", &path, &key("k1"), b"");
    assert_eq!(got.status, 400);
    assert!(String::from_utf8_lossy(&got.body).contains("files-api-2025-04-14"));

    assert_eq!(
        send(&server, "DELETE", &path, &with_beta("k2"), b"").status,
        404
    );
    let v = send(&server, "DELETE", &path, &with_beta("k1"), b"").json();
    assert_eq!(v, serde_json::json!({"id": id, "type": "file_deleted"}));
    assert_eq!(
        send(&server, "GET", &path, &with_beta("k1"), b"").status,
        404
    );
    let got = send(&server, "GET", "/v1/files/x/nothing", &with_beta("k1"), b"");
    assert_eq!(got.status, 404);
    server.shutdown();
}

#[test]
fn a_mock_of_another_dialect_keeps_no_objects() {
    let server = mock(Some(Dialect::OpenAi), None);
    let got = send(&server, "GET", "/v1/messages/batches", "", b"");
    assert_eq!(got.status, 404);
    server.shutdown();
    let server = mock(Some(Dialect::Anthropic), None);
    let got = send(&server, "GET", "/v1/messages/batches", "", b"");
    assert_eq!(got.status, 200);
    server.shutdown();
}
