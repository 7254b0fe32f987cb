"""The official Anthropic Python SDK through ringgate to Claude on AWS Bedrock and Google Vertex AI.

ringgate's unit tests check its SigV4 signer against botocore's vectors and its token fetchers
against canned answers; what they cannot show is that a running gateway, with each form of
credential a deployment has, sends requests the clouds would take. Here the clouds are played
by the fakes of aws_fakes.py and google_fakes.py, each checking with a library that is not
ringgate's:

* Bedrock (``kind = "bedrock"``), with (a) static AWS keys with a session token, (b) a web
  identity exchanged at a fake STS, (c) an instance role from a fake IMDSv2, (d) a Bedrock API
  key. Every signed request is signed again by **botocore** at the front and must match byte for
  byte; the front then forwards to ``mock-upstream --dialect bedrock``, which checks the body as
  Bedrock does and answers in event-stream frames.
* Vertex (``kind = "vertex"``), with (e) a service account key file whose JWT assertion a fake
  token endpoint verifies with **google-auth**, (f) a fake metadata server, (g) a given access
  token. The front takes only the tokens the fakes issued, then forwards to
  ``mock-upstream --dialect vertex``.

For each of the seven, one gateway: plain and streamed answers, a tool-use conversation whose
body must arrive as the client wrote it (reshaped only as each cloud wants), count_tokens,
``anthropic-beta``, the SDK's typed exceptions for the clouds' errors, in-band errors in a
stream, a refused credential (the gateway's 502; a fetched one fetched again), and that no
secret reaches the log and no client key reaches the cloud. Each test ends by asserting the
fakes found nothing wrong (and a failure they record shows at the test that caused it), and one
more shows the fakes take what botocore and google-auth themselves make and refuse a wrong key,
region, path encoding, missing IMDSv2 token or Metadata-Flavor: a fake that let anything through
would pass everything else.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import secrets
import signal
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import anthropic
import google.auth.crypt
import google.auth.jwt
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import aws_fakes
import cloud_fakes as fakes
import google_fakes
from conftest import (
    CLIENT_KEY,
    FAULT_COOLDOWN_S,
    LISTEN_RE_MOCK,
    Gateway,
    Proc,
    _binary,
    assert_error_shape,
    gateway_config,
    make_client,
    start_gateway,
)

MODEL = "claude-haiku-4-5"
# The ids each cloud knows the model by ([upstreams.model_names]): Bedrock's cross-region
# profile, whose ':' must reach Bedrock percent-encoded once; Vertex's '@' version.
BEDROCK_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
BEDROCK_PATH = "/model/us.anthropic.claude-haiku-4-5-20251001-v1%3A0"
VERTEX_MODEL = "claude-haiku-4-5@20251001"
PROJECT = "ringgate-conformance"
PROMPT = "Tell me about the weather in Paris today please"
MESSAGES = [{"role": "user", "content": PROMPT}]
BETAS = ["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}

# The web identity a pod's kubelet would write, and the role it assumes.
ROLE_ARN = "arn:aws:iam::123456789012:role/ringgate-conformance"
SESSION_NAME = "ringgate-conformance-session"


# --------------------------------------------------------------------------
# the clouds and a gateway for each form of credential


@dataclass
class Cloud:
    form: str
    dialect: str
    region: str
    gateway: Gateway
    front: fakes.Front
    # Where the credential is fetched from, for the forms that fetch one.
    issuer: Optional[fakes.FakeServer] = None
    # What must never show in the gateway's log (read at the end: fetched values change).
    hidden: Callable[[], list[str]] = list

    @property
    def watched(self) -> list[fakes.FakeServer]:
        return [f for f in (self.front, self.issuer) if f is not None]

    @property
    def model_id(self) -> str:
        return BEDROCK_MODEL if self.dialect == "bedrock" else VERTEX_MODEL

    def issued(self) -> int:
        """How many credentials the issuer handed out."""
        return len(self.issuer.issued) if self.issuer else 0

    def take_failures(self) -> list[str]:
        """What the fakes found wrong since the last call (each is reported once, by the test
        during which it happened)."""
        failures = []
        for fake in self.watched:
            failures += fake.failures
            fake.failures.clear()
        return failures

    def assert_clean(self) -> None:
        """The fakes found nothing wrong with anything the gateway sent them."""
        failures = self.take_failures()
        assert not failures, f"{self.form}: the fakes refused what the gateway sent:\n" + "\n".join(failures)

    def path(self, call: str) -> str:
        """The path a `call` ("invoke", "stream" or "count") for MODEL must arrive at."""
        if self.dialect == "bedrock":
            verbs = {"invoke": "invoke", "stream": "invoke-with-response-stream", "count": "count-tokens"}
            return f"{BEDROCK_PATH}/{verbs[call]}"
        # Vertex: the '@' stays as it is, as Google's own clients send it.
        model = "count-tokens" if call == "count" else urllib.parse.quote(VERTEX_MODEL, safe="@")
        verb = "streamRawPredict" if call == "stream" else "rawPredict"
        return f"/v1/projects/{PROJECT}/locations/{self.region}/publishers/anthropic/models/{model}:{verb}"

    def sent(self, call: str) -> fakes.Incoming:
        """The last `call` the front let through: at exactly the path it must arrive at."""
        for req in reversed(self.front.forwarded):
            if req.path == self.path(call):
                return req
        paths = [r.path for r in self.front.forwarded]
        raise AssertionError(f"no request reached the front at {self.path(call)}; paths: {paths}")


def toml(value: str) -> str:
    # A TOML basic string takes JSON's escapes.
    return json.dumps(value)


def start_mock(name: str, dialect: str, log_dir: Path):
    """A mock-upstream that plays one cloud's model API (no key: the fronts check credentials)."""
    proc = Proc(
        name,
        [
            _binary("MOCK_UPSTREAM_BIN", "mock-upstream"),
            "--listen", "127.0.0.1:0",
            "--event-interval-ms", "0",
            "--dialect", dialect,
        ],
        log_dir,
    )
    m = proc.wait_for("stdout", LISTEN_RE_MOCK)
    return proc, int(m.group(1))


@pytest.fixture(scope="module")
def mocks(log_dir):
    procs = []
    try:
        ports = {}
        for dialect in ("bedrock", "vertex"):
            proc, ports[dialect] = start_mock(f"mock-upstream-{dialect}", dialect, log_dir)
            procs.append(proc)
        yield ports
    finally:
        for proc in procs:
            proc.signal_and_wait(signal.SIGTERM)


def rsa_service_account(token_uri: str) -> tuple[dict, str]:
    """A service account key file's contents with a fresh RSA key, and its public key PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    email = f"ringgate@{PROJECT}.iam.gserviceaccount.com"
    key_file = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": secrets.token_hex(20),
        "private_key": private_pem,
        "client_email": email,
        "client_id": "104213458932457829999",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
        "universe_domain": "googleapis.com",
    }
    return key_file, public_pem


def pem_body_lines(pem: str) -> list[str]:
    """The full 64-character lines of a PEM's base64: any of them in a log is the key leaking."""
    return [line for line in pem.splitlines() if len(line) == 64 and not line.startswith("-----")]


def issued_secrets(issued: list[tuple[str, str, str]]) -> list[str]:
    """The secret keys and session tokens of the AWS keys a fake issued (their ids are public)."""
    return [s for _, secret, token in issued for s in (secret, token)]


def setup_form(form: str, stack: contextlib.ExitStack, mocks: dict, tmp: Path):
    """The fakes for `form` and the gateway's credential: (dialect, region, front, issuer,
    credential TOML, environment, what must not be logged)."""

    def started(fake):
        stack.callback(fake.close)
        return fake

    dialect = form.split("-", 1)[0]
    if dialect == "bedrock":
        region = {"bedrock-keys": "us-east-1", "bedrock-web-identity": "eu-west-3",
                  "bedrock-instance": "ap-northeast-1", "bedrock-api-key": "us-west-2"}[form]
        front = started(aws_fakes.BedrockFront(mocks["bedrock"], region))
    else:
        region = {"vertex-service-account": "us-east5", "vertex-metadata": "europe-west1",
                  "vertex-access-token": "global"}[form]
        front = started(google_fakes.VertexFront(mocks["vertex"]))
    issuer, env = None, {}

    if form == "bedrock-keys":
        akid, secret, token = aws_fakes.temporary_keys()
        front.keys[akid] = (secret, token)
        # The secret through the environment, the rest inline: both ways the config takes.
        env["RINGGATE_CONFORMANCE_AWS_SECRET"] = secret
        credential = (f"aws_access_key_id = {toml(akid)}\n"
                      'aws_secret_access_key_env = "RINGGATE_CONFORMANCE_AWS_SECRET"\n'
                      f"aws_session_token = {toml(token)}\n")
        hidden = lambda: [secret, token]  # noqa: E731
    elif form == "bedrock-web-identity":
        token_file = tmp / "web-identity-token"
        web_token = "eyJhbGciOiJSUzI1NiIsImtpZCI6InJpbmdnYXRlIn0." + base64.urlsafe_b64encode(
            secrets.token_bytes(120)).decode().rstrip("=") + ".c2lnbmF0dXJl"
        token_file.write_text(web_token)
        issuer = started(aws_fakes.FakeSts(front, ROLE_ARN, SESSION_NAME, token_file))
        env.update(AWS_WEB_IDENTITY_TOKEN_FILE=str(token_file), AWS_ROLE_ARN=ROLE_ARN,
                   AWS_ROLE_SESSION_NAME=SESSION_NAME)
        credential = f'aws_credentials = "web-identity"\nsts_endpoint = {toml(issuer.url + "/")}\n'
        hidden = lambda: [web_token] + issued_secrets(issuer.issued)  # noqa: E731
    elif form == "bedrock-instance":
        issuer = started(aws_fakes.FakeImds(front))
        credential = f'aws_credentials = "instance"\nimds_endpoint = {toml(issuer.url)}\n'
        hidden = lambda: issued_secrets(issuer.issued) + [*issuer.session_tokens]  # noqa: E731
    elif form == "bedrock-api-key":
        key = "ABSKQmVkcm9ja0FQSUtleS" + base64.b64encode(secrets.token_bytes(60)).decode()
        front.api_keys.add(key)
        credential = f"api_key = {toml(key)}\n"
        hidden = lambda: [key]  # noqa: E731
    elif form == "vertex-service-account":
        issuer = started(google_fakes.FakeGoogleTokens(front))
        key_file, public_pem = rsa_service_account(issuer.token_uri)
        issuer.accounts[key_file["private_key_id"]] = (key_file["client_email"], public_pem)
        path = tmp / "service-account.json"
        path.write_text(json.dumps(key_file, indent=2))
        credential = f"service_account_file = {toml(str(path))}\n"
        hidden = lambda: pem_body_lines(key_file["private_key"]) + issuer.issued  # noqa: E731
    elif form == "vertex-metadata":
        issuer = started(google_fakes.FakeMetadata(front))
        credential = f'gcp_credentials = "metadata"\nmetadata_url = {toml(issuer.url)}\n'
        hidden = lambda: list(issuer.issued)  # noqa: E731
    elif form == "vertex-access-token":
        token = google_fakes.access_token()
        front.tokens.add(token)
        credential = f"access_token = {toml(token)}\n"
        hidden = lambda: [token]  # noqa: E731
    else:
        raise AssertionError(form)
    return dialect, region, front, issuer, credential, env, hidden


def cloud_config(dialect: str, front_url: str, region: str, credential: str) -> str:
    # The house routing (one attempt, 1 ms cooldowns: see conftest.gateway_config), one
    # upstream at the front, with its region, project and the cloud's model id.
    config = gateway_config(kind=dialect, base_url=front_url, api_key=None)
    config += f"region = {toml(region)}\n"
    if dialect == "vertex":
        config += f"project = {toml(PROJECT)}\n"
    model_id = BEDROCK_MODEL if dialect == "bedrock" else VERTEX_MODEL
    config += f"\n[upstreams.model_names]\n{toml(MODEL)} = {toml(model_id)}\n"
    return config + '\n[[upstreams.credentials]]\nname = "cloud"\n' + credential


FORMS = [
    "bedrock-keys",
    "bedrock-web-identity",
    "bedrock-instance",
    "bedrock-api-key",
    "vertex-service-account",
    "vertex-metadata",
    "vertex-access-token",
]


@pytest.fixture(scope="module", params=FORMS)
def cloud(request, mocks, log_dir, tmp_path_factory):
    form = request.param
    with contextlib.ExitStack() as stack:
        tmp = tmp_path_factory.mktemp(form)
        dialect, region, front, issuer, credential, env, hidden = setup_form(form, stack, mocks, tmp)
        config = cloud_config(dialect, front.url, region, credential)
        # debug: the most verbose level is where a secret would leak.
        gw, proc = start_gateway(f"{form}-gateway", config, log_dir, rust_log="debug", env=env)
        # Stopped first (the stack unwinds backwards), so no fake goes while it still calls.
        stack.callback(proc.signal_and_wait, signal.SIGTERM)
        yield Cloud(form, dialect, region, gw, front, issuer, hidden)


@pytest.fixture
def client(cloud):
    c = make_client(cloud.gateway)
    try:
        yield c
    finally:
        c.close()
        # The gateways' cooldowns are 1 ms: waited out after each injected fault.
        time.sleep(FAULT_COOLDOWN_S)
    # A test that failed before its own assert_clean (the SDK raised on the 403 a refused
    # signature gets) still shows why the fakes refused.
    failures = cloud.take_failures()
    if failures:
        what = "\n".join(failures)
        pytest.fail(f"{cloud.form}: the fakes refused what the gateway sent:\n{what}", pytrace=False)


def create(client, **overrides):
    params = dict(model=MODEL, max_tokens=256, messages=MESSAGES)
    params.update(overrides)
    return client.messages.create(**params)


def the_text(message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def greeting(cloud: Cloud) -> str:
    # The mock names the model its path named: the cloud's id, decoded once.
    return f"Hello from the ringgate mock upstream ({cloud.model_id}). You said:"


# --------------------------------------------------------------------------
# answers


def test_a_plain_answer(client, cloud):
    msg = create(client)
    text = the_text(msg)
    assert text.startswith(greeting(cloud)) and text.endswith(PROMPT), text
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0

    req = cloud.sent("invoke")
    body = req.json()
    if cloud.dialect == "bedrock":
        assert body["anthropic_version"] == "bedrock-2023-05-31"
        assert "model" not in body and "stream" not in body, body
        assert req.header("accept") == "application/json"
    else:
        assert body["anthropic_version"] == "vertex-2023-10-16"
        assert "model" not in body and body.get("stream", False) is False, body
    assert req.header("content-type") == "application/json"
    cloud.assert_clean()


def test_a_streamed_answer_is_the_plain_one(client, cloud):
    whole = the_text(create(client))
    with client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 3, "delivered in pieces"
    assert "".join(pieces) == whole == the_text(final)
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0

    req = cloud.sent("stream")
    body = req.json()
    if cloud.dialect == "bedrock":
        # The path says it streams; Bedrock refuses a body that says so too.
        assert "stream" not in body and "model" not in body, body
        assert req.header("accept") == "application/vnd.amazon.eventstream"
    else:
        assert body["stream"] is True and "model" not in body, body
        assert req.header("accept") == "text/event-stream"
    cloud.assert_clean()


def test_the_raw_stream_is_in_the_anthropic_grammar(client, cloud):
    events = [e.type for e in create(client, stream=True)]
    assert events[0] == "message_start"
    assert events[-2:] == ["message_delta", "message_stop"]
    assert events.count("content_block_start") == events.count("content_block_stop") >= 1
    cloud.assert_clean()


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_conversation_reaches_the_cloud_as_the_client_wrote_it(client, cloud, stream):
    # The mock never calls tools itself; what matters is that the turns carrying them (and
    # every other field) arrive as written: ringgate reshapes these bodies without parsing them.
    history = [
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "Sunny, 21 C"},
            {"type": "text", "text": "And what should I wear"},
        ]},
    ]
    params = dict(
        max_tokens=200, messages=history, tools=[WEATHER], tool_choice={"type": "auto"},
        system=[{"type": "text", "text": "Be brief. ☀ «ça»", "cache_control": {"type": "ephemeral"}}],
        metadata={"user_id": "user-7"}, stop_sequences=["\n\nHuman:"],
    )
    if stream:
        with client.messages.stream(model=MODEL, **params) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(model=MODEL, **params)
    assert the_text(msg).endswith("And what should I wear"), the_text(msg)

    body = cloud.sent("stream" if stream else "invoke").json()
    version = "bedrock-2023-05-31" if cloud.dialect == "bedrock" else "vertex-2023-10-16"
    expected = dict(params, anthropic_version=version)
    if stream and cloud.dialect == "vertex":
        expected["stream"] = True
    assert body == expected
    cloud.assert_clean()


def test_count_tokens(client, cloud):
    counted = client.messages.count_tokens(model=MODEL, messages=MESSAGES, tools=[WEATHER])
    # The mock counts the text it is given: the same as the answer to the same turns says.
    assert counted.input_tokens == create(client, tools=[WEATHER]).usage.input_tokens > 10
    req = cloud.sent("count")
    body = req.json()
    if cloud.dialect == "bedrock":
        # CountTokens wraps an InvokeModel body, base64-encoded.
        inner = json.loads(base64.b64decode(body["input"]["invokeModel"]["body"]))
        assert inner["anthropic_version"] == "bedrock-2023-05-31"
        assert inner["messages"] == MESSAGES and inner["tools"] == [WEATHER]
        assert "model" not in inner, inner
    else:
        # Vertex's counting endpoint is not the model's: the body names it.
        assert body["model"] == VERTEX_MODEL and body["anthropic_version"] == "vertex-2023-10-16"
        assert body["messages"] == MESSAGES and body["tools"] == [WEATHER]
    cloud.assert_clean()


@pytest.mark.parametrize("stream", [False, True])
def test_betas_reach_the_cloud_its_way(client, cloud, stream):
    params = dict(model=MODEL, max_tokens=64, messages=MESSAGES, betas=BETAS)
    if stream:
        with client.beta.messages.stream(**params) as s:
            msg = s.get_final_message()
    else:
        msg = client.beta.messages.create(**params)
    assert the_text(msg).startswith(greeting(cloud))
    req = cloud.sent("stream" if stream else "invoke")
    if cloud.dialect == "bedrock":
        # Bedrock reads betas from the body only.
        assert req.json()["anthropic_beta"] == BETAS
        assert req.header("anthropic-beta") is None
    else:
        assert [b.strip() for b in req.header("anthropic-beta").split(",")] == BETAS
        assert "anthropic_beta" not in req.json()
    cloud.assert_clean()


# --------------------------------------------------------------------------
# errors


# fault, then per dialect: status, SDK exception, error type the client gets.
FAULTS = {
    "rate_limit": {
        # Bedrock: 429 ThrottlingException; Vertex: 429 RESOURCE_EXHAUSTED inside an array.
        "bedrock": (429, anthropic.RateLimitError, "rate_limit_error"),
        "vertex": (429, anthropic.RateLimitError, "rate_limit_error"),
    },
    "overloaded": {
        # Bedrock: 503 ServiceUnavailableException (the status stays, the name types it);
        # Vertex: the model's own 529.
        "bedrock": (503, anthropic.InternalServerError, "overloaded_error"),
        "vertex": (529, anthropic.OverloadedError, "overloaded_error"),
    },
    "server_error": {
        # Bedrock: 500 InternalServerException; Vertex: Google's 500 INTERNAL.
        "bedrock": (500, anthropic.InternalServerError, "api_error"),
        "vertex": (500, anthropic.InternalServerError, "api_error"),
    },
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("stream", [False, True])
def test_cloud_errors_raise_the_sdks_typed_exceptions(client, cloud, fault, stream):
    status, cls, error_type = FAULTS[fault][cloud.dialect]
    with pytest.raises(cls) as e:
        if stream:
            with client.messages.stream(
                model=MODEL, max_tokens=64, messages=MESSAGES, extra_headers={"x-mock-fault": fault}
            ) as s:
                s.get_final_message()
        else:
            create(client, extra_headers={"x-mock-fault": fault})
    assert e.value.status_code == status, e.value
    assert_error_shape(e.value.body, error_type)
    cloud.assert_clean()


def test_a_request_the_model_refuses_is_a_bad_request(client, cloud):
    # No messages: the model's validation refuses it (Bedrock: 400 ValidationException).
    with pytest.raises(anthropic.BadRequestError) as e:
        create(client, messages=[])
    assert e.value.status_code == 400
    assert_error_shape(e.value.body, "invalid_request_error")
    assert "messages" in e.value.body["error"]["message"]
    cloud.assert_clean()


@pytest.mark.parametrize(
    "fault,error_type,words",
    [
        # Bedrock: an exception frame (serviceUnavailableException) after two deltas; Vertex:
        # the model's own error event.
        ("error_in_stream", "overloaded_error", {"bedrock": "error in stream", "vertex": "error in stream"}),
        # Bedrock: a chunk whose bytes are not an event. Vertex: a data line that is not JSON,
        # relayed as Anthropic streams are (unread), then the stream ends short of message_stop.
        ("garbage", "api_error", {"bedrock": "not an Anthropic event", "vertex": "without message_stop"}),
        # The connection closes after a few events (the front cuts its own to the gateway too).
        ("drop_mid_stream", "api_error", {d: "closed the connection" for d in ("bedrock", "vertex")}),
    ],
)
def test_a_stream_that_fails_midway_raises_in_band(client, cloud, fault, error_type, words):
    whole = the_text(create(client, max_tokens=256))
    received = []
    with pytest.raises(anthropic.APIStatusError) as e:
        with client.messages.stream(
            model=MODEL, max_tokens=256, messages=MESSAGES, extra_headers={"x-mock-fault": fault}
        ) as s:
            for text in s.text_stream:
                received.append(text)
    # What came before the failure reached the client: the start of the answer.
    assert received and whole.startswith("".join(received)), (received, whole)
    # In-band: the stream had begun with a 200.
    assert e.value.status_code == 200
    assert_error_shape(e.value.body, error_type)
    assert words[cloud.dialect] in e.value.body["error"]["message"], e.value.body
    cloud.assert_clean()


def test_a_refused_credential_is_the_gateways_502_and_fetched_again(client, cloud):
    """The cloud refuses the credential once (the mock's 401/403). The client gets the 502 that
    says so, never the cloud's 401/403, which its SDK would raise as its own key's failure
    (AuthenticationError, PermissionDeniedError): also for a fetched credential's first refusal,
    which is forgiven (it is fetched again, not blamed). Requests soon go with the new value."""
    before = cloud.issued()
    with pytest.raises(anthropic.APIStatusError) as e:
        create(client, extra_headers={"x-mock-fault": "auth"})
    assert e.value.status_code == 502, f"{type(e.value).__name__} {e.value.status_code}: {e.value.body}"
    assert_error_shape(e.value.body, "api_error")
    assert "refused the gateway's credential" in e.value.body["error"]["message"]
    if cloud.issuer is not None:
        deadline = time.monotonic() + 5
        while cloud.issued() == before and time.monotonic() < deadline:
            time.sleep(0.02)
        fetched = cloud.issued() - before
        assert fetched == 1, f"{cloud.issuer.name} issued {fetched} credentials after a refusal"
    time.sleep(FAULT_COOLDOWN_S)
    if cloud.issuer is None:
        assert the_text(create(client)).startswith(greeting(cloud))
    else:
        # The refresher stores the new value a moment after the issuer answered; until then
        # the old one is still the current one. Requests soon go with the new one.
        newest = cloud.issuer.issued[-1]
        expected = (f"Credential={newest[0]}/" if cloud.dialect == "bedrock" else f"Bearer {newest}")
        deadline = time.monotonic() + 5
        while True:
            assert the_text(create(client)).startswith(greeting(cloud))
            sent = cloud.sent("invoke").header("authorization")
            if expected in sent or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert expected in sent, f"still sent after 5 s: {sent}"
    cloud.assert_clean()


# --------------------------------------------------------------------------
# what the fakes saw, and what the log holds


def test_every_request_carried_the_credential_the_cloud_checks(client, cloud):
    create(client)
    front = cloud.front
    assert front.forwarded, "nothing reached the cloud"
    if isinstance(front, aws_fakes.BedrockFront):
        if cloud.form == "bedrock-api-key":
            assert front.bearer_accepted == len(front.forwarded) and front.verified == 0
        else:
            # Every request that got through was signed as botocore signs it.
            assert front.verified == len(front.forwarded) == len(front.requests), (
                front.verified, len(front.forwarded), len(front.requests))
            for req in front.forwarded:
                assert req.header("x-amz-security-token"), "temporary keys go with their session token"
    else:
        assert front.accepted == len(front.forwarded) == len(front.requests)
    if cloud.form == "vertex-service-account":
        assert cloud.issuer.verified_claims, "google-auth verified the service account's JWT"
        claims = cloud.issuer.verified_claims[0]
        assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
        assert claims["exp"] - claims["iat"] == 3600
    if cloud.issuer is not None:
        assert cloud.issued() >= 1, "the credential was fetched"
    cloud.assert_clean()


def test_no_client_key_reaches_the_cloud(client, cloud):
    create(client)
    for req in cloud.front.requests:
        assert req.header("x-api-key") is None, req.target
        anthropic_headers = [n for n, _ in req.headers if n.lower().startswith("anthropic-")]
        assert anthropic_headers in ([], ["anthropic-beta"]), (req.target, anthropic_headers)
        for name, value in req.headers:
            assert CLIENT_KEY not in value, (req.target, name)
        assert CLIENT_KEY.encode() not in req.body
    cloud.assert_clean()


def test_no_secret_reaches_the_log(client, cloud):
    create(client)
    with client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as s:
        s.get_final_message()
    log = cloud.gateway.output()
    hidden = cloud.hidden()
    assert hidden and all(len(s) >= 16 for s in hidden), "secrets long enough to find"
    leaked = [s[:6] + "…" for s in hidden if s in log]
    assert not leaked, f"{cloud.form}: secrets in the gateway's log (starting): {leaked}"
    assert CLIENT_KEY not in log
    cloud.assert_clean()


# --------------------------------------------------------------------------
# the fakes themselves: they take what the libraries make, and refuse what the clouds refuse


def call(fake: fakes.FakeServer, method: str, target: str, body: bytes = b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_the_fakes_take_what_the_libraries_make_and_refuse_the_rest(mocks):
    """Without this the tests above could pass against fronts that let anything through."""
    bedrock, vertex = aws_fakes.BedrockFront(mocks["bedrock"], "us-east-1"), google_fakes.VertexFront(mocks["vertex"])
    imds, metadata = aws_fakes.FakeImds(bedrock), google_fakes.FakeMetadata(vertex)
    tokens = google_fakes.FakeGoogleTokens(vertex)
    try:
        akid, secret, token = aws_fakes.temporary_keys()
        bedrock.keys[akid] = (secret, token)
        body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5,
                           "messages": MESSAGES}).encode()

        def signed(path: str, secret_key: str = secret, region: str = "us-east-1") -> dict:
            # As botocore's own Bedrock client signs: the URL's path encoded once.
            request = AWSRequest("POST", f"{bedrock.url}{path}", data=body,
                                 headers={"content-type": "application/json", "accept": "application/json"})
            SigV4Auth(Credentials(akid, secret_key, token), "bedrock", region).add_auth(request)
            return dict(request.headers.items())

        path = f"{BEDROCK_PATH}/invoke"
        status, _, answer = call(bedrock, "POST", path, body, signed(path))
        assert (status, bedrock.verified, bedrock.failures) == (200, 1, []), answer
        refused = [
            signed(path, secret_key=secret[::-1]),
            signed(path, region="us-west-2"),
            # The id signed as if its ':' went raw: botocore encodes once where AWS wants twice.
            signed("/model/us.anthropic.claude-haiku-4-5-20251001-v1:0/invoke"),
        ]
        for headers in refused:
            status, answer_headers, _ = call(bedrock, "POST", path, body, headers)
            assert status == 403, status
            assert answer_headers["x-amzn-errortype"].startswith("InvalidSignatureException")
        assert len(bedrock.failures) == 3, bedrock.failures
        assert bedrock.verified == 1

        status, _, _ = call(imds, "GET", aws_fakes.FakeImds.CREDS)
        assert status == 401, "IMDSv2 wants its session token"
        status, _, _ = call(metadata, "GET", google_fakes.FakeMetadata.TOKEN_PATH)
        assert status == 403, "the metadata server wants Metadata-Flavor: Google"

        key_file, public_pem = rsa_service_account(tokens.token_uri)
        tokens.accounts[key_file["private_key_id"]] = (key_file["client_email"], public_pem)
        now = int(time.time())
        claims = {"iss": key_file["client_email"], "scope": google_fakes.FakeGoogleTokens.SCOPE,
                  "aud": tokens.token_uri, "iat": now, "exp": now + 3600}
        other_key = rsa_service_account(tokens.token_uri)[0]["private_key"]
        for pem, want in ((key_file["private_key"], 200), (other_key, 400)):
            signer = google.auth.crypt.RSASigner.from_string(pem, key_file["private_key_id"])
            assertion = google.auth.jwt.encode(signer, claims).decode()
            form = {"grant_type": google_fakes.FakeGoogleTokens.GRANT, "assertion": assertion}
            status, _, answer = call(tokens, "POST", "/token", urllib.parse.urlencode(form).encode(),
                                     {"content-type": "application/x-www-form-urlencoded"})
            assert status == want, answer
        assert len(tokens.issued) == 1
        assert [len(f.failures) for f in (imds, metadata, tokens)] == [1, 1, 1]
    finally:
        for fake in (bedrock, vertex, imds, metadata, tokens):
            fake.close()

