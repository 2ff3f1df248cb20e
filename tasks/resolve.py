"""Stage 1: which apps does the pushed image feed?"""

from __future__ import annotations

from prefect import task

from promoter.promotion import Target
from promoter.release import resolve_apps_at
from tasks.common import AppRef, transient_only


@task(
    name="resolve-apps",
    task_run_name="resolve {image}",
    retries=3,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    timeout_seconds=300,
    persist_result=True,
)
def resolve_apps(target: Target, image: str) -> list[AppRef]:
    with target.open(refresh=False) as promotion:  # `load-config` just fetched
        snapshot = promotion.workspace.snapshot()
        return [AppRef(group=g, app=a) for g, a in resolve_apps_at(snapshot, promotion.config, image)]
