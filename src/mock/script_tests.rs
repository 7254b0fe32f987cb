//! Tests of the abstract answer: which rule answers which conversation, and what it says.

use super::*;
use crate::mock::shape::{StreamShape, PLACEHOLDER, TAG_BYTES};

fn ask(user: &str) -> Ask {
    Ask {
        model: "m-1".into(),
        last_user_text: user.into(),
        input_tokens: 5,
        ..Ask::default()
    }
}

fn tools(n: usize) -> Directives {
    Directives {
        tool_calls: Some(n),
        ..Directives::default()
    }
}

#[test]
fn the_echo_is_the_anthropic_mocks() {
    let s = derive(&ask("hi there"), &Directives::default());
    assert_eq!(
        s.text(),
        "Hello from the ringgate mock upstream (m-1). You said: hi there"
    );
    assert_eq!(s.pieces[..3], ["Hello", " from", " the"]);
    assert_eq!(s.pieces.last().unwrap(), " there");
    assert_eq!(s.stop, Stop::End);
    assert_eq!((s.input_tokens, s.output_tokens), (5, 11));
    assert!(s.reasoning.is_empty() && s.calls.is_empty() && !s.stamped);
}

#[test]
fn max_tokens_cuts_the_words() {
    let mut a = ask("one two three");
    a.max_tokens = Some(4);
    let s = derive(&a, &Directives::default());
    assert_eq!(s.text(), "Hello from the ringgate");
    assert_eq!((s.stop.clone(), s.output_tokens), (Stop::MaxTokens, 4));
    // Exactly enough is no cut.
    a.max_tokens = Some(12);
    assert_eq!(derive(&a, &Directives::default()).stop, Stop::End);
}

#[test]
fn a_stop_sequence_cuts_the_text_where_it_first_appears() {
    let mut a = ask("alpha STOP beta END gamma");
    a.stop_sequences = vec!["END".into(), "".into(), "STOP".into()];
    let s = derive(&a, &Directives::default());
    assert_eq!(s.stop, Stop::StopSequence("STOP".into()));
    assert!(s.text().ends_with("You said: alpha "), "{:?}", s.text());
    assert_eq!(s.output_tokens, s.pieces.len() as u64);
    // A sequence past a max_tokens cut is never reached: the cut wins.
    a.max_tokens = Some(3);
    assert_eq!(derive(&a, &Directives::default()).stop, Stop::MaxTokens);
}

#[test]
fn tool_calls_cycle_through_the_tools() {
    let mut a = ask("find me \"quoted\" things in one two three four five six seven eight");
    a.tools = vec!["search".into(), "fetch".into()];
    let s = derive(&a, &tools(3));
    assert_eq!(s.stop, Stop::ToolCalls);
    assert!(s.pieces.is_empty());
    let names: Vec<&str> = s.calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["search", "fetch", "search"]);
    for (i, call) in s.calls.iter().enumerate() {
        let args: serde_json::Value = serde_json::from_str(&call.arguments).unwrap();
        assert_eq!(
            args,
            serde_json::json!({"query": "find me \"quoted\" things in one two three four five", "n": i})
        );
        // The query comes first, as a model writes it.
        assert!(call.arguments.starts_with("{\"query\":"));
    }
    assert_eq!(s.output_tokens, 3);
    // Without tools to call, the header is not obeyed.
    a.tools.clear();
    assert!(derive(&a, &tools(3)).calls.is_empty());
}

#[test]
fn tool_results_are_echoed_before_anything_else() {
    let mut a = ask("earlier question");
    a.tools = vec!["search".into()];
    a.tool_results = vec![
        ToolResult {
            name: "search".into(),
            content: "42".into(),
        },
        ToolResult {
            name: "fetch".into(),
            content: "a page".into(),
        },
    ];
    let s = derive(&a, &tools(2));
    assert_eq!(
        s.text(),
        "Tool search returned: 42 Tool fetch returned: a page"
    );
    assert!(s.calls.is_empty());
    assert_eq!(s.stop, Stop::End);
}

#[test]
fn reasoning_comes_first_when_asked_for() {
    let mut a = ask("what is nine times six please tell me now quickly");
    a.reasoning = true;
    let s = derive(&a, &Directives::default());
    assert_eq!(
        s.reasoning_text(),
        "Thinking about: what is nine times six please tell me"
    );
    assert_eq!(s.reasoning[0], "Thinking");
    assert_eq!(s.output_tokens, (s.reasoning.len() + s.pieces.len()) as u64);
    assert_eq!(s.text_tokens(), s.pieces.len() as u64);
}

#[test]
fn a_forced_finish_overrides_every_stop() {
    let d = Directives {
        finish: Some("content_filter".into()),
        ..tools(2)
    };
    let mut a = ask("hi");
    assert_eq!(derive(&a, &d).stop, Stop::Forced("content_filter".into()));
    a.tools = vec!["t".into()];
    let s = derive(&a, &d);
    assert_eq!(
        (s.calls.len(), s.stop),
        (2, Stop::Forced("content_filter".into()))
    );
}

#[test]
fn pieces_concatenate_to_the_text() {
    for text in [
        "",
        "a",
        "a b",
        "  lead",
        "trail  ",
        "x \n y\tz",
        "ünï cödé wörds",
    ] {
        let p = pieces(text);
        assert_eq!(p.concat(), text);
        // Every piece but the first starts with the space before its word.
        assert!(
            p.iter().skip(1).all(|w| w.starts_with(char::is_whitespace)),
            "{p:?}"
        );
    }
    assert_eq!(pieces("a  b"), ["a", "  b"]);
}

#[test]
fn shapes_replace_the_text() {
    let mut a = ask("hi");
    a.reasoning = true;
    let stream = Shape {
        stream: Some(StreamShape {
            deltas: 3,
            delta_bytes: 30,
        }),
        reply_bytes: Some(10),
    };
    let s = derive(&a, &Directives::default()).shaped(&stream, true);
    assert!(s.stamped && s.reasoning.is_empty());
    assert_eq!(
        (s.pieces.len(), s.output_tokens, s.stop.clone()),
        (3, 3, Stop::End)
    );
    for (i, p) in s.pieces.iter().enumerate() {
        assert_eq!(p.len(), 30);
        assert!(p.starts_with(&format!("#{i:06}@")));
        assert_eq!(&p.as_bytes()[8..8 + 16], PLACEHOLDER);
        assert!(p[TAG_BYTES..].bytes().all(|b| b == b'x'));
    }
    let s = derive(&a, &Directives::default()).shaped(&stream, false);
    assert_eq!(
        (s.text(), s.output_tokens, s.stamped),
        ("x".repeat(10), 3, false)
    );
    // No shape asked for: the answer as it was.
    let plain = derive(&a, &Directives::default());
    assert_eq!(plain.clone().shaped(&Shape::default(), true), plain);
}
