"""A Prefect worker on the promoter's work pool that starts each run warm: `promoter worker`.

`prefect worker start --pool promoter` starts every flow run as a new interpreter, which imports Prefect
and the flows before the first task: 3-5 s on an idle machine, 30-90 s when a hundred releases arrive at
once (bench/scale.py). This worker is Prefect's process worker (it polls the pool, heartbeats, honours
`--limit` and cancellation, and appears in `prefect work-pool` like any other), except that a run of the
promoter's own flows starts as a fork of a process that imported them once, exactly as in `promoter
serve` (`prefect_compat.fork_runs`). Any other deployment on the pool gets the process worker's own start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

import anyio
import anyio.abc
from prefect import Flow, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import ObjectNotFound
from prefect.logging import get_logger
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker, ProcessWorkerResult

from deployments import prefect_compat
from deployments.prefect_api import require_api
from deployments.serve import PRELOAD
from flows.delivery import delivery_report
from flows.promotion import promote_release
from flows.sweeper import approval_sweeper
from promoter.errors import ConfigError
from tasks.wait_watch import watch_waits

logger = get_logger("promoter.worker")
# The deployments' entrypoints, as prefect.yaml declares them, and the flows the fork server imported.
WARM: dict[str, Flow[..., Any]] = {
    "flows/promotion.py:promote_release": promote_release,
    "flows/sweeper.py:approval_sweeper": approval_sweeper,
    "flows/delivery.py:delivery_report": delivery_report,
}


class WarmProcessWorker(ProcessWorker):
    """A process worker whose runs of `WARM` entrypoints are forks of the warm server."""

    @classmethod
    def __dispatch_key__(cls) -> str:
        # Registered under its own key: `type` stays "process" for the pool, and Prefect's lookup of the
        # "process" worker type keeps finding Prefect's class.
        return "promoter-warm-process"

    def __init__(self, *args: Any, warm: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warm = warm

    async def run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ProcessWorkerResult:
        flow, deployment_name = await self._warm_flow(flow_run)
        if flow is None:
            return await super().run(flow_run, configuration, task_status)
        pid, status = await prefect_compat.run_in_fork(
            flow_run,
            flow,
            deployment_name=deployment_name,
            env=dict(configuration.env),
            task_status=task_status or anyio.TASK_STATUS_IGNORED,
        )
        return ProcessWorkerResult(status_code=status or 0, identifier=str(pid or ""))

    async def _warm_flow(self, flow_run: FlowRun) -> tuple[Flow[..., Any] | None, str | None]:
        """The already imported flow of the run's deployment, or None where the run must start cold."""
        if not self.warm or flow_run.deployment_id is None:
            return None, None
        deployment = await self.client.read_deployment(flow_run.deployment_id)
        return WARM.get(deployment.entrypoint or ""), deployment.name


def run(args: argparse.Namespace) -> int:
    """Work the pool until interrupted; runs of the promoter's flows are forks of a warm process."""
    require_api("worker")
    check_pool(args.pool)
    prefect_compat.warn_about(prefect_compat.check())
    warm = prefect_compat.fork_runs(PRELOAD) and not _problems("run_in_fork")
    if not warm:
        logger.warning("runs start as fresh interpreters, as with `prefect worker start`")
    worker = WarmProcessWorker(
        work_pool_name=args.pool,
        name=args.name,
        limit=args.limit,
        create_pool_if_not_found=False,
        warm=warm,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_work(worker, args.watch_seconds))
    return 0


def check_pool(name: str) -> None:
    """Refuse, in one line, a pool this worker could not serve: a typo would otherwise wait forever."""
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            raise ConfigError(
                f"work pool {name!r} not found: create it with `prefect work-pool create {name} --type "
                "process` and deploy to it with `prefect deploy --all` (docs/scale-out.md)"
            ) from None
    if pool.type != "process":
        raise ConfigError(
            f"work pool {name!r} is of type {pool.type!r}: `promoter worker` starts runs as local "
            "processes and serves only pools of type 'process'"
        )


def _problems(patch: str) -> list[str]:
    return [p for p in prefect_compat.check() if p.startswith(patch)]


async def _work(worker: WarmProcessWorker, watch_seconds: float) -> None:
    watcher = asyncio.create_task(watch_waits(watch_seconds))
    try:
        await worker.start()
    finally:
        watcher.cancel()
