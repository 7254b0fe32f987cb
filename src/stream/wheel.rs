//! A hashed timer wheel for per-stream deadlines.
//!
//! A stream has at most one pending deadline at a time (flush, keep-alive or idle), so rather than
//! giving every stream its own runtime timer, all the deadlines of a core sit in one wheel that a
//! single tick task drives. This module is only the data structure: it does no I/O and reads no
//! clock (time is an abstract `u64` tick count), so it can be tested and benchmarked on its own.

/// The "no entry" link; slab indices stop one short of it.
const NIL: u32 = u32::MAX;

/// Names a scheduled entry. A generation travels with the slab index so that a key kept past its
/// entry's firing or cancellation never reaches whatever entry later reuses the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

struct Entry<T> {
    /// `None` while the entry is on the free list.
    value: Option<T>,
    /// Absolute tick, after `current` while pending (bar at the last tick of all), so its slot
    /// is `at & mask` even for an entry inserted overdue.
    at: u64,
    prev: u32,
    /// Next in the slot's list, or in the free list when free.
    next: u32,
    /// Bumped on every free, which invalidates outstanding keys.
    generation: u32,
}

pub struct TimerWheel<T> {
    entries: Vec<Entry<T>>,
    free: u32,
    heads: Box<[u32]>,
    /// One bit per slot, set while the slot's list is non-empty: `next_due` and `advance` skip
    /// empty slots 64 at a time instead of looking at them.
    occupied: Box<[u64]>,
    mask: u64,
    current: u64,
    len: usize,
    #[cfg(test)]
    visited: usize,
}

impl<T> TimerWheel<T> {
    /// A wheel of `slots` slots (a power of two) at tick 0.
    pub fn new(slots: usize) -> Self {
        assert!(
            slots.is_power_of_two(),
            "timer wheel: {slots} slots is not a power of two"
        );
        TimerWheel {
            entries: Vec::new(),
            free: NIL,
            heads: vec![NIL; slots].into_boxed_slice(),
            occupied: vec![0; slots.div_ceil(64)].into_boxed_slice(),
            mask: slots as u64 - 1,
            current: 0,
            len: 0,
            #[cfg(test)]
            visited: 0,
        }
    }

    /// The tick the wheel has advanced to.
    pub fn current(&self) -> u64 {
        self.current
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `value` for tick `at`; a tick at or before `current()` counts as `current() + 1`,
    /// so it fires on the next `advance`. O(1), and allocates only when more entries are pending
    /// than ever before, since freed entries are reused.
    pub fn insert(&mut self, at: u64, value: T) -> TimerKey {
        let at = at.max(self.current.saturating_add(1));
        let slot = (at & self.mask) as usize;
        let index = if self.free == NIL {
            // Only reachable with ~4 billion pending entries, long after memory has run out.
            let index = u32::try_from(self.entries.len()).ok().filter(|&i| i != NIL);
            let index = index.expect("timer wheel: more than u32::MAX - 1 pending entries");
            self.entries.push(Entry {
                value: None,
                at,
                prev: NIL,
                next: NIL,
                generation: 0,
            });
            index
        } else {
            let index = self.free;
            self.free = self.entries[index as usize].next;
            index
        };
        let head = self.heads[slot];
        let entry = &mut self.entries[index as usize];
        (entry.value, entry.at, entry.prev, entry.next) = (Some(value), at, NIL, head);
        let generation = entry.generation;
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        self.heads[slot] = index;
        self.occupied[slot / 64] |= 1 << (slot % 64);
        self.len += 1;
        TimerKey { index, generation }
    }

    /// Removes a pending entry in O(1); `None` if it already fired or was cancelled.
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let index = self.live(key)?;
        Some(self.remove(index))
    }

    /// Whether the entry is still pending.
    pub fn contains(&self, key: TimerKey) -> bool {
        self.live(key).is_some()
    }

    /// The value of a pending entry, to replace it in place (a new waker, say).
    pub fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        let index = self.live(key)?;
        self.entries[index as usize].value.as_mut()
    }

    /// Moves to tick `now` (nothing happens if `now <= current()`) and hands `fire` every value
    /// whose tick is `<= now`, in no particular order. Only the slots of the ticks passed over are
    /// looked at, each once, so a jump of more than a rotation costs one rotation; entries of later
    /// rotations met in those slots stay.
    pub fn advance(&mut self, now: u64, mut fire: impl FnMut(T)) {
        if now <= self.current {
            return;
        }
        let slots = self.heads.len();
        let span = usize::try_from(now - self.current).map_or(slots, |ticks| ticks.min(slots));
        let start = (self.current + 1) & self.mask;
        let mut done = 0;
        while done < span {
            let from = (start + done as u64) & self.mask;
            let Some(skip) = self.next_occupied(from as usize, span - done) else {
                break;
            };
            let slot = ((from + skip as u64) & self.mask) as usize;
            self.fire_slot(slot, now, &mut fire);
            done += skip + 1;
        }
        self.current = now;
    }

    /// A lower bound on the tick at which the next entry fires: the tick of the first occupied
    /// slot after `current()`, at most one rotation ahead, so an entry several rotations away just
    /// costs the caller a few early wake-ups. Entries inserted already due report
    /// `current() + 1`, the tick they fire at. `None` when the wheel is empty.
    pub fn next_due(&self) -> Option<u64> {
        let start = self.current.wrapping_add(1) & self.mask;
        let skip = self.next_occupied(start as usize, self.heads.len())?;
        Some(self.current.saturating_add(1 + skip as u64))
    }

    /// The index of a pending entry, if `key` still names one.
    fn live(&self, key: TimerKey) -> Option<u32> {
        let entry = self.entries.get(key.index as usize)?;
        (entry.generation == key.generation && entry.value.is_some()).then_some(key.index)
    }

    /// Walks one slot's list, firing the entries due by `now`.
    fn fire_slot(&mut self, slot: usize, now: u64, fire: &mut impl FnMut(T)) {
        #[cfg(test)]
        {
            self.visited += 1;
        }
        let mut index = self.heads[slot];
        while index != NIL {
            let entry = &self.entries[index as usize];
            let (next, due) = (entry.next, entry.at <= now);
            if due {
                // Unlinked before `fire` runs, so a panicking callback leaves the wheel sound.
                let value = self.remove(index);
                fire(value);
            }
            index = next;
        }
    }

    /// Unlinks a pending entry, frees it and returns its value.
    fn remove(&mut self, index: u32) -> T {
        let entry = &mut self.entries[index as usize];
        let (prev, next, slot) = (entry.prev, entry.next, (entry.at & self.mask) as usize);
        let value = entry.value.take();
        entry.generation = entry.generation.wrapping_add(1);
        entry.next = self.free;
        self.free = index;
        if prev == NIL {
            self.heads[slot] = next;
            if next == NIL {
                self.occupied[slot / 64] &= !(1 << (slot % 64));
            }
        } else {
            self.entries[prev as usize].next = next;
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
        self.len -= 1;
        value.expect("timer wheel: removed a free entry")
    }

    /// How far past slot `start` the first occupied slot is, if that is less than `span`.
    fn next_occupied(&self, start: usize, span: usize) -> Option<usize> {
        let (words, slots) = (self.occupied.len(), self.heads.len());
        let (first, bit) = (start / 64, start % 64);
        // The first word is read twice: its bits from `start` on, then, after wrapping around the
        // wheel, the bits before `start`.
        for i in 0..=words {
            // A wheel of fewer than 64 slots wraps around inside its one word.
            if i > 0 && (i * 64).min(slots) - bit >= span {
                return None;
            }
            let mut bits = self.occupied[(first + i) % words];
            if i == 0 {
                bits &= !0 << bit;
            } else if i == words {
                bits &= !(!0 << bit);
            }
            if bits != 0 {
                let slot = (first + i) % words * 64 + bits.trailing_zeros() as usize;
                let skip = slot.wrapping_sub(start) & self.mask as usize;
                return (skip < span).then_some(skip);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    impl<T> TimerWheel<T> {
        fn slab_len(&self) -> usize {
            self.entries.len()
        }
    }

    /// Advances and returns what fired, sorted.
    fn step(wheel: &mut TimerWheel<u64>, now: u64) -> Vec<u64> {
        let mut fired = Vec::new();
        wheel.advance(now, |v| fired.push(v));
        fired.sort_unstable();
        fired
    }

    #[test]
    fn fires_at_the_first_advance_reaching_the_tick() {
        let mut wheel = TimerWheel::new(8);
        for at in [1, 2, 2, 5, 7, 8, 9, 15, 16] {
            wheel.insert(at, at);
        }
        assert_eq!(wheel.next_due(), Some(1));
        assert_eq!(step(&mut wheel, 1), [1]);
        assert_eq!(step(&mut wheel, 1), [] as [u64; 0]);
        assert_eq!(step(&mut wheel, 4), [2, 2]);
        assert_eq!(wheel.next_due(), Some(5));
        assert_eq!(step(&mut wheel, 8), [5, 7, 8]);
        assert_eq!(step(&mut wheel, 15), [9, 15]);
        assert_eq!(wheel.len(), 1);
        assert_eq!(step(&mut wheel, 16), [16]);
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_due(), None);
        assert_eq!(wheel.current(), 16);
    }

    #[test]
    fn overdue_entries_fire_on_the_next_advance() {
        let mut wheel = TimerWheel::new(8);
        wheel.advance(100, |_: u64| unreachable!());
        wheel.insert(50, 50);
        wheel.insert(100, 100);
        wheel.insert(0, 0);
        assert_eq!(wheel.next_due(), Some(101));
        assert_eq!(step(&mut wheel, 100), [] as [u64; 0]);
        assert_eq!(step(&mut wheel, 101), [0, 50, 100]);
    }

    #[test]
    fn cancel_and_stale_keys() {
        let mut wheel = TimerWheel::new(4);
        let a = wheel.insert(3, 1);
        assert_eq!(wheel.cancel(a), Some(1));
        assert_eq!(wheel.cancel(a), None);
        assert!(!wheel.contains(a));
        // `b` reuses `a`'s slab entry; `a` must not reach it.
        let mut b = wheel.insert(3, 2);
        assert_eq!(wheel.slab_len(), 1);
        assert_eq!(wheel.get_mut(a), None);
        assert_eq!(wheel.cancel(a), None);
        assert!(wheel.contains(b));
        *wheel.get_mut(b).unwrap() = 20;
        assert_eq!(step(&mut wheel, 3), [20]);
        assert_eq!(wheel.cancel(b), None);
        assert_eq!(wheel.get_mut(b), None);
        assert!(!wheel.contains(b));
        // Cancelling one entry of a shared slot leaves the others.
        b = wheel.insert(5, 5);
        let c = wheel.insert(5, 6);
        let d = wheel.insert(9, 9);
        assert_eq!(wheel.cancel(c), Some(6));
        assert_eq!(step(&mut wheel, 5), [5]);
        assert!(!wheel.contains(b) && wheel.contains(d));
        assert_eq!(step(&mut wheel, 9), [9]);
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn entries_rotations_ahead_wait_for_their_own_tick() {
        let mut wheel = TimerWheel::new(8);
        let at = 3 * 8 + 5;
        wheel.insert(at, at);
        wheel.insert(5, 5);
        for now in 1..at {
            let expected: &[u64] = if now == 5 { &[5] } else { &[] };
            assert_eq!(step(&mut wheel, now), expected, "at tick {now}");
        }
        assert_eq!(step(&mut wheel, at), [at]);
    }

    #[test]
    fn a_huge_jump_visits_each_slot_once() {
        let mut wheel = TimerWheel::new(64);
        for at in 1..=1000 {
            wheel.insert(at * 997, at);
        }
        let far = wheel.insert(2_000_000_000, 0);
        wheel.visited = 0;
        let fired = step(&mut wheel, 1_000_000_000);
        assert_eq!(fired, (1..=1000).collect::<Vec<_>>());
        assert!(wheel.visited <= 64, "visited {} slots", wheel.visited);
        assert!(wheel.contains(far));
        // Tick 2e9 shares slot 0 with 1e9: the bound is that slot's next visit.
        assert_eq!(wheel.next_due(), Some(1_000_000_064));
        assert_eq!(step(&mut wheel, u64::MAX), [0]);
        // Nothing can come after the last tick; it must not panic either.
        wheel.insert(7, 7);
        assert_eq!(wheel.next_due(), Some(u64::MAX));
        assert_eq!(step(&mut wheel, u64::MAX), [] as [u64; 0]);
    }

    #[test]
    fn slab_stays_put_in_steady_state() {
        let mut wheel = TimerWheel::new(16);
        let pending: Vec<_> = (0..100).map(|i| wheel.insert(1 << 20, i)).collect();
        let mut warm = None;
        for i in 0..10_000 {
            let key = wheel.insert(i % 50, i);
            assert_eq!(wheel.cancel(key), Some(i));
            let next = wheel.current() + 1;
            wheel.insert(next, i);
            assert_eq!(step(&mut wheel, next), [i]);
            // The first round peaks at 101 entries; after it, the slab must not move.
            let size = (wheel.slab_len(), wheel.entries.capacity());
            assert_eq!(*warm.get_or_insert(size), size, "round {i}");
        }
        assert_eq!(warm.unwrap().0, 101);
        assert!(pending.iter().all(|&k| wheel.contains(k)));
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn slots_must_be_a_power_of_two() {
        TimerWheel::<()>::new(12);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert { back: bool, delta: u64 },
        Cancel(usize),
        Advance { back: bool, delta: u64 },
    }

    fn delta() -> impl Strategy<Value = u64> {
        prop_oneof![4 => 0u64..4, 4 => 0u64..300, 1 => 0u64..1 << 40, 1 => Just(u64::MAX)]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<bool>(), delta()).prop_map(|(back, delta)| Op::Insert { back, delta }),
            2 => any::<usize>().prop_map(Op::Cancel),
            3 => (prop::bool::weighted(0.1), delta())
                .prop_map(|(back, delta)| Op::Advance { back, delta }),
        ]
    }

    proptest! {
        /// Against a model that just holds every pending entry's tick: the same values fire at
        /// each advance, `len` and `contains` agree, and `next_due` never overshoots.
        #[test]
        fn behaves_like_the_model(
            slots_log in 0u32..8,
            ops in prop::collection::vec(op(), 1..200),
        ) {
            let slots = 1usize << slots_log;
            let mut wheel = TimerWheel::new(slots);
            let mut model: BTreeMap<u64, u64> = BTreeMap::new();
            let mut keys = Vec::new();
            for op in ops {
                let current = wheel.current();
                let tick = |back, delta| {
                    if back { current.saturating_sub(delta) } else { current.saturating_add(delta) }
                };
                match op {
                    Op::Insert { back, delta } => {
                        let (at, id) = (tick(back, delta), keys.len() as u64);
                        keys.push(wheel.insert(at, id));
                        model.insert(id, at);
                    }
                    Op::Cancel(i) if !keys.is_empty() => {
                        let id = i % keys.len();
                        let expected = model.remove(&(id as u64)).map(|_| id as u64);
                        prop_assert_eq!(wheel.cancel(keys[id]), expected);
                    }
                    Op::Cancel(_) => {}
                    Op::Advance { back, delta } => {
                        let now = tick(back, delta);
                        let due = wheel.next_due();
                        wheel.visited = 0;
                        let fired = step(&mut wheel, now);
                        prop_assert!(wheel.visited <= slots);
                        let expected: Vec<u64> = if now > current {
                            model.iter().filter(|&(_, &at)| at <= now).map(|(&id, _)| id).collect()
                        } else {
                            vec![]
                        };
                        model.retain(|_, at| *at > now || now <= current);
                        prop_assert_eq!(&fired, &expected);
                        if !fired.is_empty() {
                            prop_assert!(now >= due.unwrap(), "fired at {} before {:?}", now, due);
                        }
                    }
                }
                // Every pending entry fires at its tick, or at the next tick if overdue. The bound
                // is exact while they all lie within one rotation.
                let current = wheel.current();
                let effective = model.values().map(|&at| at.max(current.saturating_add(1)));
                let (earliest, latest) = (effective.clone().min(), effective.max());
                match (wheel.next_due(), earliest) {
                    (Some(due), Some(earliest)) => {
                        prop_assert!(due <= earliest && due > current.min(u64::MAX - 1));
                        if latest.unwrap() - current <= slots as u64 {
                            prop_assert_eq!(due, earliest);
                        }
                    }
                    (due, earliest) => prop_assert_eq!(due, earliest),
                }
                prop_assert_eq!(wheel.len(), model.len());
                for (id, &key) in keys.iter().enumerate() {
                    let pending = model.contains_key(&(id as u64));
                    prop_assert_eq!(wheel.contains(key), pending);
                    prop_assert_eq!(wheel.get_mut(key).copied(), pending.then_some(id as u64));
                }
            }
        }
    }
}
