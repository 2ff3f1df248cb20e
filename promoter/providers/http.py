"""One careful HTTP client for both forges: timeouts, retries, rate limits, conditional polling.

- Connection errors and 5xx are retried with exponential backoff and jitter (tenacity). A request that
  creates something is safe to retry because every caller reconciles: it reads before it writes.
- 429, and 403 with `retry-after` or an exhausted budget (GitHub's secondary limits), wait for as long as
  the forge asks, up to `max_wait`; beyond that the error says so instead of hanging a pipeline. A limit
  that names no wait and leaves budget waits a minute, as GitHub's docs ask ("Otherwise, wait for at
  least one minute before retrying", docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api).
- GETs remember their `ETag` and send `If-None-Match`; a `304` is answered from memory and, on GitHub,
  costs nothing against the rate limit. So polling an unchanged status is free.
- 401, 403 and 404 fail at once with a message that says which permission or repository is missing.
  No message ever carries the token.
- Every answer is also counted process-wide by provider and status, with the last rate budget
  (`take_usage`): the run processes report it in `forge.api.usage` events, and the webhook
  receiver's `/metrics` serves it (docs/observability.md).
"""

from __future__ import annotations

import functools
import json
import random
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from promoter.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderNotFoundError,
    ProviderRateLimitError,
)

MAX_RESPONSE_BYTES = 10 * 1024 * 1024


class _Retryable(Exception):
    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


@dataclass
class RateBudget:
    """The forge's rate limit as last reported (`x-ratelimit-*`); None where it reports none."""

    limit: int | None = None
    remaining: int | None = None
    reset: int | None = None


@dataclass
class Stats:
    """What this client spent: requests sent, conditional hits (304) and retries."""

    requests: int = 0
    not_modified: int = 0
    retries: int = 0
    by_route: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    """What the process's forge clients did since the last `take_usage`: answers by (provider, status),
    `error` as the status when no answer came, and each provider's last reported rate budget."""

    requests: dict[tuple[str, str], int] = field(default_factory=dict)
    budgets: dict[str, RateBudget] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.requests or self.budgets)


class _Ledger:
    """The process-wide tally behind `take_usage`; clients in several threads (a run's tasks) add to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._budgets: dict[str, RateBudget] = {}

    def count(self, provider: str, status: str, budget: RateBudget | None) -> None:
        with self._lock:
            self._requests[(provider, status)] += 1
            if budget is not None:
                self._budgets[provider] = replace(budget)

    def take(self) -> Usage:
        with self._lock:
            usage = Usage(dict(self._requests), dict(self._budgets))
            self._requests.clear()
            self._budgets.clear()
        return usage


_LEDGER = _Ledger()


def take_usage() -> Usage:
    """The forge usage of this process since the last call, and start counting afresh."""
    return _LEDGER.take()


@dataclass
class Response:
    status: int
    data: Any
    headers: httpx.Headers


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: building one loads the CA bundle, ~50 ms a client otherwise."""
    return httpx.create_ssl_context()


class ForgeClient:
    """httpx with the policies above; `describe` names the repository in error messages, `provider` (the
    forge's kind, `github` or `azdo`) its requests in `take_usage`."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str],
        describe: str,
        permission_hint: str,
        provider: str = "forge",
        timeout: float = 15.0,
        attempts: int = 6,
        max_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            follow_redirects=False,
            verify=tls_context(),
        )
        self.describe = describe
        self.permission_hint = permission_hint
        self.provider = provider
        self.attempts = attempts
        self.max_wait = max_wait
        self.budget = RateBudget()
        self.stats = Stats()
        self._sleep = sleep
        self._etags: dict[str, tuple[str, Any, httpx.Headers]] = {}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ForgeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        route: str | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> Response:
        """Send one request with retries; return the decoded JSON for a status in `ok`, else raise."""
        route = route or f"{method} {path}"
        retrying = Retrying(
            retry=retry_if_exception(lambda error: isinstance(error, _Retryable)),
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
            before_sleep=self._count_retry,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(method, path, params, json_body, route, ok)
        except _Retryable as error:
            raise ProviderError(
                f"{self.describe}: {route} still failing after {self.attempts} attempts ({error}); "
                "the forge may be down, try again later"
            ) from None
        raise AssertionError("unreachable")

    def _count_retry(self, _: RetryCallState) -> None:
        self.stats.retries += 1

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retryable) and error.wait is not None:
            return error.wait
        backoff: float = min(8.0, 0.25 * 2 ** (state.attempt_number - 1))
        return backoff / 2 + random.uniform(0, backoff / 2)

    def _once(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: Any,
        route: str,
        ok: tuple[int, ...],
    ) -> Response:
        headers: dict[str, str] = {}
        key = f"{path}?{json.dumps(params, sort_keys=True)}" if method == "GET" else ""
        if key in self._etags:
            headers["If-None-Match"] = self._etags[key][0]
        self.stats.requests += 1
        self.stats.by_route[route] = self.stats.by_route.get(route, 0) + 1
        try:
            response = self._client.request(method, path, params=params, json=body, headers=headers)
        except httpx.TransportError as error:
            _LEDGER.count(self.provider, "error", None)
            raise _Retryable(f"{error.__class__.__name__}") from None
        reported = self._note_budget(response.headers)
        status = response.status_code
        _LEDGER.count(self.provider, str(status), self.budget if reported else None)
        if status == 304 and key in self._etags:
            self.stats.not_modified += 1
            _, data, cached_headers = self._etags[key]
            return Response(200, data, cached_headers)
        if status in ok:
            data = self._decode(response, route)
            etag = response.headers.get("etag")
            if key and etag:
                self._etags[key] = (etag, data, response.headers)
            return Response(status, data, response.headers)
        self._raise_for(response, route)
        raise AssertionError("unreachable")

    def _decode(self, response: httpx.Response, route: str) -> Any:
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise ProviderError(f"{self.describe}: {route} answered more than 10 MiB; refusing to read it")
        if not response.content:
            return None
        try:
            return response.json()
        except (ValueError, RecursionError):
            raise ProviderError(
                f"{self.describe}: {route} answered {response.status_code} with a body that is not JSON; "
                "is the URL a forge API (check the remote URL and --provider)?"
            ) from None

    def _note_budget(self, headers: httpx.Headers) -> bool:
        """Keep the budget the answer reports; True when it reported one."""
        reported = False
        for name in ("limit", "remaining", "reset"):
            value = headers.get(f"x-ratelimit-{name}")
            if value is not None and value.isdigit():
                setattr(self.budget, name, int(value))
                reported = True
        return reported

    def _raise_for(self, response: httpx.Response, route: str) -> None:
        status = response.status_code
        message = _error_message(response)
        retry_after = _retry_after(response)
        exhausted = response.headers.get("x-ratelimit-remaining") == "0"
        if status == 429 or (
            status == 403 and (retry_after is not None or exhausted or "rate limit" in message)
        ):
            wait = retry_after if retry_after is not None else self._until_reset() if exhausted else 60.0
            if wait > self.max_wait:
                raise ProviderRateLimitError(
                    f"{self.describe}: rate limited on {route}; the forge asks to wait {wait:.0f} s, "
                    f"more than the {self.max_wait:.0f} s allowed: try again later or use a token with a larger budget"
                )
            raise _Retryable(f"rate limited ({status})", wait)
        if status >= 500:
            raise _Retryable(f"HTTP {status}")
        if status == 401:
            raise ProviderAuthError(
                f"{self.describe}: the token was refused (401 on {route}); check that --token or PROMOTER_TOKEN "
                "holds a valid, unexpired token"
            )
        if status == 403:
            raise ProviderAuthError(
                f"{self.describe}: the token may not do {route} (403: {message}); it needs {self.permission_hint}"
            )
        if status == 404:
            raise ProviderNotFoundError(
                f"{self.describe}: not found ({route}); check the remote URL and that the token can see the repository"
            )
        raise ProviderError(f"{self.describe}: {route} failed with {status}: {message}")

    def _until_reset(self) -> float:
        if self.budget.reset is None:
            return 60.0
        return max(1.0, self.budget.reset - time.time())

    def paginate(self, path: str, params: dict[str, Any], route: str, per_page: int = 100) -> Iterator[Any]:
        """Every item of a GitHub-style list (`page`/`per_page`, `Link: rel="next"`)."""
        page = 1
        while True:
            response = self.request(
                "GET", path, params={**params, "per_page": per_page, "page": page}, route=route
            )
            if not isinstance(response.data, list):
                raise ProviderError(f"{self.describe}: {route} did not answer a list")
            yield from response.data
            if 'rel="next"' not in response.headers.get("link", "") or not response.data:
                return
            page += 1


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return response.reason_phrase or "no details"
    if isinstance(body, dict):
        text = str(body.get("message") or body.get("Message") or body.get("errors") or "no details")
        if isinstance(body.get("errors"), str) and body["errors"] not in text:
            text += f": {body['errors']}"  # GitHub's 400 and some 422: "Bad Request" says little alone
        return " ".join(text.split())[:300]
    return "no details"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class HTTPProvider:
    """What every provider shares through its `ForgeClient`: the rate budget, the request counts, closing."""

    client: ForgeClient

    @property
    def budget(self) -> RateBudget:
        return self.client.budget

    @property
    def stats(self) -> Stats:
        return self.client.stats

    def close(self) -> None:
        self.client.close()
