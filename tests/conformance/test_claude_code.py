"""Claude Code (`claude -p`, pinned and installed by scripts/claude-code.sh) through ringgate to
an upstream of each dialect (Claude on Bedrock and on Vertex included, with a Bedrock API key and
a Vertex access token): it completes a prompt, and, through the OpenAI and Gemini dialects,
a turn in which the model calls one of its tools (the mock's `x-mock-tool-calls`, which Claude
Code sends through ANTHROPIC_CUSTOM_HEADERS): Claude Code checks the call's input, sends the
result back, and the mock's answer to that result ends the turn.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from conftest import REPO_ROOT, UPSTREAM_SECRET, gateway_config, start_gateway

SCRIPT = REPO_ROOT / "scripts" / "claude-code.sh"
DIALECTS = ["anthropic", "openai", "gemini", "bedrock", "vertex"]


def config_for(name: str, base: str) -> str:
    """A gateway in front of the mock speaking `name`; the cloud kinds take their region (and
    project) in the upstream's table, and a bearer credential the mock checks."""
    if name not in ("bedrock", "vertex"):
        return gateway_config(kind=name, base_url=base)
    config = gateway_config(kind=name, base_url=base, api_key=None)
    config += 'region = "us-east-1"\n'
    secret = f'api_key = "{UPSTREAM_SECRET}"'
    if name == "vertex":
        config += 'project = "ringgate-test"\n'
        secret = f'access_token = "{UPSTREAM_SECRET}"'
    return config + f'\n[[upstreams.credentials]]\nname = "primary"\n{secret}\n'


@pytest.fixture(scope="module")
def installed():
    out = subprocess.run(
        ["bash", str(SCRIPT), "--install-only"], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


@pytest.fixture(scope="module")
def gateways(mock_upstream, log_dir):
    """A gateway per dialect, each in front of the mock speaking it."""
    started = {}
    try:
        for name in DIALECTS:
            base = mock_upstream.base_url + ("/v1" if name == "openai" else "")
            config = config_for(name, base)
            started[name] = start_gateway(f"claude-code-{name}-gateway", config, log_dir)
        yield {name: gw for name, (gw, _) in started.items()}
    finally:
        for _, proc in started.values():
            proc.signal_and_wait(signal.SIGTERM)


def claude(base_url: str, prompt: str, headers: str = "") -> dict:
    env = dict(os.environ)
    env["ANTHROPIC_CUSTOM_HEADERS"] = "x-mock-event-interval-ms: 0" + headers
    out = subprocess.run(
        ["bash", str(SCRIPT), base_url, prompt, "--bare", "--output-format", "json"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return json.loads(out.stdout)


@pytest.mark.parametrize("name", DIALECTS)
def test_claude_code_completes_a_prompt(installed, gateways, name):
    gw = gateways[name]
    result = claude(gw.base_url, "Say hello through ringgate")
    assert result["is_error"] is False, result
    assert result["result"].startswith("Hello from the ringgate mock upstream ("), result
    assert result["result"].endswith("Say hello through ringgate"), result
    assert result["num_turns"] == 1
    # Claude Code's request went through the dialect and came back whole.
    assert f"kind = \"{name}\"" in gw.config_path.read_text()
    assert "outcome=complete" in gw.output()


# The mock's Anthropic dialect answers without tool calls (and an Anthropic upstream's tool
# turns are relayed untranslated): the tool turn is the translated dialects'.
@pytest.mark.parametrize("name", ["openai", "gemini"])
def test_claude_code_completes_a_tool_turn(installed, gateways, name):
    gw = gateways[name]
    result = claude(gw.base_url, "Use a tool, then answer", headers="\nx-mock-tool-calls: 1")
    assert result["is_error"] is False, result
    # The mock answered the tool's result: Claude Code ran the call (its input was the mock's,
    # so the tool refused it) and sent the result back in the conversation.
    assert " returned: " in result["result"], result
    assert result["num_turns"] >= 2, result
