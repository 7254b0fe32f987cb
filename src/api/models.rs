//! `GET /v1/models` and `GET /v1/models/{id}` answered from the configuration's catalog, so
//! clients see the aliases they may use and only the models this gateway routes.

use std::io;

use monoio::net::TcpStream;

use super::respond;
use crate::http::ApiError;
use crate::http::ErrorType;
use crate::routing::models::{percent_decode, Catalog};
use crate::routing::pool::Pool;
use crate::server::conn::{After, Request};
use crate::server::io::write_all;
use crate::server::router::Route;

/// Whether the gateway answers this request from its catalog. A lookup of a model the catalog
/// does not list, but which an upstream's pattern serves (`claude-haiku-*`), is the upstream's
/// to answer.
pub fn answers(catalog: &Catalog, pool: &Pool, req: &Request, route: Route) -> bool {
    match route {
        Route::Models => true,
        Route::Model => {
            let id = model_id(req);
            catalog.get(&id).is_some() || !pool.serves(&id)
        }
        _ => false,
    }
}

/// The model id of a `/v1/models/{id}` request, percent-decoded.
pub(crate) fn model_id(req: &Request) -> String {
    percent_decode(&req.head.path()["/v1/models/".len()..])
}

pub async fn answer(
    catalog: &Catalog,
    client: &mut TcpStream,
    req: &Request,
    route: Route,
) -> io::Result<After> {
    let body = if route == Route::Models {
        let query = req.head.target().split_once('?').map_or("", |(_, q)| q);
        catalog.list(query)
    } else {
        let id = model_id(req);
        catalog.get(&id).ok_or_else(|| {
            let message = format!("model: {id} (not among the models this gateway serves)");
            ApiError::new(404, ErrorType::NotFound, message.into())
        })
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return respond(client, req, &e).await,
    };
    let out = super::json_head(req, 200, req.head.keep_alive).finish_with_body(body.as_bytes());
    req.exchange.answered(200, &out);
    write_all(client, out).await?;
    Ok(After::KeepAlive)
}
