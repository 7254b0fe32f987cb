//! Unit tests of the price table and its arithmetic.

use super::*;

fn usage(input: u64, output: u64, cache_write: u64, cache_read: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_creation_input_tokens: cache_write,
        cache_read_input_tokens: cache_read,
    }
}

#[test]
fn shipped_prices_of_current_models() {
    let t = PriceTable::default();
    let p = |m: &str| *t.price(m).unwrap_or_else(|| panic!("{m} has no price"));
    let sonnet = Price {
        input: 3_000_000,
        output: 15_000_000,
        cache_write: 3_750_000,
        cache_read: 300_000,
    };
    assert_eq!(p("claude-sonnet-4-5-20250929"), sonnet);
    assert_eq!(p("claude-sonnet-4-5"), sonnet);
    assert_eq!(p("claude-sonnet-4-20250514"), sonnet);
    assert_eq!(p("us.anthropic.claude-sonnet-4-5-20250929-v1:0"), sonnet);
    assert_eq!(p("claude-sonnet-4-5@20250929"), sonnet);
    assert_eq!(p("claude-opus-4-5-20251101").output, 25_000_000);
    assert_eq!(p("claude-opus-4-1-20250805").input, 15_000_000);
    assert_eq!(p("claude-opus-4-20250514").cache_write, 18_750_000);
    assert_eq!(p("claude-opus-4-1").cache_read, 1_500_000);
    assert_eq!(
        p("claude-haiku-4-5-20251001"),
        Price {
            input: 1_000_000,
            output: 5_000_000,
            cache_write: 1_250_000,
            cache_read: 100_000
        }
    );
    assert_eq!(
        p("claude-3-5-haiku-20241022"),
        Price {
            input: 800_000,
            output: 4_000_000,
            cache_write: 1_000_000,
            cache_read: 80_000
        }
    );
    assert_eq!(t.price("gpt-4o"), None);
    assert_eq!(t.price("sonnet"), None);
}

#[test]
fn cost_is_exact_and_rounds_up_once() {
    let sonnet = PriceTable::default();
    let m = "claude-sonnet-4-5";
    // 1 000 in × $3/M = $0.003; 500 out × $15/M = $0.0075; 2 000 cache writes × $3.75/M =
    // $0.0075; 10 000 cache reads × $0.30/M = $0.003. Total $0.021.
    assert_eq!(
        sonnet.cost(m, &usage(1_000, 500, 2_000, 10_000)),
        Some(21_000)
    );
    // One input token is $0.000003 = 3 micro-USD; one cache read $0.0000003, rounded up to 1.
    assert_eq!(sonnet.cost(m, &usage(1, 0, 0, 0)), Some(3));
    assert_eq!(sonnet.cost(m, &usage(0, 0, 0, 1)), Some(1));
    // Rounding happens on the sum, not per kind: 3 + 3 reads = 0.9 → 1.
    assert_eq!(sonnet.cost(m, &usage(0, 0, 0, 3)), Some(1));
    assert_eq!(sonnet.cost(m, &usage(0, 0, 0, 4)), Some(2));
    assert_eq!(sonnet.cost(m, &Usage::default()), Some(0));
    // Huge counts do not overflow.
    let max = usage(u64::MAX, u64::MAX, u64::MAX, u64::MAX);
    assert_eq!(sonnet.cost(m, &max), Some(u64::MAX));
}

#[test]
fn operator_entries_win_and_unknown_models_follow_the_policy() {
    let cheap = Price::from_usd(1.0, 2.0, 1.25, 0.1).unwrap();
    let t = PriceTable::with_overrides(
        vec![PriceEntry {
            pattern: "claude-sonnet-4-5*".into(),
            price: cheap,
        }],
        UnknownModel::Price(Price::from_usd(20.0, 100.0, 25.0, 2.0).unwrap()),
    );
    assert_eq!(t.price("claude-sonnet-4-5-20250929"), Some(&cheap));
    assert_eq!(
        t.price("claude-sonnet-4-20250514").unwrap().input,
        3_000_000
    );
    assert_eq!(
        t.cost("my-finetune", &usage(1_000_000, 0, 0, 0)),
        Some(20_000_000)
    );
    assert!(t.check_model("my-finetune").is_ok());

    let refusing = PriceTable::default();
    assert_eq!(refusing.cost("my-finetune", &usage(1, 1, 1, 1)), None);
    let e = refusing.check_model("my-finetune").unwrap_err();
    assert_eq!((e.status, e.kind), (400, ErrorType::InvalidRequest));
    assert!(e.message.contains("\"my-finetune\""), "{}", e.message);
    assert!(refusing.check_model("claude-haiku-4-5").is_ok());

    // Only the operator's entries.
    let only = PriceTable::new(Vec::new(), UnknownModel::Refuse);
    assert_eq!(only.price("claude-sonnet-4-5"), None);
}

#[test]
fn prices_from_configuration() {
    assert_eq!(
        Price::from_usd(0.8, 4.0, 1.0, 0.08),
        Some(Price {
            input: 800_000,
            output: 4_000_000,
            cache_write: 1_000_000,
            cache_read: 80_000
        })
    );
    assert_eq!(Price::from_usd(-1.0, 0.0, 0.0, 0.0), None);
    assert_eq!(Price::from_usd(1.0, f64::INFINITY, 0.0, 0.0), None);
    assert_eq!(Price::from_usd(1.0, 1.0, f64::NAN, 0.0), None);
}
