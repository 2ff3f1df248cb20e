"""Stage 3: wait for Flux to report an environment healthy (or failed, or nothing before the deadline)."""

from __future__ import annotations

import time

from prefect import task

from promoter.health import Health
from promoter.promotion import Target
from promoter.stages import wait_for_environment
from tasks.common import AppRef, run_logger, transient_only
from tasks.report import emit


@task(
    name="wait-flux",
    task_run_name="flux {app.group}-{env} on {commit:.8}",
    timeout_seconds=7200,
    persist_result=True,
    retries=3,
    retry_delay_seconds=5,
    retry_condition_fn=transient_only,
)
def wait_for_flux(target: Target, app: AppRef, tag: str, env: str, commit: str) -> Health:
    """Polls conditionally with backoff up to the config's `status_timeout_minutes`; emits
    `promoter.environment.healthy` or `promoter.environment.failed` (silence counts as failed)."""
    started = time.monotonic()
    log = run_logger()
    log.info("waiting for Flux to report %s-%s on %s", app.group, env, commit[:8])
    with target.open(refresh=False) as promotion:  # each poll fetches
        health = wait_for_environment(promotion, app.group, env, commit)
    on = f" on {health.commit[:8]}" if health.commit else ""
    why = f": {health.description}" if health.description else ""
    log.info(
        "Flux %s-%s %s%s after %.1f s%s",
        app.group,
        env,
        health.outcome,
        on,
        time.monotonic() - started,
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
        },
    )
    return health
