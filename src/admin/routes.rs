//! The admin endpoints: which path does what, who may call them, and the answers.
//!
//! Errors have the same Anthropic shape as the gateway's, so one client library reads both.
//! Nothing here writes a secret: the token is compared as a digest, the configuration is shown
//! through its redacting serializer, and credentials by name.

use std::borrow::Cow;
use std::io;
use std::sync::Arc;

use monoio::net::TcpStream;

use super::{views, Backend};
use crate::api::auth::{same, sha256};
use crate::http::head::Method;
use crate::http::response::ResponseHead;
use crate::http::{ApiError, ErrorType};
use crate::server::conn::{After, Handler, Request};
use crate::server::io::write_all;

pub struct Admin {
    /// The digest of `admin.token`, when one is set.
    token: Option<[u8; 32]>,
    backend: Arc<dyn Backend>,
}

/// What an admin request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Health,
    Metrics,
    Credentials,
    Reset {
        upstream: String,
        credential: String,
    },
    Config,
    Reload,
    Objects,
    Keys,
    ResetKey(String),
}

impl Admin {
    pub fn new(token: Option<String>, backend: Arc<dyn Backend>) -> Admin {
        Admin {
            token: token.map(|t| sha256(t.as_bytes())),
            backend,
        }
    }

    fn authorized(&self, req: &Request) -> bool {
        let Some(want) = &self.token else {
            return true;
        };
        let presented = req.head.header("authorization").and_then(|v| {
            let v = v.trim_ascii();
            let (scheme, token) = v.split_at(v.iter().position(|&b| b == b' ')?);
            scheme
                .eq_ignore_ascii_case(b"bearer")
                .then(|| token.trim_ascii())
        });
        presented.is_some_and(|p| same(&sha256(p), want))
    }

    fn answer(&self, route: Route) -> Result<(&'static str, Vec<u8>), ApiError> {
        Ok(match route {
            Route::Health => ("text/plain", b"ok".to_vec()),
            Route::Metrics => {
                let mut out = String::with_capacity(16 * 1024);
                self.backend.metrics(&mut out);
                ("text/plain; version=0.0.4; charset=utf-8", out.into_bytes())
            }
            Route::Credentials => (
                JSON,
                views::credentials(&self.backend.credentials()).into_bytes(),
            ),
            Route::Reset {
                upstream,
                credential,
            } => {
                if !self.backend.reset(&upstream, &credential) {
                    return Err(ApiError::new(
                        404,
                        ErrorType::NotFound,
                        format!(
                            "no credential {credential:?} in upstream {upstream:?}; \
                             GET /admin/credentials lists them"
                        )
                        .into(),
                    ));
                }
                log::info!("admin: cooldowns of {upstream}/{credential} cleared");
                (JSON, views::reset(&upstream, &credential).into_bytes())
            }
            Route::Config => (JSON, views::config(&self.backend.config()).into_bytes()),
            Route::Keys => (JSON, views::keys(&self.backend.keys()).into_bytes()),
            Route::ResetKey(name) => {
                if !self.backend.reset_key(&name) {
                    return Err(ApiError::new(
                        404,
                        ErrorType::NotFound,
                        format!("no client key {name:?} with limits; GET /admin/keys lists them")
                            .into(),
                    ));
                }
                log::info!("admin: limits and spend of client key {name} reset");
                (JSON, views::key_reset(&name).into_bytes())
            }
            Route::Objects => match self.backend.objects() {
                Ok(owners) => (JSON, views::objects(&owners).into_bytes()),
                Err(why) => {
                    log::error!("admin: the object records cannot be read: {why}");
                    return Err(ApiError::new(
                        500,
                        ErrorType::Api,
                        "the record of batches and files cannot be read; the log says why".into(),
                    ));
                }
            },
            Route::Reload => match self.backend.reload() {
                Ok(summary) => (JSON, views::reloaded(&summary).into_bytes()),
                Err(why) => {
                    return Err(ApiError::new(
                        400,
                        ErrorType::InvalidRequest,
                        format!("reload refused, the running configuration stays: {why}").into(),
                    ))
                }
            },
        })
    }
}

const JSON: &str = "application/json";

impl Handler for Admin {
    async fn handle(&self, stream: &mut TcpStream, req: Request) -> io::Result<After> {
        let answer = if self.authorized(&req) {
            route(req.head.method, req.head.path()).and_then(|r| self.answer(r))
        } else {
            Err(ApiError::new(
                401,
                ErrorType::Authentication,
                "the admin listener needs Authorization: Bearer <admin.token>".into(),
            ))
        };
        let response = match answer {
            Ok((content_type, body)) => {
                let mut head = ResponseHead::new(200);
                head.header("content-type", content_type.as_bytes())
                    .header("request-id", req.id.as_str().as_bytes());
                if !req.head.keep_alive {
                    head.header("connection", b"close");
                }
                head.finish_with_body(&body)
            }
            Err(e) => e.to_response(req.id.as_str(), req.head.keep_alive),
        };
        write_all(stream, response).await?;
        Ok(After::KeepAlive)
    }
}

/// What the admin listener serves, for the 404 of any other path.
const SERVED: &str = "/healthz, /metrics, /admin/credentials, /admin/keys, /admin/objects, \
                      /admin/config, /admin/reload, /admin/credentials/{upstream}/{credential}/reset \
                      and /admin/keys/{name}/reset";

fn route(method: Method, path: &str) -> Result<Route, ApiError> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let (route, allowed) = match path {
        "/healthz" => (Route::Health, Method::Get),
        "/metrics" => (Route::Metrics, Method::Get),
        "/admin/credentials" => (Route::Credentials, Method::Get),
        "/admin/config" => (Route::Config, Method::Get),
        "/admin/objects" => (Route::Objects, Method::Get),
        "/admin/keys" => (Route::Keys, Method::Get),
        "/admin/reload" => (Route::Reload, Method::Post),
        p => match (reset_target(p), reset_key_target(p)) {
            (Some((upstream, credential)), _) => (
                Route::Reset {
                    upstream,
                    credential,
                },
                Method::Post,
            ),
            (None, Some(name)) => (Route::ResetKey(name), Method::Post),
            (None, None) => return Err(ApiError::not_found_served(p, SERVED)),
        },
    };
    if method != allowed {
        return Err(ApiError::method_not_allowed(match allowed {
            Method::Post => "POST",
            _ => "GET",
        }));
    }
    Ok(route)
}

/// `/admin/keys/{name}/reset`, the name percent-decoded.
fn reset_key_target(path: &str) -> Option<String> {
    let name = path.strip_prefix("/admin/keys/")?.strip_suffix("/reset")?;
    let decoded = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()?;
    (!decoded.is_empty() && !name.contains('/')).then(|| decoded.into_owned())
}

/// `/admin/credentials/{upstream}/{credential}/reset`, names percent-decoded (they may hold any
/// character the configuration allows).
fn reset_target(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/admin/credentials/")?;
    let rest = rest.strip_suffix("/reset")?;
    let (upstream, credential) = rest.split_once('/')?;
    let decode = |s: &str| -> Option<String> {
        let d: Cow<str> = percent_encoding::percent_decode_str(s).decode_utf8().ok()?;
        (!d.is_empty() && !s.contains('/')).then(|| d.into_owned())
    };
    Some((decode(upstream)?, decode(credential)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_method_and_path() {
        assert_eq!(route(Method::Get, "/metrics").unwrap(), Route::Metrics);
        assert_eq!(route(Method::Get, "/healthz").unwrap(), Route::Health);
        assert_eq!(
            route(Method::Get, "/admin/credentials?x=1").unwrap(),
            Route::Credentials
        );
        assert_eq!(route(Method::Get, "/admin/config").unwrap(), Route::Config);
        assert_eq!(route(Method::Post, "/admin/reload").unwrap(), Route::Reload);
        assert_eq!(route(Method::Get, "/admin/reload").unwrap_err().status, 405);
        assert_eq!(route(Method::Post, "/metrics").unwrap_err().status, 405);
        assert_eq!(route(Method::Get, "/admin").unwrap_err().status, 404);
    }

    #[test]
    fn reset_paths_are_decoded() {
        assert_eq!(
            route(Method::Post, "/admin/credentials/anthropic/key-1/reset").unwrap(),
            Route::Reset {
                upstream: "anthropic".into(),
                credential: "key-1".into()
            }
        );
        assert_eq!(
            reset_target("/admin/credentials/my%20upstream/k%2Fa/reset"),
            Some(("my upstream".into(), "k/a".into()))
        );
        for bad in [
            "/admin/credentials/a/reset",
            "/admin/credentials//k/reset",
            "/admin/credentials/a/b/c/reset",
            "/admin/credentials/a/%ff/reset",
            "/admin/credentials/a/b",
        ] {
            assert_eq!(reset_target(bad), None, "{bad}");
        }
        assert_eq!(
            route(Method::Get, "/admin/credentials/a/b/reset")
                .unwrap_err()
                .status,
            405
        );
    }
}
