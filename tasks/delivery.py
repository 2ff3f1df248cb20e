"""The weekly delivery report: measure the repository's delivery (DORA) and publish it as an artifact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from prefect import task
from prefect.artifacts import create_markdown_artifact

from promoter.delivery import DeliveryMetrics
from promoter.delivery_render import markdown
from promoter.delivery_source import measure
from promoter.promotion import Target
from tasks.common import run_logger, transient_only

ARTIFACT_KEY = "promoter-delivery"


@task(
    name="measure-delivery",
    task_run_name="delivery over {days:g} days",
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=transient_only,
)
def measure_delivery(target: Target, days: float, until: datetime | None = None) -> DeliveryMetrics:
    """Every app's figures over the `days` before `until` (now): read from main and Flux's statuses, so a
    retry after a forge hiccup reads them again rather than trusting a half-read."""
    until = until or datetime.now(UTC)
    log = run_logger()
    with target.open() as promotion:
        metrics = measure(promotion, until - timedelta(days=days), until, progress=log.info)
    log.info(
        "%s: %s",
        ", ".join(metrics.apps) or "no deployments",
        "; ".join(f"{m.env} {m.deployments} deployments, {m.failures} failed" for m in metrics.environments),
    )
    return metrics


@task(name="publish-delivery")
def publish_delivery(metrics: DeliveryMetrics) -> UUID:
    """The markdown artifact under one key, so the Artifacts page keeps the history of weekly reports."""
    created = create_markdown_artifact(
        key=ARTIFACT_KEY,
        markdown=markdown(metrics),
        description=f"Delivery metrics, {metrics.since:%Y-%m-%d} to {metrics.until:%Y-%m-%d}",
    )
    assert isinstance(created, UUID)
    return created
