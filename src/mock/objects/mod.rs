//! The Anthropic API's stored objects in the mock: Message Batches ([`batches`]) and Files
//! ([`files`], beta), with the real API's paths, shapes, errors and pagination ([`page`]).
//!
//! The gateway relays these endpoints, and its tests drive the official SDK through it to this
//! mock, so the mock keeps what the API keeps: batches and files, shared by all of a server's
//! workers ([`Objects`], one per mock server), bounded ([`ObjectLimits`]), each owned by the key
//! that created it. Another key is told that the object does not exist (a 404) and lists only
//! its own, as separate Anthropic workspaces would: a test can so tell which credential the
//! gateway used for each read. Keys are kept as SHA-256 digests, never as themselves.
//!
//! [`route`] says whether a path is one of these; [`Objects::answer`] answers it, with the time
//! passed in; [`wire`] writes what is not a JSON document (a file's bytes, a batch's results).
//!
//! Paths: `POST|GET /v1/messages/batches`, `GET|DELETE /v1/messages/batches/{id}`,
//! `POST /v1/messages/batches/{id}/cancel`, `GET /v1/messages/batches/{id}/results`,
//! `POST|GET /v1/files`, `GET|DELETE /v1/files/{id}`, `GET /v1/files/{id}/content`.

pub mod batches;
pub mod files;
pub mod multipart;
pub mod page;
pub mod wire;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;
use serde_json::json;

use self::batches::{Batch, BatchRequest, Status};
use self::files::StoredFile;
use self::page::PageQuery;
use crate::api::auth::{same, sha256};
use crate::http::{ApiError, ErrorType};
use crate::mock::answers::{self, ok_json, Reply};

/// Who owns an object: the digest of the key that created it (`None`: no key was sent).
#[derive(Clone, Copy, Debug)]
pub struct Owner(Option<[u8; 32]>);

impl Owner {
    /// The owner of whatever a request presenting `key` creates.
    pub fn of(key: Option<&[u8]>) -> Owner {
        Owner(key.map(sha256))
    }

    /// Whether this is `other` (compared in constant time, as the mock compares keys).
    pub fn is(&self, other: &Owner) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => same(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

/// How much a mock keeps. Past these, creating is refused with an API error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectLimits {
    /// The bytes of all files together.
    pub max_file_bytes: u64,
    pub max_files: usize,
    pub max_batches: usize,
    pub max_batch_requests: usize,
    /// The bytes of all batches' requests together.
    pub max_batch_bytes: u64,
}

impl Default for ObjectLimits {
    fn default() -> ObjectLimits {
        ObjectLimits {
            max_file_bytes: 1 << 30,
            max_files: 10_000,
            max_batches: 10_000,
            max_batch_requests: 100_000,
            max_batch_bytes: 1 << 30,
        }
    }
}

/// A mock server's batches and files, shared by its workers.
#[derive(Debug, Default)]
pub struct Objects {
    state: Mutex<State>,
    limits: ObjectLimits,
}

/// The objects, oldest first.
#[derive(Debug, Default)]
struct State {
    batches: Vec<Batch>,
    files: Vec<StoredFile>,
    file_bytes: u64,
    batch_bytes: u64,
}

/// Where a request under these paths goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    Batches,
    Batch(&'a str),
    BatchCancel(&'a str),
    BatchResults(&'a str),
    Files,
    File(&'a str),
    FileContent(&'a str),
    /// Under these paths, but nothing there: a 404.
    Unknown,
}

impl Route<'_> {
    /// The methods the path takes.
    fn allow(self) -> &'static str {
        match self {
            Route::Batches | Route::Files => "GET, POST",
            Route::Batch(_) | Route::File(_) => "GET, DELETE",
            Route::BatchCancel(_) => "POST",
            Route::BatchResults(_) | Route::FileContent(_) => "GET",
            Route::Unknown => "",
        }
    }

    fn is_files(self) -> bool {
        matches!(self, Route::Files | Route::File(_) | Route::FileContent(_))
    }
}

/// The route of `path` (no query), if it is under `/v1/messages/batches` or `/v1/files`.
pub fn route(path: &str) -> Option<Route<'_>> {
    let id = |s: &'_ str| !s.is_empty() && !s.contains('/');
    if let Some(rest) = under(path, "/v1/messages/batches") {
        return Some(match rest.split_once('/') {
            None if rest.is_empty() => Route::Batches,
            None => Route::Batch(rest),
            Some((b, "cancel")) if id(b) => Route::BatchCancel(b),
            Some((b, "results")) if id(b) => Route::BatchResults(b),
            Some(_) => Route::Unknown,
        });
    }
    let rest = under(path, "/v1/files")?;
    Some(match rest.split_once('/') {
        None if rest.is_empty() => Route::Files,
        None => Route::File(rest),
        Some((f, "content")) if id(f) => Route::FileContent(f),
        Some(_) => Route::Unknown,
    })
}

/// What follows `prefix` in `path` (without its `/`), if `path` is `prefix` or under it.
fn under<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() {
        return Some("");
    }
    rest.strip_prefix('/')
}

/// A request to these paths, as the objects need it.
pub struct Call<'a> {
    pub method: &'a str,
    /// Path and query.
    pub target: &'a str,
    pub owner: Owner,
    pub content_type: Option<&'a [u8]>,
    /// Whether its `anthropic-beta` headers include the Files API's.
    pub files_beta: bool,
    /// Its `x-mock-batch-ms` header.
    pub batch_delay: Option<&'a [u8]>,
    pub body: &'a Bytes,
    pub now: SystemTime,
}

/// An answer.
#[derive(Debug)]
pub enum Answer {
    /// A JSON document (or an error).
    Reply(Reply),
    /// A file's bytes.
    Content { mime_type: String, data: Bytes },
    /// A batch's results: a line per request.
    Results {
        requests: Arc<[BatchRequest]>,
        canceled: bool,
    },
}

impl Answer {
    pub fn status(&self) -> u16 {
        match self {
            Answer::Reply(Reply::Json { status, .. }) => *status,
            _ => 200,
        }
    }

    fn error(e: &ApiError) -> Answer {
        Answer::Reply(answers::error(e))
    }
}

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(
        404,
        ErrorType::NotFound,
        format!("{what} not found: {}", page::shown(id)).into(),
    )
}

fn json_reply(v: serde_json::Value) -> Answer {
    Answer::Reply(ok_json(v.to_string()))
}

impl Objects {
    pub fn new(limits: ObjectLimits) -> Objects {
        Objects {
            state: Mutex::default(),
            limits,
        }
    }

    /// A store with the default limits, to share among a server's workers.
    pub fn shared() -> Arc<Objects> {
        Arc::new(Objects::default())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent state: every change is one push,
        // remove or assignment.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers `call`, which [`route`] placed under these paths.
    pub fn answer(&self, call: &Call<'_>) -> Answer {
        let (path, query) = call.target.split_once('?').unwrap_or((call.target, ""));
        let Some(route) = route(path) else {
            return Answer::error(&ApiError::not_found_served(
                path,
                "/v1/messages/batches and /v1/files",
            ));
        };
        if route == Route::Unknown {
            let shown: String = path.chars().take(200).collect();
            return Answer::error(&ApiError::new(
                404,
                ErrorType::NotFound,
                format!("mock: nothing at {shown}").into(),
            ));
        }
        if route.is_files() && !call.files_beta {
            return Answer::error(&files::beta_required());
        }
        let result = match (call.method, route) {
            ("POST", Route::Batches) => self.create_batch(call),
            ("GET", Route::Batches) => self.list_batches(call, query),
            ("GET", Route::Batch(id)) => {
                self.with_batch(call, id, |b, now| Ok(json_reply(b.to_json(now))))
            }
            ("POST", Route::BatchCancel(id)) => self.with_batch(call, id, |b, now| {
                b.cancel(now);
                Ok(json_reply(b.to_json(now)))
            }),
            ("GET", Route::BatchResults(id)) => self.with_batch(call, id, |b, now| {
                if b.status(now) != Status::Ended {
                    return Err(ApiError::invalid_request(
                        format!(
                            "batch {} has not ended yet: its results are not ready",
                            b.id
                        )
                        .into(),
                    ));
                }
                Ok(Answer::Results {
                    requests: b.requests.clone(),
                    canceled: b.canceled(),
                })
            }),
            ("DELETE", Route::Batch(id)) => self.delete_batch(call, id),
            ("POST", Route::Files) => self.upload(call),
            ("GET", Route::Files) => self.list_files(call, query),
            ("GET", Route::File(id)) => self.with_file(call, id, |f| json_reply(f.to_json())),
            ("GET", Route::FileContent(id)) => self.with_file(call, id, |f| Answer::Content {
                mime_type: f.mime_type.clone(),
                data: f.data.clone(),
            }),
            ("DELETE", Route::File(id)) => self.delete_file(call, id),
            _ => Err(ApiError::method_not_allowed(route.allow())),
        };
        result.unwrap_or_else(|e| Answer::error(&e))
    }

    fn create_batch(&self, call: &Call<'_>) -> Result<Answer, ApiError> {
        let delay = batches::delay(call.batch_delay)?;
        let requests = batches::parse_create(call.body, self.limits.max_batch_requests)?;
        let batch = Batch::new(call.owner, requests, call.now, delay);
        let mut state = self.state();
        if state.batches.len() >= self.limits.max_batches {
            return Err(ApiError::invalid_request(
                format!(
                    "the mock holds at most {} batches; delete some first",
                    self.limits.max_batches
                )
                .into(),
            ));
        }
        if state.batch_bytes + batch.bytes > self.limits.max_batch_bytes {
            return Err(too_large("batches' requests", self.limits.max_batch_bytes));
        }
        let answer = json_reply(batch.to_json(call.now));
        state.batch_bytes += batch.bytes;
        state.batches.push(batch);
        Ok(answer)
    }

    fn list_batches(&self, call: &Call<'_>, query: &str) -> Result<Answer, ApiError> {
        let q = PageQuery::parse(query)?;
        let state = self.state();
        let mine: Vec<&Batch> = (state.batches.iter().rev())
            .filter(|b| b.owner.is(&call.owner))
            .collect();
        let ids: Vec<&str> = mine.iter().map(|b| b.id.as_str()).collect();
        let p = page::page(&ids, &q)?;
        let data = mine[p.range.clone()]
            .iter()
            .map(|b| b.to_json(call.now))
            .collect();
        Ok(Answer::Reply(ok_json(page::render(
            data,
            &ids[p.range],
            &q,
            p.has_more,
        ))))
    }

    /// Runs `f` on the caller's batch `id`; a 404 if the caller has none by that id.
    fn with_batch(
        &self,
        call: &Call<'_>,
        id: &str,
        f: impl FnOnce(&mut Batch, SystemTime) -> Result<Answer, ApiError>,
    ) -> Result<Answer, ApiError> {
        let mut state = self.state();
        let batch = (state.batches.iter_mut())
            .find(|b| b.id == id && b.owner.is(&call.owner))
            .ok_or_else(|| not_found("message batch", id))?;
        f(batch, call.now)
    }

    fn delete_batch(&self, call: &Call<'_>, id: &str) -> Result<Answer, ApiError> {
        let mut state = self.state();
        let at = (state.batches.iter())
            .position(|b| b.id == id && b.owner.is(&call.owner))
            .ok_or_else(|| not_found("message batch", id))?;
        let batch = &state.batches[at];
        if batch.status(call.now) != Status::Ended {
            return Err(ApiError::invalid_request(
                format!(
                    "batch {} is still {}: only an ended batch can be deleted (cancel it first)",
                    batch.id,
                    batch.status(call.now).as_str()
                )
                .into(),
            ));
        }
        let batch = state.batches.remove(at);
        state.batch_bytes -= batch.bytes;
        Ok(json_reply(
            json!({"id": batch.id, "type": "message_batch_deleted"}),
        ))
    }

    fn upload(&self, call: &Call<'_>) -> Result<Answer, ApiError> {
        let file = files::upload(call.owner, call.content_type, call.body, call.now)?;
        let size = file.data.len() as u64;
        let mut state = self.state();
        if state.files.len() >= self.limits.max_files {
            return Err(ApiError::invalid_request(
                format!(
                    "the mock holds at most {} files; delete some first",
                    self.limits.max_files
                )
                .into(),
            ));
        }
        if state.file_bytes + size > self.limits.max_file_bytes {
            return Err(too_large("files", self.limits.max_file_bytes));
        }
        let answer = json_reply(file.to_json());
        state.file_bytes += size;
        state.files.push(file);
        Ok(answer)
    }

    fn list_files(&self, call: &Call<'_>, query: &str) -> Result<Answer, ApiError> {
        let q = PageQuery::parse(query)?;
        let state = self.state();
        let mine: Vec<&StoredFile> = (state.files.iter().rev())
            .filter(|f| f.owner.is(&call.owner))
            .collect();
        let ids: Vec<&str> = mine.iter().map(|f| f.id.as_str()).collect();
        let p = page::page(&ids, &q)?;
        let data = mine[p.range.clone()].iter().map(|f| f.to_json()).collect();
        Ok(Answer::Reply(ok_json(page::render(
            data,
            &ids[p.range],
            &q,
            p.has_more,
        ))))
    }

    fn with_file(
        &self,
        call: &Call<'_>,
        id: &str,
        f: impl FnOnce(&StoredFile) -> Answer,
    ) -> Result<Answer, ApiError> {
        let state = self.state();
        let file = (state.files.iter())
            .find(|file| file.id == id && file.owner.is(&call.owner))
            .ok_or_else(|| not_found("file", id))?;
        Ok(f(file))
    }

    fn delete_file(&self, call: &Call<'_>, id: &str) -> Result<Answer, ApiError> {
        let mut state = self.state();
        let at = (state.files.iter())
            .position(|f| f.id == id && f.owner.is(&call.owner))
            .ok_or_else(|| not_found("file", id))?;
        let file = state.files.remove(at);
        state.file_bytes -= file.data.len() as u64;
        Ok(json_reply(json!({"id": file.id, "type": "file_deleted"})))
    }
}

/// The 413 for a store that is full.
fn too_large(what: &str, limit: u64) -> ApiError {
    ApiError::new(
        413,
        ErrorType::RequestTooLarge,
        format!("the mock keeps at most {limit} bytes of {what}; delete some first").into(),
    )
}

#[cfg(test)]
#[path = "objects_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "server_tests.rs"]
mod server_tests;
