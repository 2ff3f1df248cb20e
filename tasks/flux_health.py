"""Stage 3: wait for Flux to report an environment healthy (or failed, or nothing before the deadline)."""

from __future__ import annotations

from prefect import task

from promoter.promotion import Target, wait_for_environment
from tasks.common import FluxVerdict, transient_only


@task(
    name="wait-flux",
    task_run_name="flux {group}-{env} on {commit:.8}",
    timeout_seconds=7200,
    persist_result=True,
    retries=3,
    retry_delay_seconds=5,
    retry_condition_fn=transient_only,
)
def wait_for_flux(target: Target, group: str, env: str, commit: str) -> FluxVerdict:
    """Polls conditionally with backoff up to the config's `status_timeout_minutes`."""
    with target.open(refresh=False) as promotion:  # each poll fetches
        verdict = wait_for_environment(promotion, group, env, commit, interval=target.poll_interval)
    return FluxVerdict(
        env=env, outcome=verdict.outcome, commit=verdict.commit, description=verdict.description
    )
