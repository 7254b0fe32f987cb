"""The admin listener's ``/metrics`` as Prometheus reads it.

The exposition is parsed by ``prometheus_client``'s text parser (the reference
implementation's); the token counters must agree with the usage the official
SDK reports for the same requests, per client key name.
"""

from __future__ import annotations

import http.client
import re
import signal
from typing import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import Gateway, gateway_config, make_client, start_gateway
from test_sdk import MESSAGES, MODEL

KEY_A = "rg-metrics-key-a-5b1d"
KEY_B = "rg-metrics-key-b-9e3f"
ADMIN_RE = re.compile(r"admin listener on 127\.0\.0\.1:(\d+)")


@pytest.fixture(scope="module")
def metrics_gateway(mock_upstream, log_dir) -> Iterator[tuple[Gateway, int]]:
    config = gateway_config(base_url=mock_upstream.base_url)
    config += '\n[admin]\nlisten = "127.0.0.1:0"\n'
    config += f'\n[[api_keys]]\nname = "team-a"\nkey = "{KEY_A}"\n'
    config += f'\n[[api_keys]]\nname = "team-b"\nkey = "{KEY_B}"\n'
    gw, proc = start_gateway("metrics-gateway", config, log_dir)
    try:
        port = int(proc.wait_for("stderr", ADMIN_RE).group(1))
        yield gw, port
    finally:
        proc.signal_and_wait(signal.SIGTERM)


def scrape(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        text = resp.read().decode()
        assert resp.status == 200, text
        assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    finally:
        conn.close()
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(families: dict, family: str, name: str, **labels) -> float:
    found = [
        s.value
        for s in families[family].samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


def test_tokens_by_key_match_what_the_sdk_was_told(metrics_gateway):
    gw, admin = metrics_gateway
    with make_client(gw, api_key=KEY_A) as a, make_client(gw, api_key=KEY_B) as b:
        first = a.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        with b.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as s:
            streamed = s.get_final_message()
    families = scrape(admin)

    for client, usage in (("team-a", first.usage), ("team-b", streamed.usage)):
        for kind, want in (("input", usage.input_tokens), ("output", usage.output_tokens)):
            got = sample(families, "ringgate_tokens", "ringgate_tokens_total", client=client, model=MODEL, kind=kind)
            assert got == want, (client, kind, got, want)
    assert sample(
        families, "ringgate_requests", "ringgate_requests_total", route="messages", status="200", model=MODEL
    ) == 2
    assert sample(
        families,
        "ringgate_upstream_attempts",
        "ringgate_upstream_attempts_total",
        upstream="mock",
        credential="primary",
        outcome="success",
    ) == 2
    assert sample(families, "ringgate_stream_events", "ringgate_stream_events_total") >= 5
    assert sample(families, "ringgate_credentials", "ringgate_credentials", upstream="mock", state="available") == 1


def test_histograms_are_well_formed(metrics_gateway):
    gw, admin = metrics_gateway
    with make_client(gw, api_key=KEY_A) as a:
        a.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)
    families = scrape(admin)
    for name in (
        "ringgate_time_to_first_byte_seconds",
        "ringgate_request_duration_seconds",
        "ringgate_gateway_overhead_seconds",
    ):
        family = families[name]
        assert family.type == "histogram"
        for stream in ("false", "true"):
            buckets = [s for s in family.samples if s.name == name + "_bucket" and s.labels["stream"] == stream]
            counts = [s.value for s in buckets]
            assert counts == sorted(counts), (name, stream, counts)
            assert buckets[-1].labels["le"] == "+Inf"
            count = sample(families, name, name + "_count", stream=stream)
            assert counts[-1] == count
        assert sample(families, name, name + "_count", stream="false") >= 1


def test_keys_never_show_in_the_metrics(metrics_gateway):
    gw, admin = metrics_gateway
    conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for secret in (KEY_A, KEY_B, "upstream-secret-key"):
        assert secret not in text
    assert KEY_A not in gw.output() and KEY_B not in gw.output()
