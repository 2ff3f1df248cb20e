"""Stages 2 and 4: bump an environment through its PR, post the `promoter` check, see it merged."""

from __future__ import annotations

import time

from prefect import task

from promoter.errors import ProviderError
from promoter.promotion import CHECK_CONTEXT, Target, open_pull_request
from promoter.pull_request import PRState
from tasks.common import EnvPR, Merged, transient_only

DELAYS = [1.0, 2.0, 5.0, 10.0]


@task(
    name="open-pr",
    task_run_name="open PR {state.env} {state.tag}",
    timeout_seconds=600,
    persist_result=True,
    retries=4,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient_only,
)
def open_pr(target: Target, state: PRState) -> EnvPR:
    """Bump `state.env` on its promotion branch and create or reset its PR (auto-merge as configured)."""
    with target.open(refresh=False) as promotion:  # publishing fetches
        opened = open_pull_request(promotion, state)
        pr = opened.pull_request
        return EnvPR(
            env=state.env,
            branch=opened.branch,
            number=pr.number if pr else None,
            url=pr.url if pr else "",
            head_sha=pr.head_sha if pr else "",
            base_sha=opened.push.base_sha,
        )


@task(
    name="post-check",
    task_run_name="check {env} {state}",
    timeout_seconds=120,
    persist_result=True,
    retries=4,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient_only,
)
def post_promoter_check(target: Target, env: str, number: int, state: str, description: str) -> None:
    """The `promoter` status on the PR head: green lets the forge merge, red blocks it."""
    with target.forge() as provider:
        pr = provider.get_pull_request(number)
        provider.set_commit_status(pr.head_sha, CHECK_CONTEXT, state, description)  # type: ignore[arg-type]


@task(
    name="wait-merged",
    task_run_name="wait merge {env} #{number}",
    timeout_seconds=3600,
    persist_result=True,
    retries=4,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient_only,
)
def wait_merged(target: Target, env: str, number: int, timeout: float, merge: bool = False) -> Merged:
    """Until the PR is merged (by auto-merge, a person, or us when `merge`); closed unmerged is an error."""
    with target.forge() as provider:
        pr = provider.get_pull_request(number)
        if merge and pr.state == "open":
            pr = provider.merge(pr, target.merge_method)
        deadline = time.monotonic() + timeout
        delay = 0.2
        while pr.state == "open" and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 1.5, 5.0)
            pr = provider.get_pull_request(number)
        if pr.state != "merged" or not pr.merge_commit_sha:
            raise ProviderError(f"PR #{number} for {env} was {pr.state}, not merged, after {timeout:.0f} s")
        return Merged(number=number, merge_commit=pr.merge_commit_sha, merged_by=pr.merged_by)


@task(
    name="read-pr",
    task_run_name="read PR #{number}",
    timeout_seconds=60,
    retries=4,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient_only,
)
def read_pr_state(target: Target, number: int) -> tuple[str, str | None, str | None]:
    """(state, merge commit, merged by) of a PR, fresh from the forge (never cached)."""
    with target.forge() as provider:
        pr = provider.get_pull_request(number)
        return pr.state, pr.merge_commit_sha, pr.merged_by
