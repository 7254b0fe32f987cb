//! The translation stage for answers read whole: a non-stream message, a token count. The body
//! is kept (up to [`MAX_HELD`]) until it ends, then translated at once; past the limit the answer
//! fails rather than memory growing.

use super::MAX_HELD;
use crate::stream::translate::Translate;

/// What a dialect makes of a whole answer.
pub trait Whole {
    /// Writes what the client gets of `body` to `out`, or says why it cannot.
    fn translate(&self, body: &[u8], out: &mut Vec<u8>) -> Result<(), String>;
}

pub struct WholeStage<W> {
    body: Vec<u8>,
    whole: W,
}

impl<W> WholeStage<W> {
    pub fn of(whole: W) -> WholeStage<W> {
        WholeStage {
            body: Vec::new(),
            whole,
        }
    }
}

impl<W: Whole> Translate for WholeStage<W> {
    fn feed(&mut self, input: &[u8], _out: &mut Vec<u8>) -> Result<(), String> {
        if self.body.len() + input.len() > MAX_HELD {
            return Err(format!("sent an answer larger than {MAX_HELD} bytes"));
        }
        self.body.extend_from_slice(input);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        self.whole.translate(&self.body, out)
    }
}
