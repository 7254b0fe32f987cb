"""Loopback stand-ins for the Google services a Vertex upstream needs (see cloud_fakes.py).

``VertexFront`` takes only the bearer tokens the fakes issued and forwards to
``mock-upstream --dialect vertex``; ``FakeGoogleTokens`` verifies a service account's JWT
assertion with **google-auth**; ``FakeMetadata`` plays the GCE metadata server.
"""

from __future__ import annotations

import base64
import secrets
from typing import Optional

import google.auth.jwt

from cloud_fakes import Incoming, Reply, json_reply, FakeServer, Front


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
