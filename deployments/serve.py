"""Serve the promoter's deployments from one process: `promoter serve`.

`promote-release` starts on every `registry.image.pushed` event (the webhook receiver emits them), with
its parameters templated from the event (a reconciler beside the runner starts the run of any push whose
trigger failed, tasks/reconcile.py); `approval-sweeper` runs on a schedule, `delivery-report` weekly.
`prefect.yaml` declares the same deployments for a work pool, for teams that run Prefect workers instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any, cast
from uuid import UUID

from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.events import DeploymentEventTrigger
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter
from prefect.logging import get_logger
from prefect.runner import Runner

from deployments import prefect_compat
from deployments.prefect_api import require_api
from flows.delivery import delivery_report
from flows.promotion import promote_release
from flows.sweeper import approval_sweeper
from tasks.contracts import REGISTRY_EVENT, REGISTRY_RESOURCE, TRIGGER_PARAMETERS
from tasks.reconcile import DEFAULT_INTERVAL, reconcile_forever
from tasks.wait_watch import watch_waits

# What the fork server imports once, before it forks any run (see prefect_compat.fork_runs).
PRELOAD = ["deployments.warm_start", "flows.promotion", "flows.sweeper", "flows.delivery"]
logger = get_logger("promoter.serve")
DELIVERY_REPORT_CRON = "0 6 * * 1"  # Mondays 06:00 UTC: last week's figures at the start of the week


def deployments(sweep_seconds: float = 60.0) -> list[tuple[Flow[..., Any], dict[str, Any]]]:
    """Each flow with the options of its deployment."""
    promote = dict(
        name="promote-release",
        tags=["promoter"],
        description="Carry a pushed image through the GitOps environments",
        triggers=[
            DeploymentEventTrigger(
                name="registry image pushed",
                expect={REGISTRY_EVENT},
                match={"prefect.resource.id": REGISTRY_RESOURCE},
                parameters=TRIGGER_PARAMETERS,
            )
        ],
    )
    sweeper = dict(
        name="approval-sweeper",
        tags=["promoter-sweeper"],
        interval=sweep_seconds,
        # One sweep at a time: a slow sweep must not pile processes up behind it.
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
        description="Resume promotions whose PR a person merged in the forge",
    )
    report = dict(
        name="delivery-report",
        tags=["promoter-report"],
        cron=DELIVERY_REPORT_CRON,
        description="Publish the week's delivery metrics (DORA) as the promoter-delivery artifact",
    )
    return [(promote_release, promote), (approval_sweeper, sweeper), (delivery_report, report)]


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; each run is a fork of a process that imported the flows once."""
    require_api("serve")
    prefect_compat.warn_about(prefect_compat.check())
    if not prefect_compat.fork_runs(PRELOAD):
        logger.warning("runs start as fresh interpreters (3-5 s each) instead of warm forks")
    runner = Runner(name="promoter", limit=args.limit, pause_on_shutdown=True)
    ids = [cast(UUID, runner.add_flow(flow, **options)) for flow, options in deployments(args.sweep_seconds)]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(runner, ids, args.watch_seconds, args.reconcile_seconds))
    return 0


async def _serve(
    runner: Runner, ids: list[UUID], watch_seconds: float, reconcile_seconds: float = DEFAULT_INTERVAL
) -> None:
    beside = [
        asyncio.create_task(wake_on_scheduled(runner, ids)),
        asyncio.create_task(watch_waits(watch_seconds)),
        asyncio.create_task(reconcile_forever(reconcile_seconds)),
    ]
    try:
        await runner.start()
    finally:
        for task in beside:
            task.cancel()


async def wake_on_scheduled(runner: Runner, ids: list[UUID]) -> None:
    """Pick a run up as soon as the server schedules it, instead of at the runner's next poll.

    The server emits `prefect.flow-run.Scheduled` when a trigger creates a run of our deployments; on
    each one the runner polls at once. Its own poll (`PREFECT_RUNNER_POLL_FREQUENCY`) carries on beside
    this, so a run is still picked up while the event stream is down or the runner is at its limit.
    """
    poll_now = prefect_compat.poll_now(runner)
    if poll_now is None:  # a Prefect without it: the runner's poll alone picks runs up (warned at start)
        return
    wanted = EventFilter(
        event=EventNameFilter(name=["prefect.flow-run.Scheduled"]),
        related=EventRelatedFilter(id=[f"prefect.deployment.{i}" for i in ids]),
    )
    while True:
        try:
            async with get_events_subscriber(filter=wanted) as events:
                async for _ in events:
                    if runner.started and runner.has_slots_available():
                        await poll_now()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the runner's own poll keeps picking runs up meanwhile
            logger.warning("no event stream from the Prefect server (%s); trying again", error)
            await asyncio.sleep(10)
