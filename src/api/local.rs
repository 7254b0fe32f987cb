//! Answers the gateway gives itself where an upstream's dialect has no endpoint for them:
//! count_tokens for an OpenAI-compatible upstream (an estimate, see
//! `dialect::openai::count`), and a model lookup routed to an upstream of another dialect
//! (the configuration is what knows the model).

use std::io;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use super::{respond, Api};
use crate::dialect::openai::count;
use crate::http::ApiError;
use crate::json::write::push_str;
use crate::server::conn::{After, Request};
use crate::server::io::write_all;
use crate::server::router::Route;

/// `{"input_tokens": N}`, counted on the blocking pool: a long prompt takes milliseconds to
/// tokenize, which a worker must not spend away from its other connections.
pub async fn count_tokens(
    api: &Api,
    client: &mut TcpStream,
    req: &Request,
    credential: usize,
    probe: bool,
    model: Option<&str>,
) -> io::Result<After> {
    if probe {
        api.pool.abandon(credential, model);
    }
    let started = Instant::now();
    let body = req.body.clone();
    let counted = monoio::spawn_blocking(move || count::count(&body)).await;
    req.exchange.attempted(credential, started.elapsed());
    match counted {
        Ok(Ok(n)) => answer(client, req, format!("{{\"input_tokens\":{n}}}")).await,
        Ok(Err(invalid)) => {
            respond(client, req, &ApiError::invalid_request(invalid.0.into())).await
        }
        Err(_) => {
            let e = ApiError::new(
                500,
                crate::http::ErrorType::Api,
                "the token count was cut short".into(),
            );
            respond(client, req, &e).await
        }
    }
}

/// A model lookup for an upstream of another dialect: an empty list (the configuration names no
/// model, or the catalog would have answered), or the model itself, which that upstream serves.
pub async fn model(
    api: &Api,
    client: &mut TcpStream,
    req: &Request,
    route: Route,
    credential: usize,
    probe: bool,
) -> io::Result<After> {
    if probe {
        api.pool.abandon(credential, None);
    }
    req.exchange.attempted(credential, Duration::ZERO);
    let body = match route {
        Route::Model => {
            let mut b = String::from("{\"type\":\"model\",\"id\":");
            let id = super::models::model_id(req);
            push_str(&mut b, &id);
            b.push_str(",\"display_name\":");
            push_str(&mut b, &id);
            b.push_str(",\"created_at\":\"1970-01-01T00:00:00Z\"}");
            b
        }
        _ => "{\"data\":[],\"has_more\":false,\"first_id\":null,\"last_id\":null}".to_string(),
    };
    answer(client, req, body).await
}

async fn answer(client: &mut TcpStream, req: &Request, body: String) -> io::Result<After> {
    let keep_alive = req.head.keep_alive && !crate::lifecycle::phase::draining();
    let out = super::json_head(req, 200, keep_alive).finish_with_body(body.as_bytes());
    req.exchange.answered(200, &out);
    write_all(client, out).await?;
    Ok(After::KeepAlive)
}
