"""Loopback stand-ins for the AWS services a Bedrock upstream needs (see cloud_fakes.py).

``BedrockFront`` verifies every request's SigV4 signature by signing it again with **botocore**
and comparing the ``Authorization`` header byte for byte (or takes a Bedrock API key as a bearer
token), then forwards it to ``mock-upstream --dialect bedrock``; ``FakeSts`` answers
``AssumeRoleWithWebIdentity`` and ``FakeImds`` IMDSv2, in the real services' shapes, issuing the
temporary keys the front then expects signatures from.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import secrets
import threading
import time
from typing import Optional
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cloud_fakes import Incoming, Reply, json_reply, FakeServer, Front


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
