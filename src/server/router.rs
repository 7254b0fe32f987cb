//! Which endpoint a request is for, by method and path.
//!
//! A short, explicit table: the API surface is small and a wrong method deserves a 405 with an
//! `Allow` header rather than a 404. Paths that name an object (a batch, a file) carry its id as
//! one path segment; the id itself is read by the handler (`objects::ids`).

use crate::http::head::Method;
use crate::http::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Messages,
    CountTokens,
    Models,
    Model,
    Health,
    /// `/v1/messages/batches`: create (POST) or list (GET).
    Batches,
    /// `/v1/messages/batches/{id}`: retrieve (GET) or delete (DELETE).
    Batch,
    BatchCancel,
    BatchResults,
    /// `/v1/files`: upload (POST) or list (GET).
    Files,
    /// `/v1/files/{id}`: metadata (GET) or delete (DELETE).
    File,
    FileContent,
    /// A path under one of `routing.forward_paths`, forwarded as it is.
    Forwarded,
}

impl Route {
    /// Its name in metrics and the access log.
    pub fn name(self) -> &'static str {
        match self {
            Route::Messages => "messages",
            Route::CountTokens => "count_tokens",
            Route::Models => "models",
            Route::Model => "model",
            Route::Health => "healthz",
            Route::Batches => "batches",
            Route::Batch => "batch",
            Route::BatchCancel => "batch_cancel",
            Route::BatchResults => "batch_results",
            Route::Files => "files",
            Route::File => "file",
            Route::FileContent => "file_content",
            Route::Forwarded => "forwarded",
        }
    }

    /// Whether the request carries a JSON body the gateway skims for `model` and `stream`.
    pub fn has_json_body(self) -> bool {
        matches!(self, Route::Messages | Route::CountTokens)
    }

    /// Whether it is about a batch or a file, which live upstream under one credential.
    pub fn is_object(self) -> bool {
        matches!(
            self,
            Route::Batches
                | Route::Batch
                | Route::BatchCancel
                | Route::BatchResults
                | Route::Files
                | Route::File
                | Route::FileContent
        )
    }

    /// Whether its body goes upstream as it arrives instead of being collected first: an
    /// upload or a batch can be hundreds of megabytes.
    pub fn streams_body(self, method: Method) -> bool {
        matches!(self, Route::Batches | Route::Files) && method == Method::Post
    }
}

/// What ringgate serves, for the 404 of any other path.
pub const SERVED: &str = "/v1/messages, /v1/messages/count_tokens, /v1/messages/batches, \
                          /v1/files and /v1/models";

pub fn route(method: Method, path: &str) -> Result<Route, ApiError> {
    use Method::{Get, Post};
    let (route, allowed): (Route, &[Method]) = match path {
        "/v1/messages" => (Route::Messages, &[Post]),
        "/v1/messages/count_tokens" => (Route::CountTokens, &[Post]),
        "/v1/models" => (Route::Models, &[Get]),
        "/healthz" => (Route::Health, &[Get]),
        "/v1/messages/batches" => (Route::Batches, &[Get, Post]),
        "/v1/files" => (Route::Files, &[Get, Post]),
        p => match object_path(p) {
            Some(found) => found,
            None => return Err(ApiError::not_found_served(p, SERVED)),
        },
    };
    if allowed.contains(&method) {
        Ok(route)
    } else {
        Err(ApiError::method_not_allowed(allow(allowed)))
    }
}

/// The routes whose path holds an id: `/v1/models/{id}`, a batch's and a file's.
fn object_path(path: &str) -> Option<(Route, &'static [Method])> {
    use Method::{Delete, Get, Post};
    let one = |s: &str| !s.is_empty() && !s.contains('/');
    if let Some(id) = path.strip_prefix("/v1/models/") {
        return one(id).then_some((Route::Model, &[Get][..]));
    }
    if let Some(rest) = path.strip_prefix("/v1/messages/batches/") {
        return match rest.split_once('/') {
            None if one(rest) => Some((Route::Batch, &[Get, Delete])),
            Some((id, "cancel")) if one(id) => Some((Route::BatchCancel, &[Post])),
            Some((id, "results")) if one(id) => Some((Route::BatchResults, &[Get])),
            _ => None,
        };
    }
    if let Some(rest) = path.strip_prefix("/v1/files/") {
        return match rest.split_once('/') {
            None if one(rest) => Some((Route::File, &[Get, Delete])),
            Some((id, "content")) if one(id) => Some((Route::FileContent, &[Get])),
            _ => None,
        };
    }
    None
}

/// The `Allow` header for a set of methods.
fn allow(methods: &[Method]) -> &'static str {
    use Method::{Delete, Get, Post};
    match methods {
        [Post] => "POST",
        [Get] => "GET",
        [Get, Post] => "GET, POST",
        [Get, Delete] => "GET, DELETE",
        _ => "GET, POST, DELETE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(Method::Post, "/v1/messages").unwrap(),
            Route::Messages
        );
        assert_eq!(
            route(Method::Post, "/v1/messages/count_tokens").unwrap(),
            Route::CountTokens
        );
        assert_eq!(route(Method::Get, "/v1/models").unwrap(), Route::Models);
        assert_eq!(
            route(Method::Get, "/v1/models/claude-x").unwrap(),
            Route::Model
        );
        assert_eq!(route(Method::Get, "/healthz").unwrap(), Route::Health);
        assert_eq!(route(Method::Get, "/v1/messages").unwrap_err().status, 405);
        assert_eq!(
            route(Method::Get, "/v1/messages").unwrap_err().allow,
            Some("POST")
        );
        assert_eq!(route(Method::Post, "/v1/models").unwrap_err().status, 405);
        for p in [
            "/",
            "/v1/model",
            "/v1/models/",
            "/v1/models/a/b",
            "/v1/messages/",
            "/v1/messages/batches/",
            "/v1/messages/batches/x/y",
            "/v1/messages/batches/x/cancel/z",
            "/v1/files/",
            "/v1/files/x/y",
            "/v1/organizations/users",
        ] {
            assert_eq!(route(Method::Get, p).unwrap_err().status, 404, "{p}");
        }
    }

    #[test]
    fn batches_and_files() {
        let ok = |m, p| route(m, p).unwrap();
        assert_eq!(ok(Method::Post, "/v1/messages/batches"), Route::Batches);
        assert_eq!(ok(Method::Get, "/v1/messages/batches"), Route::Batches);
        assert_eq!(ok(Method::Get, "/v1/messages/batches/b1"), Route::Batch);
        assert_eq!(ok(Method::Delete, "/v1/messages/batches/b1"), Route::Batch);
        assert_eq!(
            ok(Method::Post, "/v1/messages/batches/b1/cancel"),
            Route::BatchCancel
        );
        assert_eq!(
            ok(Method::Get, "/v1/messages/batches/b1/results"),
            Route::BatchResults
        );
        assert_eq!(ok(Method::Post, "/v1/files"), Route::Files);
        assert_eq!(ok(Method::Get, "/v1/files"), Route::Files);
        assert_eq!(ok(Method::Get, "/v1/files/f1"), Route::File);
        assert_eq!(ok(Method::Delete, "/v1/files/f1"), Route::File);
        assert_eq!(ok(Method::Get, "/v1/files/f1/content"), Route::FileContent);
        let wrong = route(Method::Delete, "/v1/messages/batches").unwrap_err();
        assert_eq!((wrong.status, wrong.allow), (405, Some("GET, POST")));
        let wrong = route(Method::Post, "/v1/files/f1").unwrap_err();
        assert_eq!((wrong.status, wrong.allow), (405, Some("GET, DELETE")));
        assert!(Route::Files.streams_body(Method::Post));
        assert!(!Route::Files.streams_body(Method::Get));
        assert!(Route::Batches.streams_body(Method::Post));
        assert!(!Route::Messages.streams_body(Method::Post));
    }

    #[test]
    fn a_404_names_what_is_served() {
        let e = route(Method::Get, "/v1/skills").unwrap_err();
        assert!(e.message.contains("/v1/files"), "{}", e.message);
    }
}
