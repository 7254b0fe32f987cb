//! Each client key's limits for a running gateway, and the price table its budgets count with.
//!
//! Built from the configuration, and again at each reload from the previous one: a key that is
//! still configured keeps its `KeyLimits` (its counts, its spend) with the new settings applied,
//! so a reload never hands a key a fresh minute or day. A key without any limit has none here,
//! and its requests pay nothing for the feature.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::{KeyLimits, LimitSettings, Price, PriceEntry, PriceTable, UnknownModel};
use crate::config::{Config, KeyLimitsConfig, PricesConfig, UsdPrice};

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
                let settings = settings(&k.limits);
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
        self.keys.get(name)
    }

    /// Every limited key, by name.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &Arc<KeyLimits>)> {
        self.keys.iter().map(|(n, l)| (n.as_str(), l))
    }
}

/// One instant for every limiter of the process: their states are times after it.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn settings(c: &KeyLimitsConfig) -> LimitSettings {
    LimitSettings {
        requests_per_minute: c.requests_per_minute,
        input_tokens_per_minute: c.input_tokens_per_minute,
        output_tokens_per_minute: c.output_tokens_per_minute,
        max_concurrent: c.max_concurrent,
        daily_usd: c.daily_usd,
        monthly_usd: c.monthly_usd,
    }
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
