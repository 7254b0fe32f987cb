//! What the per-key limits cost a request: `KeyLimits::admit` on arrival and `settle` when the
//! answer ends, for a key with every limit and budget set, on one thread. Issue 18 allows 1 µs of
//! CPU per request for the whole local feature; this part must stay well under it.
//!
//! The limits are high enough that nothing is ever refused (the path measured is the one every
//! admitted request takes), and a synthetic clock advances 1 ms a request.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringgate::limits::{Estimate, KeyLimits, LimitSettings, Now, PriceTable, RateHeaders};
use ringgate::stream::tally::Usage;

const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(3);

fn admit_settle(c: &mut Criterion) {
    let t0 = Instant::now();
    let k = KeyLimits::new(
        &LimitSettings {
            requests_per_minute: Some(1_000_000),
            input_tokens_per_minute: Some(1_000_000_000),
            output_tokens_per_minute: Some(1_000_000_000),
            max_concurrent: Some(1_000),
            daily_usd: Some(1e6),
            monthly_usd: Some(1e7),
        },
        t0,
    );
    let usage = Usage {
        input_tokens: 900,
        output_tokens: 300,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 2_000,
    };
    let mut g = c.benchmark_group("limits");
    g.warm_up_time(WARM_UP).measurement_time(MEASURE);
    g.throughput(Throughput::Elements(1));
    let mut i: u64 = 0;
    g.bench_function("admit+settle", |b| {
        b.iter(|| {
            i += 1;
            let now = Now {
                mono: t0 + Duration::from_millis(i),
                unix_ms: 1_749_902_400_000 + i,
            };
            let admitted = k
                .admit(black_box(Estimate::from_body_len(4_000)), now)
                .expect("limits are high enough");
            k.settle(admitted, black_box(&usage), 1_234, now);
        })
    });
    let prices = PriceTable::default();
    g.bench_function("request (admit, headers, price, settle)", |b| {
        b.iter(|| {
            i += 1;
            let now = Now {
                mono: t0 + Duration::from_millis(i),
                unix_ms: 1_749_902_400_000 + i,
            };
            let admitted = k
                .admit(black_box(Estimate::from_body_len(4_000)), now)
                .expect("limits are high enough");
            black_box(RateHeaders::of(&k, now).to_vec());
            let cost = prices.cost(black_box("claude-sonnet-4-5-20250929"), &usage);
            k.settle(admitted, black_box(&usage), cost.unwrap_or(0), now);
        })
    });
    g.bench_function("headers", |b| {
        b.iter(|| {
            i += 1;
            let now = Now {
                mono: t0 + Duration::from_millis(i),
                unix_ms: 1_749_902_400_000 + i,
            };
            black_box(RateHeaders::of(&k, now).to_vec());
        })
    });
    g.bench_function("price", |b| {
        b.iter(|| black_box(prices.cost(black_box("claude-sonnet-4-5-20250929"), &usage)))
    });
    g.finish();
}

criterion_group!(benches, admit_settle);
criterion_main!(benches);
