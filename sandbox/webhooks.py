"""Webhooks the sandbox forge sends, as GitHub and Azure DevOps send theirs: after the fact, from elsewhere.

Subscriptions:
- GitHub: `POST /repos/{owner}/{repo}/hooks` (`name: web`, `config.url`, `config.secret`, `events`), answered
  with the hook and followed by a `ping` (https://docs.github.com/en/rest/repos/webhooks#create-a-repository-webhook,
  https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/testing-webhooks);
- Azure DevOps: `POST _apis/hooks/subscriptions` with `publisherId: tfs`, an `eventType`, `consumerId: webHooks`,
  `consumerActionId: httpRequest` and `consumerInputs` `url`, `basicAuthUsername`, `basicAuthPassword`,
  `httpHeaders` ("Name:value", one per line) (https://learn.microsoft.com/en-us/azure/devops/service-hooks/services/webhooks,
  https://learn.microsoft.com/en-us/rest/api/azure/devops/hooks/subscriptions/create). The Azure DevOps
  description in ../shared/specs covers the git area only, so these bodies are checked here.

Deliveries leave from a worker thread after the change is made, never inside the request that made it.
- GitHub sends `status` when a commit status is created, `pull_request` `closed` when a PR merges or
  closes and `pull_request_review` `submitted` when a review is submitted, signed `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>`, with `X-GitHub-Event`,
  `X-GitHub-Delivery` and `X-GitHub-Hook-ID`; one attempt with a 10 s timeout and no redelivery ("GitHub
  does not automatically redeliver failed deliveries", https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries).
  Payloads follow @octokit/webhooks-schemas (`status$event`, `pull_request$closed`,
  `pull_request_review$submitted`, `ping$event`; a review's `state` is lower-case there, `approved`, where
  the REST API says `APPROVED`);
  tests/sandbox/test_webhooks.py validates them against ../shared/specs/github/webhooks-schema.json.
- Azure DevOps sends `git.pullrequest.merged` when a merge completes (its merges complete asynchronously,
  sandbox/azure_merges.py) and `git.pullrequest.updated` when a PR is completed or abandoned, in the
  envelope of the events page's samples (https://learn.microsoft.com/en-us/azure/devops/service-hooks/events);
  it has no event for commit or PR statuses. A transient failure (408, 502, 503, 504) is retried up to eight
  times after ~1, 2, 4, 8, 16, 32, 60 and 60 s; a 410 disables the subscription at once
  (https://learn.microsoft.com/en-us/azure/devops/service-hooks/troubleshoot). Probation after enduring
  failures is not modelled: other failures are recorded and not retried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from sandbox.forge import Forge, PullRequest, Repository, Review, Status

log = logging.getLogger("sandbox.webhooks")
AZURE_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0)
AZURE_TRANSIENT = frozenset({408, 502, 503, 504})
GITHUB_EVENTS = frozenset({"status", "pull_request", "pull_request_review", "ping", "*"})
AZURE_EVENTS = frozenset({"git.pullrequest.merged", "git.pullrequest.updated"})
ZEN = "Design for failure."  # one of GitHub's zen lines, which a ping carries
Payloads = Callable[[str, Repository, Any, "Hook"], dict[str, Any]]


class HookError(ValueError):
    """A subscription the forge refuses (422 on GitHub, 400 on Azure DevOps)."""


@dataclass
class Hook:
    id: int
    repo_key: str
    kind: str  # github | azure
    url: str
    events: list[str]
    base_url: str  # the forge's address as the subscriber called it, for the payloads' links
    secret: str | None = None
    username: str | None = None
    password: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    active: bool = True
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: float = field(default_factory=time.time)

    def wants(self, event: str) -> bool:
        return self.active and (event in self.events or "*" in self.events)


@dataclass
class Delivery:
    hook: int
    event: str
    url: str
    attempts: int = 0
    status: int | None = None
    error: str | None = None
    delivered_at: float | None = None


def loopback_url(url: str) -> str:
    """The sandbox delivers to loopback only; anything else is refused when the hook is created."""
    parts = urlsplit(url)
    host = (parts.hostname or "").strip("[]")
    try:
        ok = parts.scheme in ("http", "https") and (
            host == "localhost" or ipaddress.ip_address(host).is_loopback
        )
    except ValueError:
        ok = False
    if not ok:
        raise HookError(f"the sandbox delivers webhooks to loopback URLs only, not {url!r}")
    return url


def azure_headers(text: str) -> dict[str, str]:
    """`httpHeaders`: "Name:value" lines, as the Web Hooks consumer's form takes them."""
    headers = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if line.strip() and (not colon or not name.strip()):
            raise HookError(f"httpHeaders line {line!r} must read 'Name:value'")
        if colon:
            headers[name.strip()] = value.strip()
    return headers


class Webhooks:
    """The subscriptions of every repository, and the thread that delivers their events."""

    def __init__(
        self, forge: Forge, payloads: Payloads, *, delay_scale: float = 1.0, timeout: float = 10.0
    ) -> None:
        self.forge, self.payloads = forge, payloads
        self.delay_scale, self.timeout = delay_scale, timeout
        self._hooks: dict[int, Hook] = {}
        self._deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-webhooks")
        self._http = httpx.Client(timeout=timeout)
        forge.observers.append(self)

    # -- subscriptions ----------------------------------------------------------------------------------

    def add(self, hook: Hook, repo: Repository) -> Hook:
        known = GITHUB_EVENTS if hook.kind == "github" else AZURE_EVENTS
        unknown = [e for e in hook.events if e not in known]
        if unknown or not hook.events:
            raise HookError(
                f"unsupported event {unknown[0] if unknown else '(none)'}; use one of {sorted(known)}"
            )
        loopback_url(hook.url)
        with self._lock:
            hook.id = max(self._hooks, default=0) + 1
            self._hooks[hook.id] = hook
        if hook.kind == "github":
            self._send(hook, "ping", repo, None)
        return hook

    def hooks(self, repo: Repository | None = None, kind: str | None = None) -> list[Hook]:
        with self._lock:
            return [
                h
                for h in self._hooks.values()
                if (repo is None or h.repo_key == repo.key) and (kind is None or h.kind == kind)
            ]

    def remove(self, hook_id: int) -> bool:
        with self._lock:
            return self._hooks.pop(hook_id, None) is not None

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(d) for d in self._deliveries]

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    # -- what the forge tells us (ForgeObserver) --------------------------------------------------------

    def status_added(self, repo: Repository, status: Status) -> None:
        for hook in self.hooks(repo, "github"):
            if hook.wants("status"):
                self._send(hook, "status", repo, status)

    def pull_closed(self, repo: Repository, pr: PullRequest) -> None:
        for hook in self.hooks(repo):
            if hook.kind == "github" and hook.wants("pull_request"):
                self._send(hook, "pull_request", repo, pr)
            elif hook.kind == "azure" and pr.merged and hook.wants("git.pullrequest.merged"):
                self._send(hook, "git.pullrequest.merged", repo, pr)
            elif hook.kind == "azure" and hook.wants("git.pullrequest.updated"):
                self._send(hook, "git.pullrequest.updated", repo, pr)

    def review_added(self, repo: Repository, pr: PullRequest, review: Review) -> None:
        for hook in self.hooks(repo, "github"):
            if hook.wants("pull_request_review"):
                self._send(hook, "pull_request_review", repo, (pr, review))

    # -- delivery ---------------------------------------------------------------------------------------

    def _send(self, hook: Hook, event: str, repo: Repository, subject: Any) -> None:
        # The payload is built now, from the state the event is about, and sent later.
        body = json.dumps(self.payloads(event, repo, subject, hook)).encode()
        delivery = Delivery(hook.id, event, hook.url)
        with self._lock:
            self._deliveries.append(delivery)
        self._pool.submit(self._deliver, hook, event, body, delivery)

    def _headers(self, hook: Hook, event: str, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if hook.kind == "github":
            headers |= {
                "User-Agent": "GitHub-Hookshot/sandbox",
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-GitHub-Hook-ID": str(hook.id),
            }
            if hook.secret:
                digest = hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
                headers["X-Hub-Signature-256"] = f"sha256={digest}"
            return headers
        if hook.password:
            pair = base64.b64encode(f"{hook.username or ''}:{hook.password}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        return headers | hook.headers

    def _deliver(self, hook: Hook, event: str, body: bytes, delivery: Delivery) -> None:
        headers = self._headers(hook, event, body)
        delays = AZURE_RETRY_DELAYS if hook.kind == "azure" else ()
        for attempt in range(len(delays) + 1):
            delivery.attempts = attempt + 1
            try:
                response = self._http.post(hook.url, content=body, headers=headers)
                delivery.status, delivery.error = response.status_code, None
            except httpx.HTTPError as error:
                delivery.status, delivery.error = None, type(error).__name__
            if delivery.status is not None and delivery.status < 300:
                delivery.delivered_at = time.time()
                return
            if hook.kind == "azure" and delivery.status == 410:
                hook.active = False  # "automatically disabled no matter its prior state"
                log.warning("azure subscription %s disabled by a 410 from %s", hook.uuid, hook.url)
                return
            transient = delivery.status in AZURE_TRANSIENT or delivery.error is not None
            if attempt == len(delays) or not transient:
                log.info("%s delivery of %s to %s failed: %s", hook.kind, event, hook.url, delivery.status)
                return
            time.sleep(delays[attempt] * self.delay_scale)
