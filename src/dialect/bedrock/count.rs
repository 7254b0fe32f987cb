//! Bedrock's `CountTokens` answer (`{"inputTokens": N}`) as a count_tokens one, and its refusal
//! for a model it does not count for, which the gateway answers with its own estimate.

use serde::Deserialize;

use crate::dialect::Dialect;

/// Whether an answer with `status` to a count from an upstream of `dialect` means "not counted
/// here": Bedrock counts for some models only and refuses the others (a `ValidationException`,
/// or a model it does not know for counting). A body the gateway's own count refuses gets the
/// client's 400 there, so nothing the client got wrong is hidden by it.
pub fn counts_elsewhere(dialect: Dialect, status: u16) -> bool {
    dialect == Dialect::Bedrock && matches!(status, 400 | 404)
}

use crate::dialect::events::push_u64;
use crate::dialect::whole::{Whole, WholeStage};

/// The translation stage of a `CountTokens` answer.
pub type CountDecoder = WholeStage<Count>;

pub struct Count;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Counted {
    input_tokens: u64,
}

impl Whole for Count {
    fn translate(&self, body: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let count: Counted = serde_json::from_slice(body)
            .map_err(|e| format!("sent a token count that cannot be read ({e})"))?;
        out.extend_from_slice(b"{\"input_tokens\":");
        push_u64(out, count.input_tokens);
        out.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::translate::Translate;

    #[test]
    fn counts_are_renamed() {
        let mut stage = CountDecoder::of(Count);
        let mut out = Vec::new();
        stage.feed(br#"{"inputTok"#, &mut out).unwrap();
        stage.feed(br#"ens": 42}"#, &mut out).unwrap();
        stage.finish(&mut out).unwrap();
        assert_eq!(out, br#"{"input_tokens":42}"#);
        let mut bad = CountDecoder::of(Count);
        bad.feed(b"{}", &mut out).unwrap();
        assert!(bad.finish(&mut out).unwrap_err().contains("token count"));
    }
}
