"""Prometheus metrics of the pipeline, served by the webhook receiver on `GET /metrics`.

The receiver counts its own deliveries. Everything else happens in the run processes, which come and go
and which no Prometheus can reach; they already tell the Prefect server what they do, in `promoter.*` and
`forge.api.usage` events (tasks/report.py, tasks/forge_usage.py). So the receiver follows that event
stream in the background (`follow_events`, started with the app) and turns the events into counters,
histograms and gauges: one long-lived scrape target for the whole pipeline. docs/observability.md lists
the metrics, a scrape config and alert rules.

Cardinality stays at what dashboards and alerts need. No counter has an app label (a platform team has
hundreds); an app appears only in the blocked gauge, and only while its latest release is blocked. The
labels read from events are bounded: an unknown provider or status is dropped, and environments beyond
the first `MAX_ENVS` are counted as `other`. The registry is the receiver's own, not the process-global
one Prefect also fills.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeGuard, get_args

from prefect.events import Event
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.settings import PREFECT_API_URL
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response

from deployments.registries import Sender
from promoter.providers.factory import ProviderKind
from tasks.contracts import FORGE_USAGE_EVENT

log = logging.getLogger("promoter.metrics")

RELEASE_EVENTS = ("started", "promoted", "blocked", "superseded")
DECISIONS = {
    "approval.granted": "granted",
    "approval.rejected": "rejected",
    "approval.timed-out": "timed-out",
}
# Authentic deliveries: they say the sender is alive (the "silent sender" alert reads them).
HEARD = ("accepted", "duplicate", "ignored")
PROVIDERS: tuple[str, ...] = get_args(ProviderKind)
SENDERS: tuple[str, ...] = get_args(Sender)
STATUS = re.compile(r"[1-5][0-9]{2}|error")
MAX_ENVS = 50
MEMORY = 10_000  # event ids seen, approval requests waiting: bounded, the oldest forgotten first
# A merge takes seconds (auto-merge) to minutes; Flux seconds to its status timeout (minutes).
STAGE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
# A person answers in minutes to days; the approval timeout is hours.
APPROVAL_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800)
STREAM_PREFIXES = ["promoter.", FORGE_USAGE_EVENT]
RETRY_SECONDS = (1.0, 60.0)  # backoff between attempts to reach the event stream: first, at most


class Metrics:
    """The receiver's registry, what its handlers count and what `observe` reads from events."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[Hashable, None] = OrderedDict()
        self._requested: OrderedDict[Hashable, float] = OrderedDict()
        self._blocked: dict[str, str] = {}  # app -> env of its blocked gauge
        self._envs: set[str] = set()
        registry = self.registry
        self.deliveries = Counter(
            "promoter_webhook_deliveries",
            "Registry webhook deliveries by sender and outcome, as counted on /stats",
            ["sender", "outcome"],
            registry=registry,
        )
        self.last_delivery = Gauge(
            "promoter_webhook_last_delivery_timestamp_seconds",
            "When the sender's last authentic delivery (accepted, duplicate or ignored) arrived; "
            "the receiver's start until then",
            ["sender"],
            registry=registry,
        )
        self.releases = Counter(
            "promoter_releases",
            "Releases started, promoted, blocked and superseded (one per superseded run)",
            ["event"],
            registry=registry,
        )
        self.blocked_since = Gauge(
            "promoter_release_blocked_since_timestamp_seconds",
            "When the app's latest release was blocked; present only while it is",
            ["app", "env"],
            registry=registry,
        )
        self.stage_seconds = Histogram(
            "promoter_stage_seconds",
            "Time in a stage: merge (the merge wait, to merged) and flux (merged to healthy or failed)",
            ["env", "stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.approval_wait = Histogram(
            "promoter_approval_wait_seconds",
            "Time a release waited at an approval gate, by how the wait ended",
            ["env", "decision"],
            buckets=APPROVAL_BUCKETS,
            registry=registry,
        )
        self.forge_requests = Counter(
            "promoter_forge_requests",
            "Forge API requests of the run processes by provider and HTTP status (error: no answer)",
            ["provider", "status"],
            registry=registry,
        )
        self.rate_remaining = Gauge(
            "promoter_forge_rate_limit_remaining",
            "Requests left in the forge's rate limit window, as last reported",
            ["provider"],
            registry=registry,
        )
        self.rate_limit = Gauge(
            "promoter_forge_rate_limit_limit",
            "The forge's rate limit per window, as last reported",
            ["provider"],
            registry=registry,
        )
        self.rate_reset = Gauge(
            "promoter_forge_rate_limit_reset_timestamp_seconds",
            "When the forge's rate limit window resets, as last reported",
            ["provider"],
            registry=registry,
        )
        self.events_observed = Counter(
            "promoter_events_observed",
            "promoter.* and forge.api.usage events read from the Prefect event stream",
            registry=registry,
        )
        self.stream_connected = Gauge(
            "promoter_event_stream_connected",
            "1 while the receiver follows the Prefect event stream",
            registry=registry,
        )
        for event in RELEASE_EVENTS:
            self.releases.labels(event)

    # -- the receiver's own counts ----------------------------------------------------------------------

    def start(self, senders: Iterable[str], outcomes: Iterable[str]) -> None:
        """Every enabled sender's series from zero, its last delivery at the receiver's start: a sender
        that never delivers is then silent from the start, not absent."""
        outcomes, now = tuple(outcomes), self._clock()
        for sender in senders:
            for outcome in outcomes:
                self.deliveries.labels(sender, outcome)
            self.last_delivery.labels(sender).set(now)

    def delivery(self, sender: str, outcome: str) -> None:
        """One delivery counted where /stats counts it; a path naming no sender counts as `unknown`."""
        sender = sender if sender in SENDERS else "unknown"
        self.deliveries.labels(sender, outcome).inc()
        if outcome in HEARD:
            self.last_delivery.labels(sender).set(self._clock())

    # -- what the run processes said ----------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Count one event of the stream; a replay (reconnects re-send the last minute) counts once."""
        with self._lock:
            if not _first(self._seen, event.id, None):
                return
            self.events_observed.inc()
            if event.event == FORGE_USAGE_EVENT:
                self._forge(event.resource.id.removeprefix("forge.api."), event.payload)
            elif event.event.startswith("promoter."):
                self._promoter(event.event.removeprefix("promoter."), event)

    def _promoter(self, name: str, event: Event) -> None:
        payload = event.payload
        app = (
            event.resource.get("prefect.resource.name") or event.resource.id.removeprefix("promoter.app.")
        )[:200]
        env = self._env(payload.get("env"))
        occurred = event.occurred.timestamp()
        gate = (event.resource.id, env, str(payload.get("tag")))  # an approval's, from request to decision
        kind, _, what = name.partition(".")
        if kind == "release" and what in RELEASE_EVENTS:
            runs = payload.get("runs")
            self.releases.labels(what).inc(
                len(runs) if what == "superseded" and isinstance(runs, list) else 1
            )
            if what == "blocked":
                self._unblock(app)
                self._blocked[app] = env
                self.blocked_since.labels(app, env).set(occurred)
            elif what in ("started", "promoted"):
                self._unblock(app)
        elif name == "environment.merged":
            self._stage(env, "merge", payload.get("seconds"))
        elif name in ("environment.healthy", "environment.failed"):
            self._stage(env, "flux", payload.get("seconds"))
        elif name == "approval.requested":
            _first(self._requested, gate, occurred)
        elif name in DECISIONS:
            remembered = self._requested.pop(gate, None)
            since = payload.get("since")
            began = since if _seconds(since) else remembered
            if began is not None and occurred >= began:
                self.approval_wait.labels(env, DECISIONS[name]).observe(occurred - began)

    def _unblock(self, app: str) -> None:
        if (env := self._blocked.pop(app, None)) is not None:
            self.blocked_since.remove(app, env)

    def _stage(self, env: str, stage: str, seconds: object) -> None:
        if _seconds(seconds):
            self.stage_seconds.labels(env, stage).observe(seconds)

    def _env(self, value: object) -> str:
        env = value[:64] if isinstance(value, str) and value else "none"
        if env not in self._envs and len(self._envs) >= MAX_ENVS:
            return "other"
        self._envs.add(env)
        return env

    def _forge(self, provider: str, payload: Mapping[str, Any]) -> None:
        if provider not in PROVIDERS:
            return
        requests = payload.get("requests")
        for status, count in requests.items() if isinstance(requests, dict) else ():
            if isinstance(status, str) and STATUS.fullmatch(status) and _natural(count) and count:
                self.forge_requests.labels(provider, status).inc(count)
        rate = payload.get("rate_limit")
        if isinstance(rate, dict):
            for name, gauge in (
                ("remaining", self.rate_remaining),
                ("limit", self.rate_limit),
                ("reset", self.rate_reset),
            ):
                if _natural(value := rate.get(name)):
                    gauge.labels(provider).set(value)

    # -- serving --------------------------------------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        """`GET /metrics` in the format the scraper asks for (Prometheus text, or OpenMetrics)."""
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(self.registry), headers={"Content-Type": content_type})


def _first(memory: OrderedDict[Hashable, Any], key: Hashable, value: Any) -> bool:
    """Remember `key` unless it is known already; True when it was new. The oldest go beyond `MEMORY`."""
    if key in memory:
        return False
    memory[key] = value
    while len(memory) > MEMORY:
        memory.popitem(last=False)
    return True


def _seconds(value: object) -> TypeGuard[float]:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )


def _natural(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# -- following the event stream ---------------------------------------------------------------------------

EventStream = Callable[[], AbstractAsyncContextManager[AsyncIterator[Event]]]


def prefect_events() -> AbstractAsyncContextManager[AsyncIterator[Event]]:
    """The Prefect server's stream of `promoter.*` and `forge.api.usage` events, reconnecting on clean
    closes too; it replays the minute before each (re)connection, which `Metrics.observe` deduplicates."""
    wanted = EventFilter(event=EventNameFilter(prefix=STREAM_PREFIXES))
    return get_events_subscriber(filter=wanted, reconnect_on_clean_close=True)


async def follow_events(
    metrics: Metrics, stream: EventStream = prefect_events, retry: tuple[float, float] = RETRY_SECONDS
) -> None:
    """Feed the stream into `metrics` until cancelled; when it fails, connect again with backoff.

    The metrics of what happened while the stream was down (beyond the replayed minute) are missing:
    counters undercount rather than the receiver stop serving webhooks."""
    delay, down = retry[0], False
    while True:
        try:
            async with stream() as events:
                metrics.stream_connected.set(1)
                log.info("metrics: following promoter.* and forge.api.usage events from the Prefect server")
                delay, down = retry[0], False
                async for event in events:
                    metrics.observe(event)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            (log.debug if down else log.warning)(
                "metrics: no event stream from the Prefect server (%s: %s); trying again, every %.0f s at most",
                type(error).__name__,
                error,
                retry[1],
            )
            down = True
        finally:
            metrics.stream_connected.set(0)
        await asyncio.sleep(delay)
        delay = min(delay * 2, retry[1])


def lifespan(
    metrics: Metrics, stream: EventStream = prefect_events
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """The app's lifespan: `follow_events` beside it while it serves, when there is a Prefect API to
    follow; without one, /metrics serves the receiver's own deliveries only, and says so once."""

    @contextlib.asynccontextmanager
    async def serving(app: Any) -> AsyncIterator[None]:
        if stream is prefect_events and not PREFECT_API_URL.value():
            log.info(
                "metrics: PREFECT_API_URL is not set, so /metrics counts this receiver's deliveries only"
            )
            yield
            return
        log.info(
            "metrics: /metrics follows the Prefect event stream in the background for releases, stages, "
            "approvals and forge requests, reconnecting when it drops"
        )
        follower = asyncio.create_task(follow_events(metrics, stream))
        try:
            yield
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower

    return serving
