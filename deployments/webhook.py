"""The registry webhook receiver: verify the sender, parse the push, emit one Prefect event per release.

Self-hosted Prefect has no incoming webhooks (REFERENCE.md section 5), and a receiver that does not verify
its senders lets anyone start a promotion, so each sender is authenticated the strongest way it supports:
an HMAC of the raw body (GitHub, generic), a configured header (Harbor, optionally ACR and distribution),
or a secret path token (Docker Hub and Quay, which can sign nothing). A sender whose secret is not
configured is disabled (404) instead of accepting unsigned deliveries.

Registries deliver the same push several times (retries, one notification per manifest of a multi-arch
image), so pushes are deduplicated in a bounded, expiring memory of recent deliveries. Counters of every
outcome are served on `GET /stats`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, cast, get_args

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from deployments.registries import PARSERS, Ignored, ImagePush, Notification, Sender
from promoter.errors import ConfigError, InvalidInputError, PromoterError

EVENT = "registry.image.pushed"
ENV_PREFIX = "PROMOTER_WEBHOOK_"
MIN_SECRET_LENGTH = 16
SENDERS: tuple[Sender, ...] = get_args(Sender)
# Served on /stats. Pushes count as accepted (emitted), duplicate or ignored; whole requests as
# unauthorized (401), invalid (400, 413), disabled (404) or failed (503, the event was not stored).
OUTCOMES = ("accepted", "duplicate", "ignored", "unauthorized", "invalid", "disabled", "failed")
# RFC 9110 field-name characters.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

Auth = Literal["hmac", "token", "header", "path"]
log = logging.getLogger("promoter.webhook")


class Emitter(Protocol):
    """Where an accepted push goes; raises `EmitError` when the event could not be delivered."""

    def __call__(self, event: str, resource: dict[str, str], payload: dict[str, Any]) -> None: ...


class EmitError(PromoterError):
    """The event was not stored; the receiver answers 503 so that the registry retries the delivery."""


class StaticHeader(BaseModel):
    """A header every delivery must carry with this exact value (ACR, CNCF distribution)."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: SecretStr

    @classmethod
    def parse(cls, text: str) -> StaticHeader:
        name, colon, value = text.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not HEADER_NAME.fullmatch(name) or not value:
            raise ConfigError(f"{ENV_PREFIX}HEADER must read 'Name: value' with a valid header name")
        return cls(name=name, value=SecretStr(value))


class WebhookSettings(BaseModel):
    """Per-sender secrets and limits. Secrets are `SecretStr`: they print as `**********`."""

    model_config = ConfigDict(frozen=True)

    github_secret: SecretStr | None = None
    generic_secret: SecretStr | None = None
    harbor_token: SecretStr | None = None
    path_token: SecretStr | None = None
    header: StaticHeader | None = None
    max_body_bytes: int = Field(default=1 << 20, gt=0)
    dedupe_ttl_seconds: float = Field(default=3600.0, gt=0)
    dedupe_max_entries: int = Field(default=10_000, gt=0)

    @field_validator("github_secret", "generic_secret", "harbor_token", "path_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"webhook secrets must be at least {MIN_SECRET_LENGTH} characters: short ones are guessed"
            )
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        """Read `PROMOTER_WEBHOOK_{GITHUB_SECRET,GENERIC_SECRET,HARBOR_TOKEN,PATH_TOKEN,HEADER}`; empty means unset."""
        env = os.environ if environ is None else environ

        def secret(name: str) -> SecretStr | None:
            value = env.get(ENV_PREFIX + name, "")
            return SecretStr(value) if value else None

        header = env.get(ENV_PREFIX + "HEADER", "")
        return cls(
            github_secret=secret("GITHUB_SECRET"),
            generic_secret=secret("GENERIC_SECRET"),
            harbor_token=secret("HARBOR_TOKEN"),
            path_token=secret("PATH_TOKEN"),
            header=StaticHeader.parse(header) if header else None,
        )

    def auth(self, sender: str) -> Auth | None:
        """How `sender` proves itself, or None when it is disabled for want of a secret.

        ACR and distribution can send a static header; without one configured they fall back to the path
        token, like the senders that cannot authenticate at all.
        """
        if sender == "github":
            return "hmac" if self.github_secret else None
        if sender == "generic":
            return "hmac" if self.generic_secret else None
        if sender == "harbor":
            return "token" if self.harbor_token else None
        if sender in ("acr", "distribution") and self.header:
            return "header"
        if sender in SENDERS:
            return "path" if self.path_token else None
        return None

    def enabled(self) -> dict[Sender, Auth]:
        return {sender: auth for sender in SENDERS if (auth := self.auth(sender))}


def signature_matches(secret: SecretStr, body: bytes, header: str | None) -> bool:
    """`header` is `sha256=<hex HMAC-SHA256 of body>` (GitHub's X-Hub-Signature-256, Flux's X-Signature)."""
    if header is None:
        return False
    expected = "sha256=" + hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return _same(expected, header)


def _matches(secret: SecretStr | None, given: str | None) -> bool:
    return secret is not None and given is not None and _same(secret.get_secret_value(), given)


def _same(expected: str, given: str) -> bool:
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

    def claim(self, keys: list[Hashable]) -> bool:
        """Record `keys` and return True, or return False if any of them was seen recently."""
        with self._lock:
            now = self._clock()
            while self._seen and next(iter(self._seen.values())) <= now:
                self._seen.popitem(last=False)
            if any(key in self._seen for key in keys):
                return False
            for key in keys:
                self._seen[key] = now + self._ttl
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
            return True

    def release(self, keys: list[Hashable]) -> None:
        """Forget `keys`, so that a retry of a delivery that failed downstream is not taken for a duplicate."""
        with self._lock:
            for key in keys:
                self._seen.pop(key, None)


def dedupe_keys(push: ImagePush) -> list[Hashable]:
    """The image itself (repository, tag, digest), plus the sender's delivery id when it gives one.

    The tag is part of the key: one digest pushed under two tags is two releases.
    """
    keys: list[Hashable] = [("image", push.repository, push.tag, push.digest or "")]
    if push.delivery:
        keys.append(("delivery", push.sender, push.delivery))
    return keys


def event_for(push: ImagePush, received_at: datetime) -> tuple[dict[str, str], dict[str, Any]]:
    """The resource and payload of `registry.image.pushed`, the contract the promotion flow's trigger reads."""
    resource = {
        "prefect.resource.id": f"registry.image.{push.repository}",
        "promoter.image": push.repository,
        "promoter.tag": push.tag,
        "promoter.digest": push.digest or "",
    }
    payload = {"sender": push.sender, "received_at": received_at.isoformat(), "delivery": push.delivery or ""}
    return resource, payload


class PrefectEmitter:
    """POSTs each event to `{PREFECT_API_URL}/events` and raises `EmitError` unless the server took it.

    Not `prefect.events.emit_event`: that queues the event for a background websocket client, returns
    before it is sent and drops it with a log line when the server is unreachable. A direct POST lets the
    receiver answer 503 when the event was not stored, and the registry then retries.
    """

    def __init__(self, api_url: str | None = None, *, timeout: float = 10.0) -> None:
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL

        url = api_url or PREFECT_API_URL.value()
        if not url:
            raise ConfigError(
                "PREFECT_API_URL is not set: point it at the Prefect server, e.g. http://127.0.0.1:4200/api"
            )
        headers: dict[str, str] = {}
        auth: tuple[str, str] | None = None
        if key := PREFECT_API_KEY.value():
            headers["Authorization"] = f"Bearer {key.get_secret_value()}"
        elif auth_string := PREFECT_API_AUTH_STRING.value():
            user, _, password = auth_string.get_secret_value().partition(":")
            auth = (user, password)
        self._client = httpx.Client(base_url=url.rstrip("/"), headers=headers, auth=auth, timeout=timeout)

    def __call__(self, event: str, resource: dict[str, str], payload: dict[str, Any]) -> None:
        body = [
            {
                "id": str(uuid.uuid4()),
                "occurred": datetime.now(UTC).isoformat(),
                "event": event,
                "resource": resource,
                "payload": payload,
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


class _Receiver:
    def __init__(
        self, settings: WebhookSettings, emit: Emitter, known_image: Callable[[str], bool] | None
    ) -> None:
        self.settings, self.emit, self.known_image = settings, emit, known_image
        self.recent = RecentDeliveries(settings.dedupe_max_entries, settings.dedupe_ttl_seconds)
        self.counts = dict.fromkeys(OUTCOMES, 0)

    def _fail(self, outcome: str, status: int, message: str) -> JSONResponse:
        self.counts[outcome] += 1
        return JSONResponse({"error": message}, status_code=status)

    def _authentic_before_body(self, auth: Auth, request: Request) -> bool:
        """Path token and header checks; an HMAC can only be checked once the body is read."""
        settings = self.settings
        if auth == "path":
            return _matches(settings.path_token, request.path_params.get("token"))
        if auth == "token":
            return _matches(settings.harbor_token, request.headers.get("authorization"))
        if auth == "header" and settings.header:
            return _matches(settings.header.value, request.headers.get(settings.header.name))
        return auth == "hmac"

    async def _body(self, request: Request) -> bytes | None:
        """The raw body, or None as soon as it exceeds the limit (declared or actual)."""
        limit = self.settings.max_body_bytes
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

    async def hook(self, request: Request) -> JSONResponse:
        name = request.path_params["sender"]
        auth = self.settings.auth(name)
        if auth is None or ("token" in request.path_params and auth != "path"):
            return self._fail("disabled", 404, "no such sender, or it is disabled: configure its secret")
        sender = cast(Sender, name)  # auth() knows only the senders in SENDERS
        if not self._authentic_before_body(auth, request):
            log.warning("%s: rejected a delivery with a missing or wrong token", sender)
            return self._fail("unauthorized", 401, "unauthorized")
        body = await self._body(request)
        if body is None:
            return self._fail("invalid", 413, f"the body exceeds {self.settings.max_body_bytes} bytes")
        if auth == "hmac":
            secret, header = (
                (self.settings.github_secret, "X-Hub-Signature-256")
                if sender == "github"
                else (self.settings.generic_secret, "X-Signature")
            )
            if secret is None or not signature_matches(secret, body, request.headers.get(header)):
                log.warning("%s: rejected a delivery with a missing or wrong %s", sender, header)
                return self._fail("unauthorized", 401, "unauthorized")
        try:
            notes = PARSERS[sender](request.headers, body)
        except InvalidInputError as error:
            log.warning("%s: rejected a malformed delivery: %s", sender, error)
            return self._fail("invalid", 400, str(error))
        received_at = datetime.now(UTC)
        emitted, ignored = 0, []
        for note in notes:
            try:
                reason = await self._deliver(sender, note, received_at)
            except EmitError as error:
                log.error("%s: could not emit the event: %s", sender, error)
                return self._fail("failed", 503, "the event could not be recorded; retry the delivery later")
            if reason is None:
                emitted += 1
            else:
                ignored.append(reason)
        return JSONResponse({"emitted": emitted, "ignored": ignored}, status_code=202)

    async def _deliver(self, sender: Sender, note: Notification, received_at: datetime) -> str | None:
        """Emit the event for one notification and return None, or return why it was not emitted."""
        if isinstance(note, Ignored):
            reason = note.reason
        elif self.known_image is not None and not self.known_image(note.repository):
            reason = f"{note.repository}: not an image any app uses"
        elif not self.recent.claim(keys := dedupe_keys(note)):
            self.counts["duplicate"] += 1
            log.info("%s: duplicate delivery of %s", sender, note)
            return f"{note}: duplicate delivery"
        else:
            resource, payload = event_for(note, received_at)
            try:
                await run_in_threadpool(self.emit, EVENT, resource, payload)
            except BaseException:
                self.recent.release(keys)
                raise
            self.counts["accepted"] += 1
            log.info("%s: emitted %s for %s (delivery %s)", sender, EVENT, note, note.delivery or "-")
            return None
        self.counts["ignored"] += 1
        log.info("%s: ignored: %s", sender, reason)
        return reason

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def stats(self, request: Request) -> JSONResponse:
        return JSONResponse(self.counts)


def create_app(
    settings: WebhookSettings, emit: Emitter, known_image: Callable[[str], bool] | None = None
) -> Starlette:
    """The receiver as an ASGI app; `known_image(repository)` False makes a push ignored (202), not emitted."""
    receiver = _Receiver(settings, emit, known_image)
    return Starlette(
        routes=[
            Route("/hooks/{sender}", receiver.hook, methods=["POST"]),
            Route("/hooks/{sender}/{token}", receiver.hook, methods=["POST"]),
            Route("/healthz", receiver.healthz, methods=["GET"]),
            Route("/stats", receiver.stats, methods=["GET"]),
        ]
    )
