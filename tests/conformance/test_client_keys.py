"""Client keys (`[[api_keys]]`) as the official SDK presents them.

The SDK sends ``api_key`` as ``x-api-key`` and ``auth_token`` as
``Authorization: Bearer``; the gateway must accept its configured key either
way, answer anything else with a 401 the SDK raises as AuthenticationError,
and never write a client key into its logs.
"""

from __future__ import annotations

import time

import anthropic
import pytest

from conftest import GATEWAY_CLIENT_KEY, make_client
from test_sdk import create, text_of


def test_key_as_x_api_key(keyed_gateway):
    with make_client(keyed_gateway, api_key=GATEWAY_CLIENT_KEY) as c:
        assert text_of(create(c))


def test_key_as_bearer_token(keyed_gateway):
    with make_client(keyed_gateway, api_key=None, auth_token=GATEWAY_CLIENT_KEY) as c:
        with c.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
            assert s.get_final_text()


@pytest.mark.parametrize("kwargs", [dict(api_key="rg-wrong-key"), dict(api_key=None, auth_token="rg-wrong-key")])
def test_wrong_key_is_authentication_error(keyed_gateway, kwargs):
    with make_client(keyed_gateway, **kwargs) as c:
        with pytest.raises(anthropic.AuthenticationError) as ei:
            create(c)
    assert ei.value.status_code == 401
    assert ei.value.body["error"]["type"] == "authentication_error"
    assert "rg-wrong-key" not in str(ei.value.body)


def test_client_keys_not_in_logs(keyed_gateway):
    with make_client(keyed_gateway, api_key=GATEWAY_CLIENT_KEY) as c:
        create(c)
    with make_client(keyed_gateway, api_key="rg-wrong-key") as c:
        with pytest.raises(anthropic.AuthenticationError):
            create(c)
    # Access lines reach stderr in batches, every 250 ms: wait for this one's.
    deadline = time.monotonic() + 5
    log = keyed_gateway.output()
    while "client=conformance" not in log and time.monotonic() < deadline:
        time.sleep(0.05)
        log = keyed_gateway.output()
    assert "listening on" in log  # the right file
    assert GATEWAY_CLIENT_KEY not in log
    assert "rg-wrong-key" not in log
    assert "client=conformance" in log, "the key's name travels with the request into the access log"
