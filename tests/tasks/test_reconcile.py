"""The reconciler's decisions, without a server: which pushes lack a run, which dead runs are tried again,
which run carries a push, and the keys that make two reconcilers start one run."""

from __future__ import annotations

import datetime
import uuid

from prefect.client.schemas.objects import StateType
from prefect.events.schemas.events import ReceivedEvent

from tasks.contracts import TRIGGER_PARAMETERS, push_parameters, registry_resource
from tasks.reconcile import DUPLICATE, MAX_RETRIES, Attempt, Push, idempotency_key, recoveries, winner

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def push(tag: str = "1.0.0") -> Push:
    return Push(id=str(uuid.uuid4()), image="ghcr.io/acme/podinfo", tag=tag, digest="sha256:abc")


def attempt(
    event_id: str | None,
    seconds: float = 0.0,
    state: StateType = StateType.SCHEDULED,
    name: str | None = None,
    has_task_runs: bool = False,
) -> Attempt:
    return Attempt(
        id=uuid.uuid4(),
        created=T0 + datetime.timedelta(seconds=seconds),
        event_id=event_id,
        state_type=state,
        state_name=name or state.value.title(),
        has_task_runs=has_task_runs,
    )


def crashed(event_id: str, seconds: float = 0.0) -> Attempt:
    return attempt(event_id, seconds, StateType.CRASHED)


def test_the_reconciler_passes_what_the_trigger_templates() -> None:
    assert set(push_parameters({}, "e")) == set(TRIGGER_PARAMETERS)


def test_a_push_reads_as_the_trigger_renders_it_a_missing_digest_is_empty() -> None:
    event = ReceivedEvent.model_validate(
        {
            "event": "registry.image.pushed",
            "resource": registry_resource("ghcr.io/acme/podinfo", "1.2.3", None, "octocat"),
            "id": uuid.uuid4(),
            "occurred": T0,
            "received": T0,
        }
    )
    assert Push.of(event).parameters() == {
        "image": "ghcr.io/acme/podinfo",
        "tag": "1.2.3",
        "digest": "",
        "pushed_by": "octocat",
        "event_id": str(event.id),
    }


def test_a_push_without_a_run_gets_one_keyed_by_its_event() -> None:
    lost, served = push("1"), push("2")
    todo = recoveries([lost, served], [attempt(served.id), attempt(None)])
    assert [(r.push, r.attempt, r.reason) for r in todo] == [(lost, 0, "no run")]
    assert todo[0].key == f"registry.image.pushed {lost.id}"


def test_a_run_crashed_at_submission_is_started_again_once_per_attempt() -> None:
    first = push()
    todo = recoveries([first], [crashed(first.id)])
    assert [(r.attempt, r.reason, r.key) for r in todo] == [
        (1, "crashed at submission", f"registry.image.pushed {first.id} retry 1")
    ]
    # the retry crashed too, and a run that stood down for the first one is no run either
    stood_down = attempt(first.id, 2, StateType.CANCELLED, DUPLICATE)
    again = recoveries([first], [crashed(first.id), stood_down, crashed(first.id, 5)])
    assert [r.key for r in again] == [f"registry.image.pushed {first.id} retry 3"]


def test_a_push_with_a_live_run_beside_a_crashed_one_is_left_alone() -> None:
    first = push()
    assert recoveries([first], [crashed(first.id), attempt(first.id, 10, StateType.RUNNING)]) == []


def test_a_run_that_crashed_after_its_first_task_is_not_started_again() -> None:
    first = push()
    midway = attempt(first.id, state=StateType.CRASHED, has_task_runs=True)
    assert recoveries([first], [midway]) == []


def test_finished_or_cancelled_runs_count_as_the_pushs_run() -> None:
    first = push()
    for state in (StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.PAUSED):
        assert recoveries([first], [attempt(first.id, state=state)]) == []


def test_the_reconciler_gives_up_after_a_few_crashes() -> None:
    first = push()
    assert len(recoveries([first], [crashed(first.id, i) for i in range(MAX_RETRIES)])) == 1
    assert recoveries([first], [crashed(first.id, i) for i in range(MAX_RETRIES + 1)]) == []


def test_the_earliest_live_run_carries_the_push() -> None:
    event = str(uuid.uuid4())
    dead = crashed(event, 0)
    first = attempt(event, 1, StateType.RUNNING)
    later = attempt(event, 2)
    assert winner([later, dead, first]) == first
    assert winner([dead, attempt(event, 3, StateType.CANCELLED, DUPLICATE)]) is None
    twins = [attempt(event, 4), attempt(event, 4)]
    assert winner(twins) == winner(list(reversed(twins)))  # a tie is broken the same way everywhere


def test_keys_differ_per_event_and_attempt() -> None:
    event = str(uuid.uuid4())
    keys = {idempotency_key(event), idempotency_key(event, 1), idempotency_key(str(uuid.uuid4()))}
    assert len(keys) == 3
