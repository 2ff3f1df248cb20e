"""On a real Prefect server: a push whose trigger started no run gets exactly one, however many reconcilers
look; a run started by hand is not doubled; a later run for a push stands down; the trigger templates the
event id the reconciler keys on; while the server refuses to create runs, the trigger's action fails and the
reconciler's passes fail, and once it accepts them again the push gets exactly one run."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments.runner import RunnerDeployment
from prefect.events import emit_event
from prefect.events.filters import EventFilter, EventIDFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.events import ReceivedEvent
from prefect.exceptions import PrefectHTTPStatusError
from prefect.flow_engine import run_flow
from prefect.states import Crashed

from deployments.serve import deployments
from flows.promotion import promote_release
from tasks.contracts import RUN_TAG, TRIGGER_RECOVERED, push_parameters, registry_resource
from tasks.reconcile import DUPLICATE, reconcile, reconcile_forever, stand_down

if TYPE_CHECKING:
    from sandbox.prefect_server import PrefectServer

pytestmark = [pytest.mark.server, pytest.mark.timeout(120)]
IMAGE = "ghcr.io/acme/reconciled"
T = TypeVar("T")


def _until(found: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while (value := found()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.2)
    return value


def _deploy(triggers: bool) -> str:
    """promote-release as `promoter serve` declares it, under a name of its own (the session's server is
    shared); without triggers it is a deployment whose trigger fails every time."""
    options = dict(deployments()[0][1])
    options["name"] = f"reconcile-{uuid.uuid4().hex[:8]}"
    if not triggers:
        options.pop("triggers")
    deployment = promote_release.to_deployment(**options)
    assert isinstance(deployment, RunnerDeployment)  # called from sync code: not a coroutine
    deployment.apply()
    return f"promote-release/{options['name']}"


def _forget(name: str) -> None:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(name).id
        client.delete_resource_owned_automations(f"prefect.deployment.{deployment}")
        client.delete_deployment(deployment)


@pytest.fixture
def untriggered(prefect_api: PrefectServer) -> Iterator[str]:
    name = _deploy(triggers=False)
    yield name
    _forget(name)


def _push(tag: str) -> UUID:
    event = emit_event(event="registry.image.pushed", resource=registry_resource(IMAGE, tag, f"sha256:{tag}"))
    assert event is not None
    return event.id


def _stored(*ids: UUID, name: str = "registry.image.pushed") -> list[ReceivedEvent]:
    """The events once the server has persisted all of them (it writes in batches)."""
    wanted = EventFilter(event=EventNameFilter(name=[name]), id=EventIDFilter(id=list(ids)))

    def read() -> list[ReceivedEvent] | None:
        with get_client(sync_client=True) as client:
            events = client.read_events(filter=wanted, limit=50).events
        return events if len(events) == len(ids) else None

    return _until(read, f"{len(ids)} stored {name} events")


def _runs(deployment: str) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        deployment_id = client.read_deployment_by_name(deployment).id
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]))
        )


def _by_event(runs: list[FlowRun]) -> dict[str, list[FlowRun]]:
    found: dict[str, list[FlowRun]] = {}
    for run in runs:
        found.setdefault(str(run.parameters.get("event_id")), []).append(run)
    return found


def test_a_lost_trigger_is_recovered_once(untriggered: str) -> None:
    tags = [f"1.0.{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    ids = [_push(tag) for tag in tags]
    events = {str(e.id): e for e in _stored(*ids)}
    # The first push did get its run, by hand, as the trigger would have started it.
    with get_client(sync_client=True) as client:
        deployment_id = client.read_deployment_by_name(untriggered).id
        by_hand = client.create_flow_run_from_deployment(
            deployment_id, parameters=push_parameters(dict(events[str(ids[0])].resource.items()), str(ids[0]))
        )

    def reconciler() -> list[FlowRun]:
        return reconcile(grace_seconds=0, deployment=untriggered)

    # Two reconcilers at once, e.g. a sweep and `promoter serve` (each thread with the test's settings).
    with ThreadPoolExecutor(2) as pool:
        passes = [pool.submit(contextvars.copy_context().run, reconciler) for _ in range(2)]
        started = [p.result() for p in passes]
    assert reconcile(grace_seconds=0, deployment=untriggered) == []  # nothing left to do

    runs = _by_event(_runs(untriggered))
    assert {key: len(found) for key, found in runs.items()} == {str(i): 1 for i in ids}
    assert [run.id for run in runs[str(ids[0])]] == [by_hand.id]
    for event_id, tag in zip(ids[1:], tags[1:], strict=True):
        (run,) = runs[str(event_id)]
        assert run.parameters == {
            "image": IMAGE,
            "tag": tag,
            "digest": f"sha256:{tag}",
            "pushed_by": "",
            "event_id": str(event_id),
        }
        assert RUN_TAG in run.tags and run.idempotency_key == f"registry.image.pushed {event_id}"
    assert {run.id for found in started for run in found} == {runs[str(i)][0].id for i in ids[1:]}
    # one recovered event per recovery, though both reconcilers said so
    recovered = _stored(
        *[uuid.uuid5(uuid.NAMESPACE_URL, f"registry.image.pushed {i}") for i in ids[1:]],
        name=TRIGGER_RECOVERED,
    )
    assert sorted(e.payload["event_id"] for e in recovered) == sorted(map(str, ids[1:]))


def test_a_run_crashed_at_submission_is_started_again_and_a_late_twin_stands_down(untriggered: str) -> None:
    (event,) = _stored(_push(f"2.0.0-{uuid.uuid4().hex[:6]}"))
    parameters = push_parameters(dict(event.resource.items()), str(event.id))
    with get_client(sync_client=True) as client:
        deployment_id = client.read_deployment_by_name(untriggered).id
        lost = client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
        client.set_flow_run_state(lost.id, Crashed(message="503 at submission"), force=True)

    (retry,) = reconcile(grace_seconds=0, deployment=untriggered)
    assert retry.idempotency_key == f"registry.image.pushed {event.id} retry 1"
    assert retry.parameters == parameters
    assert reconcile(grace_seconds=0, deployment=untriggered) == []

    # The trigger was only slow: its run comes after the reconciler's, and stands down at its start.
    with get_client(sync_client=True) as client:
        late = client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
    assert stand_down(retry, str(event.id)) is None
    run_flow(promote_release, flow_run=late, parameters=late.parameters, return_type="state")
    with get_client(sync_client=True) as client:
        ended = client.read_flow_run(late.id)
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[late.id])))
    assert ended.state is not None
    assert (ended.state.type, ended.state.name) == (StateType.CANCELLED, DUPLICATE)
    assert ended.state.message == f"duplicate of run {retry.id} for event {event.id}"
    assert tasks == []  # it did nothing
    assert reconcile(grace_seconds=0, deployment=untriggered) == []


def _triggered(name: str) -> tuple[UUID, UUID]:
    """Deploy with the trigger, wait until the server's trigger service has it; (deployment, automation)."""
    with get_client(sync_client=True) as client:
        deployment_id = client.read_deployment_by_name(name).id
        automations = _until(
            lambda: client.read_resource_related_automations(f"prefect.deployment.{deployment_id}") or None,
            "automation",
        )
    time.sleep(1.0)  # the server's trigger service loads new automations a moment after they are stored
    return deployment_id, automations[0].id


def test_the_trigger_passes_the_event_id_and_the_reconciler_leaves_its_run_alone(
    prefect_api: PrefectServer,
) -> None:
    name = _deploy(triggers=True)
    try:
        _triggered(name)
        tag = f"3.0.0-{uuid.uuid4().hex[:6]}"
        event_id = _push(tag)

        def triggered() -> list[FlowRun] | None:
            return [r for r in _runs(name) if r.parameters.get("tag") == tag] or None

        (run,) = _until(triggered, "triggered run", timeout=30)
        expected: dict[str, Any] = {
            "image": IMAGE,
            "tag": tag,
            "digest": f"sha256:{tag}",
            "pushed_by": "",
            "event_id": str(event_id),
        }
        assert run.parameters == expected
        _stored(event_id)
        assert reconcile(grace_seconds=0, deployment=name) == []
    finally:
        _forget(name)


@contextmanager
def _refusing_runs(server: PrefectServer, deployment_id: UUID) -> Iterator[None]:
    """The server refuses to create runs of one deployment, as a locked database refuses every write: an
    insert trigger on its SQLite database aborts them, until the block ends."""
    database = sqlite3.connect(server.home / "prefect.db", timeout=30)
    try:
        found = database.execute("SELECT count(*) FROM deployment WHERE id = ?", (str(deployment_id),))
        assert found.fetchone() == (1,), "the server's database stores ids otherwise: fix this fixture"
        with database:
            database.execute(
                "CREATE TRIGGER refuse_runs BEFORE INSERT ON flow_run"
                f" WHEN NEW.deployment_id = '{deployment_id}'"
                " BEGIN SELECT RAISE(ABORT, 'run creation refused by the test'); END"
            )
        yield
    finally:
        with database:
            database.execute("DROP TRIGGER IF EXISTS refuse_runs")
        database.close()


@contextmanager
def _reconciling(name: str) -> Iterator[None]:
    """`promoter serve`'s reconciler loop (a pass every 0.5 s, no grace) in a thread, with the test's settings."""
    stop = threading.Event()

    async def until_stopped() -> None:
        loop = asyncio.create_task(reconcile_forever(0.5, grace_seconds=0, deployment=name))
        while not stop.is_set():
            await asyncio.sleep(0.1)
        loop.cancel()

    thread = threading.Thread(target=contextvars.copy_context().run, args=(asyncio.run, until_stopped()))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def test_while_the_server_refuses_run_creation_nothing_is_lost_and_after_it_one_run_starts(
    prefect_api: PrefectServer,
) -> None:
    name = _deploy(triggers=True)
    try:
        deployment_id, automation_id = _triggered(name)
        tag = f"4.0.0-{uuid.uuid4().hex[:6]}"
        with _reconciling(name):
            with _refusing_runs(prefect_api, deployment_id):
                event_id = _push(tag)
                (event,) = _stored(event_id)
                # The trigger's action met the refusal, and Prefect does not try it again ...
                failed = EventFilter(
                    event=EventNameFilter(name=["prefect.automation.action.failed"]),
                    resource=EventResourceFilter(id=[f"prefect.automation.{automation_id}"]),
                )

                def action_failed() -> list[ReceivedEvent] | None:
                    with get_client(sync_client=True) as client:
                        return client.read_events(filter=failed, limit=50).events or None

                _until(action_failed, "failed trigger action", timeout=30)
                # ... and the reconciler's passes meet it too, for a while.
                with pytest.raises(PrefectHTTPStatusError, match=r"409 Conflict.*create_flow_run"):
                    reconcile(grace_seconds=0, deployment=name)
                time.sleep(2.0)
                assert _runs(name) == []

            def recovered() -> list[FlowRun] | None:
                return _runs(name) or None

            (run,) = _until(recovered, "recovered run", timeout=30)
            time.sleep(2.0)  # more passes after the recovery start nothing more
        (again,) = _runs(name)
        assert again.id == run.id
        assert run.idempotency_key == f"registry.image.pushed {event_id}"
        assert run.parameters == push_parameters(dict(event.resource.items()), str(event_id))
        assert reconcile(grace_seconds=0, deployment=name) == []
    finally:
        _forget(name)
