"""The mock upstream's OpenAI dialect, read by the official ``openai`` Python SDK.

The mock is the gateway's counterpart for OpenAI-compatible upstreams, so its
wire format must be what such servers send. The SDK is an independent reader
of that format: it parses every answer and chunk into typed models, and its
``chat.completions.stream`` helper accumulates tool-call fragments by index
and fails on chunks it cannot place. Each awkward chunking the mock can be
asked for (``x-mock-quirks``) must still add up, in the SDK's hands, to the
answer a plain stream gives.

Runs against ``mock-upstream --dialect openai`` alone (no gateway), which
requires the SDK's ``Authorization: Bearer`` key.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Iterator

import openai
import pytest

from conftest import LISTEN_RE_MOCK, UPSTREAM_SECRET, Proc, _binary

# The client must talk to exactly the mock this module starts.
for _name in list(os.environ):
    if _name.startswith("OPENAI_"):
        del os.environ[_name]

MODEL = "gpt-mock-1"
USER_TEXT = "please look up the weather in Lisbon today"
MESSAGES = [{"role": "user", "content": USER_TEXT}]
ECHO = f"Hello from the ringgate mock upstream ({MODEL}). You said: {USER_TEXT}"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} something",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "n": {"type": "integer"}},
            },
        },
    }
    for name in ("search", "fetch")
]
# The first ten words of USER_TEXT: what each mock tool call asks.
QUERY = " ".join(USER_TEXT.split()[:10])


@pytest.fixture(scope="module")
def openai_mock(log_dir) -> Iterator[int]:
    proc = Proc(
        "mock-upstream-openai",
        [
            _binary("MOCK_UPSTREAM_BIN", "mock-upstream"),
            "--listen",
            "127.0.0.1:0",
            "--dialect",
            "openai",
            "--api-key",
            UPSTREAM_SECRET,
        ],
        log_dir,
        env={"RUST_LOG": "info"},
    )
    try:
        m = proc.wait_for("stdout", LISTEN_RE_MOCK)
        yield int(m.group(1))
    finally:
        proc.signal_and_wait(signal.SIGTERM)


@pytest.fixture
def oai(openai_mock) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(
        base_url=f"http://127.0.0.1:{openai_mock}/v1",
        api_key=UPSTREAM_SECRET,
        max_retries=0,
        timeout=15.0,
    )
    try:
        yield c
    finally:
        c.close()


def stream_helper(client: openai.OpenAI):
    """The SDK's accumulating stream helper (under ``beta`` in older 1.x releases)."""
    completions = client.chat.completions
    if hasattr(completions, "stream"):
        return completions.stream
    return client.beta.chat.completions.stream


def quirks(names: str) -> dict:
    return {"x-mock-quirks": names} if names else {}


# --------------------------------------------------------------------------
# text


def test_non_stream_text(oai):
    c = oai.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert isinstance(c, openai.types.chat.ChatCompletion)
    assert c.object == "chat.completion"
    assert c.id.startswith("chatcmpl-")
    assert c.model == MODEL
    assert len(c.choices) == 1
    choice = c.choices[0]
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == ECHO
    assert choice.message.tool_calls is None
    assert c.usage.completion_tokens == len(ECHO.split())
    assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens
    assert c.usage.prompt_tokens_details.cached_tokens == 0


def test_streamed_text_is_typed_chunks_of_the_same_text(oai):
    chunks = list(oai.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == ECHO
    # One word per delta, and the finish in the last chunk (no usage was asked for).
    words = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert len(words) == len(ECHO.split())
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_max_tokens_is_a_length_stop(oai):
    c = oai.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=3)
    assert c.choices[0].message.content == "Hello from the"
    assert c.choices[0].finish_reason == "length"
    assert c.usage.completion_tokens == 3


def test_a_stop_sequence_carries_vllms_stop_reason(oai):
    c = oai.chat.completions.create(model=MODEL, messages=MESSAGES, stop=["weather"])
    assert c.choices[0].finish_reason == "stop"
    assert c.choices[0].message.content == ECHO[: ECHO.index("weather")]
    # Not in the OpenAI spec: the SDK keeps it as an extra field.
    assert c.choices[0].model_extra.get("stop_reason") == "weather"


@pytest.mark.parametrize("names,field", [("", "reasoning_content"), ("reasoning-field", "reasoning")])
def test_reasoning_comes_first(oai, names, field):
    chunks = list(
        oai.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, reasoning_effort="low", extra_headers=quirks(names)
        )
    )
    reasoning = "".join((c.choices[0].delta.model_extra or {}).get(field) or "" for c in chunks if c.choices)
    assert reasoning == "Thinking about: " + " ".join(USER_TEXT.split()[:8])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ECHO


def test_usage_chunk_with_stream_options(oai):
    chunks = list(
        oai.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.completion_tokens == len(ECHO.split())
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert last.usage.prompt_tokens_details.cached_tokens == 0
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize("names", ["crlf", "no-done", "combined-finish", "usage-in-finish", "noise"])
def test_text_quirks_the_sdk_reads_as_the_plain_stream(oai, names):
    with stream_helper(oai)(
        model=MODEL,
        messages=MESSAGES,
        stream_options={"include_usage": True},
        extra_headers=quirks(names),
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == ECHO
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None and final.usage.completion_tokens == len(ECHO.split())


# --------------------------------------------------------------------------
# tool calls


def assert_calls(message, n: int) -> None:
    calls = message.tool_calls
    assert calls is not None and len(calls) == n, message
    assert len({c.id for c in calls}) == n
    for i, call in enumerate(calls):
        assert call.type == "function"
        assert call.id.startswith("call_")
        assert call.function.name == ("search", "fetch")[i % 2]
        assert json.loads(call.function.arguments) == {"query": QUERY, "n": i}


def test_non_stream_parallel_tool_calls(oai):
    c = oai.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=TOOLS, extra_headers={"x-mock-tool-calls": "3"}
    )
    assert c.choices[0].finish_reason == "tool_calls"
    assert c.choices[0].message.content is None
    assert_calls(c.choices[0].message, 3)


@pytest.mark.parametrize(
    "names",
    ["", "interleave", "late-id", "bytewise-args", "noise", "interleave,late-id,bytewise-args,noise"],
)
def test_streamed_parallel_tool_calls_accumulate(oai, names):
    with stream_helper(oai)(
        model=MODEL,
        messages=MESSAGES,
        tools=TOOLS,
        extra_headers={"x-mock-tool-calls": "4", **quirks(names)},
    ) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    assert_calls(final.choices[0].message, 4)
    if "interleave" in names:
        # The helper's `arguments.done` event fires when the index changes: it assumes one
        # call after the other, as OpenAI streams them, so interleaved calls get theirs early,
        # with partial arguments. The accumulated completion above is right regardless.
        return
    # One call after the other: the helper saw each call's arguments end, complete.
    assert sorted(e.index for e in done) == [0, 1, 2, 3]
    for e in done:
        assert json.loads(e.arguments) == {"query": QUERY, "n": e.index}


def test_interleave_really_interleaves(oai):
    """What the helper put back together came apart: fragments alternate between calls."""
    chunks = list(
        oai.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            tools=TOOLS,
            stream=True,
            extra_headers={"x-mock-tool-calls": "2", "x-mock-quirks": "interleave"},
        )
    )
    order = [tc.index for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert order[:4] == [0, 1, 0, 1]
    assert sum(1 for a, b in zip(order, order[1:]) if a != b) >= 4


def test_a_tool_round_trip_echoes_the_result(oai):
    first = oai.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=TOOLS, extra_headers={"x-mock-tool-calls": "2"}
    )
    message = first.choices[0].message
    history = MESSAGES + [message.model_dump(exclude_none=True)]
    history += [
        {"role": "tool", "tool_call_id": call.id, "content": f"result {i}"}
        for i, call in enumerate(message.tool_calls)
    ]
    second = oai.chat.completions.create(model=MODEL, messages=history, tools=TOOLS)
    assert second.choices[0].message.content == "Tool search returned: result 0 Tool fetch returned: result 1"
    assert second.choices[0].finish_reason == "stop"


def test_an_unanswered_call_is_a_bad_request(oai):
    first = oai.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=TOOLS, extra_headers={"x-mock-tool-calls": "2"}
    )
    message = first.choices[0].message
    history = MESSAGES + [message.model_dump(exclude_none=True)]
    history += [{"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "only one"}]
    history += [{"role": "user", "content": "and?"}]
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(model=MODEL, messages=history)
    assert ei.value.status_code == 400
    assert "must be followed by tool messages responding to each 'tool_call_id'" in ei.value.message
    assert message.tool_calls[1].id in ei.value.message


# --------------------------------------------------------------------------
# errors and refusals


@pytest.mark.parametrize(
    "fault,cls,status",
    [
        ("rate_limit", openai.RateLimitError, 429),
        ("auth", openai.AuthenticationError, 401),
        ("permission", openai.PermissionDeniedError, 403),
        ("server_error", openai.InternalServerError, 500),
        ("overloaded", openai.InternalServerError, 503),
    ],
)
def test_faults_raise_the_sdks_typed_errors(oai, fault, cls, status):
    with pytest.raises(openai.APIStatusError) as ei:
        oai.chat.completions.create(model=MODEL, messages=MESSAGES, extra_headers={"x-mock-fault": fault})
    err = ei.value
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    assert err.status_code == status
    assert isinstance(err.body, dict) and err.body["message"].startswith("mock: ")
    assert err.type is not None
    if fault == "rate_limit":
        assert err.code == "rate_limit_exceeded"
        assert err.response.headers.get("retry-after") == "1"


def test_a_wrong_key_is_an_authentication_error(openai_mock):
    c = openai.OpenAI(base_url=f"http://127.0.0.1:{openai_mock}/v1", api_key="wrong", max_retries=0)
    try:
        with pytest.raises(openai.AuthenticationError) as ei:
            c.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert ei.value.code == "invalid_api_key"
    finally:
        c.close()


def test_a_forced_content_filter_finish(oai):
    c = oai.chat.completions.create(
        model=MODEL, messages=MESSAGES, extra_headers={"x-mock-finish": "content_filter"}
    )
    assert c.choices[0].finish_reason == "content_filter"


def test_an_error_inside_the_stream_is_raised(oai):
    with pytest.raises(openai.APIError) as ei:
        for _ in oai.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, extra_headers={"x-mock-fault": "error_in_stream"}
        ):
            pass
    assert "mock: error in stream" in str(ei.value)
