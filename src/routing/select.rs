//! Choosing which credential of a priority tier serves the next request.
//!
//! Three policies live here. Smooth weighted round-robin spreads load by weight and stays fair
//! across every worker core without a lock: the weighted order is worked out once per tier, and
//! the cores share one atomic cursor into it, so concurrent picks take consecutive positions.
//! Fill-first suits deployments that want one key used until it is unavailable. Session affinity
//! (weighted rendezvous hashing) keeps one conversation on the same credential while that
//! credential is healthy, which keeps its prompt cache warm; when it is not, only the
//! conversations that preferred it move. Whether a candidate is available is a callback: this
//! module knows nothing of health or time, so it can be tested and benchmarked alone.

use std::sync::atomic::{AtomicU64, Ordering};

/// The longest order a [`Schedule`] builds; larger weight sums are scaled down to fit.
const MAX_PERIOD: u64 = 4096;

/// Up to this many candidates, [`affine`] ranks them in a stack array.
const AFFINE_STACK: usize = 16;

/// One position of a schedule: the candidate, and its rank among the distinct candidates (dense,
/// so [`round_robin`] can remember whom it already asked in a small bitset).
#[derive(Clone, Copy, Debug)]
struct Slot {
    candidate: u32,
    rank: u32,
}

/// The smooth weighted round-robin order (nginx's algorithm) of candidates with these weights,
/// computed once. Weights of 0 are never picked. The order's length is the sum of the weights
/// after dividing them by their gcd; if that sum exceeds 4096, the weights are first scaled down
/// proportionally (every nonzero weight stays at least 1).
#[derive(Clone, Debug)]
pub struct Schedule {
    order: Box<[Slot]>,
    /// How many distinct candidates appear in `order`.
    distinct: usize,
}

impl Schedule {
    pub fn new(weights: &[u32]) -> Schedule {
        let members: Vec<u32> = (0..weights.len() as u32)
            .filter(|&i| weights[i as usize] > 0)
            .collect();
        let reduced = reduce(
            members
                .iter()
                .map(|&i| weights[i as usize] as u64)
                .collect(),
        );
        let period: u64 = reduced.iter().sum();
        let slot = |r: usize| Slot {
            candidate: members[r],
            rank: r as u32,
        };
        let order: Vec<Slot> = if reduced.iter().all(|&w| w == 1) {
            // Equal weights: the smooth order is configuration order. This is also the only case
            // with more than MAX_PERIOD candidates, where the general loop would be quadratic.
            (0..members.len()).map(slot).collect()
        } else {
            let total = period as i64;
            let mut current = vec![0i64; reduced.len()];
            (0..period)
                .map(|_| {
                    let mut best = 0;
                    for r in 0..current.len() {
                        current[r] += reduced[r] as i64;
                        // Strictly greater: ties go to the earliest candidate, as in nginx.
                        if current[r] > current[best] {
                            best = r;
                        }
                    }
                    current[best] -= total;
                    slot(best)
                })
                .collect()
        };
        Schedule {
            order: order.into_boxed_slice(),
            distinct: members.len(),
        }
    }

    /// The period of the order: 0 if all weights are 0 or there are none.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The candidate at position `i % len`. Panics on an empty schedule.
    pub fn at(&self, i: usize) -> usize {
        self.order[i % self.order.len()].candidate as usize
    }
}

/// Nonzero weights divided by their gcd and, if they still sum past [`MAX_PERIOD`], scaled down
/// to fit (each stays at least 1, so the sum only exceeds the limit with more candidates than it).
fn reduce(mut w: Vec<u64>) -> Vec<u64> {
    divide_by_gcd(&mut w);
    let sum: u64 = w.iter().sum();
    if sum <= MAX_PERIOD {
        return w;
    }
    if w.len() as u64 >= MAX_PERIOD {
        return vec![1; w.len()];
    }
    // Floors lose a little and the clamp to 1 adds a little; shrink the budget until the scaled
    // sum fits. Each round lowers the budget, and at 1 every weight is 1, which fits.
    let mut budget = MAX_PERIOD;
    loop {
        let scaled: Vec<u64> = w.iter().map(|&x| (x * budget / sum).max(1)).collect();
        let total: u64 = scaled.iter().sum();
        if total <= MAX_PERIOD {
            w = scaled;
            break;
        }
        budget = budget.saturating_sub(total - MAX_PERIOD).max(1);
    }
    divide_by_gcd(&mut w);
    w
}

fn divide_by_gcd(w: &mut [u64]) {
    let g = w.iter().fold(0, |g, &x| gcd(g, x));
    if g > 1 {
        w.iter_mut().for_each(|x| *x /= g);
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Round robin: the candidate at the cursor's next position, if `available` accepts it; if not,
/// the next position is taken from the cursor again, and so on. Each refusal advances the shared
/// cursor, so a refused candidate's turns fall to the others in schedule order, spread by weight,
/// rather than all to the one after it. Asks each candidate at most once per call (`available`
/// may have side effects: it may claim a probe), never again after it returned true; `None` when
/// every candidate refused.
pub fn round_robin(
    schedule: &Schedule,
    cursor: &AtomicU64,
    mut available: impl FnMut(usize) -> bool,
) -> Option<usize> {
    let len = schedule.order.len();
    if len == 0 {
        return None;
    }
    let next = || (cursor.fetch_add(1, Ordering::Relaxed) % len as u64) as usize;
    let start = next();
    let first = schedule.order[start];
    if available(first.candidate as usize) {
        return Some(first.candidate as usize);
    }
    if schedule.distinct as u64 > MAX_PERIOD {
        // All weights are 1 here, so every candidate appears once per period: walk it.
        return (1..len)
            .map(|k| schedule.order[(start + k) % len].candidate as usize)
            .find(|&c| available(c));
    }
    let mut asked = [0u64; (MAX_PERIOD / 64) as usize];
    let mut mark = |rank: u32| {
        let (word, bit) = ((rank / 64) as usize, 1u64 << (rank % 64));
        let fresh = asked[word] & bit == 0;
        asked[word] |= bit;
        fresh
    };
    mark(first.rank);
    let mut refused = 1;
    // Fresh positions for one period; then (other cores may have taken some of them) a walk of
    // the period from the last one, for whoever was not asked yet.
    let mut last = start;
    for i in 0..2 * len - 1 {
        if refused == schedule.distinct {
            break;
        }
        let position = if i < len {
            last = next();
            last
        } else {
            (last + i - len + 1) % len
        };
        let slot = schedule.order[position];
        if !mark(slot.rank) {
            continue;
        }
        if available(slot.candidate as usize) {
            return Some(slot.candidate as usize);
        }
        refused += 1;
    }
    None
}

/// Fill first: the first of candidates `0..n` (in configuration order) that `available` accepts.
pub fn fill_first(n: usize, mut available: impl FnMut(usize) -> bool) -> Option<usize> {
    (0..n).find(|&c| available(c))
}

/// Affinity: candidates ranked by weighted rendezvous hashing of `key` (score `-w / ln(u)`, with
/// `u` in (0,1) from a hash of the key and the candidate's index); the highest-ranked candidate
/// `available` accepts, asking in rank order, at most once each. Weight 0 never wins. The same
/// key with the same available set always gives the same answer, and when the preferred candidate
/// becomes unavailable only the keys that preferred it move. No allocation up to 16 candidates.
pub fn affine(key: u64, weights: &[u32], available: impl FnMut(usize) -> bool) -> Option<usize> {
    if weights.len() <= AFFINE_STACK {
        let mut ranked = [(0.0, 0); AFFINE_STACK];
        let n = score(key, weights, &mut ranked);
        best_available(&mut ranked[..n], available)
    } else {
        let mut ranked = vec![(0.0, 0); weights.len()];
        let n = score(key, weights, &mut ranked);
        best_available(&mut ranked[..n], available)
    }
}

/// Writes `(score, candidate)` for every nonzero weight into `out`; returns how many.
fn score(key: u64, weights: &[u32], out: &mut [(f64, usize)]) -> usize {
    let mut n = 0;
    for (c, &w) in weights.iter().enumerate().filter(|(_, &w)| w > 0) {
        let h = mix64(key ^ mix64(c as u64 ^ 0x9e37_79b9_7f4a_7c15));
        // The top 52 bits plus a half: strictly inside (0,1), and exactly representable.
        let u = ((h >> 12) as f64 + 0.5) / (1u64 << 52) as f64;
        out[n] = (-(w as f64) / u.ln(), c);
        n += 1;
    }
    n
}

fn best_available(
    ranked: &mut [(f64, usize)],
    mut available: impl FnMut(usize) -> bool,
) -> Option<usize> {
    // Highest score first; the index breaks (astronomically unlikely) ties deterministically.
    ranked.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.iter().map(|&(_, c)| c).find(|&c| available(c))
}

/// A 64-bit key for an affinity token (`metadata.user_id` or an `x-session-id` value), the same
/// on every run and every machine (no random seed, little-endian reads).
pub fn affinity_key(token: &[u8]) -> u64 {
    const STEP: u64 = 0x9e37_79b9_7f4a_7c15;
    // The length goes in first, so tokens that differ only by trailing zero bytes differ.
    let mut h = mix64((token.len() as u64).wrapping_mul(STEP) ^ 0x5267_6761_7465_2121);
    let mut chunks = token.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = mix64(h ^ u64::from_le_bytes(word)).wrapping_add(STEP);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = mix64(h ^ u64::from_le_bytes(word)).wrapping_add(STEP);
    }
    mix64(h)
}

/// The splitmix64 finalizer: a bijection on `u64` with full avalanche.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn period(s: &Schedule) -> Vec<usize> {
        (0..s.len()).map(|i| s.at(i)).collect()
    }

    /// Runs `pick` with an availability callback that answers as `accept` does and records whom
    /// it was asked about, in order.
    fn asking(
        accept: impl Fn(usize) -> bool,
        pick: impl FnOnce(&mut dyn FnMut(usize) -> bool) -> Option<usize>,
    ) -> (Option<usize>, Vec<usize>) {
        let mut asked = vec![];
        let got = pick(&mut |c| {
            asked.push(c);
            accept(c)
        });
        (got, asked)
    }

    fn distinct(asked: &[usize]) -> usize {
        asked.iter().collect::<HashSet<_>>().len()
    }

    fn counts(s: &Schedule, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        (0..s.len()).for_each(|i| c[s.at(i)] += 1);
        c
    }

    #[test]
    fn schedule_is_nginx_smooth_order() {
        let s = Schedule::new(&[5, 1, 1]);
        assert_eq!(period(&s), [0, 0, 1, 0, 2, 0, 0]);
        // Any window of whole periods holds each candidate exactly weight times per period.
        let mut c = [0; 3];
        (3..3 + 7 * 100).for_each(|i| c[s.at(i)] += 1);
        assert_eq!(c, [500, 100, 100]);
    }

    #[test]
    fn zero_weights_gcd_and_empty() {
        let s = Schedule::new(&[2, 0, 1]);
        assert_eq!(period(&s), [0, 2, 0]);
        let s = Schedule::new(&[4, 2]);
        assert_eq!((s.len(), counts(&s, 2)), (3, vec![2, 1]));
        for w in [&[][..], &[0, 0]] {
            let s = Schedule::new(w);
            assert_eq!((s.len(), s.is_empty()), (0, true));
            let cursor = AtomicU64::new(0);
            assert_eq!(round_robin(&s, &cursor, |_| panic!("asked")), None);
        }
    }

    #[test]
    fn large_weights_are_scaled() {
        let cases: [Vec<u32>; 3] = [
            vec![1_000_000, 3_000_000, 7],
            (1..=200).collect(),
            vec![u32::MAX, u32::MAX - 1, 1, 0, 12_345],
        ];
        for w in cases {
            let s = Schedule::new(&w);
            assert!(s.len() <= MAX_PERIOD as usize, "{}", s.len());
            let sum: f64 = w.iter().map(|&x| x as f64).sum();
            for (c, n) in counts(&s, w.len()).into_iter().enumerate() {
                assert_eq!(n == 0, w[c] == 0, "candidate {c}");
                let (got, want) = (n as f64 / s.len() as f64, w[c] as f64 / sum);
                assert!((got - want).abs() < 0.01, "{c}: {got} vs {want}");
            }
        }
        // More candidates than the limit: each once.
        let s = Schedule::new(&vec![7; 5000]);
        assert_eq!(period(&s), (0..5000).collect::<Vec<_>>());
    }

    #[test]
    fn round_robin_skips_and_asks_each_candidate_once() {
        let s = Schedule::new(&[5, 1, 1]);
        let cursor = AtomicU64::new(0);
        let mut wins = [0usize; 3];
        for _ in 0..70u64 {
            let (got, asked) = asking(|c| c != 0, |a| round_robin(&s, &cursor, a));
            // Candidate 0 holds most positions but is asked at most once per call.
            assert!(asked.iter().filter(|&&c| c == 0).count() <= 1, "{asked:?}");
            assert_eq!(
                (asked.last(), distinct(&asked)),
                (got.as_ref(), asked.len())
            );
            wins[got.unwrap()] += 1;
        }
        // Its turns are spread over the others by weight, not handed to the next in line.
        assert_eq!(wins, [0, 35, 35]);
        // Three equal candidates, one refusing: the other two share evenly.
        let s3 = Schedule::new(&[1, 1, 1]);
        let mut wins = [0usize; 3];
        for _ in 0..3000 {
            wins[round_robin(&s3, &cursor, |c| c != 0).unwrap()] += 1;
        }
        assert_eq!(wins, [0, 1500, 1500]);
        let (got, mut asked) = asking(|_| false, |a| round_robin(&s, &cursor, a));
        asked.sort_unstable();
        assert_eq!((got, asked), (None, vec![0, 1, 2]));
        // The all-ones path (more candidates than the bitset holds) also asks each once.
        let big = Schedule::new(&vec![1; 5000]);
        let (got, asked) = asking(|_| false, |a| round_robin(&big, &cursor, a));
        assert_eq!((got, asked.len(), distinct(&asked)), (None, 5000, 5000));
        assert_eq!(round_robin(&big, &cursor, |c| c == 4999), Some(4999));
    }

    #[test]
    fn round_robin_is_fair_across_threads() {
        let w = [5u32, 3, 2];
        let s = Schedule::new(&w);
        let cursor = AtomicU64::new(0);
        let per_thread: Vec<Vec<usize>> = std::thread::scope(|scope| {
            let spawn = || {
                scope.spawn(|| {
                    let mut c = vec![0; 3];
                    for _ in 0..10_000 {
                        c[round_robin(&s, &cursor, |_| true).unwrap()] += 1;
                    }
                    c
                })
            };
            let handles = [spawn(), spawn()];
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let total: Vec<usize> = (0..3)
            .map(|c| per_thread[0][c] + per_thread[1][c])
            .collect();
        // The two threads took positions 0..20000 between them, each exactly once.
        let mut exact = vec![0; 3];
        (0..20_000).for_each(|i| exact[s.at(i)] += 1);
        assert_eq!(total, exact);
        for c in 0..3 {
            let share = total[c] as f64 / 20_000.0;
            assert!((share - w[c] as f64 / 10.0).abs() <= 0.01, "{c}: {share}");
        }
    }

    #[test]
    fn fill_first_takes_the_first_available() {
        let (got, asked) = asking(|c| c >= 2, |a| fill_first(4, a));
        assert_eq!((got, asked), (Some(2), vec![0, 1, 2]));
        assert_eq!(fill_first(4, |_| true), Some(0));
        assert_eq!(fill_first(4, |_| false), None);
        assert_eq!(fill_first(0, |_| panic!("asked")), None);
    }

    fn random_keys(n: usize) -> Vec<u64> {
        let mut rng = fastrand::Rng::with_seed(7);
        (0..n).map(|_| rng.u64(..)).collect()
    }

    #[test]
    fn affine_is_sticky_and_follows_weights() {
        let w = [1u32, 2, 3, 4, 0];
        let keys = random_keys(100_000);
        let mut c = [0usize; 5];
        for &k in &keys {
            let first = affine(k, &w, |_| true).unwrap();
            for _ in 0..3 {
                assert_eq!(affine(k, &w, |_| true), Some(first));
            }
            c[first] += 1;
        }
        assert_eq!(c[4], 0);
        for i in 0..4 {
            let share = c[i] as f64 / keys.len() as f64;
            assert!((share - w[i] as f64 / 10.0).abs() < 0.01, "{i}: {share}");
        }
    }

    #[test]
    fn affine_moves_only_the_keys_of_the_lost_candidate() {
        // Both the stack path and the heap path.
        for w in [vec![3u32, 1, 2, 2], (1..=20).collect()] {
            let keys = random_keys(20_000);
            let before: Vec<usize> = keys
                .iter()
                .map(|&k| affine(k, &w, |_| true).unwrap())
                .collect();
            let (mut moved, lost) = (0, 2);
            for (&k, &was) in keys.iter().zip(&before) {
                let (now, asked) = asking(|c| c != lost, |a| affine(k, &w, a));
                let now = now.unwrap();
                assert_eq!(distinct(&asked), asked.len());
                if was == lost {
                    assert_ne!(now, lost);
                    assert_eq!(asked, [lost, now]);
                    moved += 1;
                } else {
                    assert_eq!((now, asked.len()), (was, 1));
                }
            }
            assert!(moved > 0);
        }
    }

    #[test]
    fn affine_with_nothing_available() {
        let (got, mut asked) = asking(|_| false, |a| affine(42, &[1, 0, 2], a));
        asked.sort_unstable();
        assert_eq!((got, asked), (None, vec![0, 2]));
        assert_eq!(affine(42, &[], |_| panic!("asked")), None);
        assert_eq!(affine(42, &[0, 0], |_| panic!("asked")), None);
    }

    #[test]
    fn affinity_keys_are_stable_and_distinct() {
        let mut tokens: Vec<Vec<u8>> = (0..9_990)
            .map(|i| format!("user_{i:x}_session").into_bytes())
            .collect();
        tokens.extend((0..10).map(|n| vec![0u8; n]));
        let keys: Vec<u64> = tokens.iter().map(|t| affinity_key(t)).collect();
        assert_eq!(keys.iter().collect::<HashSet<_>>().len(), tokens.len());
        for (t, &k) in tokens.iter().zip(&keys) {
            assert_eq!(affinity_key(&t.clone()), k);
        }
        assert_ne!(affinity_key(b"abcdefgh1"), affinity_key(b"abcdefgh2"));
    }
}
