"""delivery-report: the week's delivery metrics (DORA) of every app, as the `promoter-delivery` artifact.

Read from main's history and Flux's commit statuses, as `promoter metrics` does, so the figures hold
whatever Prefect has forgotten; scheduled weekly by `promoter serve` and prefect.yaml.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from promoter.promotion import Target
from tasks.delivery import measure_delivery, publish_delivery


@flow(name="delivery-report", log_prints=False)
def delivery_report(
    gitops_url: str | None = None, provider: str | None = None, days: float = 7.0
) -> dict[str, Any]:
    """Measure the last `days` and publish them; returns `promoter metrics --json`'s document.

    `gitops_url` and `provider` default to the worker's `PROMOTER_GITOPS_URL` and `PROMOTER_PROVIDER`.
    """
    target = Target.of({"gitops_url": gitops_url, "provider": provider})
    metrics = measure_delivery(target, days)
    publish_delivery(metrics)
    document: dict[str, Any] = metrics.as_json()
    return document
