"""Message Batches and Files through the gateway, driven by the official SDK.

A real ``mock-upstream`` (``--log-requests``, no ``--api-key``: any key is accepted, and each
batch or file belongs to the key that created it, as in separate Anthropic workspaces) sits
behind real gateway processes that hold two upstream credentials (``key-one``, ``key-two``,
round-robin) and two client keys (``team-a``, ``team-b``), each gateway with its own ``[state]
dir``. The mock logs one line per answered request with a fingerprint of the key it came with,
so every test can check from the upstream's side which credential the gateway used for what.

Covered: the batch and file lifecycles as the SDK sees them, credential affinity of every read,
ownership between client keys and paginated lists, records that survive a restart, a 200 MB
upload and download with the gateway's resident memory sampled, an upload abandoned midway,
unknown and forwarded paths, and the errors of a too-large upload and of a batch that would
need two upstreams.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import anthropic
import pytest

from conftest import (
    LISTEN_RE_MOCK,
    Gateway,
    Proc,
    _binary,
    json_body,
    make_client,
    raw_request,
    start_gateway,
)

KEY_ONE = "key-one"
KEY_TWO = "key-two"
TEAM_A_KEY = "rg-objects-team-a-key-51c0"
TEAM_B_KEY = "rg-objects-team-b-key-9e7d"
TEAMS = {"a": TEAM_A_KEY, "b": TEAM_B_KEY}
FILES_BETA = "files-api-2025-04-14"
BETAS = [FILES_BETA]
MODEL = "claude-haiku-4-5"

BATCHES = "/v1/messages/batches"
FILES = "/v1/files"


def fingerprint(key: str) -> str:
    """As the mock logs a key: the first 12 hex digits of its SHA-256 (src/mock/server.rs)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


# The names the mock's log lines are read back into.
KEY_NAMES = {
    fingerprint(KEY_ONE): KEY_ONE,
    fingerprint(KEY_TWO): KEY_TWO,
    fingerprint(TEAM_A_KEY): "client:team-a",
    fingerprint(TEAM_B_KEY): "client:team-b",
    "-": "none",
}

ANSWERED = re.compile(
    r"mock::requests\] answered (?P<method>[A-Z]+) (?P<path>\S+) key=(?P<key>\S+) "
    r"status=(?P<status>\d+)\s*$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Answered:
    method: str
    path: str
    key: str  # key-one, key-two, client:team-a, ... or the raw fingerprint
    status: int

    def about(self, object_id: str) -> bool:
        return object_id in self.path.split("/")


class MockLog:
    """The mock's request log (its stderr), read from a mark on."""

    def __init__(self, proc: Proc):
        self.proc = proc

    def mark(self) -> int:
        return self.proc.stderr_path.stat().st_size

    def since(self, mark: int = 0) -> list[Answered]:
        with open(self.proc.stderr_path, "rb") as f:
            f.seek(mark)
            text = f.read().decode("utf-8", errors="replace")
        return [
            Answered(m["method"], m["path"], KEY_NAMES.get(m["key"], m["key"]), int(m["status"]))
            for m in ANSWERED.finditer(text)
        ]

    def creates(self, mark: int, path: str) -> list[Answered]:
        return [a for a in self.since(mark) if a.method == "POST" and a.path == path]


@dataclass
class ObjectsMock:
    proc: Proc
    port: int
    log: MockLog

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def objects_mock(log_dir) -> Iterator[ObjectsMock]:
    proc = Proc(
        "mock-upstream-objects",
        [
            _binary("MOCK_UPSTREAM_BIN", "mock-upstream"),
            "--listen", "127.0.0.1:0",
            "--workers", "1",
            "--event-interval-ms", "0",
            "--log-requests",
        ],
        log_dir,
        env={"RUST_LOG": "warn"},
    )
    try:
        m = proc.wait_for("stdout", LISTEN_RE_MOCK)
        yield ObjectsMock(proc=proc, port=int(m.group(1)), log=MockLog(proc))
    finally:
        proc.signal_and_wait(signal.SIGTERM)


def objects_config(
    state_dir: Path,
    upstreams: list[tuple[str, str, list[str], list[tuple[str, str]]]],
    *,
    workers: int = 2,
    server: tuple[str, ...] = (),
    routing: tuple[str, ...] = (),
) -> str:
    """`upstreams`: (name, base_url, models, [(credential name, key)])."""
    lines = ["[server]", 'listen = "127.0.0.1:0"', f"workers = {workers}", *server]
    lines += ["", "[routing]", 'strategy = "round-robin"', *routing]
    lines += ["", "[state]", f"dir = {json.dumps(str(state_dir))}"]
    for name, base_url, models, credentials in upstreams:
        lines += [
            "",
            "[[upstreams]]",
            f'name = "{name}"',
            'kind = "anthropic"',
            f'base_url = "{base_url}"',
            f"models = {json.dumps(models)}",
        ]
        for cname, key in credentials:
            lines += ["", "[[upstreams.credentials]]", f'name = "{cname}"', f'api_key = "{key}"']
    for team, key in TEAMS.items():
        lines += ["", "[[api_keys]]", f'name = "team-{team}"', f'key = "{key}"']
    return "\n".join(lines) + "\n"


@dataclass
class Started:
    gateway: Gateway
    config: str


@pytest.fixture
def start_objects_gateway(objects_mock, log_dir, tmp_path, request) -> Iterator[Callable[..., Started]]:
    """Starts gateways in front of the objects mock (each with its own state dir unless one is
    given, or a config to reuse); all are stopped (SIGTERM, by PID) at the end of the test."""
    procs: list[Proc] = []
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)

    def start(
        *,
        state_dir: Optional[Path] = None,
        config: Optional[str] = None,
        upstreams=None,
        **kwargs,
    ) -> Started:
        n = len(procs)
        if config is None:
            if state_dir is None:
                state_dir = tmp_path / f"state-{n}"
            upstreams = upstreams or [
                ("mock", objects_mock.base_url, ["*"], [("one", KEY_ONE), ("two", KEY_TWO)])
            ]
            config = objects_config(state_dir, upstreams, **kwargs)
        gw, proc = start_gateway(f"objects-{base}-{n}", config, log_dir)
        procs.append(proc)
        return Started(gw, config)

    try:
        yield start
    finally:
        for proc in procs:
            proc.signal_and_wait(signal.SIGTERM)


def team(gw: Gateway, name: str, **kwargs) -> anthropic.Anthropic:
    return make_client(gw, api_key=TEAMS[name], **kwargs)


def batch_request(custom_id: str, model: str = MODEL) -> dict:
    return {
        "custom_id": custom_id,
        "params": {
            "model": model,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": f"say something for {custom_id}"}],
        },
    }


def create_batch(c: anthropic.Anthropic, custom_ids: list[str], ms: int = 200, model: str = MODEL):
    return c.messages.batches.create(
        requests=[batch_request(i, model) for i in custom_ids],
        extra_headers={"x-mock-batch-ms": str(ms)},
    )


def wait_ended(c: anthropic.Anthropic, batch_id: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        b = c.messages.batches.retrieve(batch_id)
        if b.processing_status == "ended":
            return b
        assert time.monotonic() < deadline, f"batch {batch_id} still {b.processing_status}"
        time.sleep(0.05)


def upload(c: anthropic.Anthropic, name: str, data: bytes, mime: str = "text/plain"):
    return c.beta.files.upload(file=(name, data, mime), betas=BETAS)


def file_ids(c: anthropic.Anthropic, **kwargs) -> list[str]:
    return [f.id for f in c.beta.files.list(betas=BETAS, **kwargs).data]


def batch_ids(c: anthropic.Anthropic, **kwargs) -> list[str]:
    return [b.id for b in c.messages.batches.list(**kwargs).data]


def created_by(log: MockLog, mark: int, path: str) -> str:
    """The upstream key of the one create answered since `mark`."""
    creates = log.creates(mark, path)
    assert len(creates) == 1, f"expected one create of {path} in the mock's log, got {creates}"
    assert creates[0].status == 200, creates
    assert creates[0].key in (KEY_ONE, KEY_TWO), creates
    return creates[0].key


def wait_access_line(gw: Gateway, pattern: re.Pattern, timeout: float = 5.0) -> re.Match:
    """Access lines reach stderr in batches (every 250 ms): wait for one that matches."""
    deadline = time.monotonic() + timeout
    while True:
        m = pattern.search(gw.stderr())
        if m:
            return m
        assert time.monotonic() < deadline, f"no access line matching {pattern.pattern!r}"
        time.sleep(0.05)


# --------------------------------------------------------------------------
# 1. batches


def test_batch_lifecycle(start_objects_gateway):
    gw = start_objects_gateway().gateway
    with team(gw, "a") as c:
        batch = create_batch(c, ["r1", "r2", "r3"])
        assert batch.id.startswith("msgbatch_")
        assert batch.processing_status == "in_progress"
        assert batch.request_counts.processing == 3
        assert batch.results_url is None

        ended = wait_ended(c, batch.id)
        assert ended.request_counts.succeeded == 3
        assert ended.request_counts.processing == 0
        assert ended.results_url == f"{gw.base_url}{BATCHES}/{batch.id}/results", ended.results_url

        listed = c.messages.batches.list().data
        assert [b.id for b in listed] == [batch.id]
        assert listed[0].results_url == ended.results_url

        results = list(c.messages.batches.results(batch.id))
        assert sorted(r.custom_id for r in results) == ["r1", "r2", "r3"]
        for r in results:
            assert r.result.type == "succeeded", r
            assert r.result.message.role == "assistant"
            assert r.result.message.content and r.result.message.content[0].text

        # Cancel one still in progress: canceling (the mock's cancel completes when the batch
        # would have ended), then ended with every request canceled.
        slow = create_batch(c, ["s1", "s2"], ms=1500)
        canceled = c.messages.batches.cancel(slow.id)
        assert canceled.id == slow.id
        assert canceled.processing_status in ("canceling", "ended")
        assert canceled.cancel_initiated_at is not None
        final = wait_ended(c, slow.id)
        assert final.request_counts.canceled == 2
        assert final.request_counts.succeeded == 0
        assert [r.result.type for r in c.messages.batches.results(slow.id)] == ["canceled"] * 2

        assert batch_ids(c) == [slow.id, batch.id]

        deleted = c.messages.batches.delete(batch.id)
        assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
        with pytest.raises(anthropic.NotFoundError):
            c.messages.batches.retrieve(batch.id)
        with pytest.raises(anthropic.NotFoundError):
            c.messages.batches.delete(batch.id)
        assert batch_ids(c) == [slow.id]


# --------------------------------------------------------------------------
# 2. files


def test_file_lifecycle(start_objects_gateway):
    gw = start_objects_gateway().gateway
    data = b"the quick brown fox jumps over the lazy dog\n" * 500
    with team(gw, "a") as c:
        f = upload(c, "a.txt", data)
        assert f.id.startswith("file_")
        assert (f.filename, f.size_bytes, f.mime_type) == ("a.txt", len(data), "text/plain")

        assert file_ids(c) == [f.id]
        meta = c.beta.files.retrieve_metadata(f.id, betas=BETAS)
        assert (meta.id, meta.filename, meta.size_bytes) == (f.id, "a.txt", len(data))
        assert c.beta.files.download(f.id, betas=BETAS).read() == data

        deleted = c.beta.files.delete(f.id, betas=BETAS)
        assert deleted.id == f.id
        with pytest.raises(anthropic.NotFoundError):
            c.beta.files.retrieve_metadata(f.id, betas=BETAS)
        with pytest.raises(anthropic.NotFoundError):
            c.beta.files.download(f.id, betas=BETAS)
        assert file_ids(c) == []


# --------------------------------------------------------------------------
# 3. credential affinity


def test_every_read_goes_through_the_creating_credential(start_objects_gateway, objects_mock):
    gw = start_objects_gateway().gateway
    log = objects_mock.log
    start = log.mark()
    creator: dict[str, str] = {}
    contents: dict[str, bytes] = {}
    with team(gw, "a") as c:
        for i in range(5):
            mark = log.mark()
            data = f"file {i}\n".encode() * (i + 1)
            f = upload(c, f"f{i}.txt", data)
            creator[f.id] = created_by(log, mark, FILES)
            contents[f.id] = data
        batches = []
        for i in range(3):
            mark = log.mark()
            b = create_batch(c, [f"b{i}-1", f"b{i}-2"])
            creator[b.id] = created_by(log, mark, BATCHES)
            batches.append(b.id)
        assert {creator[i] for i in contents} == {KEY_ONE, KEY_TWO}, creator
        assert {creator[i] for i in batches} == {KEY_ONE, KEY_TWO}, creator

        after_creates = log.mark()
        # Reads of every kind, twice over, so that they land on both workers and both
        # credentials would be next in the rotation at some point.
        for _ in range(2):
            for fid, data in contents.items():
                assert c.beta.files.retrieve_metadata(fid, betas=BETAS).id == fid
                assert c.beta.files.download(fid, betas=BETAS).read() == data
            assert sorted(file_ids(c)) == sorted(contents)
            for bid in batches:
                wait_ended(c, bid)
                assert len(list(c.messages.batches.results(bid))) == 2
            assert sorted(batch_ids(c)) == sorted(batches)
        for fid in contents:
            c.beta.files.delete(fid, betas=BETAS)
        for bid in batches:
            c.messages.batches.delete(bid)

    reads = log.since(after_creates)
    for object_id, key in creator.items():
        about = [a for a in reads if a.about(object_id)]
        # retrieve, content/results, list description, each twice, and the delete
        assert len(about) >= 7, (object_id, about)
        wrong = [a for a in about if a.key != key]
        assert not wrong, f"{object_id} was created with {key}, later requests used {wrong}"
        assert all(a.status == 200 for a in about), about
    # Nothing about these objects went upstream with a client key.
    assert not [a for a in log.since(start) if a.key.startswith("client:")]


# --------------------------------------------------------------------------
# 4. ownership and lists


def test_other_keys_get_404_and_empty_lists(start_objects_gateway, objects_mock):
    gw = start_objects_gateway().gateway
    log = objects_mock.log
    with team(gw, "a") as a, team(gw, "b") as b:
        a_batch = create_batch(a, ["x1", "x2"])
        a_slow = create_batch(a, ["y1"], ms=60_000)
        a_file = upload(a, "mine.txt", b"team a's secret")
        wait_ended(a, a_batch.id)

        mark = log.mark()
        for call in [
            lambda: b.messages.batches.retrieve(a_batch.id),
            lambda: b.messages.batches.results(a_batch.id),
            lambda: b.messages.batches.cancel(a_slow.id),
            lambda: b.messages.batches.delete(a_batch.id),
            lambda: b.beta.files.retrieve_metadata(a_file.id, betas=BETAS),
            lambda: b.beta.files.download(a_file.id, betas=BETAS),
            lambda: b.beta.files.delete(a_file.id, betas=BETAS),
        ]:
            with pytest.raises(anthropic.NotFoundError) as ei:
                call()
            assert ei.value.body["error"]["type"] == "not_found_error"
        # The results path itself, as the SDK would follow a results_url it had kept.
        status, _, body = raw_request(
            gw.port, "GET", f"{BATCHES}/{a_batch.id}/results", headers={"x-api-key": TEAM_B_KEY}
        )
        assert status == 404, body
        assert json_body(body)["error"]["type"] == "not_found_error"
        assert batch_ids(b) == []
        assert file_ids(b) == []
        # The gateway answered all of that itself: nothing reached the upstream for these ids.
        leaked = [x for x in log.since(mark) if any(x.about(i) for i in (a_batch.id, a_slow.id, a_file.id))]
        assert not leaked, leaked

        # team-a's objects are untouched; each team sees exactly its own.
        assert a.messages.batches.retrieve(a_batch.id).processing_status == "ended"
        assert a.messages.batches.retrieve(a_slow.id).processing_status == "in_progress"
        assert a.beta.files.download(a_file.id, betas=BETAS).read() == b"team a's secret"
        b_file = upload(b, "theirs.txt", b"team b")
        b_batch = create_batch(b, ["z1"])
        assert batch_ids(a) == [a_slow.id, a_batch.id]
        assert file_ids(a) == [a_file.id]
        assert batch_ids(b) == [b_batch.id]
        assert file_ids(b) == [b_file.id]
        with pytest.raises(anthropic.NotFoundError):
            a.beta.files.retrieve_metadata(b_file.id, betas=BETAS)
        a.messages.batches.cancel(a_slow.id)


def test_lists_paginate_newest_first(start_objects_gateway):
    gw = start_objects_gateway().gateway
    with team(gw, "a") as a, team(gw, "b") as b:
        files = [upload(a, f"p{i}.txt", f"page {i}".encode()).id for i in range(6)]
        batches = [create_batch(a, [f"p{i}"]).id for i in range(5)]
        # Another key's objects, interleaved in time, never show.
        upload(b, "other.txt", b"other")
        create_batch(b, ["other"])
        files_newest_first = files[::-1]
        batches_newest_first = batches[::-1]

        # Batches: the SDK's auto-pagination (after_id = last_id while has_more).
        pages = list(a.messages.batches.list(limit=2).iter_pages())
        assert [len(p.data) for p in pages] == [2, 2, 1]
        assert [x.id for p in pages for x in p.data] == batches_newest_first
        assert [x.id for x in a.messages.batches.list(limit=2)] == batches_newest_first
        # before_id walks back towards the newest.
        back = a.messages.batches.list(limit=2, before_id=batches_newest_first[3])
        assert [x.id for x in back.data] == batches_newest_first[1:3]

        # Files: after_id cursors, page by page.
        seen, after = [], None
        while True:
            query = {"limit": 2, **({"after_id": after} if after else {})}
            status, _, body = raw_request(
                gw.port,
                "GET",
                f"{FILES}?beta=true&" + "&".join(f"{k}={v}" for k, v in query.items()),
                headers={"x-api-key": TEAM_A_KEY, "anthropic-beta": FILES_BETA},
            )
            assert status == 200, body
            page = json_body(body)
            ids = [x["id"] for x in page["data"]]
            assert 1 <= len(ids) <= 2
            assert (page["first_id"], page["last_id"]) == (ids[0], ids[-1])
            seen += ids
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert seen == files_newest_first


def test_files_sdk_auto_pagination(start_objects_gateway):
    """The installed SDK's own iteration over `client.beta.files.list(limit=2)` must reach every
    file, whatever cursor style that SDK version pages Files with."""
    gw = start_objects_gateway().gateway
    with team(gw, "a") as a:
        files = [upload(a, f"q{i}.txt", f"q {i}".encode()).id for i in range(5)]
        first = a.beta.files.list(limit=2, betas=BETAS)
        listed = [f.id for f in first]
        page_keys = sorted(first.to_dict()) if hasattr(first, "to_dict") else None
        assert listed == files[::-1], (
            f"anthropic {anthropic.__version__} pages Files with {type(first).__name__} "
            f"(next_page_info {first.next_page_info()!r}); the gateway's first page has the keys "
            f"{page_keys or vars(first)}, so iteration stopped after {len(listed)} of {len(files)}"
        )
        # Given ids: one page of those the caller may see, newest first; others left out.
        picked = a.beta.files.list(ids=[files[1], files[3], "file_nope"], betas=BETAS)
        assert [f.id for f in picked] == [files[3], files[1]]
    with team(gw, "b") as b:
        assert [f.id for f in b.beta.files.list(ids=files[:2], betas=BETAS)] == []
        with pytest.raises(anthropic.BadRequestError):
            b.beta.files.list(scope_id="session_1", betas=BETAS)


# --------------------------------------------------------------------------
# 5. restart


def test_records_survive_a_restart(start_objects_gateway, objects_mock, tmp_path):
    log = objects_mock.log
    first = start_objects_gateway(state_dir=tmp_path / "shared-state")
    gw = first.gateway
    creator: dict[str, str] = {}
    data = {}
    with team(gw, "a") as a:
        batches = []
        for i in range(2):
            mark = log.mark()
            bid = create_batch(a, [f"r{i}-1", f"r{i}-2"]).id
            creator[bid] = created_by(log, mark, BATCHES)
            batches.append(bid)
        files = []
        for i in range(2):
            mark = log.mark()
            data_i = f"survives {i}".encode() * 100
            fid = upload(a, f"r{i}.txt", data_i).id
            creator[fid] = created_by(log, mark, FILES)
            data[fid] = data_i
            files.append(fid)
        for bid in batches:
            wait_ended(a, bid)
    assert gw.proc.signal_and_wait(signal.SIGTERM) == 0, gw.proc.describe()

    second = start_objects_gateway(config=first.config).gateway
    mark = log.mark()
    with team(second, "a") as a, team(second, "b") as b:
        for bid in batches:
            got = a.messages.batches.retrieve(bid)
            assert got.processing_status == "ended"
            assert got.results_url == f"{second.base_url}{BATCHES}/{bid}/results"
            assert sorted(r.custom_id for r in a.messages.batches.results(bid)) == sorted(
                [f"r{batches.index(bid)}-1", f"r{batches.index(bid)}-2"]
            )
        for fid in files:
            assert a.beta.files.retrieve_metadata(fid, betas=BETAS).size_bytes == len(data[fid])
            assert a.beta.files.download(fid, betas=BETAS).read() == data[fid]
        assert batch_ids(a) == batches[::-1]
        assert file_ids(a) == files[::-1]
        # Ownership survives too.
        assert batch_ids(b) == [] and file_ids(b) == []
        with pytest.raises(anthropic.NotFoundError):
            b.beta.files.download(files[0], betas=BETAS)
    reads = log.since(mark)
    for object_id, key in creator.items():
        about = [x for x in reads if x.about(object_id)]
        assert len(about) >= 3, (object_id, about)
        assert all(x.key == key and x.status == 200 for x in about), (object_id, key, about)


# --------------------------------------------------------------------------
# 6. a large transfer, with the gateway's memory sampled

LARGE_BYTES = 200 * 1000 * 1000
RSS_DELTA_LIMIT = 64 * 1024 * 1024


def vm_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, vm_rss(self.pid))
            self.samples += 1
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.peak = max(self.peak, vm_rss(self.pid))


def self_rss() -> int:
    return vm_rss(os.getpid())


def test_large_upload_and_download_in_bounded_memory(start_objects_gateway, tmp_path, log_dir):
    gw = start_objects_gateway().gateway
    # 200 MB on disk: a random MiB repeated (with its index, so no two MiB are alike).
    path = tmp_path / "large.bin"
    want = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        written = 0
        i = 0
        while written < LARGE_BYTES:
            piece = (i.to_bytes(8, "big") + block)[: min(1 << 20, LARGE_BYTES - written)]
            f.write(piece)
            want.update(piece)
            written += len(piece)
            i += 1
    test_rss_before = self_rss()
    with team(gw, "a", timeout=120.0) as c:
        # Warm up: a small upload and download, so connections and buffers are in the baseline.
        small = upload(c, "warm.txt", b"warm up")
        assert c.beta.files.download(small.id, betas=BETAS).read() == b"warm up"
        time.sleep(0.2)
        baseline = vm_rss(gw.proc.pid)
        sampler = RssSampler(gw.proc.pid)
        sampler.start()
        try:
            t0 = time.monotonic()
            with open(path, "rb") as fh:
                big = c.beta.files.upload(file=("large.bin", fh, "application/octet-stream"), betas=BETAS)
            t1 = time.monotonic()
            assert big.size_bytes == LARGE_BYTES
            got, n = hashlib.sha256(), 0
            with c.beta.files.with_streaming_response.download(big.id, betas=BETAS) as resp:
                assert resp.http_response.status_code == 200
                for chunk in resp.iter_bytes(1 << 20):
                    got.update(chunk)
                    n += len(chunk)
            t2 = time.monotonic()
        finally:
            sampler.stop()
        test_rss_after = self_rss()
        c.beta.files.delete(big.id, betas=BETAS)
        c.beta.files.delete(small.id, betas=BETAS)
    path.unlink()

    delta = sampler.peak - baseline
    figures = {
        "bytes": LARGE_BYTES,
        "gateway_rss_baseline_bytes": baseline,
        "gateway_rss_peak_bytes": sampler.peak,
        "gateway_rss_delta_bytes": delta,
        "rss_samples": sampler.samples,
        "upload_s": round(t1 - t0, 3),
        "download_s": round(t2 - t1, 3),
        "upload_MBps": round(LARGE_BYTES / 1e6 / (t1 - t0), 1),
        "download_MBps": round(LARGE_BYTES / 1e6 / (t2 - t1), 1),
        "test_process_rss_growth_bytes": test_rss_after - test_rss_before,
    }
    (log_dir / "objects-large.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"\nlarge transfer: gateway RSS baseline {baseline / 2**20:.1f} MiB, "
        f"peak {sampler.peak / 2**20:.1f} MiB, delta {delta / 2**20:.1f} MiB "
        f"({sampler.samples} samples); upload {figures['upload_MBps']} MB/s, "
        f"download {figures['download_MBps']} MB/s; test process RSS growth "
        f"{figures['test_process_rss_growth_bytes'] / 2**20:.1f} MiB"
    )
    assert n == LARGE_BYTES
    assert got.hexdigest() == want.hexdigest()
    assert sampler.samples >= 5
    assert delta < RSS_DELTA_LIMIT, figures


# --------------------------------------------------------------------------
# 7. an upload abandoned midway


def test_abandoned_upload_makes_no_object(start_objects_gateway, objects_mock):
    gw = start_objects_gateway().gateway
    log = objects_mock.log
    with team(gw, "a") as a:
        kept = upload(a, "kept.txt", b"kept")
        before = file_ids(a)
        assert before == [kept.id]

        mark = log.mark()
        boundary = "rg-abandoned-upload"
        head = (
            f"POST {FILES} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{gw.port}\r\n"
            f"x-api-key: {TEAM_A_KEY}\r\n"
            "anthropic-version: 2023-06-01\r\n"
            f"anthropic-beta: {FILES_BETA}\r\n"
            f"content-type: multipart/form-data; boundary={boundary}\r\n"
            "content-length: 50000000\r\n"
            "\r\n"
            f"--{boundary}\r\n"
            'content-disposition: form-data; name="file"; filename="abandoned.bin"\r\n'
            "content-type: application/octet-stream\r\n"
            "\r\n"
        ).encode()
        sent = 0
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            s.sendall(head)
            chunk = b"\xab" * 65536
            while sent < 5_000_000:
                s.sendall(chunk)
                sent += len(chunk)
        # Give the gateway and the mock time to see the end of it.
        time.sleep(1.0)

        assert file_ids(a) == before
        completed = [x for x in log.creates(mark, FILES) if x.status == 200]
        assert not completed, completed
        # It did go upstream (so "no object" means the upload was abandoned there, not that it
        # never left): the access line names the credential, the client gone, 5 MB in.
        abandoned = wait_access_line(
            gw, re.compile(r"POST /v1/files 499 client=team-a .*upstream=mock/(one|two) attempts=1 .*"
                           r"bytes_in=(\d+) .*outcome=client_gone")
        )
        assert 5_000_000 <= int(abandoned.group(2)) < 50_000_000, abandoned.group(0)
        # Still serving, uploads included.
        again = upload(a, "after.txt", b"after")
        assert file_ids(a) == [again.id, kept.id]


# --------------------------------------------------------------------------
# 8. unknown and forwarded paths


def test_unknown_paths_are_404_unless_forwarded(start_objects_gateway, objects_mock):
    log = objects_mock.log
    plain = start_objects_gateway().gateway
    mark = log.mark()
    status, _, body = raw_request(plain.port, "GET", "/v1/skills", headers={"x-api-key": TEAM_A_KEY})
    assert status == 404, body
    err = json_body(body)["error"]
    assert err["type"] == "not_found_error"
    assert "/v1/files" in err["message"] and "/v1/messages/batches" in err["message"], err

    forwarding = start_objects_gateway(routing=('forward_paths = ["/v1/skills"]',)).gateway
    status, _, body = raw_request(
        forwarding.port, "GET", "/v1/skills?beta=true", headers={"x-api-key": TEAM_A_KEY}
    )
    # The mock has no skills: its own 404 came back through the gateway.
    assert status == 404, body
    status, _, body = raw_request(
        forwarding.port, "GET", "/v1/organizations/users", headers={"x-api-key": TEAM_A_KEY}
    )
    assert status == 404, body
    assert json_body(body)["error"]["type"] == "not_found_error"

    seen = log.since(mark)
    skills = [x for x in seen if x.path.startswith("/v1/skills")]
    assert len(skills) == 1, f"only the forwarding gateway's request reaches the mock: {seen}"
    assert skills[0].method == "GET" and skills[0].status == 404
    assert skills[0].key in (KEY_ONE, KEY_TWO), f"forwarded with {skills[0].key}, not an upstream key"
    assert not [x for x in seen if x.path.startswith("/v1/organizations")], seen


# --------------------------------------------------------------------------
# 9. errors


def test_upload_over_max_upload_bytes_is_413(start_objects_gateway, objects_mock):
    gw = start_objects_gateway(server=("max_upload_bytes = 1048576",)).gateway
    log = objects_mock.log
    mark = log.mark()
    with team(gw, "a") as a:
        with pytest.raises(anthropic.APIStatusError) as ei:
            upload(a, "big.bin", b"\0" * (2 * 1024 * 1024), "application/octet-stream")
        assert ei.value.status_code == 413
        assert ei.value.body["error"]["type"] == "request_too_large", ei.value.body
        assert not log.creates(mark, FILES)
        assert file_ids(a) == []
        # A chunked body (no declared length) goes upstream as it arrives, and is cut off with a
        # 413 when it passes the limit: nothing is made upstream.
        status, body = chunked_upload(gw.port, TEAM_A_KEY, total=2 * 1024 * 1024)
        assert status == 413, body
        assert json_body(body)["error"]["type"] == "request_too_large"
        time.sleep(0.3)
        assert not [x for x in log.creates(mark, FILES) if x.status == 200]
        assert file_ids(a) == []
        # Under the limit is fine, either way.
        ok = upload(a, "small.bin", b"\1" * 1000, "application/octet-stream")
        status, body = chunked_upload(gw.port, TEAM_A_KEY, total=100_000)
        assert status == 200, body
        chunked = json_body(body)
        assert chunked["size_bytes"] == 100_000, chunked
        assert file_ids(a) == [chunked["id"], ok.id]


def chunked_upload(port: int, key: str, total: int) -> tuple[int, bytes]:
    """POSTs a multipart upload of `total` bytes with chunked framing on a raw socket; the
    status and body of the answer (which may come before the whole body was sent)."""
    boundary = "rg-chunked-upload"
    head = (
        f"POST {FILES} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-api-key: {key}\r\n"
        f"anthropic-version: 2023-06-01\r\nanthropic-beta: {FILES_BETA}\r\n"
        f"content-type: multipart/form-data; boundary={boundary}\r\n"
        "transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    ).encode()
    opening = (
        f"--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"c.bin\"\r\n"
        "content-type: application/octet-stream\r\n\r\n"
    ).encode()
    closing = f"\r\n--{boundary}--\r\n".encode()

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n" % len(data) + data + b"\r\n"

    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(head + chunk(opening))
            left = total
            while left:
                n = min(left, 65536)
                s.sendall(chunk(b"\x5a" * n))
                left -= n
            s.sendall(chunk(closing) + b"0\r\n\r\n")
        except OSError:
            pass  # the gateway answered (and closed) before the end of the body
        try:
            while True:
                got = s.recv(65536)
                if not got:
                    break
                answer += got
        except OSError:
            pass
    head_end = answer.find(b"\r\n\r\n")
    assert head_end > 0, f"no answer: {answer[:200]!r}"
    status = int(answer.split(b" ", 2)[1])
    headers = answer[:head_end].decode("latin-1").lower()
    body = answer[head_end + 4:]
    if "transfer-encoding: chunked" in headers:
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    return status, body


def test_results_url_uses_public_url(start_objects_gateway):
    gw = start_objects_gateway(server=('public_url = "https://llm.example.com/"',)).gateway
    with team(gw, "a") as a:
        b = create_batch(a, ["p1"], ms=100)
        ended = wait_ended(a, b.id)
        want = f"https://llm.example.com{BATCHES}/{b.id}/results"
        assert ended.results_url == want
        assert [x.results_url for x in a.messages.batches.list().data] == [want]


def test_batch_needing_two_upstreams_is_400(start_objects_gateway, objects_mock):
    url = objects_mock.base_url
    gw = start_objects_gateway(
        upstreams=[
            ("sonnet", url, ["claude-sonnet-*"], [("one", KEY_ONE)]),
            ("haiku", url, ["claude-haiku-*"], [("two", KEY_TWO)]),
        ]
    ).gateway
    log = objects_mock.log
    with team(gw, "a") as a:
        mark = log.mark()
        with pytest.raises(anthropic.BadRequestError) as ei:
            a.messages.batches.create(
                requests=[
                    batch_request("s", "claude-sonnet-4-5"),
                    batch_request("h", "claude-haiku-4-5"),
                ],
                extra_headers={"x-mock-batch-ms": "200"},
            )
        assert ei.value.status_code == 400
        err = ei.value.body["error"]
        assert err["type"] == "invalid_request_error"
        assert "claude-haiku-4-5" in err["message"], err
        assert not [x for x in log.creates(mark, BATCHES) if x.status == 200]
        assert batch_ids(a) == []

        # Each model alone goes to its own upstream.
        mark = log.mark()
        s = create_batch(a, ["s1", "s2"], model="claude-sonnet-4-5")
        assert created_by(log, mark, BATCHES) == KEY_ONE
        mark = log.mark()
        h = create_batch(a, ["h1"], model="claude-haiku-4-5")
        assert created_by(log, mark, BATCHES) == KEY_TWO
        assert batch_ids(a) == [h.id, s.id]
