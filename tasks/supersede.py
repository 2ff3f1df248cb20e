"""A release starts, and supersedes the older runs of its app: all at once (prflow per-app), or at each
environment it reaches (per-env)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect import get_client, task
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import State, StateType
from prefect.states import Cancelled, Cancelling

from tasks.contracts import app_tag, stage_tag
from tasks.report import emit, progress_artifact

ACTIVE = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED]


def cancel_older_runs(
    group: str, app: str, tag: str, current: UUID, started: float, at: str | None = None
) -> list[str]:
    """Cancel the active runs of this app that started before us (only those at environment `at`, when
    given), naming the newer tag; return their names.

    A suspended run holds no process, so it is cancelled directly; a running one is asked to stop.
    """
    cancelled = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[app_tag(group, app), *([stage_tag(at)] if at else [])]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE)),
            )
        )
        for run in runs:
            if run.id == current or (run.created and run.created.timestamp() > started):
                continue
            message = f"superseded by {group}/{app}:{tag}"
            held = run.state is not None and run.state.is_paused()
            new_state: State[Any] = Cancelled(message=message) if held else Cancelling(message=message)
            client.set_flow_run_state(run.id, new_state, force=True)
            cancelled.append(run.name)
    return cancelled


@task(
    name="supersede",
    task_run_name="supersede at {at}",
    persist_result=True,
    retries=2,
    retry_delay_seconds=1,
)
def supersede_older_runs(group: str, app: str, tag: str, current: UUID, started: float, at: str) -> list[str]:
    """prflow per-env: the older runs waiting at `at` give way once this release arrives there."""
    cancelled = cancel_older_runs(group, app, tag, current, started, at)
    if cancelled:
        emit("release.superseded", group, app, {"by": tag, "env": at, "runs": cancelled})
    return cancelled


@task(
    name="start-release",
    task_run_name="start {group}/{app}:{tag}",
    persist_result=True,
    retries=2,
    retry_delay_seconds=1,
)
def start_release(
    group: str, app: str, tag: str, digest: str | None, current: UUID, started: float, supersede: bool
) -> UUID:
    """Once per run: with prflow per-app, every older run of the app stands down at once; then the run
    says it started and shows its progress bar (whose id it returns)."""
    if supersede:
        cancelled = cancel_older_runs(group, app, tag, current, started)
        if cancelled:
            emit("release.superseded", group, app, {"by": tag, "runs": cancelled})
    progress = progress_artifact(group, app, tag)
    emit("release.started", group, app, {"tag": tag, "digest": digest or ""})
    return progress
