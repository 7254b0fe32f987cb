//! What an answer cost: a price table from model patterns to prices per million tokens.
//!
//! Budgets are in USD while answers report tokens, so every settled answer is priced here from its
//! [`Usage`]: input, output, cache writes and cache reads each have their own price. The table is
//! a list of `models`-style patterns (`*` matches any run of characters, as in
//! [`routing::models::matches`]) tried in order, the first match wins; a shipped default covers
//! the current Claude models, and an operator's entries go in front of it
//! ([`PriceTable::with_overrides`]) or replace it ([`PriceTable::new`]). Price the model id the
//! request was routed to (an alias such as `sonnet` matches nothing); the shipped patterns start
//! with `*` so that Bedrock (`us.anthropic.claude-…-v1:0`) and Vertex (`claude-…@date`) ids match.
//!
//! A model no entry matches is priced by the [`UnknownModel`] policy: a default price, or refused
//! (the shipped default: a budget must not be spent on what it cannot count; the refusal tells the
//! operator to add a price).
//!
//! Arithmetic is exact: prices are integers in micro-USD per million tokens ($3 per million is
//! 3 000 000), the cost of an answer is `Σ tokens × price / 1 000 000` computed in 128 bits and
//! rounded **up** to the next micro-dollar, once per answer.
//!
//! [`routing::models::matches`]: crate::routing::models::matches

use crate::http::{ApiError, ErrorType};
use crate::routing::models::matches;
use crate::stream::tally::Usage;

/// Micro-USD per million tokens of each kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    /// Writes to the prompt cache (5-minute cache: 1.25 × input).
    pub cache_write: u64,
    /// Reads from the prompt cache (0.1 × input).
    pub cache_read: u64,
}

const MILLION: u128 = 1_000_000;

impl Price {
    /// From USD per million tokens, as a price list or a configuration gives them; `None` for a
    /// negative, infinite or NaN price. Rounded to the nearest micro-USD per million tokens.
    pub fn from_usd(input: f64, output: f64, cache_write: f64, cache_read: f64) -> Option<Price> {
        let micro = |usd: f64| {
            (0.0..1e12)
                .contains(&usd)
                .then(|| (usd * 1e6).round() as u64)
        };
        Some(Price {
            input: micro(input)?,
            output: micro(output)?,
            cache_write: micro(cache_write)?,
            cache_read: micro(cache_read)?,
        })
    }

    /// The usual shape: cache writes at 1.25 × input, cache reads at 0.1 × input. Prices in
    /// units of $0.0001 per million tokens (`3_0000` is $3), which keeps all four exact.
    const fn standard(input_usd_e4: u64, output_usd_e4: u64) -> Price {
        Price {
            input: input_usd_e4 * 100,
            output: output_usd_e4 * 100,
            cache_write: input_usd_e4 * 125,
            cache_read: input_usd_e4 * 10,
        }
    }

    /// What `usage` costs at this price, in micro-USD, rounded up.
    pub fn cost(&self, usage: &Usage) -> u64 {
        let part = |tokens: u64, price: u64| u128::from(tokens) * u128::from(price);
        let total = part(usage.input_tokens, self.input)
            + part(usage.output_tokens, self.output)
            + part(usage.cache_creation_input_tokens, self.cache_write)
            + part(usage.cache_read_input_tokens, self.cache_read);
        total.div_ceil(MILLION).min(u128::from(u64::MAX)) as u64
    }
}

/// One line of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceEntry {
    pub pattern: String,
    pub price: Price,
}

/// How to price a model no entry matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownModel {
    /// At this price.
    Price(Price),
    /// Not at all: a key with a budget may not use it.
    Refuse,
}

/// The shipped prices, USD per million tokens, from Anthropic's public pricing page
/// (<https://docs.anthropic.com/en/docs/about-claude/pricing>) as of late 2025. Cache writes are
/// the 5-minute ones (1.25 × input), cache reads 0.1 × input. Not modelled: the 1-hour cache
/// (2 × input), long-context prices (Sonnet 4/4.5 above 200 000 input tokens), batch discounts.
/// More specific patterns come first: the first match wins.
const SHIPPED: &[(&str, Price)] = &[
    ("*claude-opus-4-5*", Price::standard(5_0000, 25_0000)),
    ("*claude-opus-4*", Price::standard(15_0000, 75_0000)),
    ("*claude-sonnet-4*", Price::standard(3_0000, 15_0000)),
    ("*claude-haiku-4-5*", Price::standard(1_0000, 5_0000)),
    ("*claude-3-7-sonnet*", Price::standard(3_0000, 15_0000)),
    ("*claude-3-5-sonnet*", Price::standard(3_0000, 15_0000)),
    ("*claude-3-5-haiku*", Price::standard(8000, 4_0000)),
    ("*claude-3-opus*", Price::standard(15_0000, 75_0000)),
    ("*claude-3-haiku*", Price::standard(2500, 1_2500)),
];

/// Patterns to prices, first match wins, and the policy for the rest.
#[derive(Clone, Debug)]
pub struct PriceTable {
    entries: Vec<PriceEntry>,
    unknown: UnknownModel,
}

impl Default for PriceTable {
    /// The shipped prices; unknown models refused.
    fn default() -> Self {
        PriceTable::with_overrides(Vec::new(), UnknownModel::Refuse)
    }
}

impl PriceTable {
    /// Exactly these entries, nothing shipped.
    pub fn new(entries: Vec<PriceEntry>, unknown: UnknownModel) -> PriceTable {
        PriceTable { entries, unknown }
    }

    /// The operator's entries, then the shipped ones: an operator's pattern wins where both
    /// match.
    pub fn with_overrides(mut entries: Vec<PriceEntry>, unknown: UnknownModel) -> PriceTable {
        entries.extend(Self::shipped());
        PriceTable { entries, unknown }
    }

    /// The shipped entries, in order.
    pub fn shipped() -> impl Iterator<Item = PriceEntry> {
        SHIPPED.iter().map(|&(pattern, price)| PriceEntry {
            pattern: pattern.to_owned(),
            price,
        })
    }

    pub fn entries(&self) -> &[PriceEntry] {
        &self.entries
    }

    pub fn unknown(&self) -> UnknownModel {
        self.unknown
    }

    /// The price of a model: its first matching entry, else the default price if there is one.
    pub fn price(&self, model: &str) -> Option<&Price> {
        self.entries
            .iter()
            .find(|e| matches(&e.pattern, model))
            .map(|e| &e.price)
            .or(match &self.unknown {
                UnknownModel::Price(p) => Some(p),
                UnknownModel::Refuse => None,
            })
    }

    /// What `usage` of `model` costs, in micro-USD rounded up; `None` when the model has no
    /// price (unknown and refused).
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<u64> {
        self.price(model).map(|p| p.cost(usage))
    }

    /// Before admitting a request of a key with a budget: whether its model can be priced. The
    /// refusal is a 400 `invalid_request_error` (retrying does not help) naming the model.
    pub fn check_model(&self, model: &str) -> Result<(), ApiError> {
        if self.price(model).is_some() {
            return Ok(());
        }
        let mut shown: String = model.chars().take(100).collect();
        if shown.len() < model.len() {
            shown.push('…');
        }
        Err(ApiError::new(
            400,
            ErrorType::InvalidRequest,
            format!(
                "this key has a budget and the gateway has no price for model {shown:?}; \
                 use another model or ask the operator to add it to [prices]"
            )
            .into(),
        ))
    }
}

#[cfg(test)]
#[path = "prices_tests.rs"]
mod tests;
