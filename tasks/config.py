"""Read `gitops-promotion.yaml` from the GitOps repository's main branch, once per run."""

from __future__ import annotations

from prefect import task

from promoter.config import Config
from promoter.promotion import Target
from tasks.common import transient_only


@task(
    name="load-config",
    task_run_name="load gitops-promotion.yaml",
    retries=3,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
    timeout_seconds=300,
    persist_result=True,
)
def load_config(target: Target) -> Config:
    with target.open() as promotion:
        return promotion.config
