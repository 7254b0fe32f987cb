"""The official Anthropic Python SDK through ringgate to upstreams of other dialects.

The same ``mock-upstream`` process answers as an OpenAI-compatible server (at ``/v1``) and as
the Gemini API; a gateway speaks each dialect to it. Everything the SDK does here it does
against the Anthropic API: plain and streamed answers, thinking, a tool-use round trip (the
mock checks what the translated request carries: every ``tool`` message answers a call of
the assistant turn before it, every ``functionResponse`` is named after its function), stop
reasons, usage, typed exceptions for upstream errors, in-band errors, and failover from an
OpenAI upstream's 429 to another upstream.
"""

from __future__ import annotations

import hashlib
import signal
import time

import anthropic
import pytest

from conftest import (
    CLIENT_KEY,
    FAULT_COOLDOWN_S,
    LISTEN_RE_MOCK,
    UPSTREAM_SECRET,
    Proc,
    _binary,
    assert_error_shape,
    gateway_config,
    json_body,
    make_client,
    raw_request,
    start_gateway,
)

MODEL = "claude-haiku-4-5"
PROMPT = "Tell me about the weather in Paris today please"
MESSAGES = [{"role": "user", "content": PROMPT}]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["query"],
    },
}
DIALECTS = ["openai", "gemini"]


def dialect_config(dialect: str, base_url: str) -> str:
    """A gateway whose one upstream speaks `dialect` to the mock, naming the model its way."""
    url = f"{base_url}/v1" if dialect == "openai" else base_url
    config = gateway_config(kind=dialect, base_url=url)
    return config + f'\n[upstreams.model_names]\n"{MODEL}" = "mock-{dialect}-model"\n'


@pytest.fixture(scope="module", params=DIALECTS)
def dialect(request, mock_upstream, log_dir):
    config = dialect_config(request.param, mock_upstream.base_url)
    gw, proc = start_gateway(f"{request.param}-gateway", config, log_dir, rust_log="debug")
    try:
        yield request.param, gw
    finally:
        proc.signal_and_wait(signal.SIGTERM)


@pytest.fixture
def client(dialect):
    c = make_client(dialect[1])
    try:
        yield c
    finally:
        c.close()
        # The gateways' cooldowns are 1 ms: waited out after each injected fault.
        time.sleep(FAULT_COOLDOWN_S)


def create(client, **overrides):
    params = dict(model=MODEL, max_tokens=256, messages=MESSAGES)
    params.update(overrides)
    return client.messages.create(**params)


def the_text(message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def test_a_plain_answer(client, dialect):
    name, _ = dialect
    msg = create(client)
    assert msg.type == "message" and msg.role == "assistant"
    # The model as the client named it, though the upstream was asked for its own name.
    assert msg.model == MODEL
    text = the_text(msg)
    assert text.startswith(f"Hello from the ringgate mock upstream (mock-{name}-model). You said:"), text
    assert text.endswith(PROMPT), text
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert msg.id.startswith("msg_")


def test_a_streamed_answer_is_the_plain_one(client):
    whole = the_text(create(client))
    with client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 3, "delivered in pieces"
    assert "".join(pieces) == whole == the_text(final)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_the_raw_stream_is_in_the_anthropic_grammar(client):
    events = [e.type for e in create(client, stream=True)]
    assert events[0] == "message_start"
    assert events[-2:] == ["message_delta", "message_stop"]
    assert events.count("content_block_start") == events.count("content_block_stop") >= 1


@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_cuts_the_answer(client, stream):
    if stream:
        with client.messages.stream(model=MODEL, max_tokens=3, messages=MESSAGES) as s:
            msg = s.get_final_message()
    else:
        msg = create(client, max_tokens=3)
    assert msg.stop_reason == "max_tokens"
    assert len(the_text(msg).split()) == 3


def test_a_stop_sequence_cuts_the_answer(client, dialect):
    msg = create(client, stop_sequences=["Paris"])
    assert "Paris" not in the_text(msg)
    if dialect[0] == "openai":
        # The mock answers as vLLM does, naming the stop string: the client learns which.
        assert (msg.stop_reason, msg.stop_sequence) == ("stop_sequence", "Paris")
    else:
        # Gemini does not say which sequence stopped it.
        assert msg.stop_reason == "end_turn"


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_comes_first(client, dialect, stream):
    params = dict(
        model=MODEL, max_tokens=256, messages=MESSAGES,
        thinking={"type": "enabled", "budget_tokens": 2048},
    )
    if stream:
        with client.messages.stream(**params) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**params)
    kinds = [b.type for b in msg.content]
    assert kinds[0] == "thinking" and "text" in kinds, kinds
    assert msg.content[0].thinking.strip()
    if dialect[0] == "gemini":
        assert msg.content[0].signature, "Gemini's thought signature, to send back"


QUIRKS = {
    "openai": ["", "interleave", "late-id", "bytewise-args", "noise,combined-finish", "no-done,crlf,comments"],
    "gemini": ["", "crlf"],
}


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_use_round_trip(client, dialect, stream):
    # Streams go through every chunking the mock knows for the dialect.
    for quirk in QUIRKS[dialect[0]] if stream else [""]:
        round_trip(client, stream, quirk)


def round_trip(client, stream: bool, quirk: str):
    headers = {"x-mock-tool-calls": "2"}
    if quirk:
        headers["x-mock-quirks"] = quirk
    params = dict(
        model=MODEL, max_tokens=256, messages=MESSAGES, tools=[WEATHER],
        thinking={"type": "enabled", "budget_tokens": 2048}, extra_headers=headers,
    )
    if stream:
        with client.messages.stream(**params) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(**params)
    assert first.stop_reason == "tool_use", quirk
    calls = [b for b in first.content if b.type == "tool_use"]
    assert [c.name for c in calls] == ["get_weather", "get_weather"], quirk
    assert [c.input["n"] for c in calls] == [0, 1], quirk
    assert all(c.input["query"] for c in calls), quirk
    assert len({c.id for c in calls}) == 2, quirk

    # The answers go back with the whole assistant turn (thinking and its signature included):
    # the mock refuses a result that answers no call, or calls left unanswered.
    results = [
        {"type": "tool_result", "tool_use_id": c.id, "content": f"Sunny, {20 + i} C"}
        for i, c in enumerate(calls)
    ]
    history = MESSAGES + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": results},
    ]
    second = client.messages.create(
        model=MODEL, max_tokens=256, messages=history, tools=[WEATHER]
    )
    text = the_text(second)
    assert "returned" in text and "Sunny, 20 C" in text and "Sunny, 21 C" in text, (quirk, text)
    assert second.stop_reason == "end_turn", quirk


def test_a_result_that_answers_no_call_is_the_upstreams_400(client, dialect):
    history = MESSAGES + [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_x", "name": "get_weather", "input": {"query": "x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_other", "content": "?"}]},
    ]
    with pytest.raises(anthropic.BadRequestError) as e:
        create(client, messages=history, tools=[WEATHER])
    assert_error_shape(e.value.body, "invalid_request_error")


def test_a_refusal(client, dialect):
    finish = "content_filter" if dialect[0] == "openai" else "SAFETY"
    for stream in (False, True):
        if stream:
            with client.messages.stream(
                model=MODEL, max_tokens=64, messages=MESSAGES, extra_headers={"x-mock-finish": finish}
            ) as s:
                msg = s.get_final_message()
        else:
            msg = create(client, extra_headers={"x-mock-finish": finish})
        assert msg.stop_reason == "refusal"


def test_count_tokens(client, dialect):
    n = client.messages.count_tokens(model=MODEL, messages=MESSAGES, tools=[WEATHER])
    assert n.input_tokens > 10


FAULTS = [
    # fault, status, exception, error type (by dialect where they differ)
    ("rate_limit", 429, anthropic.RateLimitError, {"openai": "rate_limit_error", "gemini": "rate_limit_error"}),
    ("server_error", 500, anthropic.InternalServerError, {"openai": "api_error", "gemini": "api_error"}),
    ("overloaded", 503, anthropic.InternalServerError, {"openai": "api_error", "gemini": "overloaded_error"}),
]


@pytest.mark.parametrize("fault,status,cls,types", FAULTS)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_raise_the_sdks_typed_exceptions(client, dialect, fault, status, cls, types, stream):
    with pytest.raises(cls) as e:
        if stream:
            with client.messages.stream(
                model=MODEL, max_tokens=64, messages=MESSAGES, extra_headers={"x-mock-fault": fault}
            ) as s:
                s.get_final_message()
        else:
            create(client, extra_headers={"x-mock-fault": fault})
    assert e.value.status_code == status
    assert_error_shape(e.value.body, types[dialect[0]])
    if fault == "rate_limit":
        assert e.value.response.headers.get("retry-after") == "1"


@pytest.mark.parametrize("fault", ["auth", "permission"])
def test_a_refused_gateway_key_is_a_502_that_says_so(client, fault):
    with pytest.raises(anthropic.APIStatusError) as e:
        create(client, extra_headers={"x-mock-fault": fault})
    assert e.value.status_code == 502
    assert "refused the gateway's credential" in e.value.body["error"]["message"]


@pytest.mark.parametrize(
    "fault,words",
    [
        ("error_in_stream", "error in stream"),
        ("garbage", "not JSON"),
        ("drop_mid_stream", "closed the connection"),
        ("no_message_stop", "ended the stream before its finish"),
    ],
)
def test_a_stream_that_fails_midway_raises_in_band(client, fault, words):
    received = []
    with pytest.raises(anthropic.APIStatusError) as e:
        with client.messages.stream(
            model=MODEL, max_tokens=256, messages=MESSAGES, extra_headers={"x-mock-fault": fault}
        ) as s:
            for text in s.text_stream:
                received.append(text)
    assert received, "what came before the failure reached the client"
    assert words in str(e.value), str(e.value)


def test_nothing_of_the_keys_reaches_the_log(dialect, client):
    create(client)
    log = dialect[1].output()
    assert UPSTREAM_SECRET not in log and CLIENT_KEY not in log


# --------------------------------------------------------------------------
# failover from an OpenAI upstream's 429 to an Anthropic one

LIMITED_KEY = "openai-key-always-limited"


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@pytest.fixture(scope="module")
def limited_openai(log_dir):
    proc = Proc(
        "mock-upstream-openai-limited",
        [
            _binary("MOCK_UPSTREAM_BIN", "mock-upstream"),
            "--listen", "127.0.0.1:0",
            "--event-interval-ms", "0",
            "--dialect", "openai",
            "--log-requests",
            "--fault-for-key", f"{LIMITED_KEY}=rate_limit",
        ],
        log_dir,
    )
    try:
        m = proc.wait_for("stdout", LISTEN_RE_MOCK)
        yield proc, int(m.group(1))
    finally:
        proc.signal_and_wait(signal.SIGTERM)


def test_an_openai_429_fails_over_to_an_anthropic_upstream(limited_openai, mock_upstream, log_dir):
    upstream, port = limited_openai
    config = f"""
[server]
listen = "127.0.0.1:0"
workers = 1

[[upstreams]]
name = "openai-first"
kind = "openai"
base_url = "http://127.0.0.1:{port}/v1"
priority = 1
[[upstreams.credentials]]
name = "limited"
api_key = "{LIMITED_KEY}"

[[upstreams]]
name = "anthropic-second"
kind = "anthropic"
base_url = "{mock_upstream.base_url}"
[[upstreams.credentials]]
name = "healthy"
api_key = "{UPSTREAM_SECRET}"
"""
    gw, proc = start_gateway("dialect-failover-gateway", config, log_dir)
    try:
        client = make_client(gw)
        for stream in (False, True, False):
            if stream:
                with client.messages.stream(model=MODEL, max_tokens=32, messages=MESSAGES) as s:
                    msg = s.get_final_message()
            else:
                msg = create(client, max_tokens=32)
            assert msg.stop_reason in ("end_turn", "max_tokens")
            assert the_text(msg).startswith("Hello from the ringgate mock upstream")
        # The 429 (retry-after: 1 s) cooled the OpenAI credential: one attempt there, the rest
        # straight to the Anthropic upstream.
        stderr = proc.read_stderr()
        assert 'rate-limited credential "limited"' in stderr, stderr
        tried = upstream.read_stderr().count(f"key={fingerprint(LIMITED_KEY)} status=429")
        assert tried == 1, upstream.read_stderr()
    finally:
        proc.signal_and_wait(signal.SIGTERM)


def test_the_built_in_mock_speaks_each_dialect(log_dir):
    for name in DIALECTS:
        config = gateway_config(kind="mock", api_key=None, workers=1)
        config += f'[upstreams.mock]\ndialect = "{name}"\nevent_interval_ms = 0\n'
        gw, proc = start_gateway(f"builtin-{name}-gateway", config, log_dir)
        try:
            client = make_client(gw)
            with client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as s:
                msg = s.get_final_message()
            assert the_text(msg).startswith(f"Hello from the ringgate mock upstream ({MODEL})")
            status, _, body = raw_request(gw.port, "POST", "/v1/messages/count_tokens",
                                          body=b'{"model":"m","messages":[{"role":"user","content":"hi"}]}')
            assert status == 200 and json_body(body)["input_tokens"] > 0
        finally:
            proc.signal_and_wait(signal.SIGTERM)
