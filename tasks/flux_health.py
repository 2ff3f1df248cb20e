"""Stage 3: wait for Flux to report an environment healthy (or failed, or nothing before the deadline)."""

from __future__ import annotations

import time

from prefect import task

from promoter.health import Failed, Health, NoReport
from promoter.promotion import Target
from promoter.stages import Pending, last_look, wait_for_environment
from tasks.common import AppRef, run_logger, suspending, transient_only
from tasks.report import emit


@task(
    name="wait-flux",
    task_run_name="flux {app.group}-{env} on {commit:.8} ({round})",
    timeout_seconds=7200,
    persist_result=True,
    retries=3,
    retry_delay_seconds=5,
    retry_condition_fn=transient_only,
)
def wait_for_flux(
    target: Target,
    app: AppRef,
    tag: str,
    env: str,
    commit: str,
    since: float | None = None,
    round: int = 0,
) -> Health | Pending:
    """Polls conditionally with backoff for one window (`target.wait_window_seconds`), up to the config's
    `status_timeout_minutes` after `since`; `Pending` when the window ran out first, so the run can
    suspend. Each window is its own cached task run (`round`). The environment's `require`d contexts
    must say `success` too. Emits `promoter.environment.healthy` or `promoter.environment.failed`
    (silence at the deadline counts as failed)."""
    began = since if since is not None else time.time()
    log = run_logger()
    with target.open(refresh=False) as promotion:  # each poll fetches
        required = next((e.require for e in promotion.config.environments if e.name == env), ())
        if since is None:
            also = f" and {', '.join(required)} to succeed there" if required else ""
            log.info("waiting for Flux to report %s-%s on %s%s", app.group, env, commit[:8], also)
        timeout = promotion.config.status_timeout.total_seconds()
        deadline = began + timeout
        window = min(target.wait_window_seconds, max(0.0, deadline - time.time()))
        health = wait_for_environment(promotion, app.group, env, commit, timeout=window)
        if isinstance(health, NoReport) and time.time() >= deadline:
            health = last_look(promotion, app.group, env, commit) or health
    if isinstance(health, NoReport):
        if time.time() < deadline:
            what = f"Flux to report {app.group}-{env} on {commit[:8]} ({health.description})"
            if health.contexts:  # Flux is healthy: the required contexts are what the run waits for
                what = f"{', '.join(health.contexts)} to succeed on {commit[:8]} (Flux healthy on {app.group}-{env})"
            return suspending(Pending(since=began, deadline=deadline, what=what))
        health = health.model_copy(update={"waited": timeout})
    on = f" on {health.commit[:8]}" if health.commit else ""
    why = f": {health.description}" if health.description else ""
    by_required = (isinstance(health, Failed) and bool(health.context)) or (
        isinstance(health, NoReport) and bool(health.contexts)
    )
    log.info(
        "%s%s-%s %s%s after %.1f s%s",
        "" if by_required else "Flux ",
        app.group,
        env,
        health.outcome,
        on,
        time.time() - began,
        why,
    )
    emit(
        "environment.healthy" if health.healthy else "environment.failed",
        app.group,
        app.app,
        {
            "tag": tag,
            "env": env,
            "outcome": health.outcome,
            "description": health.description,
            "commit": health.commit or "",
            "seconds": int((time.time() - began) * 1000) / 1000,  # for /metrics (`round` is a parameter)
            **({"required": list(required)} if required else {}),
        },
    )
    return health
