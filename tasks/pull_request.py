"""Stages 2 and 4: bump an environment through its PR with its `promoter` check, see the PR merged."""

from __future__ import annotations

import time

from prefect import get_run_logger, task

from promoter.errors import ProviderError
from promoter.promotion import CHECK_CONTEXT, Target, open_pull_request
from promoter.pull_request import PRState
from tasks.common import AppRef, Check, EnvPR, Merged, transient_only
from tasks.report import emit

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
def open_pr(target: Target, state: PRState, check: Check) -> EnvPR:
    """Bump `state.env` on its promotion branch, create or reset its PR (auto-merge as configured), and
    post `check` on its head: green lets the forge merge, red keeps it unmergeable."""
    with target.open(refresh=False) as promotion:  # publishing fetches
        opened = open_pull_request(promotion, state)
        pr = opened.pull_request
        log = get_run_logger()
        if pr is None:
            log.info(
                "%s/%s already runs %s in %s on %s: no PR needed",
                state.group,
                state.app,
                state.tag,
                state.env,
                promotion.base,
            )
        else:
            promotion.provider.set_commit_status(pr.head_sha, CHECK_CONTEXT, check.state, check.description)
            auto = promotion.config.environment(state.env).auto
            log.info(
                "PR #%s for %s on %s at %s (%s; %s pushed%s): %s",
                pr.number,
                state.env,
                opened.branch,
                pr.head_sha[:8],
                "auto-merge on" if auto else "a person decides",
                ", ".join(opened.push.changed) or "nothing",
                f" after {opened.push.rebases} rebase(s)" if opened.push.rebases else "",
                pr.url,
            )
            log.info(
                "check %r is %s: %s",
                CHECK_CONTEXT,
                "green" if check.state == "success" else "red",
                check.description,
            )
        return EnvPR(
            env=state.env,
            branch=opened.branch,
            number=pr.number if pr else None,
            url=pr.url if pr else "",
            head_sha=pr.head_sha if pr else "",
            base_sha=opened.push.base_sha,
        )


@task(
    name="wait-merged",
    task_run_name="wait merge {pr.env} #{pr.number}",
    timeout_seconds=3600,
    persist_result=True,
    retries=4,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient_only,
)
def wait_merged(
    target: Target, app: AppRef, tag: str, pr: EnvPR, timeout: float, merge: bool = False
) -> Merged:
    """Until the PR is merged (by auto-merge, a person, or us when `merge`); closed unmerged is an error.
    Emits `promoter.environment.merged`."""
    assert pr.number is not None
    started = time.monotonic()
    with target.forge() as provider:
        found = provider.get_pull_request(pr.number)
        if merge and found.state == "open":
            found = provider.merge(found, target.merge_method)
        deadline = time.monotonic() + timeout
        delay = 0.2
        while found.state == "open" and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 1.5, 5.0)
            found = provider.get_pull_request(pr.number)
    if found.state != "merged" or not found.merge_commit_sha:
        raise ProviderError(
            f"PR #{pr.number} for {pr.env} was {found.state}, not merged, after {timeout:.0f} s"
        )
    merged = Merged(number=pr.number, merge_commit=found.merge_commit_sha, merged_by=found.merged_by)
    get_run_logger().info(
        "PR #%s for %s merged as %s by %s after %.1f s",
        pr.number,
        pr.env,
        merged.merge_commit[:8],
        merged.merged_by or "the forge",
        time.monotonic() - started,
    )
    emit(
        "environment.merged",
        app.group,
        app.app,
        {"tag": tag, "env": pr.env, "pr": pr.url, "merge_commit": merged.merge_commit},
    )
    return merged


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
