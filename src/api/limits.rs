//! A limited key's admission and settlement, around whatever its request is.
//!
//! Admission comes before routing, once the body is read, and costs no I/O: the key's limiters
//! are atomics shared by every worker (`limits::KeyLimits`). A refusal is the answer (429 with
//! `retry-after`, or 400 for a spent budget) and nothing reaches an upstream. Every answer to a
//! limited key carries `anthropic-ratelimit-*` headers describing the gateway's limits, taken at
//! admission. Settlement comes when the answer has ended (a stream after its last event): the
//! usage the relay tallied, priced by the model it was routed as, corrects the estimate taken at
//! admission and counts the spend.

use crate::api::Api;
use crate::http::ApiError;
use crate::limits::{Admitted, Estimate, KeyLimits, Now, RateHeaders};
use crate::server::conn::Request;
use crate::server::router::Route;

use super::Seen;

/// Admits a request of a limited key, or says why not. Messages are estimated from their body
/// (about 4 bytes a token: settlement corrects it); every other request counts as one request.
/// Whether a budget can price the model is [`unpriced`]'s question, asked once the body has been
/// skimmed for routing.
pub fn admit(limits: &KeyLimits, req: &Request, route: Route) -> Result<Admitted, ApiError> {
    let now = Now::read();
    let messages = route == Route::Messages;
    let estimate = match messages {
        true => Estimate::from_body_len(req.body.len()),
        false => Estimate { input_tokens: 0 },
    };
    let admitted = limits.admit(estimate, now);
    *req.extra_headers.borrow_mut() = RateHeaders::of(limits, now).render();
    admitted
}

/// The refusal of a message for a model the gateway cannot price, when the caller's key has a
/// budget (the spend could not be counted); `None` otherwise. Its admission is settled as for
/// any request that reached no upstream: the estimate is given back.
pub fn unpriced(api: &Api, caller: Option<&str>, model: Option<&str>) -> Option<ApiError> {
    let limits = api.limits.get(caller?)?;
    let (day, month) = limits.budget().limits();
    if day.is_none() && month.is_none() {
        return None;
    }
    api.limits.prices.check_model(model?).err()
}

/// Settles an admitted request once its answer has ended.
pub fn settle(api: &Api, limits: &KeyLimits, admitted: Admitted, req: &Request, seen: &Seen) {
    let now = Now::read();
    let usage = req.exchange.facts(now.mono).usage;
    let model = seen.model.as_deref();
    let cost = model.and_then(|m| api.limits.prices.cost(m, &usage));
    limits.settle(admitted, &usage, cost.unwrap_or(0), now);
}
