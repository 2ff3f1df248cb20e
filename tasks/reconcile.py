"""The reconciler: every accepted push gets exactly one promote-release run.

The deployment trigger's run-deployment action is fire-and-forget: when creating the run fails (SQLite's
"database is locked" under a burst), Prefect logs it and does not try again, and its idempotency key
(`automation <id>, action <i>, invocation <uuid4>`) is new on every invocation, so nobody can repeat it
safely. The reconciler compares the `registry.image.pushed` events of a window with the runs that carry
their `event_id` and starts, for each push left without one, the run the trigger would have started,
keyed by the event (`registry.image.pushed <event id>`): two reconcilers, or a sweep and `promoter serve`,
never start two. A run that crashed at submission (Crashed without a task run: the worker met a 503) is
started again, a few times at most, keyed by its attempt.

A trigger that was only slow can still start its run after ours: both runs then carry the event id, and
the later one stands down at its start (`stand_down`).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect import get_client, get_run_logger
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterId,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.events import emit_event
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
from prefect.events.schemas.events import ReceivedEvent
from prefect.exceptions import MissingContextError, ObjectNotFound
from prefect.logging import get_logger
from prefect.logging.loggers import LoggingAdapter
from prefect.states import Cancelled

from tasks.contracts import (
    PROMOTE_DEPLOYMENT,
    REGISTRY_EVENT,
    REGISTRY_RESOURCE,
    RUN_TAG,
    TRIGGER_RECOVERED,
    push_parameters,
    registry_resource,
)

logger = get_logger("promoter.reconcile")
DEFAULT_INTERVAL = 30.0
DEFAULT_GRACE_SECONDS = 60.0  # the trigger's own run is normally created within a second or two
DEFAULT_LOOKBACK_SECONDS = 3600.0
MAX_RETRIES = 3  # runs for one push that crashed at submission before the reconciler gives up on it
DUPLICATE = "Duplicate"  # the state name of a run that stood down for an earlier one
PAGE = 200
EVENTS_PAGE = (
    50  # the most the server's /events/filter answers per page (the client's default, 100, is refused)
)


@dataclass(frozen=True)
class Push:
    """One `registry.image.pushed` event, as much of it as a run needs."""

    id: str
    image: str
    tag: str
    digest: str
    pushed_by: str = ""

    @classmethod
    def of(cls, event: ReceivedEvent) -> Push:
        labels = dict(event.resource.items())
        parameters = push_parameters(labels, str(event.id))
        return cls(
            id=str(event.id),
            image=parameters["image"],
            tag=parameters["tag"],
            digest=parameters["digest"],
            pushed_by=parameters["pushed_by"],
        )

    def parameters(self) -> dict[str, str]:
        """The parameters the deployment trigger renders for this event."""
        return {
            "image": self.image,
            "tag": self.tag,
            "digest": self.digest,
            "pushed_by": self.pushed_by,
            "event_id": self.id,
        }


@dataclass(frozen=True)
class Attempt:
    """A promote-release run as the reconciler sees it."""

    id: UUID
    created: datetime.datetime
    event_id: str | None
    state_type: StateType | None
    state_name: str | None
    has_task_runs: bool = True

    @property
    def dead(self) -> bool:
        """Will never promote: crashed before its first task (at submission), or stood down."""
        crashed = self.state_type == StateType.CRASHED and not self.has_task_runs
        return crashed or (self.state_type == StateType.CANCELLED and self.state_name == DUPLICATE)


@dataclass(frozen=True)
class Recovery:
    """A run to start: for a push left without one (attempt 0), or again after `attempt` dead runs."""

    push: Push
    attempt: int

    @property
    def key(self) -> str:
        return idempotency_key(self.push.id, self.attempt)

    @property
    def reason(self) -> str:
        return "no run" if self.attempt == 0 else "crashed at submission"


def idempotency_key(event_id: str, attempt: int = 0) -> str:
    """The key of the run for `event_id`: the same in every reconciler, so the server creates it once."""
    key = f"{REGISTRY_EVENT} {event_id}"
    return key if attempt == 0 else f"{key} retry {attempt}"


def winner(attempts: Iterable[Attempt]) -> Attempt | None:
    """The run that carries the push: the earliest-created one that is not dead."""
    alive = [a for a in attempts if not a.dead]
    return min(alive, key=lambda a: (a.created, str(a.id))) if alive else None


def recoveries(
    pushes: Iterable[Push], attempts: Iterable[Attempt], max_retries: int = MAX_RETRIES
) -> list[Recovery]:
    """The runs to start: one per push without a run, or whose every run is dead (at most `max_retries`)."""
    by_event: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        if attempt.event_id is not None:
            by_event.setdefault(attempt.event_id, []).append(attempt)
    found = []
    for push in pushes:
        runs = by_event.get(push.id, [])
        if winner(runs) is not None:
            continue
        if len(runs) <= max_retries:
            found.append(Recovery(push, attempt=len(runs)))
        else:
            logger.debug(
                "%s:%s (event %s): %d runs died, not trying again", push.image, push.tag, push.id, len(runs)
            )
    return found


def reconcile(
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS,
    deployment: str = PROMOTE_DEPLOYMENT,
) -> list[FlowRun]:
    """One pass: start the run of every push of the last `lookback_seconds` (older than `grace_seconds`,
    the trigger's own chance) that has no live run; return the runs started."""
    now = datetime.datetime.now(datetime.UTC)
    until = now - datetime.timedelta(seconds=grace_seconds)
    with get_client(sync_client=True) as client:
        try:
            found = client.read_deployment_by_name(deployment)
        except ObjectNotFound:
            logger.debug("no deployment %s: nothing to reconcile", deployment)
            return []
        # A push from before the deployment existed had no trigger to miss (serving again keeps `created`).
        since = max(now - datetime.timedelta(seconds=lookback_seconds), found.created or now)
        if until <= since:
            return []
        pushes = list(_pushes(client, since, until))
        if not pushes:
            return []
        todo = recoveries(pushes, _attempts(client, found.id, since))
        return [_start(client, found.id, recovery) for recovery in todo]


def stand_down(run: FlowRun, event_id: str) -> State[Any] | None:
    """The state to end `run` in when an earlier live run carries the same push (the trigger was slow and
    the reconciler started one too, or the other way round); None when `run` is the one."""
    if run.deployment_id is None:
        return None
    created = run.created or datetime.datetime.now(datetime.UTC)
    since = created - datetime.timedelta(seconds=DEFAULT_LOOKBACK_SECONDS)
    with get_client(sync_client=True) as client:
        first = winner(a for a in _attempts(client, run.deployment_id, since) if a.event_id == event_id)
    if first is None or first.id == run.id:
        return None
    message = f"duplicate of run {first.id} for event {event_id}"
    _logger().warning("standing down: %s", message)
    return Cancelled(name=DUPLICATE, message=message)


async def reconcile_forever(
    interval: float = DEFAULT_INTERVAL,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS,
    deployment: str = PROMOTE_DEPLOYMENT,
) -> None:
    """A pass every `interval` seconds until cancelled; a failing pass is logged and the next one runs."""
    while True:
        try:
            await asyncio.to_thread(reconcile, grace_seconds, lookback_seconds, deployment)
        except Exception as error:  # the server is down or busy: the next pass tries again
            logger.warning("reconciler pass failed (%s); trying again in %g s", error, interval)
        await asyncio.sleep(interval)


def _pushes(client: SyncPrefectClient, since: datetime.datetime, until: datetime.datetime) -> Iterator[Push]:
    """The pushes of the window, on every page; the resource filter is the trigger's match."""
    page = client.read_events(
        filter=EventFilter(
            occurred=EventOccurredFilter.model_validate({"since": since, "until": until}),
            event=EventNameFilter(name=[REGISTRY_EVENT]),
            resource=EventResourceFilter(id_prefix=[REGISTRY_RESOURCE.removesuffix("*")]),
        ),
        limit=EVENTS_PAGE,
    )
    while True:
        yield from (Push.of(event) for event in page.events)
        if page.next_page is None or not page.events:
            return
        page = client.read_events_page(str(page.next_page))


def _attempts(client: SyncPrefectClient, deployment_id: UUID, since: datetime.datetime) -> list[Attempt]:
    """The deployment's runs created since `since`. Parameters cannot be filtered on by the server
    (REFERENCE.md section 5), and it has no creation-time filter: a deployment run's expected start is
    its creation (or later), so that filter keeps every run wanted and the rest is read here."""
    runs: list[FlowRun] = []
    flow_run_filter = FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
        tags=FlowRunFilterTags(all_=[RUN_TAG]),
        expected_start_time=FlowRunFilterExpectedStartTime.model_validate({"after_": since}),
    )
    while True:
        page = client.read_flow_runs(
            flow_run_filter=flow_run_filter,
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=PAGE,
            offset=len(runs),
        )
        runs += page
        if len(page) < PAGE:
            break
    return [_attempt(client, run) for run in runs if run.created is None or run.created >= since]


def _attempt(client: SyncPrefectClient, run: FlowRun) -> Attempt:
    event_id = run.parameters.get("event_id")
    state_type = run.state.type if run.state else None
    crashed = state_type == StateType.CRASHED
    return Attempt(
        id=run.id,
        created=run.created or datetime.datetime.now(datetime.UTC),
        event_id=str(event_id) if event_id is not None else None,
        state_type=state_type,
        state_name=run.state.name if run.state else None,
        # Only a crashed run's tasks matter (crashed before any task: at submission); crashes are rare.
        has_task_runs=bool(
            client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])), limit=1)
        )
        if crashed
        else True,
    )


def _start(client: SyncPrefectClient, deployment_id: UUID, recovery: Recovery) -> FlowRun:
    """Start the push's run (or find the one another reconciler started with the same key), say so."""
    push = recovery.push
    run = client.create_flow_run_from_deployment(
        deployment_id, parameters=push.parameters(), idempotency_key=recovery.key, tags=[RUN_TAG]
    )
    _logger().warning(
        "trigger recovered: %s:%s (event %s) had %s; started run %s",
        push.image,
        push.tag,
        push.id,
        "no run" if recovery.attempt == 0 else f"{recovery.attempt} runs crashed at submission",
        run.id,
    )
    emit_event(
        event=TRIGGER_RECOVERED,
        resource=registry_resource(push.image, push.tag, push.digest, push.pushed_by),
        related=[{"prefect.resource.id": f"prefect.flow-run.{run.id}", "prefect.resource.role": "flow-run"}],
        payload={
            "event_id": push.id,
            "flow_run_id": str(run.id),
            "reason": recovery.reason,
            "attempt": recovery.attempt,
        },
        # One event per recovery, however many reconcilers met it: the server keeps one event per id.
        id=uuid.uuid5(uuid.NAMESPACE_URL, recovery.key),
    )
    return run


def _logger() -> logging.Logger | LoggingAdapter:
    """The run's logger in the approval sweeper (its Logs tab shows the recovery), ours in `promoter serve`."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logger
