"""Limits and budgets per client key, as the official SDK meets them.

A gateway process in front of the suite's mock-upstream, with client keys that have limits: the
SDK gets its typed ``RateLimitError`` with Anthropic's own rate-limit headers (describing the
gateway's limits), its built-in retry waits as ``retry-after`` says and then succeeds, and a
spent budget is a ``BadRequestError`` the SDK does not retry.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Iterator

import anthropic
import pytest

from conftest import Gateway, gateway_config, start_gateway

MODEL = "claude-sonnet-4-5"


def limited_config(base_url: str, state_dir: Path, limits: str) -> str:
    return (
        gateway_config(base_url=base_url)
        + f'\n[state]\ndir = "{state_dir}"\n'
        + f'\n[[api_keys]]\nname = "limited"\nkey = "ck-limited"\n{limits}\n'
    )


@pytest.fixture
def start(mock_upstream, log_dir, tmp_path, request) -> Iterator:
    procs = []

    def go(limits: str) -> Gateway:
        name = f"limits-{request.node.name}-{len(procs)}"
        config = limited_config(mock_upstream.base_url, tmp_path / f"state-{len(procs)}", limits)
        gw, proc = start_gateway(name, config, log_dir)
        procs.append(proc)
        return gw

    try:
        yield go
    finally:
        for proc in procs:
            proc.signal_and_wait(signal.SIGTERM)


def client(gw: Gateway, **kwargs) -> anthropic.Anthropic:
    opts = dict(base_url=gw.base_url, api_key="ck-limited", max_retries=0, timeout=15.0)
    opts.update(kwargs)
    return anthropic.Anthropic(**opts)


def ask(c: anthropic.Anthropic):
    return c.messages.with_raw_response.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hello"}]
    )


def test_a_rate_limit_is_a_typed_error_with_the_gateways_headers(start):
    gw = start("requests_per_minute = 2\ninput_tokens_per_minute = 100000")
    with client(gw) as c:
        for remaining in ("1", "0"):
            raw = ask(c)
            assert raw.headers["anthropic-ratelimit-requests-limit"] == "2"
            assert raw.headers["anthropic-ratelimit-requests-remaining"] == remaining
            assert raw.headers["anthropic-ratelimit-input-tokens-limit"] == "100000"
            assert raw.parse().content[0].type == "text"
        with pytest.raises(anthropic.RateLimitError) as caught:
            ask(c)
    e = caught.value
    assert e.status_code == 429
    assert e.body["error"]["type"] == "rate_limit_error"
    assert "requests per minute" in e.body["error"]["message"]
    retry_after = int(e.response.headers["retry-after"])
    assert 1 <= retry_after <= 31
    assert e.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    reset = e.response.headers["anthropic-ratelimit-requests-reset"]
    assert reset.endswith("Z") and "T" in reset


def test_the_sdks_own_retry_waits_as_told_and_then_succeeds(start):
    # 60 a minute: one more request each second once the first 60 are spent.
    gw = start("requests_per_minute = 60")
    with client(gw) as c:
        for _ in range(60):
            ask(c)
        with pytest.raises(anthropic.RateLimitError):
            ask(c)
    with client(gw, max_retries=3) as patient:
        began = time.monotonic()
        raw = ask(patient)
        waited = time.monotonic() - began
    assert raw.parse().stop_reason == "end_turn"
    # The SDK waited for the gateway's retry-after (1 s), not its own short backoff.
    assert waited >= 0.8, waited


def test_a_spent_budget_is_not_retried(start):
    gw = start("daily_usd = 0.000001")
    with client(gw) as c:
        ask(c)  # admitted while the day's budget was not yet spent
    with client(gw, max_retries=3) as c:
        began = time.monotonic()
        with pytest.raises(anthropic.BadRequestError) as caught:
            ask(c)
        assert time.monotonic() - began < 0.5, "the SDK did not retry"
    message = caught.value.body["error"]["message"]
    assert "daily" in message and "renews" in message
