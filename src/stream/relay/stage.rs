//! The translation stage inside a relay: what it wrote that has not found room in the relay's
//! buffer yet, and its failure, held back until the output before it has been relayed.
//!
//! A stage may write more than the buffer has room for (one upstream chunk can become several
//! events), so its output waits here and goes into the buffer as room is made by the flush
//! policy. It stops taking upstream bytes once it failed; the relay then relays what it wrote
//! before failing, and only then ends the response with the failure, so the client gets every
//! whole event that came before the fault.

use super::{broken, Failure};
use crate::stream::translate::Translate;

/// Output capacity worth keeping between reads; a rare large answer's is let go.
const KEEP: usize = 64 * 1024;

pub(super) struct Stage {
    translate: Box<dyn Translate>,
    out: Vec<u8>,
    /// Bytes of `out` already placed in the buffer.
    placed: usize,
    finished: bool,
    failed: Option<Failure>,
}

impl Stage {
    pub fn new(translate: Box<dyn Translate>) -> Stage {
        Stage {
            translate,
            out: Vec::new(),
            placed: 0,
            finished: false,
            failed: None,
        }
    }

    /// Translates upstream body bytes, unless the stage failed already.
    pub fn feed(&mut self, input: &[u8]) {
        if self.failed.is_none() && !input.is_empty() {
            if let Err(e) = self.translate.feed(input, &mut self.out) {
                self.failed = Some(broken(&e));
            }
        }
    }

    /// The upstream body ended: the stage writes the rest (once).
    pub fn finish(&mut self) {
        if self.failed.is_none() && !self.finished {
            self.finished = true;
            if let Err(e) = self.translate.finish(&mut self.out) {
                self.failed = Some(broken(&e));
            }
        }
    }

    /// Fails the stage from outside (the upstream's framing broke), unless it failed already.
    pub fn fail(&mut self, failure: Failure) {
        self.failed.get_or_insert(failure);
    }

    /// It wrote its end and all of it is placed.
    pub fn is_drained(&self) -> bool {
        self.finished && self.failed.is_none() && !self.has_output()
    }

    /// Output is waiting for room in the buffer.
    pub fn has_output(&self) -> bool {
        self.placed < self.out.len()
    }

    /// Copies as much waiting output as fits into `room`; returns how much.
    pub fn place(&mut self, room: &mut [u8]) -> usize {
        let n = room.len().min(self.out.len() - self.placed);
        room[..n].copy_from_slice(&self.out[self.placed..self.placed + n]);
        self.placed += n;
        if self.placed == self.out.len() {
            self.out.clear();
            self.placed = 0;
            if self.out.capacity() > KEEP {
                self.out = Vec::new();
            }
        }
        n
    }

    /// The failure, once the output before it is all placed.
    pub fn failure(&mut self) -> Option<Failure> {
        if self.has_output() {
            return None;
        }
        self.failed.take()
    }
}
