"""Fixtures for the ringgate SDK conformance suite.

Every fixture here starts real processes from the release binaries:

* one ``mock-upstream`` (an Anthropic-shaped upstream) that only accepts
  ``x-api-key: upstream-secret-key``;
* ``ringgate serve`` gateways with temporary configs:
  - ``gateway``: in front of the mock-upstream, holding the upstream secret;
  - ``dead_gateway``: its upstream base_url is a closed port (-> 502);
  - ``small_body_gateway``: a small ``max_body_bytes`` (-> 413);
  - ``builtin_gateway``: ``kind = "mock"`` (the built-in mock, no upstream).

Binary paths come from ``RINGGATE_BIN`` and ``MOCK_UPSTREAM_BIN`` (default:
``target/release/{ringgate,mock-upstream}``). Ports are all 0 and read back
from the "listening on" lines. Process output goes to files in
``RINGGATE_CONFORMANCE_LOG_DIR`` (default: a pytest temp dir).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import anthropic
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# The credential the gateway holds for the upstream. mock-upstream rejects
# every request that does not carry it, so a successful SDK call through the
# gateway with any other client key proves the gateway replaced the key.
UPSTREAM_SECRET = "upstream-secret-key"
# What the SDK clients send; the gateway must strip it and never log it.
CLIENT_KEY = "sk-client-key-4f1c9e-must-be-replaced"

START_TIMEOUT_S = 20.0
# Longer than the 1 ms cooldowns of the single-credential gateways (see gateway_config).
FAULT_COOLDOWN_S = 0.005
STOP_TIMEOUT_S = 10.0

LISTEN_RE_MOCK = re.compile(r"^listening on 127\.0\.0\.1:(\d+)\s*$", re.MULTILINE)
LISTEN_RE_GATEWAY = re.compile(
    r"listening on 127\.0\.0\.1:(\d+) \((\d+) workers?, (io_uring|epoll)\)"
)

# The clients must talk to exactly what the fixtures started: drop anything in
# the environment that the SDK reads (keys, base URL, custom headers, profiles)
# and keep loopback traffic away from any proxy.
for _name in list(os.environ):
    if _name.startswith("ANTHROPIC_"):
        del os.environ[_name]
_no_proxy = [p for p in os.environ.get("NO_PROXY", "").split(",") if p]
os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join(
    _no_proxy + ["127.0.0.1", "localhost"]
)


# --------------------------------------------------------------------------
# processes


def _binary(env_var: str, default_name: str) -> str:
    path = os.environ.get(env_var) or str(REPO_ROOT / "target" / "release" / default_name)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"{env_var}: no executable at {path!r}; build with "
            "`cargo build --release --bins` or run scripts/conformance.sh",
            pytrace=False,
        )
    return path


class Proc:
    """A child process whose stdout and stderr go to files; stopped by PID."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: Optional[dict] = None):
        self.name = name
        self.argv = argv
        self.stdout_path = log_dir / f"{name}.stdout.log"
        self.stderr_path = log_dir / f"{name}.stderr.log"
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=full_env,
                # Own process group: a ^C in the terminal reaches pytest only,
                # and teardown decides how the child is stopped.
                start_new_session=True,
            )
        self.pid = self.popen.pid

    def read_stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def read_stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        return (
            f"{self.name} (pid {self.pid}) argv={self.argv}\n"
            f"--- stdout ---\n{self.read_stdout()[-4000:]}\n"
            f"--- stderr ---\n{self.read_stderr()[-4000:]}"
        )

    def wait_for(self, which: str, regex: re.Pattern, timeout: float = START_TIMEOUT_S) -> re.Match:
        path = self.stdout_path if which == "stdout" else self.stderr_path
        deadline = time.monotonic() + timeout
        while True:
            m = regex.search(path.read_text(errors="replace"))
            if m:
                return m
            rc = self.popen.poll()
            if rc is not None:
                pytest.fail(
                    f"{self.name} exited with {rc} before printing {regex.pattern!r} on {which}\n"
                    + self.describe(),
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(
                    f"{self.name} did not print {regex.pattern!r} on {which} within {timeout}s\n"
                    + self.describe(),
                    pytrace=False,
                )
            time.sleep(0.02)

    def signal_and_wait(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> Optional[int]:
        """Send `sig`; return the exit code, or None if it had to be killed."""
        if self.popen.poll() is not None:
            return self.popen.returncode
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(timeout=STOP_TIMEOUT_S)


@dataclass
class MockUpstream:
    proc: Proc
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Gateway:
    name: str
    proc: Proc
    port: int
    workers: int
    io_mode: str
    config_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.proc.read_stderr()

    def output(self) -> str:
        """Everything the process wrote, stdout and stderr."""
        return self.proc.read_stdout() + self.proc.read_stderr()


def gateway_config(
    *,
    kind: str = "anthropic",
    base_url: Optional[str] = None,
    api_key: Optional[str] = UPSTREAM_SECRET,
    workers: int = 2,
    max_body_bytes: Optional[int] = None,
) -> str:
    lines = ["[server]", 'listen = "127.0.0.1:0"', f"workers = {workers}"]
    if max_body_bytes is not None:
        lines.append(f"max_body_bytes = {max_body_bytes}")
    # These gateways hold one credential while the suite injects an upstream fault into single
    # requests (x-mock-fault) to see what the client gets of it: one attempt, so the upstream's
    # answer comes back as it is, and cooldowns of 1 ms, waited out after each fault
    # (FAULT_COOLDOWN_S), so one fault does not cool the credential for the next request. How
    # the pool cools and fails over is test_failover.py's.
    lines += [
        "",
        "[routing]",
        "max_attempts = 1",
        "max_cooldown_ms = 1",
        "transient_cooldown_ms = 1",
        "auth_failure_cooldown_ms = 1",
    ]
    lines += ["", "[[upstreams]]", 'name = "mock"', f'kind = "{kind}"']
    if base_url is not None:
        lines.append(f'base_url = "{base_url}"')
    lines.append('models = ["*"]')
    if api_key is not None:
        lines += ["", "[[upstreams.credentials]]", 'name = "primary"', f'api_key = "{api_key}"']
    return "\n".join(lines) + "\n"


def start_gateway(
    name: str, config_text: str, log_dir: Path, rust_log: str = "info", env: Optional[dict] = None
) -> tuple[Gateway, Proc]:
    """`env`: variables added to the gateway's environment (secrets named by `*_env`, AWS's
    web identity variables)."""
    config_path = log_dir / f"{name}.toml"
    config_path.write_text(config_text)
    proc = Proc(
        name,
        [_binary("RINGGATE_BIN", "ringgate"), "serve", "--config", str(config_path)],
        log_dir,
        env={"RUST_LOG": rust_log, "RUST_BACKTRACE": "1", **(env or {})},
    )
    m = proc.wait_for("stderr", LISTEN_RE_GATEWAY)
    gw = Gateway(
        name=name,
        proc=proc,
        port=int(m.group(1)),
        workers=int(m.group(2)),
        io_mode=m.group(3),
        config_path=config_path,
    )
    wait_healthy(gw.port, proc)
    return gw, proc


def wait_healthy(port: int, proc: Proc, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            status, _, body = raw_request(port, "GET", "/healthz", timeout=2)
            if status == 200:
                return
            last = f"status {status} body {body!r}"
        except OSError as e:
            last = repr(e)
        if proc.popen.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"{proc.name}: /healthz never answered 200 (last: {last})\n" + proc.describe(), pytrace=False)


def closed_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------
# raw HTTP helpers (for what the SDK hides: status lines, ping events, 404/405)


def raw_request(
    port: int,
    method: str,
    path: str,
    body: Optional[bytes] = None,
    headers: Optional[dict] = None,
    timeout: float = 10,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
        if body is not None:
            hdrs["content-type"] = "application/json"
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data
    finally:
        conn.close()


def parse_sse(data: bytes) -> list[tuple[Optional[str], str]]:
    """Parse a complete text/event-stream body into (event, data) pairs."""
    events: list[tuple[Optional[str], str]] = []
    text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event: Optional[str] = None
        data_lines: list[str] = []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "event":
                event = value
            elif field == "data":
                data_lines.append(value)
        events.append((event, "\n".join(data_lines)))
    return events


def assert_error_shape(body: object, error_type: str) -> dict:
    """The Anthropic error envelope, with a request id."""
    assert isinstance(body, dict), f"error body is not a JSON object: {body!r}"
    assert body.get("type") == "error", body
    err = body.get("error")
    assert isinstance(err, dict), body
    assert err.get("type") == error_type, body
    assert isinstance(err.get("message"), str) and err["message"], body
    return body


def assert_gateway_error_shape(body: object, error_type: str) -> dict:
    """Errors the gateway makes itself also carry a non-empty request_id."""
    assert_error_shape(body, error_type)
    assert isinstance(body.get("request_id"), str) and body["request_id"], body  # type: ignore[union-attr]
    return body  # type: ignore[return-value]


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> Path:
    configured = os.environ.get("RINGGATE_CONFORMANCE_LOG_DIR")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("ringgate-logs")


@pytest.fixture(scope="session")
def mock_upstream(log_dir) -> Iterator[MockUpstream]:
    proc = Proc(
        "mock-upstream",
        [
            _binary("MOCK_UPSTREAM_BIN", "mock-upstream"),
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--event-interval-ms",
            "0",
            "--api-key",
            UPSTREAM_SECRET,
        ],
        log_dir,
        env={"RUST_LOG": "info"},
    )
    try:
        m = proc.wait_for("stdout", LISTEN_RE_MOCK)
        yield MockUpstream(proc=proc, port=int(m.group(1)))
    finally:
        proc.signal_and_wait(signal.SIGTERM)


def _gateway_fixture(name: str, config_text: str, log_dir: Path, rust_log: str = "info") -> Iterator[Gateway]:
    gw, proc = start_gateway(name, config_text, log_dir, rust_log=rust_log)
    try:
        yield gw
    finally:
        proc.signal_and_wait(signal.SIGTERM)


@pytest.fixture(scope="session")
def gateway(mock_upstream, log_dir) -> Iterator[Gateway]:
    # debug logging: the secret-leak tests read this gateway's stderr, and the
    # most verbose level is where a leak would show up.
    yield from _gateway_fixture(
        "gateway", gateway_config(base_url=mock_upstream.base_url), log_dir, rust_log="debug"
    )


# The client key the keyed gateway accepts; its name is what the logs may show.
GATEWAY_CLIENT_KEY = "rg-conformance-client-key-7d2e"


@pytest.fixture(scope="session")
def keyed_gateway(mock_upstream, log_dir) -> Iterator[Gateway]:
    config = gateway_config(base_url=mock_upstream.base_url)
    config += f'\n[[api_keys]]\nname = "conformance"\nkey = "{GATEWAY_CLIENT_KEY}"\n'
    yield from _gateway_fixture("keyed-gateway", config, log_dir, rust_log="debug")


@pytest.fixture(scope="session")
def dead_gateway(log_dir) -> Iterator[Gateway]:
    yield from _gateway_fixture(
        "dead-gateway",
        gateway_config(base_url=f"http://127.0.0.1:{closed_port()}"),
        log_dir,
        rust_log="debug",
    )


SMALL_MAX_BODY_BYTES = 2048


@pytest.fixture(scope="session")
def small_body_gateway(mock_upstream, log_dir) -> Iterator[Gateway]:
    yield from _gateway_fixture(
        "small-body-gateway",
        gateway_config(base_url=mock_upstream.base_url, max_body_bytes=SMALL_MAX_BODY_BYTES),
        log_dir,
    )


@pytest.fixture(scope="session")
def builtin_gateway(log_dir) -> Iterator[Gateway]:
    yield from _gateway_fixture(
        "builtin-gateway", gateway_config(kind="mock", api_key=None, workers=1), log_dir
    )


def make_client(gw: Gateway, **kwargs) -> anthropic.Anthropic:
    opts = dict(base_url=gw.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=15.0)
    opts.update(kwargs)
    return anthropic.Anthropic(**opts)


@pytest.fixture
def client(gateway) -> Iterator[anthropic.Anthropic]:
    c = make_client(gateway)
    try:
        yield c
    finally:
        c.close()
        time.sleep(FAULT_COOLDOWN_S)


@pytest.fixture
def dead_client(dead_gateway) -> Iterator[anthropic.Anthropic]:
    c = make_client(dead_gateway)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def small_body_client(small_body_gateway) -> Iterator[anthropic.Anthropic]:
    c = make_client(small_body_gateway)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def builtin_client(builtin_gateway) -> Iterator[anthropic.Anthropic]:
    c = make_client(builtin_gateway)
    try:
        yield c
    finally:
        c.close()


def json_body(data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        raise AssertionError(f"not JSON: {data[:500]!r}")
