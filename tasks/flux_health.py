"""Stage 3: wait for Flux to report an environment healthy (or failed, or nothing before the deadline)."""

from __future__ import annotations

import time

from prefect import get_run_logger, task

from promoter.promotion import Target, wait_for_environment
from tasks.common import AppRef, FluxVerdict, transient_only
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
def wait_for_flux(target: Target, app: AppRef, tag: str, env: str, commit: str) -> FluxVerdict:
    """Polls conditionally with backoff up to the config's `status_timeout_minutes`; emits
    `promoter.environment.healthy` or `promoter.environment.failed` (silence counts as failed)."""
    started = time.monotonic()
    log = get_run_logger()
    log.info("waiting for Flux to report %s-%s on %s", app.group, env, commit[:8])
    with target.open(refresh=False) as promotion:  # each poll fetches
        verdict = wait_for_environment(promotion, app.group, env, commit, interval=target.poll_interval)
    on = f" on {verdict.commit[:8]}" if verdict.commit else ""
    why = f": {verdict.description}" if verdict.description else ""
    log.info(
        "Flux %s-%s %s%s after %.1f s%s",
        app.group,
        env,
        verdict.outcome,
        on,
        time.monotonic() - started,
        why,
    )
    result = FluxVerdict(
        env=env, outcome=verdict.outcome, commit=verdict.commit, description=verdict.description
    )
    emit(
        "environment.healthy" if result.healthy else "environment.failed",
        app.group,
        app.app,
        {
            "tag": tag,
            "env": env,
            "outcome": result.outcome,
            "description": result.description,
            "commit": result.commit or "",
        },
    )
    return result
