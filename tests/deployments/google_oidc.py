"""A loopback stand-in for Google's token signing keys: an RSA key, its JWKS served over HTTP, and tokens.

Pub/Sub push subscriptions send `Authorization: Bearer <ID token>` signed by Google (RS256, keys at
https://www.googleapis.com/oauth2/v3/certs, issuer https://accounts.google.com, `email` the subscription's
service account): https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions. The receiver is
given this server's URL instead of Google's, so tests exercise the real verification path.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "https://promoter.example.com/hooks/gar"
SERVICE_ACCOUNT = "pubsub-push@acme-prod.iam.gserviceaccount.com"


@dataclass
class SigningKeys:
    url: str
    key: rsa.RSAPrivateKey
    kid: str
    fetches: list[float]

    def token(self, **claims: Any) -> str:
        """A Google-shaped ID token; keyword arguments override or (with None) remove claims."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": "https://accounts.google.com",
            "aud": AUDIENCE,
            "azp": "117000000000000000000",
            "email": SERVICE_ACCOUNT,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
            "sub": "117000000000000000000",
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": self.kid})

    def bearer(self, **claims: Any) -> str:
        return f"Bearer {self.token(**claims)}"


def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@contextmanager
def google_keys() -> Iterator[SigningKeys]:
    """Serve a fresh key's JWKS on loopback for the duration of the block."""
    key = other_key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "test-key-1", "alg": "RS256", "use": "sig"})
    document = json.dumps({"keys": [jwk]}).encode()
    fetches: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetches.append(time.monotonic())
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SigningKeys(
            f"http://127.0.0.1:{server.server_address[1]}/oauth2/v3/certs", key, "test-key-1", fetches
        )
    finally:
        server.shutdown()
        server.server_close()


_KEPT: list[Any] = []


def serve_google_keys() -> SigningKeys:
    """Like `google_keys`, for the test process' lifetime (kept referenced, or collecting it would stop it)."""
    manager = google_keys()
    _KEPT.append(manager)
    return manager.__enter__()
