"""Serve the promoter's deployments from one process: `promoter serve`.

`promote-release` starts on every `registry.image.pushed` event (the webhook receiver emits them), with
its parameters templated from the event; `approval-sweeper` runs on a schedule. `prefect.yaml` declares
the same two deployments for a work pool, for teams that run Prefect workers instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.events import DeploymentEventTrigger
from prefect.runner import Runner

from deployments import forked_runs
from flows.promotion import promote_release
from flows.sweeper import approval_sweeper

EVENT = "registry.image.pushed"
TRIGGER_PARAMETERS = {
    "image": "{{ event.resource['promoter.image'] }}",
    "tag": "{{ event.resource['promoter.tag'] }}",
    "digest": "{{ event.resource['promoter.digest'] }}",
}


def deployments(sweep_seconds: float = 60.0) -> list[tuple[Flow[..., Any], dict[str, Any]]]:
    """Each flow with the options of its deployment."""
    promote = dict(
        name="promote-release",
        tags=["promoter"],
        description="Carry a pushed image through the GitOps environments",
        triggers=[
            DeploymentEventTrigger(
                name="registry image pushed",
                expect={EVENT},
                match={"prefect.resource.id": "registry.image.*"},
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
    return [(promote_release, promote), (approval_sweeper, sweeper)]


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; each run is a fork of a process that imported the flows once."""
    forked_runs.install()
    runner = Runner(name="promoter", limit=args.limit, pause_on_shutdown=True)
    for flow, options in deployments(args.sweep_seconds):
        runner.add_flow(flow, **options)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(runner.start())
    return 0
