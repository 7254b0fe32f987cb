//! Each client key's limits for a running gateway, and the price table its budgets count with.
//!
//! Built from the configuration, and again at each reload from the previous one: a key that is
//! still configured keeps its `KeyLimits` (its counts, its spend) with the new settings applied,
//! so a reload never hands a key a fresh minute or day. A key without any limit has none here,
//! and its requests pay nothing for the feature.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::rate::RateLimiter;
use super::{KeyLimits, Now, Price, PriceEntry, PriceTable, UnknownModel};
use crate::config::{Config, PricesConfig, UsdPrice};

pub struct Registry {
    keys: HashMap<String, Arc<KeyLimits>>,
    pub prices: PriceTable,
}

impl Registry {
    /// The limits of `config`'s keys, carrying over `previous`' counts by key name.
    pub fn build(config: &Config, previous: Option<&Registry>) -> Registry {
        let now = Instant::now();
        let keys = (config.api_keys.iter())
            .filter_map(|k| {
                let settings = k.limits;
                if !settings.any() {
                    return None;
                }
                let limits = match previous.and_then(|p| p.keys.get(&k.name)) {
                    Some(kept) => {
                        kept.apply(&settings, now);
                        kept.clone()
                    }
                    None => Arc::new(KeyLimits::new(&settings, epoch())),
                };
                Some((k.name.clone(), limits))
            })
            .collect();
        Registry {
            keys,
            prices: prices(&config.prices),
        }
    }

    /// The limits of the key named `name`, if it has any.
    pub fn get(&self, name: &str) -> Option<&Arc<KeyLimits>> {
        // Most gateways limit no key: their requests do not pay for hashing the name.
        if self.keys.is_empty() {
            return None;
        }
        self.keys.get(name)
    }

    /// Every limited key, by name.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &Arc<KeyLimits>)> {
        self.keys.iter().map(|(n, l)| (n.as_str(), l))
    }

    /// Each limited key's limits, what is left of them and its spend, by name.
    pub fn status(&self, now: Now) -> Vec<KeyStatus> {
        let level = |r: &RateLimiter| Level {
            limit: r.limit(),
            remaining: r.remaining(now.mono),
        };
        let mut all: Vec<KeyStatus> = (self.keys.iter())
            .map(|(name, l)| {
                let spent = l.budget().spent(now.unix_secs());
                let (daily, monthly) = l.budget().limits();
                KeyStatus {
                    name: name.clone(),
                    requests: level(l.requests()),
                    input_tokens: level(l.input_tokens()),
                    output_tokens: level(l.output_tokens()),
                    in_flight: l.concurrency().current(),
                    max_concurrent: l.concurrency().limit(),
                    spent_day: spent.day,
                    spent_month: spent.month,
                    daily,
                    monthly,
                }
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Gives the key named `name` full buckets and no spend; false when it has no limits.
    pub fn reset(&self, name: &str) -> bool {
        self.keys.get(name).map(|l| l.reset()).is_some()
    }
}

/// One rate limit: its N per minute (0: none) and the units left now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    pub limit: u64,
    pub remaining: u64,
}

/// A limited key as the admin view and the metrics show it. Spend and budgets in micro-USD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    pub name: String,
    pub requests: Level,
    pub input_tokens: Level,
    pub output_tokens: Level,
    pub in_flight: u32,
    /// 0: none.
    pub max_concurrent: u32,
    pub spent_day: u64,
    pub spent_month: u64,
    pub daily: Option<u64>,
    pub monthly: Option<u64>,
}

/// One instant for every limiter of the process: their states are times after it.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The configured table (validated: every price is a non-negative number).
fn prices(p: &PricesConfig) -> PriceTable {
    let price = |u: &UsdPrice| {
        let [input, output, write, read] = u.all();
        Price::from_usd(input, output, write, read)
            .unwrap_or(Price::from_usd(0., 0., 0., 0.).expect("zero is a price"))
    };
    let entries = (p.models.iter())
        .map(|m| PriceEntry {
            pattern: m.pattern.clone(),
            price: price(&m.price()),
        })
        .collect();
    let unknown = match &p.unknown_model {
        Some(u) => UnknownModel::Price(price(u)),
        None => UnknownModel::Refuse,
    };
    match p.replace_shipped {
        true => PriceTable::new(entries, unknown),
        false => PriceTable::with_overrides(entries, unknown),
    }
}
