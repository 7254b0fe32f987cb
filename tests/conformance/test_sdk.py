"""ringgate conformance: the official Anthropic Python SDK against the gateway.

The gateway under test (`gateway` fixture) sits in front of a real
mock-upstream process that only accepts the upstream credential held in the
gateway's config; the SDK clients send a different key. See conftest.py.
"""

from __future__ import annotations

import json
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import anthropic
import pytest

from conftest import (
    CLIENT_KEY,
    FAULT_COOLDOWN_S,
    SMALL_MAX_BODY_BYTES,
    UPSTREAM_SECRET,
    assert_error_shape,
    assert_gateway_error_shape,
    gateway_config,
    json_body,
    make_client,
    parse_sse,
    raw_request,
    start_gateway,
)

MODEL = "claude-haiku-4-5"
MAX_TOKENS = 256
MESSAGES = [{"role": "user", "content": "Hello from the ringgate conformance suite. Say something."}]

SSE_ORDER_SDK = re.compile(
    r"^message_start content_block_start( content_block_delta)+ content_block_stop message_delta message_stop$"
)
SSE_ORDER_WIRE = re.compile(
    r"^message_start content_block_start ping( content_block_delta)+ content_block_stop message_delta message_stop$"
)


def create(client: anthropic.Anthropic, **overrides):
    params = dict(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES)
    params.update(overrides)
    return client.messages.create(**params)


def text_of(message) -> str:
    assert len(message.content) == 1, message
    block = message.content[0]
    assert block.type == "text", message
    return block.text


def request_id_of(response_headers) -> str:
    rid = response_headers.get("request-id")
    assert rid, f"no request-id header in {dict(response_headers)}"
    return rid


# --------------------------------------------------------------------------
# plain HTTP surface


def test_healthz(gateway):
    status, headers, body = raw_request(gateway.port, "GET", "/healthz")
    assert status == 200
    assert body == b"ok"
    request_id_of(headers)


def test_listening_line_reports_workers(gateway):
    # conftest parsed "listening on 127.0.0.1:PORT (N workers, io_uring|epoll)"
    assert gateway.workers == 2
    assert gateway.io_mode in ("io_uring", "epoll")


@pytest.mark.parametrize("path", ["/v1/nope", "/", "/v1/messages/nope", "/v2/messages"])
def test_unknown_path_is_404_not_found_error(gateway, path):
    status, headers, body = raw_request(gateway.port, "GET", path)
    assert status == 404, body
    parsed = assert_gateway_error_shape(json_body(body), "not_found_error")
    assert parsed["request_id"] == request_id_of(headers)


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/v1/messages"),
        ("GET", "/v1/messages/count_tokens"),
        ("POST", "/v1/models"),
        ("DELETE", "/v1/models"),
    ],
)
def test_wrong_method_is_405(gateway, method, path):
    body_bytes = b"{}" if method == "POST" else None
    status, headers, body = raw_request(gateway.port, method, path, body=body_bytes)
    assert status == 405, body
    parsed = json_body(body)
    assert isinstance(parsed, dict) and parsed.get("type") == "error", parsed
    assert isinstance(parsed["error"].get("type"), str) and parsed["error"]["type"], parsed
    assert parsed.get("request_id") == request_id_of(headers)


def test_invalid_json_is_400_invalid_request_error(gateway):
    status, headers, body = raw_request(gateway.port, "POST", "/v1/messages", body=b'{"model": "x", ')
    assert status == 400, body
    assert_error_shape(json_body(body), "invalid_request_error")
    request_id_of(headers)


# --------------------------------------------------------------------------
# non-streaming messages


def test_create_non_streaming(client):
    msg = create(client)
    assert msg.type == "message"
    assert msg.role == "assistant"
    assert msg.id.startswith("msg_"), msg.id
    assert msg.model == MODEL
    assert text_of(msg).strip(), msg
    assert msg.stop_reason in ("end_turn", "max_tokens")
    assert msg.stop_sequence is None
    assert msg.usage.input_tokens > 0
    assert 0 < msg.usage.output_tokens <= MAX_TOKENS


def test_create_echoes_requested_model(client):
    msg = create(client, model="claude-conformance-echo-7d1e")
    assert msg.model == "claude-conformance-echo-7d1e"


def test_create_is_deterministic(client):
    # two calls on one client also exercise connection keep-alive
    a = create(client)
    b = create(client)
    assert text_of(a) == text_of(b)
    assert a.usage.output_tokens == b.usage.output_tokens
    assert a.stop_reason == b.stop_reason


def test_max_tokens_bounds_output(client):
    msg = create(client, max_tokens=1)
    assert msg.usage.output_tokens <= 1
    assert msg.stop_reason in ("max_tokens", "end_turn")
    full = create(client)
    if full.usage.output_tokens > 1:
        # the full answer needs more than one token, so one token must be cut
        assert msg.stop_reason == "max_tokens"
        assert len(text_of(msg)) < len(text_of(full))


def test_success_response_has_request_id(client):
    raw1 = client.messages.with_raw_response.create(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES)
    raw2 = client.messages.with_raw_response.create(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES)
    assert raw1.status_code == 200
    rid1, rid2 = request_id_of(raw1.headers), request_id_of(raw2.headers)
    assert rid1 != rid2
    assert text_of(raw1.parse()) == text_of(raw2.parse())


def test_mock_upstream_enforces_its_key(mock_upstream):
    # The credential-replacement tests below mean something only if
    # mock-upstream really refuses every x-api-key but UPSTREAM_SECRET.
    body = json.dumps({"model": MODEL, "max_tokens": MAX_TOKENS, "messages": MESSAGES}).encode()
    for key in (CLIENT_KEY, "anything"):
        status, _, data = raw_request(mock_upstream.port, "POST", "/v1/messages", body=body, headers={"x-api-key": key})
        assert status == 401, data[:300]
        assert_error_shape(json_body(data), "authentication_error")
    status, _, data = raw_request(mock_upstream.port, "POST", "/v1/messages", body=body, headers={"x-api-key": UPSTREAM_SECRET})
    assert status == 200, data[:300]
    # the SDK straight at the upstream with a client key is refused too
    direct = anthropic.Anthropic(base_url=mock_upstream.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=10)
    try:
        with pytest.raises(anthropic.AuthenticationError):
            create(direct)
    finally:
        direct.close()


def _direct_reference_text(mock_upstream) -> str:
    body = json.dumps({"model": MODEL, "max_tokens": MAX_TOKENS, "messages": MESSAGES}).encode()
    status, _, data = raw_request(mock_upstream.port, "POST", "/v1/messages", body=body, headers={"x-api-key": UPSTREAM_SECRET})
    assert status == 200, data[:300]
    return json_body(data)["content"][0]["text"]


# How the client presents its own credential. anthropic 2.x sends `api_key`
# as `Authorization: Bearer ...` (see Anthropic._api_key_auth), as it does
# `auth_token`; other clients send `x-api-key`. The gateway must replace any
# of them with its upstream credential.
CLIENT_AUTH_STYLES = {
    "api_key": dict(api_key="anything"),
    "auth_token": dict(api_key=None, auth_token="bearer-token-from-client"),
    "x-api-key": dict(api_key=None, default_headers={"x-api-key": CLIENT_KEY}),
}


@pytest.mark.parametrize("style", list(CLIENT_AUTH_STYLES))
def test_client_credential_is_replaced_by_upstream_credential(gateway, mock_upstream, style):
    reference = _direct_reference_text(mock_upstream)
    c = make_client(gateway, **CLIENT_AUTH_STYLES[style])
    try:
        raw = c.messages.with_raw_response.create(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES)
        sent = raw.http_request.headers
        if style == "x-api-key":
            assert sent.get("x-api-key") == CLIENT_KEY and "authorization" not in sent
        else:
            assert sent.get("authorization", "").startswith("Bearer ") and "x-api-key" not in sent
        assert raw.status_code == 200
        assert text_of(raw.parse()) == reference
    finally:
        c.close()


# --------------------------------------------------------------------------
# streaming


def test_stream_helper_text_matches_non_stream(client):
    reference = create(client)
    with client.messages.stream(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES) as stream:
        request_id_of(stream.response.headers)
        chunks = list(stream.text_stream)
        final = stream.get_final_message()
        final_text = stream.get_final_text()
    assert len(chunks) >= 1
    assert "".join(chunks) == text_of(reference)
    assert final_text == text_of(reference)
    assert final.id.startswith("msg_")
    assert final.model == MODEL
    assert final.role == "assistant"
    assert final.stop_reason == reference.stop_reason
    assert final.usage.input_tokens > 0
    assert final.usage.output_tokens == reference.usage.output_tokens


def test_stream_get_final_text_without_iterating(client):
    reference = text_of(create(client))
    with client.messages.stream(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES) as stream:
        assert stream.get_final_text() == reference
    with client.messages.stream(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    assert text_of(final) == reference
    assert final.usage.output_tokens > 0


def test_raw_stream_create_event_order(client):
    reference = create(client)
    stream = client.messages.create(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES, stream=True)
    events = list(stream)
    types = [e.type for e in events]
    # the SDK drops `ping` events; the wire test below checks them
    assert SSE_ORDER_SDK.match(" ".join(types)), types

    start = events[0]
    assert start.message.id.startswith("msg_")
    assert start.message.model == MODEL
    assert start.message.role == "assistant"
    assert start.message.content == []
    assert start.message.usage.input_tokens > 0

    block_start = events[1]
    assert block_start.index == 0
    assert block_start.content_block.type == "text"

    deltas = [e for e in events if e.type == "content_block_delta"]
    assert all(d.index == 0 and d.delta.type == "text_delta" for d in deltas)
    assert "".join(d.delta.text for d in deltas) == text_of(reference)

    message_delta = events[-2]
    assert message_delta.delta.stop_reason == reference.stop_reason
    assert message_delta.usage.output_tokens == reference.usage.output_tokens


def test_stream_wire_format(gateway):
    body = json.dumps({"model": MODEL, "max_tokens": MAX_TOKENS, "messages": MESSAGES, "stream": True}).encode()
    status, headers, data = raw_request(gateway.port, "POST", "/v1/messages", body=body)
    assert status == 200, data[:500]
    assert headers.get("content-type", "").startswith("text/event-stream"), dict(headers)
    request_id_of(headers)
    events = parse_sse(data)
    names = [name for name, _ in events]
    assert SSE_ORDER_WIRE.match(" ".join(str(n) for n in names)), names
    for name, payload in events:
        assert json.loads(payload)["type"] == name, (name, payload)


def test_stream_with_extra_query(client):
    reference = text_of(create(client))
    with client.messages.stream(
        model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES, extra_query={"beta": "true"}
    ) as stream:
        assert stream.get_final_text() == reference


# --------------------------------------------------------------------------
# count_tokens and models


def test_count_tokens(client):
    small = client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    assert isinstance(small.input_tokens, int) and small.input_tokens > 0
    big = client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": " ".join(["tokens"] * 400)}]
    )
    assert big.input_tokens > small.input_tokens


def test_count_tokens_missing_messages_is_400(client):
    with pytest.raises(anthropic.APIStatusError) as ei:
        client.post("/v1/messages/count_tokens", cast_to=object, body={"model": MODEL})
    assert type(ei.value) is anthropic.BadRequestError
    assert_error_shape(ei.value.body, "invalid_request_error")


def test_models_list(client):
    page = client.models.list()
    assert len(page.data) >= 1
    ids = [m.id for m in page.data]
    assert len(set(ids)) == len(ids), ids
    for m in page.data:
        assert m.type == "model"
        assert m.id and m.display_name
        assert m.created_at is not None
    assert page.has_more is False
    assert page.first_id == ids[0]
    assert page.last_id == ids[-1]
    # auto-pagination stops on has_more=false
    assert [m.id for m in client.models.list()] == ids


def test_models_retrieve(client):
    listed = client.models.list().data
    for m in listed[:3]:
        got = client.models.retrieve(m.id)
        assert got.id == m.id
        assert got.type == "model"
        assert got.display_name == m.display_name


def test_models_retrieve_unknown_is_not_found(client):
    with pytest.raises(anthropic.APIStatusError) as ei:
        client.models.retrieve("no-such-model-for-ringgate-conformance")
    err = ei.value
    assert type(err) is anthropic.NotFoundError
    assert err.status_code == 404
    assert_error_shape(err.body, "not_found_error")
    assert err.request_id == request_id_of(err.response.headers)


# --------------------------------------------------------------------------
# errors as typed SDK exceptions

# What anthropic 2.x maps each status to (anthropic/_error_classes.py):
# 529 -> OverloadedError (a subclass of InternalServerError), 500 and other
# unmapped 5xx -> InternalServerError, 413 -> ContentTooLargeError.
# With no other credential to fail over to, the upstream's own answer reaches
# the client, except a refusal of the gateway's key (401, 403): that is no
# fault of the client's key, so the client gets a 502 api_error instead.
FAULTS = [
    ("rate_limit", 429, anthropic.RateLimitError, "rate_limit_error"),
    ("overloaded", 529, anthropic.OverloadedError, "overloaded_error"),
    ("server_error", 500, anthropic.InternalServerError, "api_error"),
    ("auth", 502, anthropic.InternalServerError, "api_error"),
    ("permission", 502, anthropic.InternalServerError, "api_error"),
]
FAULT_IDS = [f[0] for f in FAULTS]


def assert_status_error(err: anthropic.APIStatusError, cls, status: int, error_type: str) -> None:
    assert type(err) is cls, f"expected {cls.__name__}, got {type(err).__name__}: {err}"
    assert err.status_code == status
    assert err.response.status_code == status
    assert_error_shape(err.body, error_type)
    assert err.type == error_type
    assert err.request_id and err.request_id == request_id_of(err.response.headers)


@pytest.mark.parametrize("fault,status,cls,error_type", FAULTS, ids=FAULT_IDS)
def test_fault_non_stream(client, fault, status, cls, error_type):
    with pytest.raises(anthropic.APIStatusError) as ei:
        create(client, extra_headers={"x-mock-fault": fault})
    assert_status_error(ei.value, cls, status, error_type)


@pytest.mark.parametrize("fault,status,cls,error_type", FAULTS, ids=FAULT_IDS)
def test_fault_stream(client, fault, status, cls, error_type):
    with pytest.raises(anthropic.APIStatusError) as ei:
        with client.messages.stream(
            model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES, extra_headers={"x-mock-fault": fault}
        ) as stream:
            stream.get_final_text()
    assert_status_error(ei.value, cls, status, error_type)


@pytest.mark.parametrize("fault", ["auth", "permission"])
def test_refused_gateway_key_is_a_502_that_says_so(client, fault):
    with pytest.raises(anthropic.InternalServerError) as ei:
        create(client, extra_headers={"x-mock-fault": fault})
    message = ei.value.body["error"]["message"]
    assert "refused the gateway's credential" in message, message
    assert UPSTREAM_SECRET not in message


def test_rate_limit_carries_retry_after(client):
    with pytest.raises(anthropic.RateLimitError) as ei:
        create(client, extra_headers={"x-mock-fault": "rate_limit"})
    assert ei.value.response.headers.get("retry-after") == "1"


def test_faults_do_not_poison_the_connection(client):
    for fault in FAULT_IDS:
        with pytest.raises(anthropic.APIStatusError):
            create(client, extra_headers={"x-mock-fault": fault})
        time.sleep(FAULT_COOLDOWN_S)
        assert text_of(create(client))


@pytest.mark.parametrize("missing", ["max_tokens", "model", "messages"])
def test_missing_required_field_is_bad_request(client, missing):
    body = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": MESSAGES}
    del body[missing]
    with pytest.raises(anthropic.APIStatusError) as ei:
        client.post("/v1/messages", cast_to=object, body=body)
    assert_status_error(ei.value, anthropic.BadRequestError, 400, "invalid_request_error")


def test_dead_upstream_is_502(dead_client):
    with pytest.raises(anthropic.APIStatusError) as ei:
        create(dead_client)
    err = ei.value
    # 502 is not in the SDK's status table; every unmapped 5xx is InternalServerError
    assert_status_error(err, anthropic.InternalServerError, 502, "api_error")
    assert_gateway_error_shape(err.body, "api_error")
    assert err.body["request_id"] == err.request_id


def test_dead_upstream_stream_is_502(dead_client):
    with pytest.raises(anthropic.APIStatusError) as ei:
        with dead_client.messages.stream(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES) as stream:
            stream.get_final_text()
    assert_status_error(ei.value, anthropic.InternalServerError, 502, "api_error")
    assert_gateway_error_shape(ei.value.body, "api_error")


def test_body_too_large_is_413(small_body_client):
    # a small request passes the limit...
    assert text_of(create(small_body_client))
    # ...a large one is refused by the gateway itself
    big = [{"role": "user", "content": "x" * (4 * SMALL_MAX_BODY_BYTES)}]
    with pytest.raises(anthropic.APIStatusError) as ei:
        create(small_body_client, messages=big)
    err = ei.value
    assert_status_error(err, anthropic.ContentTooLargeError, 413, "request_too_large")
    assert_gateway_error_shape(err.body, "request_too_large")
    # and the gateway keeps serving afterwards
    assert text_of(create(small_body_client))


def _body_of_exact_size(size: int) -> bytes:
    base = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": ""}]}
    pad = size - len(json.dumps(base, separators=(",", ":")).encode())
    assert pad > 0
    base["messages"][0]["content"] = "a" * pad
    body = json.dumps(base, separators=(",", ":")).encode()
    assert len(body) == size
    return body


def test_max_body_bytes_boundary(small_body_gateway):
    status, _, data = raw_request(
        small_body_gateway.port, "POST", "/v1/messages", body=_body_of_exact_size(SMALL_MAX_BODY_BYTES)
    )
    assert status == 200, data[:500]
    status, headers, data = raw_request(
        small_body_gateway.port, "POST", "/v1/messages", body=_body_of_exact_size(SMALL_MAX_BODY_BYTES + 1)
    )
    assert status == 413, data[:500]
    assert_gateway_error_shape(json_body(data), "request_too_large")
    request_id_of(headers)


# --------------------------------------------------------------------------
# upstream dropped mid-stream -> in-band `event: error`


def stream_until_error(client, fault: str):
    """Streams with the mock told to misbehave; returns the in-band error the SDK raised and
    the types of the events received before it."""
    received = []
    with pytest.raises(anthropic.APIStatusError) as ei:
        with client.messages.stream(
            model=MODEL,
            max_tokens=MAX_TOKENS,
            messages=MESSAGES,
            extra_headers={"x-mock-fault": fault},
        ) as stream:
            for event in stream:
                received.append(event.type)
    return ei.value, received


def test_drop_mid_stream_raises_in_band_error(client):
    err, received = stream_until_error(client, "drop_mid_stream")
    # anthropic/_streaming.py turns an `event: error` into
    # client._make_status_error(..., response=<the 200 stream response>); with
    # (200, None) not in the status table and 200 < 500 that is the base class.
    assert type(err) is anthropic.APIStatusError, type(err)
    assert err.status_code == 200
    assert_error_shape(err.body, "api_error")
    assert err.type == "api_error"
    assert received and received[0] == "message_start", received
    assert "message_stop" not in received
    # the gateway is fine afterwards
    assert text_of(create(client))


def test_drop_mid_stream_raw_create(client):
    stream = client.messages.create(
        model=MODEL,
        max_tokens=MAX_TOKENS,
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-mock-fault": "drop_mid_stream"},
    )
    with pytest.raises(anthropic.APIStatusError) as ei:
        for _ in stream:
            pass
    assert type(ei.value) is anthropic.APIStatusError
    assert_error_shape(ei.value.body, "api_error")


def test_drop_mid_stream_wire_format(gateway):
    body = json.dumps({"model": MODEL, "max_tokens": MAX_TOKENS, "messages": MESSAGES, "stream": True}).encode()
    status, headers, data = raw_request(
        gateway.port, "POST", "/v1/messages", body=body, headers={"x-mock-fault": "drop_mid_stream"}
    )
    assert status == 200
    events = parse_sse(data)
    names = [n for n, _ in events]
    assert names[0] == "message_start", names
    assert names[-1] == "error", names
    assert "message_stop" not in names
    assert_error_shape(json.loads(events[-1][1]), "api_error")


# --------------------------------------------------------------------------
# query strings and beta


def test_extra_query_beta_true(client):
    reference = text_of(create(client))
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES, extra_query={"beta": "true"}
    )
    assert raw.http_request.url.params.get("beta") == "true"
    assert raw.status_code == 200
    assert text_of(raw.parse()) == reference


def test_beta_messages_create(client):
    reference = text_of(create(client))
    raw = client.beta.messages.with_raw_response.create(
        model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES, betas=["some-beta", "other-beta"]
    )
    # what the SDK sent: the anthropic-beta header
    assert raw.http_request.headers.get("anthropic-beta") == "some-beta,other-beta"
    msg = raw.parse()
    assert msg.model == MODEL
    assert text_of(msg) == reference
    # anthropic 2.x keeps `beta=true` as request metadata (FinalRequestOptions
    # .qualifiers) and no longer puts it in the URL; older SDKs sent
    # /v1/messages?beta=true. Cover that form too: beta header plus query.
    raw = client.beta.messages.with_raw_response.create(
        model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES, betas=["some-beta"], extra_query={"beta": "true"}
    )
    assert raw.http_request.url.params.get("beta") == "true"
    assert raw.http_request.headers.get("anthropic-beta") == "some-beta"
    assert text_of(raw.parse()) == reference


def test_beta_messages_stream(client):
    reference = text_of(create(client))
    with client.beta.messages.stream(
        model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES, betas=["some-beta"]
    ) as stream:
        assert stream.get_final_text() == reference


# --------------------------------------------------------------------------
# concurrency


def test_concurrent_requests(gateway):
    reference = None
    with make_client(gateway) as c:
        reference = text_of(create(c))

    def one(i: int) -> str:
        c = make_client(gateway)
        try:
            if i % 2:
                with c.messages.stream(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES) as s:
                    return s.get_final_text()
            return text_of(create(c))
        finally:
            c.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(24)))
    assert results == [reference] * 24


# --------------------------------------------------------------------------
# the built-in mock (kind = "mock")


def test_builtin_mock(builtin_client):
    msg = create(builtin_client)
    assert msg.model == MODEL
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    with builtin_client.messages.stream(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES) as stream:
        assert stream.get_final_text() == text_of(msg)
    assert builtin_client.messages.count_tokens(model=MODEL, messages=MESSAGES).input_tokens > 0
    assert builtin_client.models.list().has_more is False
    with pytest.raises(anthropic.RateLimitError):
        create(builtin_client, extra_headers={"x-mock-fault": "rate_limit"})
    time.sleep(FAULT_COOLDOWN_S)
    with pytest.raises(anthropic.APIStatusError) as ei:
        with builtin_client.messages.stream(
            model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES, extra_headers={"x-mock-fault": "drop_mid_stream"}
        ) as stream:
            stream.get_final_text()
    assert type(ei.value) is anthropic.APIStatusError and ei.value.status_code == 200
    assert_error_shape(ei.value.body, "api_error")


# --------------------------------------------------------------------------
# shutdown


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_gateway_with_exit_0(log_dir, sig):
    gw, proc = start_gateway(
        f"signal-gateway-{sig.name}", gateway_config(kind="mock", api_key=None, workers=1), log_dir
    )
    try:
        with make_client(gw) as c:
            assert text_of(create(c))
        rc = proc.signal_and_wait(sig)
        assert rc == 0, f"exit code {rc} after {sig.name}\n" + proc.describe()
    finally:
        proc.kill()


# --------------------------------------------------------------------------
# secrets stay out of the logs (kept last: it also reads what earlier tests logged)


def _exercise_everything(gw, dead_gw):
    """Drive every code path once so that its logging runs. Outcomes are
    checked by the tests above; here only the logs matter, so errors of any
    kind are swallowed."""

    def attempt(fn):
        try:
            fn()
        except anthropic.APIError:
            pass

    def stream_text(c, **extra):
        with c.messages.stream(model=MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES, **extra) as s:
            s.get_final_text()

    # the default client sends the key as a bearer token, the other as x-api-key
    for style in ("api_key", "x-api-key"):
        auth = dict(CLIENT_AUTH_STYLES[style])
        if style == "api_key":
            auth["api_key"] = CLIENT_KEY
        with make_client(gw, **auth) as c, make_client(dead_gw, **auth) as d:
            attempt(lambda: create(c))
            attempt(lambda: stream_text(c))
            attempt(lambda: c.messages.count_tokens(model=MODEL, messages=MESSAGES))
            attempt(lambda: c.models.list())
            attempt(lambda: c.models.retrieve("no-such-model"))
            attempt(lambda: c.post("/v1/messages", cast_to=object, body={"model": MODEL}))
            for fault in FAULT_IDS:
                attempt(lambda: create(c, extra_headers={"x-mock-fault": fault}))
            attempt(lambda: stream_text(c, extra_headers={"x-mock-fault": "drop_mid_stream"}))
            attempt(lambda: create(d))
            attempt(lambda: stream_text(d))


def test_upstream_secret_not_in_gateway_logs(gateway, dead_gateway):
    _exercise_everything(gateway, dead_gateway)
    for gw in (gateway, dead_gateway):
        log = gw.output()
        assert "listening on" in log  # we are reading the right file
        assert UPSTREAM_SECRET not in log, f"{gw.name} logged the upstream credential ({gw.proc.stderr_path})"


def test_client_api_key_not_in_gateway_logs(gateway, dead_gateway):
    _exercise_everything(gateway, dead_gateway)
    for gw in (gateway, dead_gateway):
        log = gw.output()
        assert CLIENT_KEY not in log, f"{gw.name} logged the client's API key ({gw.proc.stderr_path})"

