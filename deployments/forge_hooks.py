"""Forge webhooks: the GitOps repository's forge says a PR closed or a commit status arrived.

A merge or Flux wait suspends its run after a short window (flows/waits.py), so nothing in it watches the
forge. These deliveries wake exactly the runs that wait on the PR or on the Kustomization the status names
(`tasks.wait_watch.resume_affected`); each resumed run reads the forge itself and settles or suspends again,
so a delivery is a hint, never the truth. The wait watcher stays the fallback: GitHub does not redeliver a
failed delivery ("GitHub does not automatically redeliver failed deliveries",
https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries), and Azure DevOps
has no service hook for commit or PR statuses at all (the event list at
https://learn.microsoft.com/en-us/azure/devops/service-hooks/events names `git.pullrequest.merged` and
`git.pullrequest.updated` for PRs and nothing for statuses), so Flux on Azure DevOps is always swept.

- `POST /forge/github`: `status`, `pull_request` (action `closed`) and `pull_request_review` (`submitted`,
  `dismissed`: a run under an approval policy looks at its PR's reviews again) events, signed with the hook's
  secret in `X-Hub-Signature-256` (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries);
  `ping` answers 200. Payload fields as in @octokit/webhooks-schemas (`status$event`, `pull_request$closed`).
- `POST /forge/azure`: `git.pullrequest.merged` and `git.pullrequest.updated` (completed or abandoned),
  with the subscription's basic auth or its custom header (the Web Hooks consumer's `basicAuthUsername`,
  `basicAuthPassword` and `httpHeaders`, https://learn.microsoft.com/en-us/azure/devops/service-hooks/services/webhooks).

Each accepted delivery is also a Prefect event, `forge.pull-request.closed`, `forge.pull-request.reviewed`
or `forge.commit.status`, on
`forge.repo.<kind>.<owner-or-project>.<name>`, for automations and the record. A delivery whose runs could
not be resumed (the Prefect server is down) answers 503: Azure DevOps retries it, and the watcher sweeps.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from deployments.registries import github_json_body
from deployments.webhook import (
    ENV_PREFIX,
    EVENT_NAMESPACE,
    MIN_SECRET_LENGTH,
    EmitError,
    Emitter,
    RegistryEvent,
    StaticHeader,
    read_body,
    same_secret,
    signature_matches,
)
from promoter.errors import ConfigError, InvalidInputError
from tasks.wait_watch import ForgeChange, RepoKey, repo_key, resume_affected

log = logging.getLogger("promoter.forge_hooks")
FORGE_PREFIX = f"{ENV_PREFIX}FORGE_"
PR_CLOSED, COMMIT_STATUS = "forge.pull-request.closed", "forge.commit.status"
PR_REVIEWED = "forge.pull-request.reviewed"
MAX_BODY = 4 << 20  # GitHub caps payloads at 25 MB; PR payloads with long bodies reach hundreds of KB
Resumer = Callable[[ForgeChange], list[UUID]]


class ForgeHookSettings(BaseModel):
    """`PROMOTER_WEBHOOK_FORGE_*`: a forge whose credential is not set is disabled (404)."""

    model_config = ConfigDict(frozen=True)

    github_secret: SecretStr | None = None
    azure_username: str | None = None
    azure_password: SecretStr | None = None
    azure_header: StaticHeader | None = None

    @field_validator("github_secret", "azure_password")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"forge webhook secrets must be at least {MIN_SECRET_LENGTH} characters: short ones are guessed"
            )
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ForgeHookSettings:
        env = os.environ if environ is None else environ

        def value(name: str) -> str:
            return env.get(FORGE_PREFIX + name, "").strip()

        username, password = value("AZURE_USERNAME"), value("AZURE_PASSWORD")
        if bool(username) != bool(password):
            raise ConfigError(
                f"set both {FORGE_PREFIX}AZURE_USERNAME and {FORGE_PREFIX}AZURE_PASSWORD, or neither"
            )
        return cls(
            github_secret=SecretStr(value("GITHUB_SECRET")) if value("GITHUB_SECRET") else None,
            azure_username=username or None,
            azure_password=SecretStr(password) if password else None,
            azure_header=StaticHeader.parse(value("AZURE_HEADER"), "FORGE_AZURE_HEADER")
            if value("AZURE_HEADER")
            else None,
        )

    def enabled(self) -> list[str]:
        """The forges whose deliveries are accepted, with how each proves itself (for the banner)."""
        found = []
        if self.github_secret:
            found.append(f"github (X-Hub-Signature-256 with ${FORGE_PREFIX}GITHUB_SECRET)")
        if self.azure_username:
            found.append(f"azure (basic auth ${FORGE_PREFIX}AZURE_USERNAME / _PASSWORD)")
        if self.azure_header:
            found.append(f"azure (header from ${FORGE_PREFIX}AZURE_HEADER)")
        return found


# -- payloads: only the fields we read; anything else in them is ignored ------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _GitHubRepository(_Loose):
    full_name: str = Field(pattern=r"^[^/\s]+/[^/\s]+$")


class _GitHubStatus(_Loose):
    """`status$event`: `sha`, `context`, `state` and the repository."""

    sha: str = Field(pattern=r"^[0-9a-fA-F]{40}$")
    context: str = Field(min_length=1, max_length=1000)
    state: Literal["pending", "success", "failure", "error"]
    repository: _GitHubRepository


class _GitHubPullRequestBody(_Loose):
    merged: bool | None = None


class _GitHubPullRequest(_Loose):
    """`pull_request$closed`: the action, the PR number and whether it merged."""

    action: str
    number: int = Field(gt=0)
    pull_request: _GitHubPullRequestBody
    repository: _GitHubRepository


class _GitHubReviewedPull(_Loose):
    number: int = Field(gt=0)


class _GitHubReview(_Loose):
    """`pull_request_review$submitted|edited|dismissed`: the action and the PR."""

    action: str
    pull_request: _GitHubReviewedPull
    repository: _GitHubRepository


class _AzureProject(_Loose):
    name: str = Field(min_length=1)


class _AzureRepository(_Loose):
    name: str = Field(min_length=1)
    project: _AzureProject


class _AzurePullRequest(_Loose):
    pullRequestId: int = Field(gt=0)
    status: str
    repository: _AzureRepository


class _AzureEvent(_Loose):
    """The service hook envelope (`id`, `eventType`, `resource`) of the events page's samples."""

    id: str = ""
    eventType: str
    resource: dict[str, Any]


M = TypeVar("M", bound=BaseModel)


def _model(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the body"
        raise InvalidInputError(f"not a {what} delivery: {where}: {first['msg']}") from None


@dataclass(frozen=True)
class Delivery:
    """A delivery worth acting on: what changed, and the Prefect event that records it."""

    change: ForgeChange
    event: RegistryEvent


def _event(name: str, delivery: str, repository: RepoKey, payload: dict[str, Any]) -> RegistryEvent:
    kind, owner, repo = repository
    # The event id is derived from the forge's delivery id, so a redelivery is stored once.
    return RegistryEvent(
        id=uuid.uuid5(EVENT_NAMESPACE, f"{kind}:{delivery}") if delivery else uuid.uuid4(),
        occurred=datetime.now(UTC),
        resource={"prefect.resource.id": f"forge.repo.{kind}.{owner}.{repo}"},
        payload=payload,
        event=name,
    )


def parse_github(event: str, delivery: str, data: Any) -> Delivery | str:
    """A GitHub delivery as a `Delivery`, or why it changes nothing (a string); `InvalidInputError` if
    it is not what its `X-GitHub-Event` says."""
    if event == "status":
        status = _model(_GitHubStatus, data, "GitHub status")
        if status.state == "pending":
            return "a pending status settles no wait"
        owner, name = status.repository.full_name.split("/")
        repository = repo_key("github", owner, name)
        payload: dict[str, Any] = {
            "sha": status.sha.lower(),
            "context": status.context,
            "state": status.state,
        }
        return Delivery(
            ForgeChange(repository, context=status.context),
            _event(COMMIT_STATUS, delivery, repository, payload),
        )
    if event == "pull_request":
        pull = _model(_GitHubPullRequest, data, "GitHub pull_request")
        if pull.action != "closed":
            return f"pull_request {pull.action!r}: only closed PRs end a wait"
        owner, name = pull.repository.full_name.split("/")
        repository = repo_key("github", owner, name)
        payload = {"number": pull.number, "merged": bool(pull.pull_request.merged)}
        return Delivery(
            ForgeChange(repository, pr=pull.number), _event(PR_CLOSED, delivery, repository, payload)
        )
    if event == "pull_request_review":
        reviewed = _model(_GitHubReview, data, "GitHub pull_request_review")
        if reviewed.action not in ("submitted", "dismissed"):
            return f"pull_request_review {reviewed.action!r}: only a submitted or dismissed review counts"
        owner, name = reviewed.repository.full_name.split("/")
        repository = repo_key("github", owner, name)
        number = reviewed.pull_request.number
        return Delivery(
            ForgeChange(repository, pr=number, reviewed=True),
            _event(PR_REVIEWED, delivery, repository, {"number": number, "action": reviewed.action}),
        )
    return f"{event or '(no X-GitHub-Event)'} events end no wait"


def parse_azure(data: Any) -> Delivery | str:
    """An Azure DevOps service hook delivery as a `Delivery`, or why it changes nothing."""
    envelope = _model(_AzureEvent, data, "Azure DevOps service hook")
    if envelope.eventType not in ("git.pullrequest.merged", "git.pullrequest.updated"):
        return f"{envelope.eventType} events end no wait"
    pull = _model(_AzurePullRequest, envelope.resource, envelope.eventType)
    # `updated` also fires for pushes, votes and reviewers; only a PR that is no longer active ends a wait.
    if envelope.eventType == "git.pullrequest.updated" and pull.status not in ("completed", "abandoned"):
        return f"PR {pull.pullRequestId} is {pull.status}: only a completed or abandoned PR ends a wait"
    repository = repo_key("azdo", pull.repository.project.name, pull.repository.name)
    payload: dict[str, Any] = {
        "number": pull.pullRequestId,
        "status": pull.status,
        "eventType": envelope.eventType,
    }
    return Delivery(
        ForgeChange(repository, pr=pull.pullRequestId), _event(PR_CLOSED, envelope.id, repository, payload)
    )


class ForgeReceiver:
    """The two forge routes; `resume` wakes the runs a change concerns (injected for tests)."""

    def __init__(self, settings: ForgeHookSettings, emit: Emitter, resume: Resumer = resume_affected) -> None:
        self.settings, self.emit, self.resume = settings, emit, resume

    def routes(self) -> list[Route]:
        return [
            Route("/forge/github", self.github, methods=["POST"]),
            Route("/forge/azure", self.azure, methods=["POST"]),
        ]

    async def github(self, request: Request) -> JSONResponse:
        secret = self.settings.github_secret
        if secret is None:
            return _error(404, f"GitHub forge webhooks are disabled: set {FORGE_PREFIX}GITHUB_SECRET")
        body = await read_body(request, MAX_BODY)
        if body is None:
            return _error(413, f"the body exceeds {MAX_BODY} bytes")
        if not signature_matches(secret, body, request.headers.get("X-Hub-Signature-256")):
            log.warning("github: rejected a forge delivery with a missing or wrong X-Hub-Signature-256")
            return _error(401, "unauthorized")
        event = request.headers.get("X-GitHub-Event", "")
        if event == "ping":
            return JSONResponse({"pong": True})
        try:
            found = parse_github(
                event, request.headers.get("X-GitHub-Delivery", ""), github_json_body(request.headers, body)
            )
        except InvalidInputError as error:
            return _error(400, str(error))
        return await self._act("github", found)

    async def azure(self, request: Request) -> JSONResponse:
        settings = self.settings
        if settings.azure_username is None and settings.azure_header is None:
            return _error(
                404,
                f"Azure DevOps forge webhooks are disabled: set {FORGE_PREFIX}AZURE_USERNAME and "
                f"{FORGE_PREFIX}AZURE_PASSWORD, or {FORGE_PREFIX}AZURE_HEADER",
            )
        if not self._azure_authentic(request):
            log.warning("azure: rejected a forge delivery with a missing or wrong credential")
            return _error(401, "unauthorized")
        body = await read_body(request, MAX_BODY)
        if body is None:
            return _error(413, f"the body exceeds {MAX_BODY} bytes")
        try:
            found = parse_azure(github_json_body({}, body))
        except InvalidInputError as error:
            return _error(400, str(error))
        return await self._act("azure", found)

    def _azure_authentic(self, request: Request) -> bool:
        settings = self.settings
        if settings.azure_header is not None:
            given = request.headers.get(settings.azure_header.name)
            if given is None or not same_secret(settings.azure_header.value.get_secret_value(), given):
                return False
        if settings.azure_username is not None and settings.azure_password is not None:
            pair = _basic(request.headers.get("authorization"))
            return (
                pair is not None
                and same_secret(settings.azure_username, pair[0])
                and same_secret(settings.azure_password.get_secret_value(), pair[1])
            )
        return True

    async def _act(self, forge: str, found: Delivery | str) -> JSONResponse:
        if isinstance(found, str):
            log.info("%s: ignored a forge delivery: %s", forge, found)
            return JSONResponse({"resumed": 0, "ignored": found}, status_code=202)
        try:
            await run_in_threadpool(self.emit, found.event)
            resumed = await run_in_threadpool(self.resume, found.change)
        except EmitError as error:
            log.error("%s: could not record the forge event: %s", forge, error)
            return _error(503, "the Prefect server is unreachable; retry the delivery later")
        except Exception as error:  # the server answered an error while we listed or resumed runs
            log.error("%s: could not resume the waiting runs: %s", forge, type(error).__name__)
            return _error(503, "the waiting runs could not be resumed; retry the delivery later")
        log.info("%s: %s resumed %d run(s)", forge, found.event.event, len(resumed))
        return JSONResponse({"resumed": len(resumed), "runs": [str(r) for r in resumed]}, status_code=202)


def _basic(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic ...` header, or None."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, colon, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if colon else None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
