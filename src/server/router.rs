//! Which endpoint a request is for, by method and path.
//!
//! A short, explicit table: the API surface is small and a wrong method deserves a 405 with an
//! `Allow` header rather than a 404.

use crate::http::head::Method;
use crate::http::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Messages,
    CountTokens,
    Models,
    Model,
    Health,
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
        }
    }

    /// Whether the request carries a JSON body the gateway skims for `model` and `stream`.
    pub fn has_json_body(self) -> bool {
        matches!(self, Route::Messages | Route::CountTokens)
    }
}

pub fn route(method: Method, path: &str) -> Result<Route, ApiError> {
    let (route, allowed) = match path {
        "/v1/messages" => (Route::Messages, Method::Post),
        "/v1/messages/count_tokens" => (Route::CountTokens, Method::Post),
        "/v1/models" => (Route::Models, Method::Get),
        "/healthz" => (Route::Health, Method::Get),
        p if p
            .strip_prefix("/v1/models/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/')) =>
        {
            (Route::Model, Method::Get)
        }
        p => return Err(ApiError::not_found(p)),
    };
    if method == allowed {
        Ok(route)
    } else {
        Err(ApiError::method_not_allowed(match allowed {
            Method::Post => "POST",
            _ => "GET",
        }))
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
        ] {
            assert_eq!(route(Method::Get, p).unwrap_err().status, 404, "{p}");
        }
    }
}
