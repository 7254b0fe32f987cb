use super::*;

const T0: Duration = Duration::from_secs(1_750_000_000);

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + T0 + Duration::from_millis(ms)
}

fn request(id: &str, text: &str) -> String {
    format!(
        r#"{{"custom_id":"{id}","params":{{"model":"claude-x","max_tokens":50,"messages":[{{"role":"user","content":"{text}"}}]}}}}"#
    )
}

fn create(requests: &[String]) -> Result<Vec<BatchRequest>, ApiError> {
    parse_create(
        format!("{{\"requests\":[{}]}}", requests.join(",")).as_bytes(),
        100,
    )
}

fn batch(n: usize) -> Batch {
    let requests: Vec<String> = (0..n).map(|i| request(&format!("r{i}"), "hi")).collect();
    Batch::new(
        Owner::of(Some(b"k")),
        create(&requests).unwrap(),
        at(0),
        Duration::from_millis(300),
    )
}

#[test]
fn a_batch_ends_when_its_delay_has_passed() {
    let b = batch(3);
    assert!(
        b.id.starts_with("msgbatch_") && b.id.len() == 9 + 24,
        "{}",
        b.id
    );
    for (ms, status) in [
        (0, Status::InProgress),
        (299, Status::InProgress),
        (300, Status::Ended),
    ] {
        assert_eq!(b.status(at(ms)), status, "{ms}");
    }
    assert_eq!(
        b.counts(at(10)),
        Counts {
            processing: 3,
            ..Counts::default()
        }
    );
    assert_eq!(
        b.counts(at(400)),
        Counts {
            succeeded: 3,
            ..Counts::default()
        }
    );

    let v = b.to_json(at(10));
    assert_eq!(v["type"], "message_batch");
    assert_eq!(v["processing_status"], "in_progress");
    assert_eq!(v["created_at"], "2025-06-15T15:06:40.000000Z");
    assert_eq!(v["expires_at"], "2025-06-16T15:06:40.000000Z");
    for null in [
        "ended_at",
        "archived_at",
        "cancel_initiated_at",
        "results_url",
    ] {
        assert!(v[null].is_null(), "{null}");
    }
    let v = b.to_json(at(400));
    assert_eq!(v["processing_status"], "ended");
    assert_eq!(v["ended_at"], "2025-06-15T15:06:40.300000Z");
    assert_eq!(
        v["results_url"],
        format!(
            "https://api.anthropic.com/v1/messages/batches/{}/results",
            b.id
        )
    );
    assert_eq!(v["request_counts"]["succeeded"], 3);
    assert_eq!(v["request_counts"]["expired"], 0);
}

#[test]
fn a_canceled_batch_ends_on_time_with_every_request_canceled() {
    let mut b = batch(2);
    b.cancel(at(100));
    assert_eq!(b.status(at(150)), Status::Canceling);
    assert_eq!(b.counts(at(150)).processing, 2);
    let v = b.to_json(at(150));
    assert_eq!(v["processing_status"], "canceling");
    assert_eq!(v["cancel_initiated_at"], "2025-06-15T15:06:40.100000Z");
    assert_eq!(b.status(at(300)), Status::Ended);
    assert_eq!(
        b.counts(at(300)),
        Counts {
            canceled: 2,
            ..Counts::default()
        }
    );
    // A second cancel changes nothing.
    b.cancel(at(200));
    assert_eq!(b.cancel, Some(at(100)));

    // Too late to cancel: the batch stays as it ended.
    let mut b = batch(1);
    b.cancel(at(500));
    assert_eq!(b.cancel, None);
    assert_eq!(b.counts(at(500)).succeeded, 1);
}

#[test]
fn creates_are_checked() {
    let ok = request("a", "hi");
    for (body, needle) in [
        ("[]".to_string(), "JSON object"),
        ("{}".to_string(), "requests: Field required"),
        (
            "{\"requests\":{}}".to_string(),
            "requests: Input should be a valid list",
        ),
        ("{\"requests\":[]}".to_string(), "at least 1"),
        (
            "{\"requests\":[1]}".to_string(),
            "requests.0: Input should be an object",
        ),
        (
            format!("{{\"requests\":[{ok},{{\"params\":{{}}}}]}}"),
            "requests.1.custom_id: Field required",
        ),
        (
            format!("{{\"requests\":[{ok},{}]}}", request("", "x")),
            "requests.1.custom_id: String should have",
        ),
        (
            format!("{{\"requests\":[{}]}}", request(&"x".repeat(65), "x")),
            "requests.0.custom_id: String should have",
        ),
        (
            "{\"requests\":[{\"custom_id\":7}]}".to_string(),
            "valid string",
        ),
        (
            format!("{{\"requests\":[{ok},{ok}]}}"),
            "requests.1.custom_id: \"a\" is used",
        ),
        (
            "{\"requests\":[{\"custom_id\":\"a\"}]}".to_string(),
            "requests.0.params: Field required",
        ),
        (
            "{\"requests\":[{\"custom_id\":\"a\",\"params\":{\"model\":\"m\",\"messages\":[]}}]}"
                .to_string(),
            "requests.0.params.max_tokens: Field required",
        ),
    ] {
        let e = parse_create(body.as_bytes(), 100).unwrap_err();
        assert_eq!(e.status, 400, "{body}");
        assert!(e.message.contains(needle), "{body}: {}", e.message);
    }
    let e = create(&[request("a", "x"), request("b", "x")]).unwrap();
    assert_eq!(e.len(), 2);
    let too_many: Vec<String> = (0..3).map(|i| request(&format!("r{i}"), "x")).collect();
    let body = format!("{{\"requests\":[{}]}}", too_many.join(","));
    assert!(parse_create(body.as_bytes(), 2)
        .unwrap_err()
        .message
        .contains("at most 2"));
}

#[test]
fn results_are_the_ordinary_answers() {
    let reqs = create(&[request("first", "hello there"), request("second", "x")]).unwrap();
    let line = result_line(&reqs[0], false);
    assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["custom_id"], "first");
    assert_eq!(v["result"]["type"], "succeeded");
    assert_eq!(v["result"]["message"]["type"], "message");
    assert_eq!(v["result"]["message"]["model"], "claude-x");
    assert!(v["result"]["message"]["content"][0]["text"].is_string());
    let v: Value = serde_json::from_str(&result_line(&reqs[1], true)).unwrap();
    assert_eq!(v["result"], json!({"type": "canceled"}));
}

#[test]
fn a_request_the_api_would_refuse_is_errored_and_a_stream_is_answered_whole() {
    let bad = r#"{"custom_id":"bad","params":{"model":"m","max_tokens":5,"messages":[{"role":"robot","content":"x"}]}}"#;
    let streamed = r#"{"custom_id":"s","params":{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]}}"#;
    let reqs = create(&[bad.to_string(), streamed.to_string()]).unwrap();
    assert!(reqs[0].errored && !reqs[1].errored);
    let b = Batch::new(Owner::of(None), reqs, at(0), Duration::ZERO);
    assert_eq!(
        b.counts(at(0)),
        Counts {
            succeeded: 1,
            errored: 1,
            ..Counts::default()
        }
    );
    let v: Value = serde_json::from_str(&result_line(&b.requests[0], false)).unwrap();
    assert_eq!(v["result"]["type"], "errored");
    assert_eq!(v["result"]["error"]["type"], "error");
    assert_eq!(
        v["result"]["error"]["error"]["type"],
        "invalid_request_error"
    );
    let v: Value = serde_json::from_str(&result_line(&b.requests[1], false)).unwrap();
    assert_eq!(v["result"]["type"], "succeeded");
}

#[test]
fn delays_are_read_from_their_header() {
    assert_eq!(delay(None).unwrap(), DEFAULT_DELAY);
    assert_eq!(delay(Some(b"0")).unwrap(), Duration::ZERO);
    assert_eq!(delay(Some(b"1500")).unwrap(), Duration::from_millis(1500));
    assert_eq!(delay(Some(b"99999999999999")).unwrap(), MAX_DELAY);
    let e = delay(Some(b"soon")).unwrap_err();
    assert!(e.message.contains(DELAY_HEADER));
}
