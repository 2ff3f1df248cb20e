"""Serve the promoter's deployments from one process: `promoter serve`.

`promote-release` starts on every `registry.image.pushed` event (the webhook receiver emits them), with
its parameters templated from the event; `approval-sweeper` runs on a schedule. `prefect.yaml` declares
the same two deployments for a work pool, for teams that run Prefect workers instead.
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.events import DeploymentEventTrigger

from flows.promotion import promote_release
from flows.sweeper import approval_sweeper

EVENT = "registry.image.pushed"
TRIGGER_PARAMETERS = {
    "image": "{{ event.resource['promoter.image'] }}",
    "tag": "{{ event.resource['promoter.tag'] }}",
    "digest": "{{ event.resource['promoter.digest'] }}",
}


def deployments(sweep_seconds: float = 60.0) -> list[Any]:
    promote = promote_release.to_deployment(
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
    sweeper = approval_sweeper.to_deployment(
        name="approval-sweeper",
        tags=["promoter-sweeper"],
        interval=sweep_seconds,
        # One sweep at a time: a slow sweep must not pile processes up behind it.
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
        description="Resume promotions whose PR a person merged in the forge",
    )
    return [promote, sweeper]


def run(args: argparse.Namespace) -> int:
    serve(*deployments(args.sweep_seconds), limit=args.limit)
    return 0
