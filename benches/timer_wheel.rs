//! What a deadline costs on a wheel of 1024 slots that already holds 10,000 of them.

use criterion::{criterion_group, criterion_main, Criterion};
use ringgate::stream::wheel::TimerWheel;
use std::hint::black_box;

const SLOTS: usize = 1024;
const PENDING: u64 = 10_000;
/// How many rotations ahead the pending entries are spread over.
const ROTATIONS: u64 = 8;
/// Far enough that no benchmark advances up to it.
const FAR: u64 = 1 << 40;

/// A wheel with `PENDING` entries spread evenly over the slots, starting at tick `base`.
fn loaded(base: u64) -> TimerWheel<u64> {
    let mut wheel = TimerWheel::new(SLOTS);
    let span = SLOTS as u64 * ROTATIONS;
    for i in 0..PENDING {
        wheel.insert(base + i * span / PENDING, i);
    }
    wheel
}

fn insert_cancel(c: &mut Criterion) {
    let mut wheel = loaded(FAR);
    let mut i = 0u64;
    c.bench_function("insert+cancel, 10k pending", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let key = wheel.insert(black_box(1 + i % SLOTS as u64), i);
            black_box(wheel.cancel(key))
        })
    });
}

fn insert_fire(c: &mut Criterion) {
    // The pending entries lie in every slot, so each advance walks ~10 of them without firing.
    let mut wheel = loaded(FAR);
    c.bench_function("insert+advance+fire, 10k pending", |b| {
        b.iter(|| {
            let next = wheel.current() + 1;
            wheel.insert(black_box(next), next);
            wheel.advance(next, |v| {
                black_box(v);
            });
        })
    });
}

fn tick(c: &mut Criterion) {
    // Entries due within the next rotations: each tick fires about 1.2 of them and re-arms them
    // a full spread later, as streams renewing their idle deadline would.
    let mut wheel = loaded(1);
    let mut fired = Vec::with_capacity(64);
    let span = SLOTS as u64 * ROTATIONS;
    c.bench_function("advance one tick, 10k pending over 8 rotations", |b| {
        b.iter(|| {
            let now = wheel.current() + 1;
            wheel.advance(black_box(now), |v| fired.push(v));
            for v in fired.drain(..) {
                wheel.insert(now + span, v);
            }
        })
    });
    assert_eq!(wheel.len() as u64, PENDING);
}

criterion_group!(benches, insert_cancel, insert_fire, tick);
criterion_main!(benches);
