"""Stage 1: read `gitops-promotion.yaml` and find which apps the pushed image feeds, from one fetch of main."""

from __future__ import annotations

from prefect import task

from promoter.config import Config
from promoter.promotion import Target
from promoter.release import resolve_apps_at
from tasks.common import AppRef, Frozen, run_logger, transient_only


class Resolved(Frozen):
    config: Config
    apps: list[AppRef]


@task(
    name="resolve",
    task_run_name="resolve {image}",
    retries=3,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    timeout_seconds=300,
    persist_result=True,
)
def resolve_release(target: Target, image: str, app: AppRef | None = None) -> Resolved:
    """The config and the apps `image` feeds; only the config when the run was started for one `app`."""
    with target.open() as promotion:
        if app is not None:
            return Resolved(config=promotion.config, apps=[app])
        snapshot = promotion.workspace.snapshot()
        found = resolve_apps_at(snapshot, promotion.config, image)
        apps = [AppRef(group=g, app=a) for g, a in found]
        run_logger().info(
            "%s on %s: %s feeds %s; environments %s",
            promotion.base,
            (promotion.workspace.remote_sha(promotion.base) or "?")[:8],
            image,
            ", ".join(map(str, apps)) or "no app",
            " -> ".join(promotion.config.environment_names),
        )
        return Resolved(config=promotion.config, apps=apps)
