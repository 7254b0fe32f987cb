//! Message Batches in the mock: what a batch is, how it lives, how it is shown.
//!
//! The gateway relays the whole Message Batches API, and its tests drive the official SDK
//! through it, so a batch here has the real API's shape and lifecycle: created `in_progress`, it
//! ends after a delay (`x-mock-batch-ms` on the create, [`DEFAULT_DELAY`] otherwise), or is
//! canceled (`canceling`, then ended at the same moment with every request `canceled`). No timer
//! runs: a batch's state is a pure function of its times and the time it is looked at, so tests
//! pass the time in. Its results are the mock's ordinary answers to each request's `params`, one
//! JSON line per request, built as they are written.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::Owner;
use crate::http::ApiError;
use crate::mock::answers::Reply;
use crate::mock::anthropic;
use crate::mock::shape::Shape;

/// How long a batch takes to end when its create does not say.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(300);
/// The longest delay a create may ask for: a batch expires after a day.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 3600);
/// The header that sets a batch's delay, in milliseconds.
pub const DELAY_HEADER: &str = "x-mock-batch-ms";
/// Where the real API serves results; `results_url` points there, as the real API's does.
pub const RESULTS_ORIGIN: &str = "https://api.anthropic.com";

/// One request of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRequest {
    pub custom_id: String,
    /// Its `params`, as a Messages request body (without `stream`).
    pub params: Box<[u8]>,
    /// Whether its answer is an error (decided when the batch is created).
    pub errored: bool,
}

/// A batch.
#[derive(Clone, Debug)]
pub struct Batch {
    pub id: String,
    pub owner: Owner,
    pub created: SystemTime,
    /// When it ends, canceled or not.
    pub ends: SystemTime,
    /// When a cancel was asked for.
    pub cancel: Option<SystemTime>,
    pub requests: Arc<[BatchRequest]>,
    /// The bytes its requests' params take.
    pub bytes: u64,
}

/// A batch's `processing_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Canceling,
    Ended,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Canceling => "canceling",
            Status::Ended => "ended",
        }
    }
}

/// A batch's `request_counts`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub processing: usize,
    pub succeeded: usize,
    pub errored: usize,
    pub canceled: usize,
    pub expired: usize,
}

impl Batch {
    /// A new batch of `requests` by `owner`, created at `now`, ending `delay` later.
    pub fn new(
        owner: Owner,
        requests: Vec<BatchRequest>,
        now: SystemTime,
        delay: Duration,
    ) -> Batch {
        let bytes = requests
            .iter()
            .map(|r| (r.params.len() + r.custom_id.len()) as u64)
            .sum();
        Batch {
            id: format!("msgbatch_{}", anthropic::random_suffix(24)),
            owner,
            created: now,
            ends: now + delay.min(MAX_DELAY),
            cancel: None,
            requests: requests.into(),
            bytes,
        }
    }

    pub fn status(&self, now: SystemTime) -> Status {
        if now >= self.ends {
            Status::Ended
        } else if self.cancel.is_some() {
            Status::Canceling
        } else {
            Status::InProgress
        }
    }

    /// Whether its requests end canceled.
    pub fn canceled(&self) -> bool {
        self.cancel.is_some_and(|c| c < self.ends)
    }

    /// Asks for a cancel at `now`; a batch that has ended or is already canceling is left as
    /// it is.
    pub fn cancel(&mut self, now: SystemTime) {
        if self.status(now) == Status::InProgress {
            self.cancel = Some(now);
        }
    }

    pub fn counts(&self, now: SystemTime) -> Counts {
        let n = self.requests.len();
        if self.status(now) != Status::Ended {
            return Counts {
                processing: n,
                ..Counts::default()
            };
        }
        if self.canceled() {
            return Counts {
                canceled: n,
                ..Counts::default()
            };
        }
        let errored = self.requests.iter().filter(|r| r.errored).count();
        Counts {
            succeeded: n - errored,
            errored,
            ..Counts::default()
        }
    }

    /// The batch object as the API shows it at `now`.
    pub fn to_json(&self, now: SystemTime) -> Value {
        let status = self.status(now);
        let ended = status == Status::Ended;
        let c = self.counts(now);
        json!({
            "id": self.id,
            "type": "message_batch",
            "processing_status": status.as_str(),
            "request_counts": {
                "processing": c.processing,
                "succeeded": c.succeeded,
                "errored": c.errored,
                "canceled": c.canceled,
                "expired": c.expired,
            },
            "ended_at": ended.then(|| rfc3339(self.ends)),
            "created_at": rfc3339(self.created),
            "expires_at": rfc3339(self.created + MAX_DELAY),
            "archived_at": null,
            "cancel_initiated_at": self.cancel.map(rfc3339),
            "results_url": ended.then(|| format!("{RESULTS_ORIGIN}/v1/messages/batches/{}/results", self.id)),
        })
    }
}

/// A time as the API writes it: RFC 3339, UTC, to the microsecond.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// The delay `x-mock-batch-ms` asks for (at most [`MAX_DELAY`]), or the default.
pub fn delay(header: Option<&[u8]>) -> Result<Duration, ApiError> {
    let Some(value) = header else {
        return Ok(DEFAULT_DELAY);
    };
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|ms| Duration::from_millis(ms).min(MAX_DELAY))
        .ok_or_else(|| {
            ApiError::invalid_request(
                format!("{DELAY_HEADER}: expected a number of milliseconds").into(),
            )
        })
}

fn invalid(message: String) -> ApiError {
    ApiError::invalid_request(message.into())
}

/// The requests of a create's body, checked as the API checks them: a non-empty `requests`
/// list (of at most `max` requests), each with a unique `custom_id` of 1 to 64 characters and
/// `params` holding at least `model`, `max_tokens` and `messages`.
pub fn parse_create(body: &[u8], max: usize) -> Result<Vec<BatchRequest>, ApiError> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("the request body is not valid JSON: {e}")))?;
    let Value::Object(mut doc) = doc else {
        return Err(invalid("the request body must be a JSON object".into()));
    };
    let requests = match doc.remove("requests") {
        None => return Err(invalid("requests: Field required".into())),
        Some(Value::Array(r)) => r,
        Some(_) => return Err(invalid("requests: Input should be a valid list".into())),
    };
    if requests.is_empty() {
        return Err(invalid("requests: List should have at least 1 item".into()));
    }
    if requests.len() > max {
        return Err(invalid(format!(
            "requests: a batch holds at most {max} requests, not {}",
            requests.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(requests.len());
    let mut out = Vec::with_capacity(requests.len());
    for (i, r) in requests.into_iter().enumerate() {
        let Value::Object(mut r) = r else {
            return Err(invalid(format!("requests.{i}: Input should be an object")));
        };
        let custom_id = match r.remove("custom_id") {
            None => return Err(invalid(format!("requests.{i}.custom_id: Field required"))),
            Some(Value::String(s)) if (1..=64).contains(&s.chars().count()) => s,
            Some(Value::String(_)) => {
                return Err(invalid(format!(
                    "requests.{i}.custom_id: String should have 1 to 64 characters"
                )))
            }
            Some(_) => {
                return Err(invalid(format!(
                    "requests.{i}.custom_id: Input should be a valid string"
                )))
            }
        };
        if !seen.insert(custom_id.clone()) {
            return Err(invalid(format!(
                "requests.{i}.custom_id: {custom_id:?} is used by another request; each \
                 custom_id in a batch must be unique"
            )));
        }
        let mut params = match r.remove("params") {
            None => return Err(invalid(format!("requests.{i}.params: Field required"))),
            Some(Value::Object(p)) => p,
            Some(_) => {
                return Err(invalid(format!(
                    "requests.{i}.params: Input should be an object"
                )))
            }
        };
        for field in ["model", "max_tokens", "messages"] {
            if !params.contains_key(field) {
                return Err(invalid(format!(
                    "requests.{i}.params.{field}: Field required"
                )));
            }
        }
        // Batched requests are answered whole; the answer is the non-streamed one.
        params.remove("stream");
        let params = serde_json::to_vec(&params).expect("a JSON map serializes");
        let errored = anthropic::check_messages(&params).is_err();
        out.push(BatchRequest {
            custom_id,
            params: params.into(),
            errored,
        });
    }
    Ok(out)
}

/// The line of the results (with its newline) for `request`: its answer, the error it got, or
/// `canceled`.
pub fn result_line(request: &BatchRequest, canceled: bool) -> String {
    let id = serde_json::to_string(&request.custom_id).expect("a string serializes");
    let result = if canceled {
        "{\"type\":\"canceled\"}".to_string()
    } else {
        match anthropic::messages(&request.params, None, &Shape::default()) {
            Ok(Reply::Json { body, .. }) => {
                format!("{{\"type\":\"succeeded\",\"message\":{body}}}")
            }
            Ok(_) => errored(&ApiError::invalid_request(
                "the mock could not answer this request whole".into(),
            )),
            Err(e) => errored(&e),
        }
    };
    format!("{{\"custom_id\":{id},\"result\":{result}}}\n")
}

fn errored(e: &ApiError) -> String {
    format!(
        "{{\"type\":\"errored\",\"error\":{}}}",
        e.body(&anthropic::request_id())
    )
}

#[cfg(test)]
#[path = "batches_tests.rs"]
mod tests;
