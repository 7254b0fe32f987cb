use std::time::Duration;

use serde_json::Value;

use super::*;

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000) + Duration::from_millis(ms)
}

struct Ask<'a> {
    method: &'a str,
    target: &'a str,
    key: &'a [u8],
    body: Bytes,
    content_type: Option<&'a [u8]>,
    beta: bool,
    now: SystemTime,
}

fn ask(objects: &Objects, a: Ask<'_>) -> (u16, Value) {
    let answer = objects.answer(&Call {
        method: a.method,
        target: a.target,
        owner: Owner::of(Some(a.key)),
        content_type: a.content_type,
        files_beta: a.beta,
        batch_delay: None,
        body: &a.body,
        now: a.now,
    });
    match answer {
        Answer::Reply(Reply::Json { status, body, .. }) => {
            (status, serde_json::from_str(&body).unwrap())
        }
        Answer::Content { data, .. } => (200, Value::String(format!("{} bytes", data.len()))),
        Answer::Results { requests, canceled } => (
            200,
            Value::Array(
                requests
                    .iter()
                    .map(|r| serde_json::from_str(&batches::result_line(r, canceled)).unwrap())
                    .collect(),
            ),
        ),
        Answer::Reply(_) => panic!("a stream"),
    }
}

fn get(objects: &Objects, target: &str, key: &[u8], now: SystemTime) -> (u16, Value) {
    ask(
        objects,
        Ask {
            method: "GET",
            target,
            key,
            body: Bytes::new(),
            content_type: None,
            beta: true,
            now,
        },
    )
}

fn create_batch(objects: &Objects, key: &[u8], now: SystemTime) -> String {
    let body = r#"{"requests":[{"custom_id":"a","params":{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}}]}"#;
    let (status, v) = ask(
        objects,
        Ask {
            method: "POST",
            target: "/v1/messages/batches",
            key,
            body: Bytes::from_static(body.as_bytes()),
            content_type: None,
            beta: false,
            now,
        },
    );
    assert_eq!(status, 200, "{v}");
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn paths_route_under_their_prefixes_only() {
    assert_eq!(route("/v1/messages/batches"), Some(Route::Batches));
    assert_eq!(route("/v1/messages/batches/b1"), Some(Route::Batch("b1")));
    assert_eq!(
        route("/v1/messages/batches/b1/cancel"),
        Some(Route::BatchCancel("b1"))
    );
    assert_eq!(
        route("/v1/messages/batches/b1/results"),
        Some(Route::BatchResults("b1"))
    );
    assert_eq!(route("/v1/messages/batches/b1/x"), Some(Route::Unknown));
    assert_eq!(route("/v1/messages/batches//cancel"), Some(Route::Unknown));
    assert_eq!(route("/v1/files"), Some(Route::Files));
    assert_eq!(route("/v1/files/f1"), Some(Route::File("f1")));
    assert_eq!(
        route("/v1/files/f1/content"),
        Some(Route::FileContent("f1"))
    );
    assert_eq!(route("/v1/files/f1/content/x"), Some(Route::Unknown));
    for other in [
        "/v1/messages",
        "/v1/messages/batchesx",
        "/v1/filesx",
        "/v1/models",
    ] {
        assert_eq!(route(other), None, "{other}");
    }
}

#[test]
fn a_batch_lives_by_the_time_it_is_asked_at() {
    let objects = Objects::default();
    let id = create_batch(&objects, b"k", at(0));
    let path = format!("/v1/messages/batches/{id}");
    let (_, v) = get(&objects, &path, b"k", at(100));
    assert_eq!(v["processing_status"], "in_progress");
    let (status, v) = get(&objects, &format!("{path}/results"), b"k", at(100));
    assert_eq!(status, 400, "{v}");
    let delete = |now| {
        let a = Ask {
            method: "DELETE",
            target: &path,
            key: b"k",
            body: Bytes::new(),
            content_type: None,
            beta: false,
            now,
        };
        ask(&objects, a)
    };
    assert_eq!(delete(at(100)).0, 400);
    let (_, v) = get(&objects, &path, b"k", at(300));
    assert_eq!(v["processing_status"], "ended");
    let (status, v) = get(&objects, &format!("{path}/results"), b"k", at(300));
    assert_eq!(status, 200);
    assert_eq!(v[0]["custom_id"], "a");
    assert_eq!(v[0]["result"]["type"], "succeeded");
    let (status, v) = delete(at(300));
    assert_eq!((status, &v["type"]), (200, &json!("message_batch_deleted")));
    assert_eq!(get(&objects, &path, b"k", at(300)).0, 404);
    assert_eq!(objects.state().batch_bytes, 0);
}

#[test]
fn another_key_sees_nothing() {
    let objects = Objects::default();
    let id = create_batch(&objects, b"k1", at(0));
    let (status, v) = get(
        &objects,
        &format!("/v1/messages/batches/{id}"),
        b"k2",
        at(0),
    );
    assert_eq!(status, 404);
    assert_eq!(v["error"]["type"], "not_found_error");
    let (_, v) = get(&objects, "/v1/messages/batches", b"k2", at(0));
    assert_eq!(v["data"], json!([]));
    let (_, v) = get(&objects, "/v1/messages/batches", b"k1", at(0));
    assert_eq!(v["first_id"], json!(id));
}

#[test]
fn lists_are_newest_first_and_paged() {
    let objects = Objects::default();
    let ids: Vec<String> = (0..3)
        .map(|i| create_batch(&objects, b"k", at(i)))
        .collect();
    let (_, v) = get(&objects, "/v1/messages/batches?limit=2", b"k", at(9));
    assert_eq!(v["data"][0]["id"], json!(ids[2]));
    assert_eq!(v["last_id"], json!(ids[1]));
    assert_eq!(v["has_more"], true);
    let next = format!("/v1/messages/batches?limit=2&after_id={}", ids[1]);
    let (_, v) = get(&objects, &next, b"k", at(9));
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&v["first_id"], &v["has_more"]),
        (&json!(ids[0]), &json!(false))
    );
}

#[test]
fn files_need_their_beta_and_methods_their_paths() {
    let objects = Objects::default();
    let mut a = Ask {
        method: "GET",
        target: "/v1/files",
        key: b"k",
        body: Bytes::new(),
        content_type: None,
        beta: false,
        now: at(0),
    };
    let (status, v) = ask(&objects, a);
    assert_eq!(status, 400);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("files-api-2025-04-14"));
    a = Ask {
        method: "PUT",
        beta: true,
        ..a_get("/v1/files/f")
    };
    let answer = objects.answer(&Call {
        method: a.method,
        target: a.target,
        owner: Owner::of(None),
        content_type: None,
        files_beta: true,
        batch_delay: None,
        body: &a.body,
        now: a.now,
    });
    let Answer::Reply(Reply::Json {
        status, headers, ..
    }) = answer
    else {
        panic!("not JSON")
    };
    assert_eq!(status, 405);
    assert_eq!(headers, vec![("allow", "GET, DELETE".to_string())]);
    let (status, v) = get(&objects, "/v1/messages/batches/x/bogus", b"k", at(0));
    assert_eq!(
        (status, &v["error"]["type"]),
        (404, &json!("not_found_error"))
    );
}

fn a_get(target: &str) -> Ask<'_> {
    Ask {
        method: "GET",
        target,
        key: b"k",
        body: Bytes::new(),
        content_type: None,
        beta: true,
        now: at(0),
    }
}

#[test]
fn stores_are_bounded() {
    let objects = Objects::new(ObjectLimits {
        max_file_bytes: 10,
        max_files: 2,
        max_batches: 1,
        ..ObjectLimits::default()
    });
    create_batch(&objects, b"k", at(0));
    let body =
        r#"{"requests":[{"custom_id":"a","params":{"model":"m","max_tokens":9,"messages":[]}}]}"#;
    let (status, v) = ask(
        &objects,
        Ask {
            method: "POST",
            target: "/v1/messages/batches",
            body: Bytes::from_static(body.as_bytes()),
            ..a_get("")
        },
    );
    assert_eq!(status, 400, "{v}");
    let upload = |data: &str| {
        let body = format!(
            "--b\r\ncontent-disposition: form-data; name=file; filename=f\r\n\r\n{data}\r\n--b--"
        );
        ask(
            &objects,
            Ask {
                method: "POST",
                target: "/v1/files",
                body: Bytes::from(body),
                content_type: Some(b"multipart/form-data; boundary=b"),
                ..a_get("")
            },
        )
    };
    assert_eq!(upload("123456").0, 200);
    let (status, v) = upload("123456");
    assert_eq!(
        (status, &v["error"]["type"]),
        (413, &json!("request_too_large"))
    );
    assert_eq!(upload("1234").0, 200);
    assert_eq!(upload("").0, 400);
}
