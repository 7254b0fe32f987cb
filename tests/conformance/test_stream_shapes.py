"""The official SDK's stream accumulation over every shape of upstream stream.

The mock upstream is told how to misbehave with ``x-mock-fault`` (``fragmented``,
``big_event``, ``no_message_stop``) and how fast to go with
``x-mock-event-interval-ms``; the gateway in between coalesces events into
fewer writes. Whatever the shape, the SDK must accumulate exactly the text a
non-streaming request returns, or raise the in-band error.
"""

from __future__ import annotations

import time

from test_sdk import MAX_TOKENS, MESSAGES, MODEL, create, stream_until_error, text_of

BIG_EVENT_TEXT = 20_000  # src/mock/answers.rs


def stream_text(client, headers, **overrides):
    params = dict(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES)
    params.update(overrides)
    with client.messages.stream(extra_headers=headers, **params) as stream:
        return stream.get_final_text(), stream.get_final_message()


def test_fragmented_upstream_stream(client):
    reference = create(client)
    text, final = stream_text(client, {"x-mock-fault": "fragmented"})
    assert text == text_of(reference)
    assert final.stop_reason == reference.stop_reason
    assert final.usage.output_tokens == reference.usage.output_tokens


def test_event_larger_than_the_relay_buffer(client):
    reference = text_of(create(client))
    text, _ = stream_text(client, {"x-mock-fault": "big_event"})
    assert text == reference + " " + "x" * BIG_EVENT_TEXT


def test_fast_long_stream(client):
    words = " ".join(f"word{i}" for i in range(240))
    messages = [{"role": "user", "content": words}]
    reference = text_of(create(client, messages=messages, max_tokens=512))
    text, _ = stream_text(client, {}, messages=messages, max_tokens=512)
    assert text == reference
    assert text.endswith("word239")


def test_slow_stream_is_streamed_not_held(client):
    """Events 40 ms apart must reach the SDK spread out over the answer, not all at its end."""
    reference = text_of(create(client))
    arrivals = []
    with client.messages.stream(
        model=MODEL,
        max_tokens=MAX_TOKENS,
        messages=MESSAGES,
        extra_headers={"x-mock-event-interval-ms": "40"},
    ) as stream:
        for chunk in stream.text_stream:
            arrivals.append((time.monotonic(), chunk))
        text = stream.get_final_text()
    assert text == reference
    assert "".join(c for _, c in arrivals) == reference
    # With ~15 deltas 40 ms apart and a 120 ms flush interval, the text comes in several
    # writes spread over more than half a second; a gateway that held the stream would
    # deliver it all at once.
    span = arrivals[-1][0] - arrivals[0][0]
    assert span > 0.3, f"all text arrived within {span:.3f} s"


def test_stream_without_message_stop_raises(client):
    err, received = stream_until_error(client, "no_message_stop")
    assert err.status_code == 200
    assert err.body["type"] == "error"
    assert err.body["error"]["type"] == "api_error"
    assert "message_stop" in err.body["error"]["message"]
    # Every event the upstream did send arrived before the error.
    assert received[0] == "message_start"
    assert "message_delta" in received
    assert "message_stop" not in received
