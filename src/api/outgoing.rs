//! What one attempt sends: the client's request in the words of the upstream it goes to.
//!
//! An Anthropic upstream gets the client's body itself, with the model renamed where this
//! upstream calls it otherwise (an alias, or `[upstreams.model_names]`): the model's bytes are
//! spliced and nothing else is touched. An upstream of another dialect gets the body translated,
//! with the context the decoder of its answer needs. Some requests need no upstream at all in a
//! dialect: count_tokens for an OpenAI-compatible server is counted here, and a model lookup is
//! answered from the configuration.
//!
//! A body that cannot be translated is the client's error (a 400 naming what), found before
//! anything is sent.

use std::ops::Range;

use bytes::Bytes;

use super::headers::{self, Outbound, Translated};
use super::UpstreamRoute;
use crate::dialect::{self, Context, Dialect};
use crate::http::ApiError;
use crate::server::conn::Request;
use crate::server::router::Route;

/// What an upstream is sent.
pub enum Outgoing {
    /// To an Anthropic upstream: the client's body, or a copy with the model renamed.
    Anthropic(Option<Bytes>),
    /// To an upstream of another dialect.
    Translated {
        path: String,
        body: Bytes,
        context: Box<Context>,
        count_tokens: bool,
    },
}

/// What an attempt with an upstream comes to.
pub enum Prepared {
    Send(Outgoing),
    /// The gateway counts the tokens itself (the upstream has no endpoint for it).
    CountLocally,
    /// The gateway answers a model lookup itself.
    Model,
}

impl Outgoing {
    /// The head of the request, with the credential `key` as the upstream's dialect sends it.
    pub fn head(
        &self,
        req: &Request,
        upstream: &UpstreamRoute,
        key: Option<&str>,
        stream: bool,
    ) -> Vec<u8> {
        let url = &upstream.target.url;
        match self {
            Outgoing::Anthropic(_) => headers::upstream_request(
                &req.head,
                &Outbound {
                    path_prefix: &url.path_prefix,
                    host: &url.host_header,
                    api_key: key,
                    default_version: &upstream.default_version,
                    body_len: self.body(req).len(),
                    stream,
                },
            ),
            Outgoing::Translated { path, body, .. } => headers::translated_request(
                &req.head,
                &Translated {
                    path_prefix: &url.path_prefix,
                    path,
                    host: &url.host_header,
                    auth: key.map(|key| match upstream.dialect {
                        Dialect::Gemini => ("x-goog-api-key", "", key),
                        _ => ("authorization", "Bearer ", key),
                    }),
                    body_len: body.len(),
                    stream,
                },
            ),
        }
    }

    /// The body that goes, `req`'s own where nothing needed changing.
    pub fn body<'a>(&'a self, req: &'a Request) -> &'a Bytes {
        match self {
            Outgoing::Anthropic(None) => &req.body,
            Outgoing::Anthropic(Some(body)) | Outgoing::Translated { body, .. } => body,
        }
    }

    /// What the decoder of the answer needs, and whether it is a token count; `None` for an
    /// Anthropic upstream, whose answer goes as it is.
    pub fn translation(&self) -> Option<(Context, bool)> {
        match self {
            Outgoing::Anthropic(_) => None,
            Outgoing::Translated {
                context,
                count_tokens,
                ..
            } => Some(((**context).clone(), *count_tokens)),
        }
    }
}

/// The request as it goes to `upstream`. `requested` is the model the client wrote, `model` the
/// model it resolves to (an alias replaced), `range` where the client's model string lies in
/// the body.
pub fn prepare(
    upstream: &UpstreamRoute,
    route: Route,
    body: &Bytes,
    range: Option<&Range<usize>>,
    requested: Option<&str>,
    model: Option<&str>,
    request_id: &str,
) -> Result<Prepared, ApiError> {
    let target = model.map(|m| upstream.model_names.get(m).map_or(m, String::as_str));
    if upstream.dialect == Dialect::Anthropic {
        let renamed = match (range, target) {
            (Some(range), Some(id)) if Some(id) != requested => Some(splice(body, range, id)),
            _ => None,
        };
        return Ok(Prepared::Send(Outgoing::Anthropic(renamed)));
    }
    let count_tokens = match route {
        Route::Messages => false,
        Route::CountTokens if upstream.dialect == Dialect::OpenAi => {
            return Ok(Prepared::CountLocally)
        }
        Route::CountTokens => true,
        Route::Models | Route::Model | Route::Health => return Ok(Prepared::Model),
    };
    let (target, model) = target
        .zip(model)
        .ok_or_else(|| ApiError::invalid_request("model: Field required (a string)".into()))?;
    let settings = dialect::Settings {
        openai: upstream.openai,
    };
    let encoded = dialect::encode(
        upstream.dialect,
        body,
        target,
        model,
        count_tokens,
        &settings,
        request_id,
    )
    .map_err(|e| ApiError::invalid_request(e.0.into()))?;
    Ok(Prepared::Send(Outgoing::Translated {
        path: encoded.path,
        body: Bytes::from(encoded.body),
        context: Box::new(encoded.context),
        count_tokens,
    }))
}

/// The body with the model string (between its quotes at `range`) replaced by `id`.
fn splice(body: &Bytes, range: &Range<usize>, id: &str) -> Bytes {
    let id = crate::json::write::string(id);
    let mut out = Vec::with_capacity(body.len() + id.len());
    out.extend_from_slice(&body[..range.start - 1]);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&body[range.end + 1..]);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn route(dialect: Dialect, names: &[(&str, &str)]) -> UpstreamRoute {
        UpstreamRoute::for_tests(
            dialect,
            names
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    const BODY: &[u8] =
        br#"{"model":"sonnet","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;

    fn prepared(u: &UpstreamRoute, r: Route, model: &str) -> Prepared {
        let body = Bytes::from_static(BODY);
        prepare(
            u,
            r,
            &body,
            Some(&(10..16)),
            Some("sonnet"),
            Some(model),
            "req_1",
        )
        .unwrap()
    }

    #[test]
    fn anthropic_bodies_are_renamed_only_when_needed() {
        let renamed = |u: &UpstreamRoute, model: &str| match prepared(u, Route::Messages, model) {
            Prepared::Send(Outgoing::Anthropic(b)) => b,
            _ => panic!("an Anthropic upstream gets an Anthropic body"),
        };
        let plain = route(Dialect::Anthropic, &[]);
        assert_eq!(
            renamed(&plain, "sonnet"),
            None,
            "the client's bytes go as they are"
        );
        let aliased = renamed(&plain, "claude-sonnet-4-5").unwrap();
        assert!(aliased.starts_with(br#"{"model":"claude-sonnet-4-5","max_tokens":5"#));
        let names = [("claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-v1:0")];
        let named = route(Dialect::Anthropic, &names);
        let b = renamed(&named, "claude-sonnet-4-5").unwrap();
        assert!(b.starts_with(br#"{"model":"us.anthropic.claude-sonnet-4-5-v1:0","#));
    }

    #[test]
    fn other_dialects_are_translated_with_their_model_names() {
        let u = route(Dialect::OpenAi, &[("claude-sonnet-4-5", "deepseek-chat")]);
        let Prepared::Send(Outgoing::Translated {
            path,
            body,
            context,
            count_tokens,
        }) = prepared(&u, Route::Messages, "claude-sonnet-4-5")
        else {
            panic!()
        };
        assert_eq!((path.as_str(), count_tokens), ("/chat/completions", false));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["model"], "deepseek-chat");
        assert_eq!(context.head.model, "claude-sonnet-4-5");
        assert!(matches!(
            prepared(&u, Route::CountTokens, "x"),
            Prepared::CountLocally
        ));
        let g = route(Dialect::Gemini, &[]);
        let Prepared::Send(Outgoing::Translated {
            path, count_tokens, ..
        }) = prepared(&g, Route::CountTokens, "gemini-2.5-pro")
        else {
            panic!()
        };
        assert_eq!(
            (path.as_str(), count_tokens),
            ("/v1beta/models/gemini-2.5-pro:countTokens", true)
        );
        assert!(matches!(prepared(&g, Route::Models, "x"), Prepared::Model));
        let bad = prepare(
            &u,
            Route::Messages,
            &Bytes::from_static(b"{\"model\":\"m\"}"),
            None,
            None,
            Some("m"),
            "r",
        );
        assert_eq!(bad.err().unwrap().status, 400);
    }
}
