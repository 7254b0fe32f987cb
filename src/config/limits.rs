//! `[limits]`, the limits of each `[[api_keys]]` entry over them, and `[prices]`.
//!
//! A key's limits are its own where it sets them and `[limits]`' elsewhere; a value left out
//! everywhere is no limit. Prices turn a key's usage into the spend its budgets count: the
//! shipped table of Claude models, with the operator's entries in front of it.

use serde::{Deserialize, Serialize};

/// Limits as one table writes them (`[limits]`, or the same keys on an `[[api_keys]]` entry).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyLimitsConfig {
    pub requests_per_minute: Option<u32>,
    pub input_tokens_per_minute: Option<u64>,
    pub output_tokens_per_minute: Option<u64>,
    /// Requests in flight at once, streams included.
    pub max_concurrent: Option<u32>,
    /// Spend per UTC day, in USD.
    pub daily_usd: Option<f64>,
    /// Spend per UTC month, in USD.
    pub monthly_usd: Option<f64>,
}

impl KeyLimitsConfig {
    /// These limits where set, `defaults` elsewhere.
    pub fn over(&self, defaults: &KeyLimitsConfig) -> KeyLimitsConfig {
        KeyLimitsConfig {
            requests_per_minute: self.requests_per_minute.or(defaults.requests_per_minute),
            input_tokens_per_minute: (self.input_tokens_per_minute)
                .or(defaults.input_tokens_per_minute),
            output_tokens_per_minute: (self.output_tokens_per_minute)
                .or(defaults.output_tokens_per_minute),
            max_concurrent: self.max_concurrent.or(defaults.max_concurrent),
            daily_usd: self.daily_usd.or(defaults.daily_usd),
            monthly_usd: self.monthly_usd.or(defaults.monthly_usd),
        }
    }
}

/// USD per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsdPrice {
    pub input: f64,
    pub output: f64,
    /// Writing the prompt cache (5 minutes); default 1.25 × input.
    pub cache_write: Option<f64>,
    /// Reading it; default 0.1 × input.
    pub cache_read: Option<f64>,
}

/// One `[[prices.models]]` entry: a pattern and its prices (USD per million tokens).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// A model pattern, as `models` patterns are written (`*` matches any run).
    pub pattern: String,
    pub input: f64,
    pub output: f64,
    pub cache_write: Option<f64>,
    pub cache_read: Option<f64>,
}

impl ModelPrice {
    pub fn price(&self) -> UsdPrice {
        UsdPrice {
            input: self.input,
            output: self.output,
            cache_write: self.cache_write,
            cache_read: self.cache_read,
        }
    }
}

/// `[prices]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PricesConfig {
    /// Entries tried before the shipped table (first match wins).
    pub models: Vec<ModelPrice>,
    /// Use only `models`, not the shipped table.
    pub replace_shipped: bool,
    /// The price of a model no entry matches; without it, a key with a budget may not use such
    /// a model (400).
    pub unknown_model: Option<UsdPrice>,
}

impl UsdPrice {
    /// The four prices, the cache ones defaulted.
    pub fn all(&self) -> [f64; 4] {
        [
            self.input,
            self.output,
            self.cache_write.unwrap_or(self.input * 1.25),
            self.cache_read.unwrap_or(self.input * 0.1),
        ]
    }
}
