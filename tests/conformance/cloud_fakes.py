"""Loopback stand-ins for the AWS and Google services a Bedrock or Vertex upstream needs: the
small HTTP server they share and the fronts that forward to the mock; the AWS ones are in
aws_fakes.py, the Google ones in google_fakes.py.

test_cloud.py puts these between ringgate and ``mock-upstream`` (which answers the model's part
and checks bodies) so that what only the real clouds check is checked here, by libraries other
than ringgate's own code:

* ``BedrockFront`` verifies every request's SigV4 signature by signing it again with **botocore**
  (the signer of boto3 and the AWS CLI) and comparing the ``Authorization`` header byte for byte,
  or accepts a Bedrock API key as ``Authorization: Bearer``; then forwards the request to a
  ``mock-upstream --dialect bedrock`` and relays its answer, streams as they come.
* ``VertexFront`` accepts only the bearer tokens the fakes issued (or were told of) and forwards
  to a ``mock-upstream --dialect vertex`` the same way.
* ``FakeSts`` answers ``AssumeRoleWithWebIdentity`` and ``FakeImds`` IMDSv2, in the real
  services' shapes, issuing temporary keys that the Bedrock front then expects signatures from.
* ``FakeGoogleTokens`` verifies a service account's JWT assertion with **google-auth** and
  ``FakeMetadata`` plays the GCE metadata server; both issue tokens the Vertex front then takes.

Every fake records what arrived and, in ``failures``, what was wrong with it (a refused request
also gets the answer the real service would give, so ringgate's handling of it shows too).
Tests assert ``failures`` is empty: a fake never fails a test by itself.

Each fake is a ``ThreadingHTTPServer`` on 127.0.0.1:0 in a daemon thread, HTTP/1.1 with
keep-alive (ringgate pools its upstream connections), stopped by ``close()``.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable, Iterator, Optional, Union

# --------------------------------------------------------------------------
# a small HTTP server


@dataclass
class Incoming:
    """One request as it arrived: the target exactly as sent (still percent-encoded)."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def json(self) -> object:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        # strict: a field given twice, or one without "=", is for the test to see, not to guess at.
        pairs = urllib.parse.parse_qsl(self.body.decode(), keep_blank_values=True, strict_parsing=True)
        out: dict[str, str] = {}
        for k, v in pairs:
            if k in out:
                raise ValueError(f"form field {k!r} given twice")
            out[k] = v
        return out


class Cut(Exception):
    """Raised by a streamed body's iterator: end the connection without ending the body."""


@dataclass
class Reply:
    status: int
    body: Union[bytes, Iterable[bytes]] = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_reply(status: int, value: object, headers: Optional[list[tuple[str, str]]] = None) -> Reply:
    return Reply(status, json.dumps(value).encode(), [("content-type", "application/json")] + (headers or []))


class FakeServer:
    """An HTTP/1.1 server on a loopback port answering each request with ``handle(Incoming)``.

    A reply whose body is bytes goes with a Content-Length; one whose body is an iterator goes
    chunked, each piece written as it comes (so a relayed stream stays a stream).
    """

    def __init__(self, name: str):
        self.name = name
        self.requests: list[Incoming] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - the base class's name
                pass  # the fakes' records are what tests read

            def _serve(self):
                length = int(self.headers.get("content-length") or 0)
                if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                    body = self._read_chunked()
                else:
                    body = self.rfile.read(length) if length else b""
                req = Incoming(self.command, self.path, list(self.headers.items()), body)
                with fake._lock:
                    fake.requests.append(req)
                try:
                    reply = fake.handle(req)
                except Exception as e:  # a fake's own bug: say so, and answer a 500
                    fake.fail(f"{req.method} {req.target}: the fake raised {e!r}")
                    reply = json_reply(500, {"message": f"{fake.name}: {e!r}"})
                self._write(reply)

            def _read_chunked(self) -> bytes:
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()

            def _write(self, reply: Reply):
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                if isinstance(reply.body, (bytes, bytearray)):
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    return
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                try:
                    for piece in reply.body:
                        if piece:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                            self.wfile.flush()
                except Cut:
                    # What came before goes; the body never ends, as the upstream's did not.
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_PUT = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name=name, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, req: Incoming) -> Reply:
        raise NotImplementedError

    def fail(self, what: str) -> None:
        with self._lock:
            self.failures.append(f"{self.name}: {what}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------
# fronts: check the credential, then forward to a mock-upstream


# What a front passes on to the mock: the body's framing and the mock's own steering headers.
FORWARDED = ("content-type", "accept", "anthropic-beta")
# What a front relays back: how the answer is framed and typed (not hop-by-hop headers).
RELAYED = ("content-type", "x-amzn-errortype", "retry-after", "request-id", "cache-control")


class Front(FakeServer):
    """Checks each request's credential with ``refuse`` and forwards the ones it lets through
    to the mock at ``upstream_port``."""

    def __init__(self, name: str, upstream_port: int):
        super().__init__(name)
        self.upstream_port = upstream_port
        self.forwarded: list[Incoming] = []

    def refuse(self, req: Incoming) -> Optional[Reply]:
        raise NotImplementedError

    def handle(self, req: Incoming) -> Reply:
        refused = self.refuse(req)
        if refused is not None:
            return refused
        with self._lock:
            self.forwarded.append(req)
        return self.forward(req)

    def forward(self, req: Incoming) -> Reply:
        headers = {n: v for n, v in req.headers if n.lower() in FORWARDED or n.lower().startswith("x-mock-")}
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        conn.request(req.method, req.target, body=req.body, headers=headers)
        resp = conn.getresponse()
        relayed = [(n, v) for n, v in resp.getheaders() if n.lower() in RELAYED]
        if resp.getheader("transfer-encoding", "").lower() != "chunked":
            body = resp.read()
            conn.close()
            return Reply(resp.status, body, relayed)
        return Reply(resp.status, _pieces(conn, resp), relayed)


def _pieces(conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> Iterator[bytes]:
    """The body of a chunked answer as it arrives; ``Cut`` where the upstream cut it."""
    try:
        while True:
            try:
                piece = resp.read1(65536)
            except http.client.IncompleteRead as e:
                yield e.partial
                raise Cut()
            if not piece:
                return
            yield piece
    finally:
        conn.close()
