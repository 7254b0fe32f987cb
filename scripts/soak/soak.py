#!/usr/bin/env python3
"""Soak test: a release ringgate in front of mock-upstream under a steady mix of good and bad
traffic, with a config reload every 30 s and a drain at the end.

Standard library only (asyncio with raw sockets), so nothing needs installing. Run it through
scripts/soak.sh, which builds the binaries; see docs/RELIABILITY.md ("Soak") for what it checks.

    python3 scripts/soak/soak.py --ringgate BIN --mock BIN [--minutes N] [--out DIR]

Phases: start (mock, gateway) -> prime (every kind twice and 15 s of the full mix, with two
reloads) -> idle-before (every idle timeout runs out: the descriptor baseline) -> load (N
minutes; its warm-up is the first 10% or 30 s, whichever is less; a reload every 30 s) ->
idle-after (load stopped; idle timeouts run out: the descriptor end count) -> drain (streams in
flight, SIGTERM, the exit). One sample of the gateway's RSS, descriptors and connections per
second throughout.
"""

import argparse
import asyncio
import contextvars
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot  # noqa: E402  (scripts/soak/plot.py)

# --- what the soak configures -------------------------------------------------------------

MODEL = "claude-soak-1"  # healthy traffic and the stream faults
ERR_MODEL = "claude-soak-errors"  # error faults (429/529/500 for every credential)
ALIAS = "soak"  # points at ALIAS_TARGETS[0] or [1], alternately, one per config
ALIAS_TARGETS = ("claude-soak-a", "claude-soak-b")
OAI_MODEL = "claude-soak-oai"  # served by the mock in the OpenAI dialect, translated
KEYS = {"a": "soak-key-a", "b": "soak-key-b", "storm": "soak-key-storm", "oai": "soak-key-oai"}

SERVER_IDLE_MS = 3000  # server.idle_timeout_ms
POOL_IDLE_MS = 3000  # pool.idle_timeout_ms
STREAM_IDLE_MS = 2000  # stream.upstream_idle_timeout_ms
WRITE_TIMEOUT_MS = 3000  # stream.client_write_timeout_ms
DRAIN_MS = 5000  # server.drain_timeout_ms
STALL_INTERVAL_MS = 4000  # the stall fault's event interval: twice the idle timeout
RELOAD_EVERY_S = 30
PRIME_S = 15  # the full mix before the descriptor baseline, so that what is made on first use exists
FD_SLACK = 2  # descriptors the end count may exceed the baseline by
RSS_GROWTH_LIMIT = 0.05

# Request kinds: weight (share of arrivals), and whether the outcome must be a complete,
# valid answer ("healthy"), an error the client can see ("fault"), or something the client
# itself cut ("client").
KINDS = {
    # healthy
    "stream": (22, "healthy"),
    "stream_alias": (10, "healthy"),
    "stream_fragmented": (3, "healthy"),
    "stream_big_event": (2, "healthy"),
    "stream_shaped": (5, "healthy"),
    "nonstream": (15, "healthy"),
    "slow_reader_resumes": (2, "healthy"),
    "openai_stream": (5, "healthy"),
    "openai_nonstream": (2, "healthy"),
    # the client's doing
    "abort_mid_stream": (6, "client"),
    "abort_before_answer": (2, "client"),
    "slow_reader_stalls": (1.5, "client"),
    # upstream faults
    "drop_mid_stream": (5, "fault"),
    "garbage": (4, "fault"),
    "error_in_stream": (3, "fault"),
    "no_message_stop": (3, "fault"),
    "stall": (3, "fault"),
    "rate_limit": (5, "fault"),
    "overloaded": (4, "fault"),
    "server_error": (2, "fault"),
    "openai_drop_mid_stream": (1.5, "fault"),
    "openai_garbage": (1.5, "fault"),
    "openai_no_message_stop": (1, "fault"),
    "openai_error_in_stream": (1, "fault"),
}

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
         "zulu").split()


def config_text(variant, port, admin_port, mock_port, state_dir):
    """One of the two configs the soak alternates between (variant 0 or 1): the storm
    credential's weight and the alias's target change."""
    storm_weight = 1 if variant == 0 else 2
    return f"""# ringgate soak config, variant {variant} (written by scripts/soak/soak.py)
[server]
listen = "127.0.0.1:{port}"
workers = 2
pin_cores = false
idle_timeout_ms = {SERVER_IDLE_MS}
request_head_timeout_ms = 5000
drain_timeout_ms = {DRAIN_MS}

[stream]
upstream_idle_timeout_ms = {STREAM_IDLE_MS}
client_write_timeout_ms = {WRITE_TIMEOUT_MS}
keepalive_interval_ms = 0

[routing]
max_attempts = 3
transient_cooldown_ms = 2000
max_cooldown_ms = 5000

[pool]
idle_timeout_ms = {POOL_IDLE_MS}

[models.aliases]
{ALIAS} = "{ALIAS_TARGETS[variant]}"

[admin]
listen = "127.0.0.1:{admin_port}"

[state]
dir = "{state_dir}"

[log]
level = "info"
access = true

[[upstreams]]
name = "mock"
kind = "anthropic"
base_url = "http://127.0.0.1:{mock_port}"
models = ["{MODEL}", "{ERR_MODEL}", "{ALIAS_TARGETS[0]}", "{ALIAS_TARGETS[1]}"]
first_byte_timeout_ms = 10000
response_timeout_ms = 10000

[[upstreams.credentials]]
name = "a"
api_key = "{KEYS['a']}"
weight = 2

[[upstreams.credentials]]
name = "b"
api_key = "{KEYS['b']}"
weight = 2

[[upstreams.credentials]]
name = "storm"
api_key = "{KEYS['storm']}"
weight = {storm_weight}

[[upstreams]]
name = "mock-openai"
kind = "openai"
base_url = "http://127.0.0.1:{mock_port}/v1"
models = ["{OAI_MODEL}"]
first_byte_timeout_ms = 10000
response_timeout_ms = 10000

[[upstreams.credentials]]
name = "oai"
api_key = "{KEYS['oai']}"
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- HTTP/1.1 and SSE, client side ---------------------------------------------------------

# The connections the current request opened, closed when it ends whatever happened.
CONNS = contextvars.ContextVar("conns", default=None)


async def connect(port, rcvbuf=None, limit=1 << 16):
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    if CONNS.get() is not None:
        CONNS.get().append(sock)
    sock.setblocking(False)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
    if CONNS.get() is not None:
        # the transport owns the socket now: close it through the writer
        conns = CONNS.get()
        conns[conns.index(sock)] = writer
    return reader, writer


def request_bytes(port, body, headers, path="/v1/messages", method="POST"):
    head = [f"{method} {path} HTTP/1.1", f"host: 127.0.0.1:{port}"]
    if body is not None:
        head += ["content-type: application/json", f"content-length: {len(body)}"]
    head += ["anthropic-version: 2023-06-01", "x-api-key: soak-client"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


async def read_head(reader):
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


class Body:
    """Reads a response body: Content-Length, chunked, or to EOF. `proper_end` says whether it
    ended as its framing says (the last chunk, or the whole Content-Length)."""

    def __init__(self, reader, headers):
        self.r = reader
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self.length = int(headers["content-length"]) if "content-length" in headers else None
        self.done = False
        self.proper_end = False
        self.keep_alive = headers.get("connection", "").lower() != "close"

    async def next(self):
        """The next piece of the body, or None at its end (proper or not)."""
        if self.done:
            return None
        try:
            if self.chunked:
                line = await self.r.readuntil(b"\r\n")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while (await self.r.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    self.done = self.proper_end = True
                    return None
                data = await self.r.readexactly(size)
                if await self.r.readexactly(2) != b"\r\n":
                    raise ValueError("bad chunk end")
                return data
            if self.length is not None:
                if self.length == 0:
                    self.done = self.proper_end = True
                    return None
                data = await self.r.read(min(self.length, 65536))
                if not data:
                    self.done = True
                    return None
                self.length -= len(data)
                return data
            data = await self.r.read(65536)
            if not data:
                self.done = True
                self.keep_alive = False
                return None
            return data
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            self.done = True
            self.keep_alive = False
            return None

    async def all(self):
        out = bytearray()
        while (piece := await self.next()) is not None:
            out += piece
        return bytes(out)


BLANK = re.compile(rb"\r?\n\r?\n")


class Sse:
    """Splits a body into SSE events: (name, data text). Comment-only blocks are skipped."""

    def __init__(self, body):
        self.body = body
        self.buf = b""
        self.pending = []

    async def next(self):
        while not self.pending:
            m = BLANK.search(self.buf)
            if m:
                block, self.buf = self.buf[: m.start()], self.buf[m.end():]
                ev = parse_block(block)
                if ev is not None:
                    self.pending.append(ev)
                continue
            piece = await self.body.next()
            if piece is None:
                return None
            self.buf += piece
        return self.pending.pop(0)

    def leftover(self):
        return self.buf.strip()


def parse_block(block):
    name, data = None, []
    for line in block.decode("utf-8", "replace").replace("\r", "").split("\n"):
        if line.startswith(":") or not line:
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if name is None and not data:
        return None
    return name, "\n".join(data)


def expected_text(model, words):
    return f"Hello from the ringgate mock upstream ({model}). You said: " + " ".join(words)


class Stream:
    """What one client saw of an event stream."""

    def __init__(self):
        self.events = []  # (name, parsed JSON or None)
        self.unparsed = 0
        self.text = []
        self.proper_end = False


async def read_stream(sse, stream, limit=None):
    """Reads events into `stream` until the end, or until `limit` events."""
    while limit is None or len(stream.events) < limit:
        ev = await sse.next()
        if ev is None:
            stream.proper_end = sse.body.proper_end
            return True
        name, data = ev
        try:
            obj = json.loads(data)
        except ValueError:
            obj = None
            stream.unparsed += 1
        stream.events.append((name, obj))
        if obj and obj.get("type") == "content_block_delta":
            stream.text.append(obj.get("delta", {}).get("text", ""))
    return False


def check_healthy_stream(stream, expect):
    """None when `stream` is a complete, valid Messages stream whose text is `expect` (a
    string, a set of acceptable strings, or a callable judging the text); else why not."""
    ev = stream.events
    if not ev:
        return "no events"
    if stream.unparsed:
        return f"{stream.unparsed} events whose data is not JSON"
    for name, obj in ev:
        if obj.get("type") != name:
            return f"event {name!r} carries data of type {obj.get('type')!r}"
        if name == "error":
            return f"in-band error: {obj.get('error')}"
    names = [n for n, _ in ev if n != "ping"]
    if names[0] != "message_start":
        return f"first event {names[0]!r}"
    if names[-1] != "message_stop":
        return f"last event {names[-1]!r} (lost the end)"
    if names.count("message_start") != 1 or names.count("message_stop") != 1:
        return "message_start or message_stop more than once"
    body = names[1:-1]
    # content_block_start, deltas, content_block_stop, then message_delta
    if not body or body[0] != "content_block_start" or body[-1] != "message_delta":
        return f"bad order: {names[:3]}...{names[-3:]}"
    if body[-2] != "content_block_stop" or any(n != "content_block_delta" for n in body[1:-2]):
        return "bad order inside the content block"
    if not stream.proper_end:
        return "the body did not end with its last chunk"
    text = "".join(stream.text)
    if callable(expect):
        why = expect(text)
        if why:
            return why
    elif isinstance(expect, (set, frozenset)):
        if text not in expect:
            return f"text {text[:80]!r}... is not one of the expected answers"
    elif text != expect:
        return f"text {text[:80]!r} != expected {expect[:80]!r}"
    return None


def check_shaped(n, size):
    def judge(text):
        # every delta is `#IIIIII@TTTTTTTTTTTTTTTT ` + x filler, `size` bytes, in order
        if len(text) != n * size:
            return f"shaped text of {len(text)} bytes, expected {n} x {size}"
        for i in range(n):
            d = text[i * size:(i + 1) * size]
            if d[0] != "#" or int(d[1:7]) != i or d[7] != "@" or not d[8:24].isdigit():
                return f"shaped delta {i} is {d[:25]!r}"
        return None
    return judge


def check_fault_stream(stream):
    """None when the stream ended visibly: its last event an in-band `error` and the body
    properly ended; else why not."""
    if not stream.events:
        return "no events and no error"
    name, obj = stream.events[-1]
    if name != "error" or not obj or obj.get("type") != "error" or "error" not in obj:
        names = [n for n, _ in stream.events]
        return f"ended without an error event (silent truncation): last {names[-3:]}"
    if any(n == "message_stop" for n, _ in stream.events):
        return "a faulted stream reached message_stop"
    if not stream.proper_end:
        return "the error event was not followed by the body's proper end"
    return None


def check_http_error(status, body):
    if status < 400:
        return f"status {status}"
    try:
        obj = json.loads(body)
    except ValueError:
        return f"status {status} with a body that is not JSON: {body[:80]!r}"
    if obj.get("type") != "error" or "type" not in obj.get("error", {}):
        return f"status {status} with a body that is not an error: {body[:80]!r}"
    return None


# --- the load --------------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.counts = defaultdict(lambda: defaultdict(int))  # kind -> outcome -> n
        self.failures = []
        self.alias_models = defaultdict(int)
        self.in_flight = 0
        self.started = 0
        self.skipped = 0
        self.events = 0
        self.http_status = defaultdict(int)

    def outcome(self, kind, outcome, why=None, extra=None):
        self.counts[kind][outcome] += 1
        if outcome == "FAIL":
            if len(self.failures) < 200:
                self.failures.append({"t": round(time.monotonic() - T0, 2), "kind": kind,
                                      "why": why, **(extra or {})})


T0 = time.monotonic()


class Load:
    def __init__(self, port, stats):
        self.port = port
        self.stats = stats

    def body(self, model, stream, words, max_tokens=1024):
        return json.dumps({
            "model": model, "max_tokens": max_tokens, "stream": stream,
            "messages": [{"role": "user", "content": " ".join(words)}],
        }).encode()

    async def run_one(self, kind):
        s = self.stats
        s.in_flight += 1
        s.started += 1
        writer = None
        CONNS.set([])
        try:
            outcome, why, writer = await asyncio.wait_for(self.dispatch(kind), 60)
        except asyncio.TimeoutError:
            outcome, why = "FAIL", "no end within 60 s (hung)"
        except Exception as e:  # noqa: BLE001 - every surprise is a failure to report
            outcome, why = "FAIL", f"{type(e).__name__}: {e}"
        finally:
            s.in_flight -= 1
        s.outcome(kind, outcome, why)
        if writer is not None:
            writer.close()
        for conn in CONNS.get():
            conn.close()  # a StreamWriter, or a socket that never connected

    async def dispatch(self, kind):
        words = random.sample(WORDS, random.randint(3, 14))
        interval = random.randint(20, 80)
        cls = KINDS[kind][1]
        if kind in ("nonstream", "openai_nonstream"):
            return await self.nonstream(words, OAI_MODEL if kind.startswith("openai") else MODEL)
        if kind == "abort_before_answer":
            return await self.abort_before_answer(words)
        if kind in ("slow_reader_resumes", "slow_reader_stalls"):
            return await self.slow_reader(kind == "slow_reader_resumes")
        if kind in ("rate_limit", "overloaded", "server_error"):
            return await self.error_fault(kind, words)
        headers = {"x-mock-event-interval-ms": interval}
        model = MODEL
        expect = None
        if kind.startswith("openai_"):
            model = OAI_MODEL
            expect = expected_text(OAI_MODEL, words)
            if cls == "fault":
                headers["x-mock-fault"] = kind[len("openai_"):]
        elif kind == "stream":
            expect = expected_text(MODEL, words)
        elif kind == "stream_alias":
            model = ALIAS
            expect = {expected_text(m, words) for m in ALIAS_TARGETS}
        elif kind == "stream_fragmented":
            headers["x-mock-fault"] = "fragmented"
            expect = expected_text(MODEL, words)
        elif kind == "stream_big_event":
            headers["x-mock-fault"] = "big_event"
            expect = expected_text(MODEL, words) + " " + "x" * 20000
        elif kind == "stream_shaped":
            n, size = random.randint(50, 300), random.choice((40, 200, 1000))
            headers.update({"x-mock-deltas": n, "x-mock-delta-bytes": size,
                            "x-mock-event-interval-ms": random.randint(2, 10)})
            expect = check_shaped(n, size)
        elif kind == "stall":
            headers["x-mock-event-interval-ms"] = STALL_INTERVAL_MS
        elif cls == "fault":
            headers["x-mock-fault"] = kind
        reader, writer = await connect(self.port)
        writer.write(request_bytes(self.port, self.body(model, True, words), headers))
        status, rh = await read_head(reader)
        self.stats.http_status[status] += 1
        body = Body(reader, rh)
        if status != 200:
            text = (await body.all()).decode("utf-8", "replace")
            if cls == "fault":
                why = check_http_error(status, text)
                return ("http_error", None, writer) if not why else ("FAIL", why, writer)
            if kind == "abort_mid_stream":
                return ("FAIL", f"status {status}: {text[:120]}", writer)
            return ("FAIL", f"status {status}: {text[:120]}", writer)
        stream = Stream()
        sse = Sse(body)
        if kind == "abort_mid_stream":
            await read_stream(sse, stream, limit=random.randint(1, 6))
            if random.random() < 0.5:
                # an abortive close (RST), as a killed client's kernel sends
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            return ("aborted", None, writer)
        await read_stream(sse, stream)
        self.stats.events += len(stream.events)
        if cls == "healthy":
            why = check_healthy_stream(stream, expect)
            if why:
                return ("FAIL", why, writer)
            if kind == "stream_alias":
                text = "".join(stream.text)
                for m in ALIAS_TARGETS:
                    if text.startswith(expected_text(m, [])):
                        self.stats.alias_models[m] += 1
            writer = await self.maybe_keep_alive(reader, writer, body)
            return ("ok", None, writer)
        why = check_fault_stream(stream)
        return ("in_band_error", None, writer) if not why else ("FAIL", why, writer)

    async def maybe_keep_alive(self, reader, writer, body):
        """After a healthy answer on a kept-alive connection: often close it, sometimes send a
        second request on it, sometimes leave it idle and check that the gateway closes it
        after its idle timeout."""
        if not body.keep_alive:
            return writer
        r = random.random()
        if r < 0.6:
            return writer
        if r < 0.85:
            words = random.sample(WORDS, 4)
            writer.write(request_bytes(self.port, self.body(MODEL, False, words), {}))
            status, rh = await read_head(reader)
            text = (await Body(reader, rh).all()).decode()
            why = check_nonstream(status, text, expected_text(MODEL, words))
            self.stats.outcome("keep_alive_second_request", "FAIL" if why else "ok", why)
            return writer
        t = time.monotonic()
        try:
            data = await asyncio.wait_for(reader.read(1), SERVER_IDLE_MS / 1000 + 5)
            why = None if not data else f"data on an idle connection: {data!r}"
        except asyncio.TimeoutError:
            why = f"idle connection still open after {time.monotonic() - t:.1f} s"
        except ConnectionError:
            why = None
        self.stats.outcome("idle_keep_alive_closed", "FAIL" if why else "ok", why)
        return writer

    async def nonstream(self, words, model):
        reader, writer = await connect(self.port)
        writer.write(request_bytes(self.port, self.body(model, False, words), {}))
        status, rh = await read_head(reader)
        self.stats.http_status[status] += 1
        body = Body(reader, rh)
        text = (await body.all()).decode("utf-8", "replace")
        why = check_nonstream(status, text, expected_text(model, words))
        if why:
            return ("FAIL", why, writer)
        if not body.proper_end:
            return ("FAIL", "body shorter than its content-length", writer)
        writer = await self.maybe_keep_alive(reader, writer, body)
        return ("ok", None, writer)

    async def error_fault(self, kind, words):
        stream = random.random() < 0.5
        reader, writer = await connect(self.port)
        writer.write(request_bytes(self.port, self.body(ERR_MODEL, stream, words),
                                   {"x-mock-fault": kind}))
        status, rh = await read_head(reader)
        self.stats.http_status[status] += 1
        text = (await Body(reader, rh).all()).decode("utf-8", "replace")
        why = check_http_error(status, text)
        return ("http_error", None, writer) if not why else ("FAIL", why, writer)

    async def abort_before_answer(self, words):
        reader, writer = await connect(self.port)
        writer.write(request_bytes(self.port, self.body(MODEL, True, words),
                                   {"x-mock-event-interval-ms": 50}))
        await writer.drain()
        await asyncio.sleep(random.uniform(0, 0.05))
        return ("aborted", None, writer)

    async def slow_reader(self, resumes):
        """A large stream to a client with a small receive buffer that stops reading after the
        head: for less than the gateway's write timeout (then it must get every event), or for
        longer (then the gateway may cut it: the connection must close, not hang)."""
        n, size = (400, 1000) if resumes else (4000, 2000)
        reader, writer = await connect(self.port, rcvbuf=4096, limit=4096)
        headers = {"x-mock-deltas": n, "x-mock-delta-bytes": size, "x-mock-event-interval-ms": 0}
        writer.write(request_bytes(self.port, self.body(MODEL, True, ["slow"]), headers))
        status, rh = await read_head(reader)
        self.stats.http_status[status] += 1
        if status != 200:
            return ("FAIL", f"status {status}", writer)
        pause = WRITE_TIMEOUT_MS / 1000 * (0.4 if resumes else 3)
        await asyncio.sleep(pause)
        stream = Stream()
        await read_stream(Sse(Body(reader, rh)), stream)
        why = check_healthy_stream(stream, check_shaped(n, size))
        if resumes:
            return ("ok", None, writer) if not why else ("FAIL", why, writer)
        if not why:
            return ("completed", None, writer)
        # cut for not reading: what did arrive must be the stream's start, whole and in order
        got = len(stream.text)
        bad = stream.unparsed or stream.proper_end or check_shaped(got, size)("".join(stream.text))
        if bad:
            return ("FAIL", f"cut, and what arrived is not an intact start: {bad}", writer)
        return ("cut_by_gateway", None, writer)


def check_nonstream(status, text, expect):
    if status != 200:
        return f"status {status}: {text[:120]}"
    try:
        obj = json.loads(text)
    except ValueError:
        return f"body is not JSON: {text[:80]!r}"
    got = "".join(c.get("text", "") for c in obj.get("content", []))
    if obj.get("type") != "message" or got != expect:
        return f"message text {got[:80]!r} != expected {expect[:80]!r}"
    return None


async def drive(load, rate, until, max_in_flight):
    names = list(KINDS)
    weights = [KINDS[k][0] for k in names]
    tasks = set()
    while time.monotonic() < until:
        await asyncio.sleep(random.expovariate(rate))
        if load.stats.in_flight >= max_in_flight:
            load.stats.skipped += 1
            continue
        kind = random.choices(names, weights)[0]
        t = asyncio.create_task(load.run_one(kind))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)


# --- watching the gateway ----------------------------------------------------------------

def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def socket_table():
    """inode -> (local port, remote port, state) for every TCP socket in this namespace."""
    table = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    p = line.split()
                    table[p[9]] = (int(p[1].rsplit(":", 1)[1], 16),
                                   int(p[2].rsplit(":", 1)[1], 16), p[3])
        except FileNotFoundError:
            pass
    return table


def fds_and_sockets(pid, port, admin_port, mock_port):
    inodes = []
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        n += 1
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.append(link[8:-1])
    table = socket_table()
    conn = {"client": 0, "upstream": 0, "admin": 0, "listen": 0, "other": 0}
    for ino in inodes:
        s = table.get(ino)
        if s is None:
            conn["other"] += 1  # not TCP (a unix or netlink socket), or gone
            continue
        local, remote, state = s
        if state == "0A":
            conn["listen"] += 1
        elif local == port:
            conn["client"] += 1
        elif remote == mock_port:
            conn["upstream"] += 1
        elif local == admin_port:
            conn["admin"] += 1
        else:
            conn["other"] += 1
    return n, conn


async def admin_get(admin_port, path):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", admin_port), 2)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
        status, rh = await asyncio.wait_for(read_head(reader), 2)
        body = await asyncio.wait_for(Body(reader, rh).all(), 2)
        return status, body.decode()
    finally:
        writer.close()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{}"):
            return float(line.rsplit(" ", 1)[1])
    return None


class Sampler:
    def __init__(self, gw, ports, stats):
        self.gw = gw
        self.port, self.admin_port, self.mock_port = ports
        self.stats = stats
        self.samples = []
        self.phase = "start"
        self.generation = None

    async def run(self):
        cpu0, t0 = proc_cpu_s(self.gw.pid), time.monotonic()
        me0 = resource.getrusage(resource.RUSAGE_SELF)
        while self.gw.poll() is None:
            t = time.monotonic()
            try:
                rss = proc_status(self.gw.pid)
                fds, conn = fds_and_sockets(self.gw.pid, self.port, self.admin_port,
                                            self.mock_port)
                cpu = proc_cpu_s(self.gw.pid)
            except (FileNotFoundError, ProcessLookupError, StopIteration):
                break
            active_conns = active_streams = None
            try:
                _, text = await admin_get(self.admin_port, "/metrics")
                active_conns = metric(text, "ringgate_active_connections")
                active_streams = metric(text, "ringgate_active_streams")
                self.generation = metric(text, "ringgate_config_generation")
            except (OSError, asyncio.TimeoutError, ValueError, asyncio.IncompleteReadError):
                pass
            me = resource.getrusage(resource.RUSAGE_SELF)
            self.samples.append({
                "t": round(t - T0, 3), "phase": self.phase, "rss_kib": rss, "fds": fds,
                "client_conns": conn["client"], "upstream_conns": conn["upstream"],
                "admin_conns": conn["admin"], "listen_sockets": conn["listen"],
                "other_sockets": conn["other"],
                "active_connections": active_conns, "active_streams": active_streams,
                "generation": self.generation,
                "gateway_cpu": round((cpu - cpu0) / max(t - t0, 1e-3), 3),
                "driver_cpu": round((me.ru_utime + me.ru_stime - me0.ru_utime - me0.ru_stime)
                                    / max(t - t0, 1e-3), 3),
                "in_flight": self.stats.in_flight,
            })
            cpu0, t0, me0 = cpu, t, me
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t)))


# --- the run -----------------------------------------------------------------------------

async def wait_healthy(port, proc, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"soak: the gateway exited with {proc.returncode} at start")
        try:
            status, _ = await admin_get(port, "/healthz")
            if status == 200:
                return
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("soak: the gateway did not come up")


async def generation(admin_port):
    try:
        _, text = await admin_get(admin_port, "/metrics")
        return metric(text, "ringgate_config_generation")
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
        return None


class Reloader:
    """Alternates the live config file between the two variants and sends SIGHUP; each reload
    must raise the generation the gateway serves by one (read from /metrics)."""

    def __init__(self, gw, live, configs, admin_port):
        self.gw, self.live, self.configs, self.admin_port = gw, live, configs, admin_port
        self.variant = 0

    async def once(self):
        before = None
        while before is None:
            before = await generation(self.admin_port)
        self.variant ^= 1
        tmp = self.live + ".tmp"
        shutil.copyfile(self.configs[self.variant], tmp)
        os.replace(tmp, self.live)
        t = time.monotonic()
        self.gw.send_signal(signal.SIGHUP)
        gen = None
        while time.monotonic() - t < 5:
            await asyncio.sleep(0.1)
            gen = await generation(self.admin_port)
            if gen is not None and gen > before:
                break
        ok = gen == before + 1
        return {"t": round(t - T0, 2), "variant": self.variant, "applied": ok,
                "generation": gen, "seconds": round(time.monotonic() - t, 2)}

    async def every(self, seconds, until, log):
        while True:
            next_at = time.monotonic() + seconds
            if next_at > until:
                return
            await asyncio.sleep(next_at - time.monotonic())
            log.append(await self.once())


async def drain(load, gw):
    """Streams in flight, then SIGTERM: the short ones must finish whole; one longer than the
    drain timeout must end with the in-band "gateway shutting down" error; the process must exit
    0 within the drain timeout (plus the second it gives stragglers)."""
    result = {"short_streams_ok": 0, "short_streams_failed": [], "long_stream": None}

    async def one(long):
        words = random.sample(WORDS, 12)
        interval = 700 if long else 100  # ~26 events: ~18 s, or ~2.5 s
        reader, writer = await connect(load.port)
        writer.write(request_bytes(load.port, load.body(MODEL, True, words),
                                   {"x-mock-event-interval-ms": interval}))
        try:
            status, rh = await read_head(reader)
            stream = Stream()
            await read_stream(Sse(Body(reader, rh)), stream)
        finally:
            writer.close()
        if long:
            last = stream.events[-1] if stream.events else (None, None)
            err = (last[1] or {}).get("error", {}) if last[0] == "error" else {}
            ok = (status == 200 and err.get("type") == "overloaded_error"
                  and stream.proper_end)
            result["long_stream"] = {"ok": ok, "status": status, "events": len(stream.events),
                                     "last": last[0], "error": err}
        else:
            why = check_healthy_stream(stream, expected_text(MODEL, words))
            if why:
                result["short_streams_failed"].append(why)
            else:
                result["short_streams_ok"] += 1

    tasks = [asyncio.create_task(one(i == 0)) for i in range(6)]
    await asyncio.sleep(0.5)
    t = time.monotonic()
    gw.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    try:
        await connect(load.port)
        result["refused_new_connections"] = False
    except OSError:
        result["refused_new_connections"] = True
    while gw.poll() is None and time.monotonic() - t < DRAIN_MS / 1000 + 10:
        await asyncio.sleep(0.05)
    result["exit_seconds"] = round(time.monotonic() - t, 2)
    if gw.poll() is None:
        gw.kill()
        gw.wait()
        result["exit_code"] = None
    else:
        result["exit_code"] = gw.returncode
    done, pending = await asyncio.wait(tasks, timeout=5)
    for p in pending:
        p.cancel()
    for d in done:
        if d.exception():
            result["short_streams_failed"].append(repr(d.exception()))
    return result


def nonzero(counts):
    return {k: {o: n for o, n in sorted(v.items()) if n} for k, v in sorted(counts.items())}


def median(xs):
    return statistics.median(xs) if xs else None


def verdicts(stats, samples, warm_end, load_end, fd_base, fd_end, drain_result, reloads,
             prime_reloads):
    v = {}
    healthy = {k for k, (_, c) in KINDS.items() if c == "healthy"}
    fault = {k for k, (_, c) in KINDS.items() if c == "fault"}
    failed = {k: dict(o) for k, o in stats.counts.items() if o.get("FAIL")}
    v["nothing_lost"] = {
        "pass": not any(k in failed for k in healthy | {"keep_alive_second_request"}),
        "healthy_ok": sum(stats.counts[k]["ok"] for k in healthy),
        "healthy_failed": sum(stats.counts[k]["FAIL"] for k in healthy),
    }
    v["faults_visible"] = {
        "pass": not any(k in failed for k in fault),
        "in_band_error": sum(stats.counts[k]["in_band_error"] for k in fault),
        "http_error": sum(stats.counts[k]["http_error"] for k in fault),
        "silent_or_wrong": sum(stats.counts[k]["FAIL"] for k in fault),
    }
    client = {k for k, (_, c) in KINDS.items() if c == "client"} | {"idle_keep_alive_closed"}
    v["client_side"] = {"pass": not any(k in failed for k in client),
                        "failed": sum(stats.counts[k]["FAIL"] for k in client)}
    v["descriptors"] = {
        "pass": fd_end["fds"] <= fd_base["fds"] + FD_SLACK
        and fd_end["client_conns"] == 0 and fd_end["upstream_conns"] == 0
        and fd_end["active_connections"] == 0 and fd_end["active_streams"] == 0,
        "baseline": fd_base, "end": fd_end, "slack": FD_SLACK,
        "peak": max((s["fds"] for s in samples), default=None),
    }
    load = [s for s in samples if s["phase"] in ("warm-up", "load")]
    warm = [s["rss_kib"] for s in load if warm_end[0] <= s["t"] <= warm_end[1]]
    # the last 10% of the whole load phase (warm-up included)
    t_first = load[0]["t"] if load else 0
    last = [s["rss_kib"] for s in load
            if load_end - 0.1 * (load_end - t_first) <= s["t"] <= load_end]
    rw, re_ = median(warm), median(last)
    growth = (re_ - rw) / rw if rw and re_ else None
    v["memory"] = {"pass": growth is not None and growth <= RSS_GROWTH_LIMIT,
                   "warm_up_rss_kib": rw, "end_rss_kib": re_,
                   "growth": None if growth is None else round(growth, 4),
                   "limit": RSS_GROWTH_LIMIT,
                   "peak_rss_kib": max((s["rss_kib"] for s in samples), default=None)}
    # every reload applied (the generation rose by one), and with one during the load the
    # alias answered with both of its targets: the new config was served
    every = reloads + prime_reloads
    v["reloads"] = {"pass": all(r["applied"] for r in every)
                    and (len(stats.alias_models) == 2 if reloads else True),
                    "done": len(reloads), "applied": sum(r["applied"] for r in reloads),
                    "prime_done": len(prime_reloads),
                    "prime_applied": sum(r["applied"] for r in prime_reloads),
                    "alias_answers": dict(stats.alias_models)}
    lng = drain_result.get("long_stream") or {}
    v["drain"] = {
        "pass": drain_result.get("exit_code") == 0
        and drain_result["exit_seconds"] <= DRAIN_MS / 1000 + 1.5
        and not drain_result["short_streams_failed"] and lng.get("ok", False)
        and drain_result.get("refused_new_connections", False),
        **drain_result,
    }
    v["pass"] = all(x["pass"] for x in v.values() if isinstance(x, dict))
    return v


async def main_async(args):
    global T0
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    state = os.path.join(out, "state")
    shutil.rmtree(state, ignore_errors=True)
    total = args.minutes * 60
    warm = min(0.1 * total, 30.0)

    mock_log = open(os.path.join(out, "mock-upstream.log"), "w")
    mock = subprocess.Popen(
        [args.mock, "--listen", "127.0.0.1:0", "--workers", "1",
         "--fault-for-key", f"{KEYS['storm']}=rate_limit"],
        stdout=subprocess.PIPE, stderr=mock_log, text=True)
    gw = None
    try:
        line = mock.stdout.readline()
        m = re.search(r"listening on \S+:(\d+)", line)
        if not m:
            raise SystemExit(f"soak: mock-upstream said {line!r}")
        mock_port = int(m.group(1))
        port, admin_port = free_port(), free_port()
        configs = []
        for variant in (0, 1):
            path = os.path.join(out, f"ringgate-{variant}.toml")
            with open(path, "w") as f:
                f.write(config_text(variant, port, admin_port, mock_port, state))
            configs.append(path)
        live = os.path.join(out, "ringgate.toml")
        shutil.copyfile(configs[0], live)
        gw_log = open(os.path.join(out, "ringgate.log"), "w")
        gw = subprocess.Popen([args.ringgate, "serve", "--config", live],
                              stdout=gw_log, stderr=subprocess.STDOUT)
        T0 = time.monotonic()
        await wait_healthy(admin_port, gw)
        stats = Stats()
        load = Load(port, stats)
        sampler = Sampler(gw, (port, admin_port, mock_port), stats)
        sampling = asyncio.create_task(sampler.run())

        # prime: every kind twice and the full mix for PRIME_S, with two reloads (there and
        # back), so that what is made on first use exists (buffers, pooled connections, spare
        # relay buffers, a second generation beside the first); then idle
        sampler.phase = "prime"
        print(f"soak: gateway pid {gw.pid} on 127.0.0.1:{port} (admin {admin_port}), "
              f"mock-upstream on {mock_port}; {args.minutes:g} min of load at "
              f"{args.rate:g} req/s, warm-up {warm:.0f} s", flush=True)
        prime_until = time.monotonic() + PRIME_S
        reloader = Reloader(gw, live, configs, admin_port)
        prime_reloads = []
        await asyncio.gather(*(load.run_one(k) for k in KINDS for _ in range(2)),
                             drive(load, args.rate, prime_until, args.max_in_flight),
                             reloader.every(PRIME_S / 3, prime_until, prime_reloads))
        prime_counts = nonzero(stats.counts)
        idle_wait = max(SERVER_IDLE_MS, POOL_IDLE_MS) / 1000 + 4
        sampler.phase = "idle-before"
        await asyncio.sleep(idle_wait)
        fd_base = {k: sampler.samples[-1][k] for k in ("fds", "client_conns", "upstream_conns")}
        stats = Stats()
        load.stats = sampler.stats = stats

        # the load, with reloads
        t_load = time.monotonic()
        sampler.phase = "warm-up"
        until = t_load + total
        reloads = []
        reloading = asyncio.create_task(reloader.every(RELOAD_EVERY_S, until, reloads))

        async def phase_switch():
            await asyncio.sleep(warm)
            sampler.phase = "load"
        switching = asyncio.create_task(phase_switch())
        progress_every = max(10.0, total / 10)

        async def progress():
            while True:
                await asyncio.sleep(progress_every)
                s = sampler.samples[-1] if sampler.samples else {}
                ok = sum(v["ok"] for v in stats.counts.values())
                bad = sum(v["FAIL"] for v in stats.counts.values())
                print(f"soak: t={time.monotonic() - t_load:5.0f}s requests={stats.started} "
                      f"ok={ok} FAIL={bad} in_flight={stats.in_flight} "
                      f"rss={s.get('rss_kib', 0) / 1024:.1f}MiB fds={s.get('fds')} "
                      f"gen={s.get('generation')}", flush=True)
        progressing = asyncio.create_task(progress())
        await drive(load, args.rate, until, args.max_in_flight)
        load_end = until - T0  # when the last request started, not when it ended
        progressing.cancel()
        switching.cancel()
        await reloading

        # idle: every idle timeout runs out
        sampler.phase = "idle-after"
        await asyncio.sleep(idle_wait)
        fd_end = {k: sampler.samples[-1][k] for k in ("fds", "client_conns", "upstream_conns",
                                                      "active_connections", "active_streams")}

        # drain
        sampler.phase = "drain"
        drain_result = await drain(load, gw)
        sampling.cancel()

        warm_window = (t_load - T0 + warm / 2, t_load - T0 + warm)
        v = verdicts(stats, sampler.samples, warm_window, load_end, fd_base, fd_end,
                     drain_result, reloads, prime_reloads)
        load_s = [s for s in sampler.samples if s["phase"] in ("warm-up", "load")]
        report = {
            "minutes": args.minutes, "rate": args.rate, "warm_up_seconds": warm,
            "settings": {"server_idle_timeout_ms": SERVER_IDLE_MS,
                         "pool_idle_timeout_ms": POOL_IDLE_MS,
                         "upstream_idle_timeout_ms": STREAM_IDLE_MS,
                         "client_write_timeout_ms": WRITE_TIMEOUT_MS,
                         "drain_timeout_ms": DRAIN_MS, "reload_every_s": RELOAD_EVERY_S,
                         "kinds": {k: {"weight": w, "class": c} for k, (w, c) in KINDS.items()}},
            "verdicts": v,
            "counts": nonzero(stats.counts),
            "prime_counts": prime_counts,
            "prime_reloads": prime_reloads,
            "requests": stats.started, "skipped_at_max_in_flight": stats.skipped,
            "events_read": stats.events,
            "http_status": dict(stats.http_status),
            "alias_answers": dict(stats.alias_models),
            "reloads": reloads,
            "failures": stats.failures,
            "load_cpu": {
                "gateway_mean": round(statistics.mean(s["gateway_cpu"] for s in load_s), 3)
                if load_s else None,
                "driver_mean": round(statistics.mean(s["driver_cpu"] for s in load_s), 3)
                if load_s else None,
                "in_flight_mean": round(statistics.mean(s["in_flight"] for s in load_s), 1)
                if load_s else None,
                "active_streams_mean": round(statistics.mean(
                    s["active_streams"] or 0 for s in load_s), 1) if load_s else None,
            },
            "samples": sampler.samples,
        }
        with open(os.path.join(out, "soak.json"), "w") as f:
            json.dump(report, f, indent=1)
        with open(os.path.join(out, "soak.svg"), "w") as f:
            f.write(plot.svg(report))
        print_summary(report, out)
        return 0 if v["pass"] else 1
    finally:
        if gw is not None and gw.poll() is None:
            gw.kill()
            gw.wait()
        mock.send_signal(signal.SIGTERM)
        try:
            mock.wait(5)
        except subprocess.TimeoutExpired:
            mock.kill()


def print_summary(r, out):
    v = r["verdicts"]
    mark = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    print()
    print(f"soak summary ({r['minutes']:g} min, {r['requests']} requests, "
          f"{r['events_read']} events read)")
    width = max(len(k) for k in r["counts"])
    for kind, outcomes in r["counts"].items():
        print(f"  {kind:<{width}}  " + "  ".join(f"{o}={n}" for o, n in sorted(outcomes.items())))
    nl, fv, d, m = v["nothing_lost"], v["faults_visible"], v["descriptors"], v["memory"]
    print(f"{mark(nl['pass'])} nothing lost: {nl['healthy_ok']} healthy answers whole, "
          f"{nl['healthy_failed']} lost or garbled")
    print(f"{mark(fv['pass'])} faults visible: {fv['in_band_error']} in-band errors, "
          f"{fv['http_error']} HTTP errors, {fv['silent_or_wrong']} silent or wrong")
    print(f"{mark(v['client_side']['pass'])} client-side cases: "
          f"{v['client_side']['failed']} failed")
    print(f"{mark(d['pass'])} descriptors: baseline {d['baseline']['fds']}, end "
          f"{d['end']['fds']} (slack {d['slack']}), peak {d['peak']}; at the end: "
          f"client conns {d['end']['client_conns']}, upstream conns "
          f"{d['end']['upstream_conns']}, gauges ringgate_active_connections "
          f"{d['end']['active_connections']:g}, ringgate_active_streams "
          f"{d['end']['active_streams']:g}")
    g = m["growth"]
    print(f"{mark(m['pass'])} memory: RSS warm-up {m['warm_up_rss_kib'] / 1024:.1f} MiB, end "
          f"{m['end_rss_kib'] / 1024:.1f} MiB, growth "
          f"{'n/a' if g is None else f'{g * 100:+.2f}%'} (limit "
          f"{m['limit'] * 100:.0f}%), peak {m['peak_rss_kib'] / 1024:.1f} MiB")
    rl = v["reloads"]
    print(f"{mark(rl['pass'])} reloads: {rl['applied']}/{rl['done']} applied under load "
          f"(and {rl['prime_applied']}/{rl['prime_done']} while priming); alias answers "
          f"{r['alias_answers']}")
    dr = v["drain"]
    print(f"{mark(dr['pass'])} drain: exit {dr['exit_code']} after {dr['exit_seconds']} s "
          f"(drain timeout {DRAIN_MS / 1000:g} s); {dr['short_streams_ok']} short streams "
          f"whole, long stream {'ended in-band' if (dr['long_stream'] or {}).get('ok') else dr['long_stream']}"
          f", new connections refused: {dr.get('refused_new_connections')}")
    c = r["load_cpu"]
    print(f"load: gateway CPU {c['gateway_mean']}, driver CPU {c['driver_mean']} (cores); "
          f"{c['in_flight_mean']} requests in flight, {c['active_streams_mean']} streams "
          f"relayed on average")
    for f in r["failures"][:15]:
        print(f"  failure: {f}")
    print(f"{'PASS' if v['pass'] else 'FAIL'}: {out}/soak.json, {out}/soak.svg")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ringgate", required=True)
    p.add_argument("--mock", required=True)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--rate", type=float, default=30, help="requests started per second")
    p.add_argument("--max-in-flight", type=int, default=200)
    p.add_argument("--out", default="target/soak")
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    if args.seed is not None:
        random.seed(args.seed)
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
