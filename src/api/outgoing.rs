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
use std::time::SystemTime;

use bytes::Bytes;

use super::headers::{self, Outbound, Translated};
use super::{proof, UpstreamRoute};
use crate::credentials::Held;
use crate::dialect::{self, Context, Dialect};
use crate::http::head::RequestHead;
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
    /// The head of the request, with the credential's value `held` as the upstream's dialect
    /// takes it (signed at `now` where it signs).
    pub fn head(
        &self,
        req: &Request,
        upstream: &UpstreamRoute,
        held: &Held<'_>,
        stream: bool,
        now: SystemTime,
    ) -> Vec<u8> {
        let url = &upstream.target.url;
        let dialect = upstream.dialect;
        let Outgoing::Translated { path, body, .. } = self else {
            return headers::upstream_request(
                &req.head,
                &Outbound {
                    path_prefix: &url.path_prefix,
                    host: &url.host_header,
                    api_key: held.bearer(),
                    default_version: &upstream.default_version,
                    body_len: self.body(req).len() as u64,
                    chunked: false,
                    stream,
                    line: None,
                },
            );
        };
        let accept = match (dialect, stream) {
            (Dialect::Bedrock, true) => "application/vnd.amazon.eventstream",
            (_, true) => "text/event-stream",
            (_, false) => "application/json",
        };
        let signed = [("accept", accept), ("content-type", headers::CONTENT_TYPE)];
        let target = format!("{}{path}", url.path_prefix);
        let signing = proof::Signing {
            host: &url.host_header,
            target: &target,
            headers: &signed,
            body,
            region: &upstream.region,
            now,
        };
        let mut extra = proof::headers(dialect, held, &signing);
        // Vertex takes the client's betas as the header they came in; Bedrock has them in the
        // body, the other dialects have no such thing.
        if dialect == Dialect::Vertex {
            if let Some(beta) = req.head.header("anthropic-beta") {
                extra.push(("anthropic-beta", String::from_utf8_lossy(beta).into_owned()));
            }
        }
        let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
        headers::translated_request(
            &req.head,
            &Translated {
                path_prefix: &url.path_prefix,
                path,
                host: &url.host_header,
                extra: &extra,
                accept,
                body_len: body.len(),
            },
        )
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

/// What the client asked, as far as what an upstream is sent depends on it.
#[derive(Clone, Copy)]
pub struct Asked<'a> {
    pub route: Route,
    pub body: &'a Bytes,
    /// Where the client's model string lies in the body.
    pub range: Option<&'a Range<usize>>,
    /// The model the client wrote.
    pub requested: Option<&'a str>,
    /// The model it resolves to (an alias replaced).
    pub model: Option<&'a str>,
    pub stream: bool,
    /// The client's request head (its `anthropic-beta` headers, which Bedrock takes in the body).
    pub head: &'a RequestHead,
    pub request_id: &'a str,
}

/// The request as it goes to `upstream`.
pub fn prepare(upstream: &UpstreamRoute, asked: &Asked<'_>) -> Result<Prepared, ApiError> {
    let (body, model) = (asked.body, asked.model);
    let target = model.map(|m| upstream.model_names.get(m).map_or(m, String::as_str));
    if upstream.dialect == Dialect::Anthropic {
        let renamed = match (asked.range, target) {
            (Some(range), Some(id)) if Some(id) != asked.requested => Some(splice(body, range, id)),
            _ => None,
        };
        return Ok(Prepared::Send(Outgoing::Anthropic(renamed)));
    }
    let count_tokens = match asked.route {
        Route::Messages => false,
        Route::CountTokens if upstream.dialect == Dialect::OpenAi => {
            return Ok(Prepared::CountLocally)
        }
        Route::CountTokens => true,
        Route::Models | Route::Model | Route::Health => return Ok(Prepared::Model),
        // Never picked for another dialect (see `objects::eligible`); said plainly if it were.
        _ => return Err(crate::objects::anthropic_only(asked.route)),
    };
    let (target, model) = target
        .zip(model)
        .ok_or_else(|| ApiError::invalid_request("model: Field required (a string)".into()))?;
    let settings = dialect::Settings {
        openai: upstream.openai,
        project: &upstream.project,
        region: &upstream.region,
    };
    // Only Bedrock wants them in the body: other requests are not made to pay for the lookup.
    let beta = (upstream.dialect == Dialect::Bedrock)
        .then(|| betas(asked.head))
        .flatten();
    let ask = dialect::Ask {
        body,
        model: target,
        client_model: model,
        stream: asked.stream,
        count_tokens,
        beta: beta.as_deref(),
        request_id: asked.request_id,
    };
    let encoded = dialect::encode(upstream.dialect, &ask, &settings)
        .map_err(|e| ApiError::invalid_request(e.0.into()))?;
    Ok(Prepared::Send(Outgoing::Translated {
        path: encoded.path,
        body: Bytes::from(encoded.body),
        context: Box::new(encoded.context),
        count_tokens,
    }))
}

/// The values of a request's `anthropic-beta` headers, as one comma-separated list.
pub fn betas(head: &RequestHead) -> Option<String> {
    let values: Vec<&str> = head
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("anthropic-beta"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
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
    use crate::http::head::{parse, Parse};

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

    fn head() -> RequestHead {
        let raw = Bytes::from_static(
            b"POST /v1/messages HTTP/1.1\r\nanthropic-beta: a\r\nanthropic-beta: b\r\n\r\n",
        );
        let Parse::Complete(parts) = parse(&raw).unwrap() else {
            panic!("a whole head")
        };
        RequestHead::from_parts(raw.slice(..parts.len), parts).unwrap()
    }

    fn asked<'a>(
        body: &'a Bytes,
        head: &'a RequestHead,
        route: Route,
        model: &'a str,
    ) -> Asked<'a> {
        Asked {
            route,
            body,
            range: Some(&(10..16)),
            requested: Some("sonnet"),
            model: Some(model),
            stream: false,
            head,
            request_id: "req_1",
        }
    }

    fn prepared(u: &UpstreamRoute, r: Route, model: &str) -> Prepared {
        let body = Bytes::from_static(BODY);
        prepare(u, &asked(&body, &head(), r, model)).unwrap()
    }

    #[test]
    fn bedrock_takes_the_betas_in_the_body() {
        assert_eq!(betas(&head()).as_deref(), Some("a,b"));
        let u = route(Dialect::Bedrock, &[]);
        let Prepared::Send(Outgoing::Translated { path, body, .. }) =
            prepared(&u, Route::Messages, "anthropic.claude-x-v1:0")
        else {
            panic!()
        };
        assert_eq!(path, "/model/anthropic.claude-x-v1%3A0/invoke");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["anthropic_beta"], serde_json::json!(["a", "b"]));
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
        let body = Bytes::from_static(b"{\"model\":\"m\"}");
        let bad = prepare(&u, &asked(&body, &head(), Route::Messages, "m"));
        assert_eq!(bad.err().unwrap().status, 400);
    }
}
