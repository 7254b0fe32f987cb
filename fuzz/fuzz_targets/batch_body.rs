//! The Message Batch body rewriter (`objects::batch_body::BatchBody`), fed the body in the
//! recipe's pieces. Byte 0 picks the rename: keep every model, or append `-x` to each.
//! Asserts: the output, the models seen and the outcome are the same however the body is
//! split; with the identity rename the output is exactly the input fed so far (all of it when
//! the body is accepted); what is held back (a request's model in progress) stays under
//! `MAX_MODEL` plus a piece, whatever the body's size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::objects::batch_body::{BatchBody, BatchError, MAX_MODEL};
use ringgate_fuzz::{pieces, recipe};

fn run(parts: &[&[u8]], rename_all: bool) -> (Vec<u8>, Vec<String>, Result<(), BatchError>) {
    let mut body = BatchBody::new();
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let mut fed = 0;
    let mut result = Ok(());
    {
        let mut rename = |m: &str| {
            seen.push(m.to_string());
            Ok(rename_all.then(|| format!("{m}-x")))
        };
        for p in parts {
            result = body.feed(p, &mut out, &mut rename);
            fed += p.len();
            if result.is_err() {
                break;
            }
            if !rename_all {
                // Everything fed has gone out, but for a model in progress.
                assert!(
                    fed - out.len() <= MAX_MODEL + 2,
                    "{} bytes held",
                    fed - out.len()
                );
            }
        }
    }
    let result = result.and_then(|()| body.finish());
    assert_eq!(body.models_seen(), seen.len());
    (out, seen, result)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let rename_all = mode & 1 == 1;
    let (sizes, input) = recipe(rest);
    let whole = run(&[input], rename_all);
    let split = run(&pieces(input, &sizes), rename_all);
    // A failed body's output is dropped by the gateway; only the failure must agree.
    if whole.2.is_ok() || split.2.is_ok() {
        assert_eq!(whole, split);
    } else {
        assert_eq!(whole.2, split.2);
    }
    if !rename_all {
        assert!(input.starts_with(&whole.0));
        if whole.2.is_ok() {
            assert_eq!(whole.0, input);
        }
    }
});
