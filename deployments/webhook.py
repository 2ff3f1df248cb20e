"""The registry webhook receiver: verify the sender, parse the push, emit one Prefect event per release.

Self-hosted Prefect has no incoming webhooks (REFERENCE.md section 5), and a receiver that does not verify
its senders lets anyone start a promotion, so each sender is authenticated the strongest way it supports:
an HMAC of the raw body (GitHub, Nexus, generic), a Google-signed OIDC token (Artifact Registry's Pub/Sub
push), a configured header (Harbor, ECR's API key, optionally ACR, distribution and CDEvents), or a secret
path token (Docker Hub and Quay, which can sign nothing). A sender whose secret is not configured is
disabled (404) instead of accepting unsigned deliveries.

Registries deliver the same push several times (retries, one notification per manifest of a multi-arch
image), so pushes are deduplicated twice: in a bounded, expiring memory of recent deliveries, and durably
by the Prefect event id, derived from the push (`event_id`): the server keeps one event per id, so a
delivery replayed after a restart of the receiver is stored once. Counters of every outcome are served on
`GET /stats`, and per sender with the pipeline's other metrics on `GET /metrics` (deployments/metrics.py).
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, cast, get_args

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from deployments.metrics import Metrics, lifespan
from deployments.registries import PARSERS, Ignored, ImagePush, Notification, Parser, Sender, parse_nexus
from promoter.errors import ConfigError, InvalidInputError, PromoterError
from tasks.contracts import REGISTRY_EVENT, registry_resource

EVENT = REGISTRY_EVENT
ENV_PREFIX = "PROMOTER_WEBHOOK_"
# Prefect event ids are uuid5 in this namespace (uuid5 of the URL namespace and this project's name).
EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/XenitAB/gitops-promotion#promoter")
# Google signs Pub/Sub push tokens with the keys published here, as either issuer.
GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
MIN_SECRET_LENGTH = 16
SENDERS: tuple[Sender, ...] = get_args(Sender)
# Served on /stats. Pushes count as accepted (emitted), duplicate or ignored; whole requests as
# unauthorized (401), invalid (400, 413), disabled (404) or failed (503, the event was not stored).
OUTCOMES = ("accepted", "duplicate", "ignored", "unauthorized", "invalid", "disabled", "failed")
# RFC 9110 field-name characters.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

# How each signing sender's HMAC reads: (header, digest, prefix of the hex).
SIGNATURES: dict[str, tuple[str, str, str]] = {
    "github": ("X-Hub-Signature-256", "sha256", "sha256="),
    "generic": ("X-Signature", "sha256", "sha256="),
    "nexus": ("X-Nexus-Webhook-Signature", "sha1", ""),  # Nexus signs with HmacSHA1, bare hex
}

Auth = Literal["hmac", "token", "header", "path", "oidc"]
log = logging.getLogger("promoter.webhook")


@dataclass(frozen=True)
class RegistryEvent:
    """One `registry.image.pushed` event, its id derived from the push so that a replay keeps the id."""

    id: uuid.UUID
    occurred: datetime
    resource: dict[str, str]
    payload: dict[str, Any] = field(default_factory=dict)
    event: str = EVENT


class Emitter(Protocol):
    """Where an accepted push goes; raises `EmitError` when the event could not be delivered."""

    def __call__(self, event: RegistryEvent) -> None: ...


class EmitError(PromoterError):
    """The event was not stored; the receiver answers 503 so that the registry retries the delivery."""


class TokenUnverifiable(PromoterError):
    """Google's signing keys could not be fetched: 503, so that Pub/Sub retries, rather than 401."""


class StaticHeader(BaseModel):
    """A header every delivery must carry with this exact value (ACR, CNCF distribution)."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: SecretStr

    @classmethod
    def parse(cls, text: str, variable: str = "HEADER") -> StaticHeader:
        name, colon, value = text.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not HEADER_NAME.fullmatch(name) or not value:
            raise ConfigError(f"{ENV_PREFIX}{variable} must read 'Name: value' with a valid header name")
        return cls(name=name, value=SecretStr(value))


class GoogleOIDC(BaseModel):
    """Who may push through a Pub/Sub push subscription: its audience and its service account.

    The audience alone proves nothing, since anyone with a Google account can mint a token for any
    audience; the subscription's service account (`email`, verified) is what only its owner controls.
    """

    model_config = ConfigDict(frozen=True)

    audience: str = Field(min_length=1)
    service_account: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    jwks_url: str = Field(default=GOOGLE_JWKS_URL, pattern=r"^https?://")


class WebhookSettings(BaseModel):
    """Per-sender secrets and limits. Secrets are `SecretStr`: they print as `**********`."""

    model_config = ConfigDict(frozen=True)

    github_secret: SecretStr | None = None
    generic_secret: SecretStr | None = None
    nexus_secret: SecretStr | None = None
    harbor_token: SecretStr | None = None
    path_token: SecretStr | None = None
    header: StaticHeader | None = None
    ecr_api_key: StaticHeader | None = None
    gar_oidc: GoogleOIDC | None = None
    # Nexus names its repository, not the host a client pulls from: repository name -> host[:port][/path].
    nexus_registries: dict[str, str] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=1 << 20, gt=0)
    dedupe_ttl_seconds: float = Field(default=3600.0, gt=0)
    # A push with neither digest, delivery id nor push time (Quay, a generic push without digest) cannot be
    # told from a genuine re-push of its tag: it is suppressed for this long only.
    dedupe_window_seconds: float = Field(default=60.0, gt=0)
    dedupe_max_entries: int = Field(default=10_000, gt=0)

    @field_validator("nexus_registries")
    @classmethod
    def _hosts(cls, value: dict[str, str]) -> dict[str, str]:
        for name, host in value.items():
            if not name or not re.fullmatch(r"[A-Za-z0-9._:-]+(?:/[a-z0-9._-]+)*", host):
                raise ConfigError(
                    f"{ENV_PREFIX}NEXUS_REGISTRIES must read 'repository=host[:port][/path],...'; "
                    f"{name!r} maps to {host!r}"
                )
        return value

    @field_validator("github_secret", "generic_secret", "nexus_secret", "harbor_token", "path_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"webhook secrets must be at least {MIN_SECRET_LENGTH} characters: short ones are guessed"
            )
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        """Read the `PROMOTER_WEBHOOK_*` variables the README lists; empty means unset."""
        env = os.environ if environ is None else environ

        def value(name: str) -> str:
            return env.get(ENV_PREFIX + name, "").strip()

        def secret(name: str) -> SecretStr | None:
            return SecretStr(value(name)) if value(name) else None

        def header(name: str) -> StaticHeader | None:
            return StaticHeader.parse(value(name), name) if value(name) else None

        return cls(
            github_secret=secret("GITHUB_SECRET"),
            generic_secret=secret("GENERIC_SECRET"),
            nexus_secret=secret("NEXUS_SECRET"),
            harbor_token=secret("HARBOR_TOKEN"),
            path_token=secret("PATH_TOKEN"),
            header=header("HEADER"),
            ecr_api_key=header("ECR_API_KEY"),
            gar_oidc=_google_oidc(value("GAR_AUDIENCE"), value("GAR_SERVICE_ACCOUNT"), value("GAR_JWKS_URL")),
            nexus_registries=_pairs(value("NEXUS_REGISTRIES")),
        )

    def auth(self, sender: str) -> Auth | None:
        """How `sender` proves itself, or None when it is disabled for want of a secret.

        ACR, distribution and CDEvents can send a static header, ECR an API key header and Artifact
        Registry an OIDC token; without them configured they fall back to the path token, like the senders
        that cannot authenticate at all. The signing senders (GitHub, Nexus, generic) never fall back.
        """
        signing = {"github": self.github_secret, "generic": self.generic_secret, "nexus": self.nexus_secret}
        if sender in signing:
            return "hmac" if signing[sender] else None
        if sender == "harbor":
            return "token" if self.harbor_token else None
        if sender in ("acr", "distribution", "cdevents") and self.header:
            return "header"
        if sender == "ecr" and self.ecr_api_key:
            return "header"
        if sender == "gar" and self.gar_oidc:
            return "oidc"
        if sender in SENDERS:
            return "path" if self.path_token else None
        return None

    def header_for(self, sender: str) -> StaticHeader | None:
        return self.ecr_api_key if sender == "ecr" else self.header

    def parser(self, sender: Sender) -> Parser:
        """The sender's parser, with what it needs from the settings (Nexus' registry hosts)."""
        if sender == "nexus":
            return functools.partial(parse_nexus, hosts=self.nexus_registries)
        return PARSERS[sender]

    def enabled(self) -> dict[Sender, Auth]:
        return {sender: auth for sender in SENDERS if (auth := self.auth(sender))}


def _google_oidc(audience: str, service_account: str, jwks_url: str) -> GoogleOIDC | None:
    if not audience and not service_account:
        return None
    if not audience or not service_account:
        raise ConfigError(
            f"set both {ENV_PREFIX}GAR_AUDIENCE and {ENV_PREFIX}GAR_SERVICE_ACCOUNT: an audience alone "
            "accepts any Google account's token"
        )
    try:
        return GoogleOIDC(
            audience=audience, service_account=service_account, jwks_url=jwks_url or GOOGLE_JWKS_URL
        )
    except ValidationError as error:
        name = str(error.errors()[0]["loc"][0])
        raise ConfigError(
            f"{ENV_PREFIX}GAR_{name.upper()} is not valid: the service account is an e-mail address, "
            "the JWKS URL starts with https://"
        ) from None


def _pairs(text: str) -> dict[str, str]:
    """`a=b,c=d` -> {"a": "b", "c": "d"}."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, host = item.partition("=")
        if not equals:
            raise ConfigError(f"{ENV_PREFIX}NEXUS_REGISTRIES must read 'repository=host[:port][/path],...'")
        pairs[name.strip()] = host.strip().lower()
    return pairs


def signature_matches(
    secret: SecretStr, body: bytes, header: str | None, digest: str = "sha256", prefix: str = "sha256="
) -> bool:
    """`header` is `<prefix><hex HMAC of body>`: `sha256=` for GitHub's X-Hub-Signature-256 and Flux's
    X-Signature, bare SHA-1 hex for Nexus' X-Nexus-Webhook-Signature."""
    if header is None:
        return False
    expected = prefix + hmac.new(secret.get_secret_value().encode(), body, digest).hexdigest()
    return same_secret(expected, header.strip().lower())


class GoogleTokenVerifier:
    """Checks a Pub/Sub push's `Authorization: Bearer <Google-signed ID token>` (RS256, JWKS from Google).

    The keys are fetched once and cached for an hour; an unknown key id refetches them (key rotation).
    """

    def __init__(self, oidc: GoogleOIDC, *, timeout: float = 10.0) -> None:
        self._oidc = oidc
        self._keys = jwt.PyJWKClient(oidc.jwks_url, cache_keys=True, lifespan=3600, timeout=timeout)

    def __call__(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token or not token.isascii():
            return False
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self._oidc.audience,
                issuer=GOOGLE_ISSUERS,
                leeway=30,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWKClientConnectionError:
            raise TokenUnverifiable("Google's token signing keys could not be fetched") from None
        except (jwt.PyJWTError, ValueError):
            return False
        return claims.get("email") == self._oidc.service_account and claims.get("email_verified") is True


def _matches(secret: SecretStr | None, given: str | None) -> bool:
    return secret is not None and given is not None and same_secret(secret.get_secret_value(), given)


def same_secret(expected: str, given: str) -> bool:
    """Constant-time comparison that also accepts the non-ASCII text a hostile header can carry."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))


class RecentDeliveries:
    """Keys first seen in the last `ttl` seconds, at most `max_entries` of them, the oldest evicted first.

    A hit does not refresh a key, so a delivery is suppressed for `ttl` after it was first emitted and no
    longer: a sender that keeps retrying past that gets through once more, which beats unbounded memory.
    """

    def __init__(self, max_entries: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max, self._ttl, self._clock = max_entries, ttl, clock
        self._seen: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, keys: list[Hashable], ttl: float | None = None) -> bool:
        """Record `keys` for `ttl` (default: the memory's) and return True, or False if any was seen recently."""
        with self._lock:
            now = self._clock()
            for key in [key for key, expiry in self._seen.items() if expiry <= now]:
                del self._seen[key]
            if any(key in self._seen for key in keys):
                return False
            for key in keys:
                self._seen[key] = now + (self._ttl if ttl is None else min(ttl, self._ttl))
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
            return True

    def release(self, keys: list[Hashable]) -> None:
        """Forget `keys`, so that a retry of a delivery that failed downstream is not taken for a duplicate."""
        with self._lock:
            for key in keys:
                self._seen.pop(key, None)


def distinguishable(push: ImagePush) -> bool:
    """Whether something tells this push from a later re-push of the same tag: a digest, a delivery id or
    the sender's push time. Without it (Quay), a retry and a genuine re-push look the same."""
    return bool(push.digest or push.delivery or push.push_id)


def dedupe_keys(push: ImagePush) -> list[Hashable]:
    """The image itself (repository, tag, digest, push time), plus the sender's delivery id when it gives one.

    The tag is part of both keys: one digest pushed under two tags is two releases, and one delivery (a
    Harbor CloudEvent, a distribution envelope) can carry several artifacts.
    """
    keys: list[Hashable] = [("image", push.repository, push.tag, push.digest or "", push.push_id or "")]
    if push.delivery:
        keys.append(("delivery", push.sender, push.delivery, push.repository, push.tag))
    return keys


def event_id(push: ImagePush, received_at: datetime, window: float) -> uuid.UUID:
    """A uuid5 of what identifies the push, so that every delivery of it is one event at the Prefect server.

    In order of preference: the digest (redeliveries with new delivery ids stay one event), the sender's
    delivery id, its push time; for an indistinguishable push, the `window` of receive time it fell in.
    """
    if push.digest:
        parts = ["digest", push.digest]
    elif push.delivery:
        parts = ["delivery", push.delivery]
    elif push.push_id:
        parts = ["push_id", push.push_id]
    else:
        parts = ["window", str(int(received_at.timestamp() // window))]
    return uuid.uuid5(EVENT_NAMESPACE, "\n".join([push.sender, push.repository, push.tag, *parts]))


def event_for(push: ImagePush, received_at: datetime, window: float = 60.0) -> RegistryEvent:
    """`registry.image.pushed` for `push`: the contract the promotion flow's trigger reads (tasks.contracts)."""
    payload = {"sender": push.sender, "received_at": received_at.isoformat(), "delivery": push.delivery or ""}
    return RegistryEvent(
        id=event_id(push, received_at, window),
        occurred=received_at,
        resource=registry_resource(push.repository, push.tag, push.digest, push.pushed_by),
        payload=payload,
    )


class PrefectEmitter:
    """POSTs each event to `{PREFECT_API_URL}/events` and raises `EmitError` unless the server took it.

    Not `prefect.events.emit_event`: that queues the event for a background websocket client, returns
    before it is sent and drops it with a log line when the server is unreachable. A direct POST lets the
    receiver answer 503 when the event was not stored, and the registry then retries.
    """

    def __init__(self, api_url: str | None = None, *, timeout: float = 10.0) -> None:
        from prefect.settings import PREFECT_API_URL

        from deployments.prefect_api import credentials

        url = api_url or PREFECT_API_URL.value()
        if not url:
            raise ConfigError(
                "PREFECT_API_URL is not set: point it at the Prefect server, e.g. http://127.0.0.1:4200/api"
            )
        headers, auth = credentials()
        self._client = httpx.Client(base_url=url.rstrip("/"), headers=headers, auth=auth, timeout=timeout)

    def __call__(self, event: RegistryEvent) -> None:
        body = [
            {
                "id": str(event.id),
                "occurred": event.occurred.isoformat(),
                "event": event.event,
                "resource": event.resource,
                "payload": event.payload,
                "related": [],
            }
        ]
        try:
            response = self._client.post("/events", json=body)
        except httpx.HTTPError as error:
            raise EmitError(f"could not reach the Prefect API: {type(error).__name__}") from None
        if response.status_code >= 300:
            raise EmitError(f"the Prefect API answered HTTP {response.status_code} to POST /events")

    def close(self) -> None:
        self._client.close()


async def read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it exceeds `limit` bytes (declared or actual)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class _Receiver:
    def __init__(
        self,
        settings: WebhookSettings,
        emit: Emitter,
        known_image: Callable[[str], bool] | None,
        metrics: Metrics,
    ) -> None:
        self.settings, self.emit, self.known_image = settings, emit, known_image
        self.recent = RecentDeliveries(settings.dedupe_max_entries, settings.dedupe_ttl_seconds)
        self.google = GoogleTokenVerifier(settings.gar_oidc) if settings.gar_oidc else None
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.metrics = metrics
        metrics.start(settings.enabled(), OUTCOMES)

    def _count(self, sender: str, outcome: str) -> None:
        self.counts[outcome] += 1
        self.metrics.delivery(sender, outcome)

    def _fail(self, sender: str, outcome: str, status: int, message: str) -> JSONResponse:
        self._count(sender, outcome)
        return JSONResponse({"error": message}, status_code=status)

    async def _authentic_before_body(self, sender: Sender, auth: Auth, request: Request) -> bool:
        """Path token, header and token checks; an HMAC can only be checked once the body is read."""
        settings = self.settings
        if auth == "path":
            return _matches(settings.path_token, request.path_params.get("token"))
        if auth == "token":
            return _matches(settings.harbor_token, request.headers.get("authorization"))
        if auth == "header" and (header := settings.header_for(sender)):
            return _matches(header.value, request.headers.get(header.name))
        if auth == "oidc" and self.google:
            return await run_in_threadpool(self.google, request.headers.get("authorization"))
        return auth == "hmac"

    def _signed(self, sender: Sender, body: bytes, request: Request) -> bool:
        header, digest, prefix = SIGNATURES[sender]
        secret = {
            "github": self.settings.github_secret,
            "generic": self.settings.generic_secret,
            "nexus": self.settings.nexus_secret,
        }[sender]
        if secret is not None and signature_matches(
            secret, body, request.headers.get(header), digest, prefix
        ):
            return True
        log.warning("%s: rejected a delivery with a missing or wrong %s", sender, header)
        return False

    async def hook(self, request: Request) -> JSONResponse:
        name = request.path_params["sender"]
        auth = self.settings.auth(name)
        if auth is None or ("token" in request.path_params and auth != "path"):
            return self._fail(
                name, "disabled", 404, "no such sender, or it is disabled: configure its secret"
            )
        sender = cast(Sender, name)  # auth() knows only the senders in SENDERS
        try:
            authentic = await self._authentic_before_body(sender, auth, request)
        except TokenUnverifiable as error:
            log.error("%s: %s", sender, error)
            return self._fail(name, "failed", 503, f"{error}; retry the delivery later")
        if not authentic:
            log.warning("%s: rejected a delivery with a missing or wrong credential", sender)
            return self._fail(name, "unauthorized", 401, "unauthorized")
        body = await read_body(request, self.settings.max_body_bytes)
        if body is None:
            return self._fail(name, "invalid", 413, f"the body exceeds {self.settings.max_body_bytes} bytes")
        if auth == "hmac" and not self._signed(sender, body, request):
            return self._fail(name, "unauthorized", 401, "unauthorized")
        try:
            notes = self.settings.parser(sender)(request.headers, body)
        except InvalidInputError as error:
            log.warning("%s: rejected a malformed delivery: %s", sender, error)
            return self._fail(name, "invalid", 400, str(error))
        received_at = datetime.now(UTC)
        emitted, ignored = 0, []
        for note in notes:
            try:
                reason = await self._deliver(sender, note, received_at)
            except EmitError as error:
                log.error("%s: could not emit the event: %s", sender, error)
                return self._fail(
                    name, "failed", 503, "the event could not be recorded; retry the delivery later"
                )
            if reason is None:
                emitted += 1
            else:
                ignored.append(reason)
        return JSONResponse({"emitted": emitted, "ignored": ignored}, status_code=202)

    async def _deliver(self, sender: Sender, note: Notification, received_at: datetime) -> str | None:
        """Emit the event for one notification and return None, or return why it was not emitted."""
        window = self.settings.dedupe_window_seconds
        if isinstance(note, Ignored):
            reason = note.reason
        elif self.known_image is not None and not self.known_image(note.repository):
            reason = f"{note.repository}: not an image any app uses"
        elif not self.recent.claim(keys := dedupe_keys(note), None if distinguishable(note) else window):
            self._count(sender, "duplicate")
            log.info("%s: duplicate delivery of %s", sender, note)
            return f"{note}: duplicate delivery"
        else:
            event = event_for(note, received_at, window)
            try:
                await run_in_threadpool(self.emit, event)
            except BaseException:
                self.recent.release(keys)
                raise
            self._count(sender, "accepted")
            log.info(
                "%s: emitted %s %s for %s (delivery %s)", sender, EVENT, event.id, note, note.delivery or "-"
            )
            return None
        self._count(sender, "ignored")
        log.info("%s: ignored: %s", sender, reason)
        return reason

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def stats(self, request: Request) -> JSONResponse:
        return JSONResponse(self.counts)


def create_app(
    settings: WebhookSettings,
    emit: Emitter,
    known_image: Callable[[str], bool] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    metrics: Metrics | None = None,
    follow_events: bool = False,
) -> Starlette:
    """The receiver as an ASGI app; `known_image(repository)` False makes a push ignored (202), not emitted.

    `extra_routes` serve beside the registry hooks (the forge webhooks, `deployments.forge_hooks`).
    `follow_events` feeds the Prefect event stream into `/metrics` while the app runs (`promoter webhook`
    does; without it, as in the receiver's tests, `/metrics` has the deliveries only)."""
    metrics = metrics or Metrics()
    receiver = _Receiver(settings, emit, known_image, metrics)
    return Starlette(
        routes=[
            *extra_routes,
            Route("/hooks/{sender}", receiver.hook, methods=["POST"]),
            Route("/hooks/{sender}/{token}", receiver.hook, methods=["POST"]),
            Route("/healthz", receiver.healthz, methods=["GET"]),
            Route("/stats", receiver.stats, methods=["GET"]),
            Route("/metrics", metrics.endpoint, methods=["GET"]),
        ],
        lifespan=lifespan(metrics) if follow_events else None,
    )
