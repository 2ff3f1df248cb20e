"""Events and artifacts: what users hang notifications on, and what the run page shows."""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any
from uuid import UUID

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact
from prefect.events import emit_event

from tasks.common import Frozen
from tasks.contracts import AppEvent, app_resource, event_name
from tasks.forge_usage import report_forge_usage


class StageRecord(Frozen):
    env: str
    pr: str = ""
    merge_commit: str = ""
    flux: str = ""
    seconds: float = 0.0
    note: str = ""


def prefect_key(*parts: str) -> str:
    """A key Prefect accepts for artifacts and run inputs (`[a-z0-9-]`), still unique for any tag or env.

    Tags like `6.5.0` and environments like `Prod_EU` are folded to dashes, with a short hash of the
    original parts so that two different names never share a key.
    """
    raw = "-".join(parts)
    folded = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:60]
    return f"{folded}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"


def emit(event: AppEvent, group: str, app: str, payload: dict[str, Any]) -> None:
    """`promoter.<event>` on the app's resource. Called at the end of the task that saw it happen, so that
    a resumed run, which reuses the task's cached result, does not say it twice. The forge requests made
    since the last event go with it (`forge.api.usage`, for the webhook receiver's /metrics)."""
    emit_event(event=event_name(event), resource=app_resource(group, app), payload=payload)
    report_forge_usage()


@task(name="announce", task_run_name="{event}", persist_result=True, retries=2, retry_delay_seconds=1)
def announce(event: AppEvent, group: str, app: str, payload: dict[str, Any]) -> None:
    """An event no stage task emits (the run's outcome, the approval gate), once per run (cached)."""
    emit(event, group, app, payload)


def progress_artifact(group: str, app: str, tag: str) -> UUID:
    """The run's progress bar, updated as environments complete."""
    created = create_progress_artifact(
        progress=0.0, description=f"{group}/{app}:{tag} through its environments"
    )
    assert isinstance(created, UUID)
    return created


def publish_report(
    group: str, app: str, tag: str, stages: list[StageRecord], outcome: str, started: float
) -> None:
    """The run's table (one row per environment) and a markdown timeline."""
    key = prefect_key("release", group, app)
    create_table_artifact(
        key=key,
        description=f"{group}/{app}:{tag}: {outcome}",
        table=[
            {
                "environment": s.env,
                "pull request": s.pr,
                "merge commit": s.merge_commit[:12],
                "Flux": s.flux,
                "seconds in stage": round(s.seconds, 1),
                "note": s.note,
            }
            for s in stages
        ],
    )
    lines = [f"## {group}/{app} `{tag}`: {outcome}", "", f"Total {time.time() - started:.1f} s", ""]
    lines += [
        f"1. **{s.env}**: {s.pr or 'no PR'}, Flux {s.flux or '-'}{' - ' + s.note if s.note else ''}"
        for s in stages
    ]
    create_markdown_artifact(key=prefect_key("timeline", group, app), markdown="\n".join(lines))
