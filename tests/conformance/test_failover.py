"""Credential failover, seen from the official SDK and counted from the upstream's own log.

A real ``mock-upstream`` process answers 429 (``retry-after: 1``) to every request
carrying key A and serves key B normally. The gateway holds both credentials.
Every SDK request must succeed, and the upstream's log (one line per answered
request, key fingerprints, millisecond timestamps) must show A tried once per
cooldown window, never in between.
"""

from __future__ import annotations

import hashlib
import re
import signal
import time
from datetime import datetime

import anthropic
import pytest

from conftest import CLIENT_KEY, Proc, _binary, LISTEN_RE_MOCK, start_gateway

KEY_A = "upstream-key-a-always-limited"
KEY_B = "upstream-key-b-healthy"
WINDOW_S = 1.0  # the mock's retry-after for its rate_limit fault
REQUESTS = 100
PACE_S = 0.03

LOG_LINE = re.compile(
    r"^\[(?P<ts>\S+) DEBUG\s+mock::requests\] answered (?P<method>\S+) (?P<path>\S+) "
    r"key=(?P<key>\S+) status=(?P<status>\d+)$",
    re.MULTILINE,
)


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@pytest.fixture(scope="module")
def limited_upstream(log_dir):
    proc = Proc(
        "mock-upstream-failover",
        [
            _binary("MOCK_UPSTREAM_BIN", "mock-upstream"),
            "--listen", "127.0.0.1:0",
            "--event-interval-ms", "0",
            "--log-requests",
            "--fault-for-key", f"{KEY_A}=rate_limit",
        ],
        log_dir,
    )
    try:
        m = proc.wait_for("stdout", LISTEN_RE_MOCK)
        yield proc, int(m.group(1))
    finally:
        proc.signal_and_wait(signal.SIGTERM)


@pytest.fixture(scope="module")
def failover_gateway(limited_upstream, log_dir):
    _, port = limited_upstream
    config = f"""
[server]
listen = "127.0.0.1:0"
workers = 2

[[upstreams]]
name = "limited"
kind = "anthropic"
base_url = "http://127.0.0.1:{port}"

[[upstreams.credentials]]
name = "A"
api_key = "{KEY_A}"

[[upstreams.credentials]]
name = "B"
api_key = "{KEY_B}"
"""
    gw, proc = start_gateway("failover-gateway", config, log_dir, rust_log="info")
    try:
        yield gw
    finally:
        proc.signal_and_wait(signal.SIGTERM)


def answered(proc: Proc) -> list[tuple[float, str, int]]:
    """(unix time, key fingerprint, status) of each request the upstream answered."""
    out = []
    for m in LOG_LINE.finditer(proc.read_stderr()):
        ts = datetime.fromisoformat(m["ts"].replace("Z", "+00:00")).timestamp()
        out.append((ts, m["key"], int(m["status"])))
    return out


def test_every_request_succeeds_and_the_limited_key_is_tried_once_per_window(
    limited_upstream, failover_gateway
):
    upstream, _ = limited_upstream
    client = anthropic.Anthropic(
        base_url=failover_gateway.base_url, api_key=CLIENT_KEY, max_retries=0
    )
    started = time.time()
    for i in range(REQUESTS):
        msg = client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=16,
            messages=[{"role": "user", "content": f"request {i}"}],
        )
        assert msg.type == "message"
        time.sleep(PACE_S)
    elapsed = time.time() - started

    log = answered(upstream)
    a = [(t, s) for t, k, s in log if k == fingerprint(KEY_A)]
    b = [(t, s) for t, k, s in log if k == fingerprint(KEY_B)]
    assert len(b) == REQUESTS and all(s == 200 for _, s in b), log
    assert a and all(s == 429 for _, s in a), a
    assert len(log) == len(a) + len(b), "only the gateway's two keys reach the upstream"

    # Once per cooldown window: never sooner than the window, and soon after it ends. The log
    # timestamps and the gateway's cooldown clock count whole milliseconds, so a gap may read up
    # to 2 ms short of the window (one such run read 0.999 s).
    gaps = [t2 - t1 for (t1, _), (t2, _) in zip(a, a[1:])]
    assert all(gap >= WINDOW_S - 0.002 for gap in gaps), gaps
    assert all(gap <= WINDOW_S + 0.5 for gap in gaps), gaps
    windows = elapsed / WINDOW_S
    assert int(windows) <= len(a) <= int(windows) + 1, (len(a), elapsed)

    # The pool says so too: A cooling for the model with its rate limit counted.
    stderr = failover_gateway.stderr()
    assert "rate-limited credential \"A\"" in stderr
    for secret in (KEY_A, KEY_B, CLIENT_KEY):
        assert secret not in stderr
        assert secret not in upstream.read_stderr()
