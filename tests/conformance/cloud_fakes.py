"""Loopback stand-ins for the AWS and Google services a Bedrock or Vertex upstream needs.

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

import base64
import datetime
import http.client
import json
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable, Iterator, Optional, Union
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
import google.auth.jwt

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


# --- Bedrock --------------------------------------------------------------------------------

AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<akid>[A-Z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<sig>[0-9a-f]{64})"
)
# AWS refuses a request signed more than five minutes away from its own clock.
MAX_SKEW = datetime.timedelta(minutes=5)

# botocore's clock is patched per signature, which is process-wide: one signature at a time.
_SIGNING = threading.Lock()


def _fixed_clock(when: datetime.datetime):
    """botocore's clock fixed at ``when`` (as tests/oracles/sigv4_vectors.py does it): newer
    botocore reads it through ``get_current_datetime``, older calls ``datetime.utcnow()``."""
    if hasattr(botocore.auth, "get_current_datetime"):
        return mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: when)

    class Frozen(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return when

    return mock.patch.object(botocore.auth.datetime, "datetime", Frozen)


def botocore_signature(
    req: Incoming,
    signed_headers: list[str],
    akid: str,
    secret: str,
    token: Optional[str],
    region: str,
    amz_date: str,
) -> tuple[str, str]:
    """The Authorization header botocore gives the request as it arrived, and its canonical
    request (to show when the two disagree).

    The path goes to botocore exactly as it arrived, percent-encoded once (``…-v1%3A0``):
    that is also how botocore's own Bedrock client puts a model id in the URL. Its
    ``SigV4Auth`` (unlike S3's signer) quotes the path once more for the canonical URI
    (``_normalize_url_path``: ``quote(path, safe='/~')``), so it signs ``…-v1%253A0``, as AWS
    computes it for every service but S3. Only the headers the request says it signed are
    given (AWS, too, signs again over ``SignedHeaders``); botocore adds ``x-amz-date`` and
    ``x-amz-security-token`` itself, with the request's own date and the token we issued.
    """
    request = AWSRequest(method=req.method, url=f"http://127.0.0.1{req.target}", data=req.body)
    for name in signed_headers:
        if name in ("x-amz-date", "x-amz-security-token"):
            continue
        values = req.all(name)
        if values:
            # Several values of one name are signed joined by commas.
            request.headers[name] = ",".join(values)
    signer = botocore.auth.SigV4Auth(Credentials(akid, secret, token), "bedrock", region)
    seen = {}
    canonical = signer.canonical_request

    def spy(r):
        seen["canonical"] = canonical(r)
        return seen["canonical"]

    signer.canonical_request = spy
    when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    with _SIGNING, _fixed_clock(when):
        signer.add_auth(request)
    if request.headers["X-Amz-Date"] != amz_date:
        raise AssertionError(f"botocore's clock was not fixed: {request.headers['X-Amz-Date']}")
    return request.headers["Authorization"], seen["canonical"]


INVALID_TOKEN = "The security token included in the request is invalid."


def bedrock_error(status: int, name: str, message: str) -> Reply:
    """An error as Bedrock answers one: ``{"message"}`` with its type in ``x-amzn-errortype``."""
    return json_reply(
        status,
        {"message": message},
        [("x-amzn-errortype", f"{name}:http://internal.amazon.com/coral/com.amazon.coral.service/")],
    )


class BedrockFront(Front):
    """Bedrock's front door: SigV4 checked by botocore, or a Bedrock API key as a bearer token.

    ``keys`` maps each access key id it takes to its (secret, session token); the STS and IMDS
    fakes add the temporary keys they issue. ``verified`` counts the signatures botocore agreed
    with; every disagreement is in ``failures``, with botocore's canonical request.
    """

    def __init__(self, upstream_port: int, region: str, name: str = "bedrock-front"):
        super().__init__(name, upstream_port)
        self.region = region
        self.keys: dict[str, tuple[str, Optional[str]]] = {}
        self.api_keys: set[str] = set()
        self.verified = 0
        self.bearer_accepted = 0

    def refuse(self, req: Incoming) -> Optional[Reply]:
        auth = req.header("authorization")
        if auth is None:
            self.fail(f"{req.target}: no authorization header")
            return bedrock_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        if auth.startswith("Bearer "):
            if auth[len("Bearer "):] not in self.api_keys:
                self.fail(f"{req.target}: a bearer token that is no Bedrock API key of ours")
                return bedrock_error(403, "UnrecognizedClientException", "Invalid API Key format")
            with self._lock:
                self.bearer_accepted += 1
            return None
        return self.check_signature(req, auth)

    def check_signature(self, req: Incoming, auth: str) -> Optional[Reply]:
        m = AUTH_RE.fullmatch(auth)
        if not m:
            self.fail(f"{req.target}: an Authorization header that is not SigV4: {auth!r}")
            return bedrock_error(
                403,
                "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders'",
            )
        akid, signed = m["akid"], m["signed"].split(";")
        if akid not in self.keys:
            self.fail(f"{req.target}: signed with an access key id we never issued: {akid}")
            return bedrock_error(403, "UnrecognizedClientException", INVALID_TOKEN)
        secret, token = self.keys[akid]
        amz_date = req.header("x-amz-date") or ""
        try:
            at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
        except ValueError:
            self.fail(f"{req.target}: x-amz-date {amz_date!r} is not a SigV4 timestamp")
            return bedrock_error(403, "IncompleteSignatureException", "Date must be in ISO-8601 basic format")
        if abs(utcnow() - at) > MAX_SKEW:
            self.fail(f"{req.target}: signed at {amz_date}, more than five minutes from now")
            return bedrock_error(403, "InvalidSignatureException", "Signature expired")
        # What AWS insists on besides the signature itself.
        must_sign = ["host", "x-amz-date"] + (["x-amz-security-token"] if token else [])
        unsigned = [h for h in must_sign if h not in signed]
        if unsigned:
            self.fail(f"{req.target}: SignedHeaders={m['signed']} leaves out {unsigned}")
        if token and req.header("x-amz-security-token") != token:
            self.fail(f"{req.target}: x-amz-security-token is not the session token of {akid}")
            return bedrock_error(403, "UnrecognizedClientException", INVALID_TOKEN)
        expected, canonical = botocore_signature(req, signed, akid, secret, token, self.region, amz_date)
        if auth != expected:
            self.fail(
                f"{req.target}: the signature is not botocore's\n"
                f"  sent:     {auth}\n  botocore: {expected}\n"
                f"  botocore's canonical request:\n{canonical}"
            )
            return bedrock_error(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.",
            )
        if unsigned:
            return bedrock_error(403, "InvalidSignatureException", f"{unsigned[0]} must be signed")
        with self._lock:
            self.verified += 1
        return None


def temporary_keys() -> tuple[str, str, str]:
    """An access key id, secret and session token shaped like STS's (ids of temporary keys
    start ASIA; secrets and tokens are base64, with '/' and '+' in them)."""
    akid = "ASIA" + secrets.token_hex(8).upper()
    secret = base64.b64encode(b"\xfb\xff" + secrets.token_bytes(28)).decode()
    token = "IQoJb3JpZ2luX2Vj" + base64.b64encode(b"\xfb\xef" + secrets.token_bytes(150)).decode()
    return akid, secret, token


def utcnow() -> datetime.datetime:
    """Now, naive UTC: as botocore's clock and x-amz-date are."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def rfc3339(t: float) -> str:
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeSts(FakeServer):
    """STS's ``AssumeRoleWithWebIdentity``: a form POST (unsigned: the web identity token is the
    proof), answered in STS's XML with temporary keys that ``front`` will then take."""

    def __init__(self, front: BedrockFront, role_arn: str, session_name: str, token_file):
        super().__init__("fake-sts")
        self.front, self.role_arn, self.session_name = front, role_arn, session_name
        self.token_file = token_file
        self.issued: list[tuple[str, str, str]] = []

    def handle(self, req: Incoming) -> Reply:
        if req.method != "POST" or req.path != "/":
            self.fail(f"{req.method} {req.target}: not STS's endpoint")
            return self.error(404, "InvalidAction", "Could not find operation")
        try:
            form = req.form()
        except ValueError as e:
            self.fail(f"a body that is not a form: {e}")
            return self.error(400, "MalformedInput", "not a form")
        want = {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": self.role_arn,
            "RoleSessionName": self.session_name,
            # The kubelet's file, read at each fetch (it rotates it).
            "WebIdentityToken": self.token_file.read_text().strip(),
        }
        wrong = {k: form.get(k) for k, v in want.items() if form.get(k) != v}
        extra = sorted(set(form) - set(want) - {"DurationSeconds", "Policy", "PolicyArns.member.1.arn"})
        if wrong or extra:
            self.fail(f"AssumeRoleWithWebIdentity asked with wrong fields {wrong}, unknown fields {extra}")
            return self.error(400, "InvalidIdentityToken", "The web identity token is not valid")
        if req.header("content-type") != "application/x-www-form-urlencoded":
            self.fail(f"content-type {req.header('content-type')!r}")
        akid, secret, token = temporary_keys()
        self.front.keys[akid] = (secret, token)
        self.issued.append((akid, secret, token))
        expires = rfc3339(time.time() + 3600)
        assumed = self.role_arn.replace("arn:aws:iam:", "arn:aws:sts:").replace(":role/", ":assumed-role/")
        request_id = "-".join(secrets.token_hex(n) for n in (4, 2, 2, 2, 6))
        xml = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:{self.session_name}</AssumedRoleId>
      <Arn>{assumed}/{self.session_name}</Arn>
    </AssumedRoleUser>
    <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/RINGGATE</Provider>
    <Credentials>
      <AccessKeyId>{akid}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>{token}</SessionToken>
      <Expiration>{expires}</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>system:serviceaccount:ringgate:ringgate</SubjectFromWebIdentityToken>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>{request_id}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
"""
        return Reply(200, xml.encode(), [("content-type", "text/xml")])

    @staticmethod
    def error(status: int, code: str, message: str) -> Reply:
        xml = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        )
        return Reply(status, xml.encode(), [("content-type", "text/xml")])


class FakeImds(FakeServer):
    """IMDSv2: a session token from ``PUT /latest/api/token`` (with its TTL header), then the
    role's name and its temporary keys, each GET refused (401) without the session token."""

    ROLE = "ringgate-instance-role"
    CREDS = "/latest/meta-data/iam/security-credentials/"

    def __init__(self, front: BedrockFront):
        super().__init__("fake-imds")
        self.front = front
        self.session_tokens: set[str] = set()
        self.issued: list[tuple[str, str, str]] = []
        self.refused = 0

    def handle(self, req: Incoming) -> Reply:
        if req.method == "PUT" and req.path == "/latest/api/token":
            ttl = req.header("x-aws-ec2-metadata-token-ttl-seconds")
            if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                self.fail(f"PUT /latest/api/token with TTL {ttl!r}")
                return Reply(400, b"", [("content-type", "text/plain")])
            token = base64.b64encode(secrets.token_bytes(42)).decode()
            self.session_tokens.add(token)
            headers = [("content-type", "text/plain"), ("x-aws-ec2-metadata-token-ttl-seconds", ttl)]
            return Reply(200, token.encode(), headers)
        if req.method != "GET":
            self.fail(f"{req.method} {req.target}")
            return Reply(405, b"", [("content-type", "text/plain")])
        if req.header("x-aws-ec2-metadata-token") not in self.session_tokens:
            # IMDSv2 only: a GET without a valid session token is a 401.
            self.refused += 1
            self.fail(f"GET {req.target} without a valid IMDSv2 session token")
            return Reply(401, b"", [("content-type", "text/plain")])
        if req.path == self.CREDS:
            return Reply(200, self.ROLE.encode(), [("content-type", "text/plain")])
        if req.path == self.CREDS + self.ROLE:
            akid, secret, token = temporary_keys()
            self.front.keys[akid] = (secret, token)
            self.issued.append((akid, secret, token))
            body = {
                "Code": "Success",
                "LastUpdated": rfc3339(time.time()),
                "Type": "AWS-HMAC",
                "AccessKeyId": akid,
                "SecretAccessKey": secret,
                "Token": token,
                "Expiration": rfc3339(time.time() + 6 * 3600),
            }
            return Reply(200, json.dumps(body, indent=2).encode(), [("content-type", "text/plain")])
        self.fail(f"GET {req.target}: not an IMDS path ringgate needs")
        return Reply(404, b"", [("content-type", "text/plain")])


# --- Vertex ---------------------------------------------------------------------------------


def google_error(status: int, grpc_status: str, message: str) -> Reply:
    return json_reply(status, {"error": {"code": status, "message": message, "status": grpc_status}})


class VertexFront(Front):
    """Vertex AI's front door: only a bearer token in ``tokens`` gets through (the token fakes
    add the ones they issue)."""

    def __init__(self, upstream_port: int, name: str = "vertex-front"):
        super().__init__(name, upstream_port)
        self.tokens: set[str] = set()
        self.accepted = 0

    def refuse(self, req: Incoming) -> Optional[Reply]:
        auth = req.header("authorization") or ""
        if not auth.startswith("Bearer ") or auth[len("Bearer "):] not in self.tokens:
            self.fail(f"{req.target}: " + ("no authorization" if not auth else "a token we never issued"))
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
            )
        with self._lock:
            self.accepted += 1
        return None


def access_token() -> str:
    return "ya29.c." + base64.urlsafe_b64encode(secrets.token_bytes(96)).decode().rstrip("=")


class FakeGoogleTokens(FakeServer):
    """A service account's ``token_uri``: the JWT-bearer grant, its assertion verified by
    google-auth against the account's public key (looked up by the JWT's ``kid``)."""

    GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    SCOPE = "https://www.googleapis.com/auth/cloud-platform"

    def __init__(self, front: VertexFront):
        super().__init__("fake-google-tokens")
        self.front = front
        self.accounts: dict[str, tuple[str, str]] = {}  # private_key_id -> (client_email, public PEM)
        self.issued: list[str] = []
        self.verified_claims: list[dict] = []

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def handle(self, req: Incoming) -> Reply:
        if req.method != "POST" or req.path != "/token":
            self.fail(f"{req.method} {req.target}: not the token endpoint")
            return json_reply(404, {"error": "not_found"})
        try:
            form = req.form()
        except ValueError as e:
            self.fail(f"a body that is not a form: {e}")
            return json_reply(400, {"error": "invalid_request"})
        if form.get("grant_type") != self.GRANT or set(form) != {"grant_type", "assertion"}:
            self.fail(f"fields {sorted(form)}, grant_type {form.get('grant_type')!r}")
            return json_reply(400, {"error": "unsupported_grant_type"})
        assertion = form["assertion"]
        try:
            header = google.auth.jwt.decode_header(assertion)
            certs = {kid: pem for kid, (_, pem) in self.accounts.items()}
            # Checks the RS256 signature with the key the kid names, iat/exp, and aud.
            claims = google.auth.jwt.decode(
                assertion, certs=certs, audience=self.token_uri, clock_skew_in_seconds=10
            )
        except Exception as e:
            self.fail(f"the assertion does not verify: {e}")
            return json_reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        email = self.accounts[header["kid"]][0]
        problems = []
        if header.get("alg") != "RS256" or header.get("typ") != "JWT":
            problems.append(f"header {header}")
        if claims.get("iss") != email:
            problems.append(f"iss {claims.get('iss')!r} is not {email!r}")
        if self.SCOPE not in str(claims.get("scope", "")).split():
            problems.append(f"scope {claims.get('scope')!r}")
        lifetime = claims.get("exp", 0) - claims.get("iat", 0)
        if lifetime > 3600:
            problems.append(f"a lifetime of {lifetime} s, over Google's hour")
        if problems:
            self.fail("the assertion's claims: " + "; ".join(problems))
            return json_reply(400, {"error": "invalid_scope" if "scope" in problems[0] else "invalid_grant"})
        self.verified_claims.append(claims)
        token = access_token()
        self.front.tokens.add(token)
        self.issued.append(token)
        return json_reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})


class FakeMetadata(FakeServer):
    """The GCE/GKE metadata server's token for the default service account: only with the
    ``Metadata-Flavor: Google`` header (403 without, as the real one answers)."""

    TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"

    def __init__(self, front: VertexFront):
        super().__init__("fake-metadata")
        self.front = front
        self.issued: list[str] = []
        self.refused = 0

    def handle(self, req: Incoming) -> Reply:
        flavor = [("metadata-flavor", "Google")]
        if req.header("metadata-flavor") != "Google":
            self.refused += 1
            self.fail(f"{req.target} without Metadata-Flavor: Google")
            body = b"Missing required header: Metadata-Flavor\n"
            return Reply(403, body, [("content-type", "text/html")] + flavor)
        if req.method != "GET" or req.path != self.TOKEN_PATH:
            self.fail(f"{req.method} {req.target}: not the token path")
            return Reply(404, b"Not Found\n", [("content-type", "text/html")] + flavor)
        token = access_token()
        self.front.tokens.add(token)
        self.issued.append(token)
        return json_reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}, flavor)
