#!/usr/bin/env python3
"""SigV4 test vectors for src/dialect/bedrock/sigv4.rs, signed by botocore.

botocore (the signer under boto3 and the AWS CLI) is the independent oracle: each case below is
signed by `botocore.auth.SigV4Auth.add_auth` on a `botocore.awsrequest.AWSRequest`, with the
clock fixed, and the script prints a JSON array of the inputs and botocore's headers. The Rust
test `dialect::bedrock::sigv4::tests::botocore_vectors` signs each case and must agree byte for
byte.

Regenerate (from the repository root):

    python3 tests/oracles/sigv4_vectors.py > src/dialect/bedrock/sigv4_vectors.json

Without botocore at hand, the script makes target/sigv4-oracle-venv, installs botocore there and
runs itself again in it. The committed file was produced by botocore 1.44.18 (PINNED below) on
CPython 3.11; SIGV4_BOTOCORE=<version> tries another.

Nothing here is copied from elsewhere: the credentials are made up and the requests are Bedrock's
own shapes (TRANSLATION.md §3).
"""

import datetime
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from unittest import mock
from urllib.parse import quote, urlsplit

PINNED = "1.44.18"
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "target" / "sigv4-oracle-venv"


def ensure_botocore():
    """Runs the script again in a venv with botocore, unless this Python has the wanted one."""
    want = os.environ.get("SIGV4_BOTOCORE", PINNED)
    try:
        import botocore

        if botocore.__version__ == want:
            return
    except ImportError:
        pass
    if os.environ.get("SIGV4_ORACLE_REEXEC"):
        sys.exit(f"sigv4_vectors: botocore {want} is not importable in {sys.executable}")
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"botocore=={want}"],
        check=True, stdout=sys.stderr,
    )
    env = dict(os.environ, SIGV4_ORACLE_REEXEC="1")
    os.execve(str(python), [str(python), __file__, *sys.argv[1:]], env)


ensure_botocore()

import botocore  # noqa: E402
import botocore.auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

AKID = "AKIARINGGATEEXAMPLE7"
SECRET = "rInGgAtE/sigv4+Oracle/0123456789abcdefGHIJ"
TOKEN = (
    "IQoJb3JpZ2luX2VjEringgate//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexampleTokenWith+and/and="
    "FwoGZXIvYXdzEBYaDHRlc3R0b2tlbnZhbHVl"
)


def model_segment(model_id):
    """A model id as a path segment on the wire: encoded once, unreserved characters kept."""
    return quote(model_id, safe="-_.~")


def at(*parts):
    return datetime.datetime(*parts)  # naive, UTC: what botocore's clock gives


SONNET_45 = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
ARN = ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
       "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
JSON_BODY = ('{"anthropic_version":"bedrock-2023-05-31","max_tokens":64,'
             '"messages":[{"role":"user","content":"Hello"}]}')

CASES = [
    dict(
        name="invoke, model id with ':' encoded once",
        region="us-east-1",
        path=f"/model/{model_segment('anthropic.claude-sonnet-4-20250514-v1:0')}/invoke",
        headers=[("content-type", "application/json"), ("accept", "application/json")],
        body=JSON_BODY,
        time=at(2025, 9, 29, 12, 34, 56),
    ),
    dict(
        name="invoke-with-response-stream, profile id, session token",
        region="us-west-2",
        path=f"/model/{model_segment(SONNET_45)}/invoke-with-response-stream",
        headers=[("content-type", "application/json"),
                 ("accept", "application/vnd.amazon.eventstream")],
        body=JSON_BODY,
        token=TOKEN,
        time=at(2026, 1, 1, 0, 0, 0),
    ),
    dict(
        name="inference-profile ARN as the id: '/' and ':' encoded once",
        region="us-east-1",
        path=f"/model/{model_segment(ARN)}/invoke-with-response-stream",
        headers=[("content-type", "application/json"),
                 ("accept", "application/vnd.amazon.eventstream")],
        body=JSON_BODY,
        token=TOKEN,
        time=at(2024, 2, 29, 23, 59, 59),
    ),
    dict(
        name="ARN id, invoke, no token",
        region="us-east-1",
        path=f"/model/{model_segment(ARN)}/invoke",
        headers=[("content-type", "application/json"), ("accept", "application/json")],
        body=JSON_BODY,
        time=at(2025, 12, 31, 23, 59, 59),
    ),
    dict(
        name="':' left raw on the wire",
        region="eu-central-1",
        path="/model/anthropic.claude-3-haiku-20240307-v1:0/invoke",
        headers=[("content-type", "application/json"), ("accept", "application/json")],
        body=JSON_BODY,
        time=at(2025, 3, 1, 0, 0, 1),
    ),
    dict(
        name="count-tokens, eu region, session token",
        region="eu-west-3",
        path=f"/model/{model_segment('eu.anthropic.claude-sonnet-4-5-20250929-v1:0')}/count-tokens",
        headers=[("content-type", "application/json"), ("accept", "application/json")],
        body='{"input":{"invokeModel":{"body":"eyJtZXNzYWdlcyI6W119"}}}',
        token=TOKEN,
        time=at(2025, 7, 4, 9, 8, 7),
    ),
    dict(
        name="query of several keys, one needing encoding, a repeated key (sent as botocore sends it)",
        host="bedrock.us-east-1.amazonaws.com",
        region="us-east-1",
        method="GET",
        path="/foundation-models",
        params=[("byProvider", "anthropic"), ("byOutputModality", "TEXT"),
                ("note", "a b/c:d+e~f*g=h&i"), ("Zeta", "2"), ("Zeta", "1"),
                ("byInferenceType", "ON_DEMAND")],
        headers=[("accept", "application/json")],
        body="",
        time=at(2025, 10, 10, 10, 10, 10),
    ),
    dict(
        name="query already strict on the wire, unsorted, a name without '='",
        host="bedrock.us-east-1.amazonaws.com",
        region="us-east-1",
        method="GET",
        path="/inference-profiles",
        query="typeEquals=SYSTEM_DEFINED&maxResults=10&nextToken=abc%2Fdef%3D%3D&B=1&a=2&flag",
        headers=[("accept", "application/json")],
        body="",
        time=at(2025, 10, 10, 10, 10, 11),
    ),
    dict(
        name="empty body, GET, no query",
        host="bedrock.us-east-1.amazonaws.com",
        region="us-east-1",
        method="GET",
        path="/foundation-models",
        headers=[("accept", "application/json")],
        body="",
        time=at(2000, 1, 1, 0, 0, 0),
    ),
    dict(
        name="body with non-ASCII text",
        region="ap-northeast-1",
        path=f"/model/{model_segment('apac.anthropic.claude-sonnet-4-20250514-v1:0')}/invoke",
        headers=[("content-type", "application/json"), ("accept", "application/json")],
        body='{"anthropic_version":"bedrock-2023-05-31","max_tokens":64,"messages":'
             '[{"role":"user","content":"Grüße — こんにちは 🎉 «ça va?»"}]}',
        time=at(2025, 6, 15, 6, 30, 0),
    ),
    dict(
        name="headers with extra spaces and tabs, names in mixed case, a name given twice",
        region="us-east-1",
        path=f"/model/{model_segment(SONNET_45)}/invoke",
        headers=[("Content-Type", "  application/json ;   charset=utf-8  "),
                 ("Accept", "\tapplication/json"),
                 ("X-Ringgate-Note", "a  \t b   c"),
                 ("x-ringgate-note", " second  value ")],
        body=JSON_BODY,
        token=TOKEN,
        time=at(2025, 11, 30, 18, 0, 0),
    ),
    dict(
        name="x-amz-content-sha256 sent and signed",
        region="us-east-1",
        path=f"/model/{model_segment(SONNET_45)}/invoke-with-response-stream",
        headers=[("content-type", "application/json"),
                 ("accept", "application/vnd.amazon.eventstream"),
                 ("x-amz-content-sha256", "BODY_SHA256")],
        body=JSON_BODY,
        time=at(2025, 9, 29, 12, 34, 57),
    ),
    dict(
        name="connection and user-agent sent but not signed",
        region="us-east-1",
        path=f"/model/{model_segment(SONNET_45)}/invoke",
        headers=[("content-type", "application/json"), ("accept", "application/json"),
                 ("connection", "keep-alive"), ("user-agent", "ringgate/0.1")],
        body=JSON_BODY,
        time=at(2025, 9, 29, 12, 34, 58),
    ),
    dict(
        name="dot segments and '//' in the path",
        region="us-east-1",
        path=f"/model//./{model_segment(SONNET_45)}/x/../invoke",
        headers=[("content-type", "application/json"), ("accept", "application/json")],
        body=JSON_BODY,
        time=at(2025, 9, 29, 12, 34, 59),
    ),
]


def random_cases(count, seed=20250929):
    """Cases no one chose: seeded, so the file is the same on every run. Path segments,
    query names and values, header values and bodies drawn from characters that need encoding,
    trimming or both."""
    rng = random.Random(seed)
    awkward = "aZ09-_.~ :/+=&%@!$'()*,;?#é日🎉\t"

    def text(low, high, alphabet=awkward):
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))

    cases = []
    for i in range(count):
        # On the wire the path is encoded once, strictly or leaving the sub-delimiters raw.
        safe = rng.choice(["-_.~", "-_.~:@!$'()*+,;="])
        segments = [quote(text(1, 12), safe=safe) for _ in range(rng.randint(1, 4))]
        params = [(text(1, 6), text(0, 8)) for _ in range(rng.randint(0, 4))]
        names = ["X-Ringgate-A", "x-ringgate-b", "X-RINGGATE-C", "x-ringgate-a"]
        headers = [("content-type", "application/json")]
        for _ in range(rng.randint(0, 3)):
            headers.append((rng.choice(names), text(0, 10, "ab c\t,;=/")))
        cases.append(dict(
            name=f"random {i}",
            region=rng.choice(["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"]),
            method=rng.choice(["POST", "GET"]),
            path="/" + "/".join(segments) + rng.choice(["", "/"]),
            params=params or None,
            headers=headers,
            body=text(0, 40, awkward + "{}[]\"\n"),
            token=rng.choice([None, TOKEN]),
            time=datetime.datetime(1970, 1, 1) + datetime.timedelta(
                seconds=rng.randint(0, 4_102_444_799)),
        ))
    return cases


CASES += random_cases(16)


def sign(case):
    region = case["region"]
    host = case.get("host", f"bedrock-runtime.{region}.amazonaws.com")
    method = case.get("method", "POST")
    body = case["body"].encode("utf-8")
    headers = [(name, value.replace("BODY_SHA256", botocore.auth.sha256(body).hexdigest()))
               for name, value in case["headers"]]
    params = case.get("params")
    query = case.get("query", "")
    url = f"https://{host}{case['path']}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, params=params)
    request.headers["Host"] = host
    for name, value in headers:
        request.headers[name] = value  # HTTPHeaders appends: a name given twice stays twice
    token = case.get("token")
    creds = Credentials(AKID, SECRET, token)
    signer = botocore.auth.SigV4Auth(creds, "bedrock", region)

    seen = {}
    canonical_request, string_to_sign = signer.canonical_request, signer.string_to_sign

    def spy_canonical(req):
        seen["canonical_request"] = canonical_request(req)
        return seen["canonical_request"]

    def spy_string_to_sign(req, cr):
        seen["string_to_sign"] = string_to_sign(req, cr)
        return seen["string_to_sign"]

    signer.canonical_request, signer.string_to_sign = spy_canonical, spy_string_to_sign
    fixed = case["time"]
    with fixed_clock(fixed):
        signer.add_auth(request)
    amz_date = request.headers["X-Amz-Date"]
    if amz_date != fixed.strftime("%Y%m%dT%H%M%SZ"):
        sys.exit(f"sigv4_vectors: the clock was not fixed (X-Amz-Date {amz_date})")

    if params:
        # The query as botocore puts it on the wire; the signature encodes it strictly.
        query = urlsplit(request.prepare().url).query
    return {
        "name": case["name"],
        "method": method,
        "host": host,
        "path": case["path"],
        "query": query,
        "headers": [list(h) for h in headers],
        "body": case["body"],
        "access_key_id": AKID,
        "secret_access_key": SECRET,
        "session_token": token,
        "region": region,
        "service": "bedrock",
        "unix_time": int(fixed.replace(tzinfo=datetime.timezone.utc).timestamp()),
        "canonical_request": seen["canonical_request"],
        "string_to_sign": seen["string_to_sign"],
        "authorization": request.headers["Authorization"],
        "x_amz_date": amz_date,
        "x_amz_security_token": request.headers.get("X-Amz-Security-Token"),
    }


def fixed_clock(when):
    """Fixes botocore's clock at `when`: newer versions read it through get_current_datetime,
    older ones call datetime.datetime.utcnow() in botocore.auth."""
    if hasattr(botocore.auth, "get_current_datetime"):
        return mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: when)

    class Frozen(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return when

    return mock.patch.object(botocore.auth.datetime, "datetime", Frozen)


def main():
    vectors = [sign(case) for case in CASES]
    print(f"sigv4_vectors: {len(vectors)} cases signed by botocore {botocore.__version__}",
          file=sys.stderr)
    json.dump(vectors, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
