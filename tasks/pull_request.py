"""Stages 2 and 4: bump an environment through its PR with its `promoter` check, see the PR merged."""

from __future__ import annotations

import time

from prefect import task

from promoter.gate import CHECK_CONTEXT, Gate
from promoter.promotion import Target
from promoter.pull_request import PRState
from promoter.stages import (
    AlreadyRuns,
    ClosedUnmerged,
    Merged,
    OpenedPR,
    Pending,
    StillOpen,
    open_pull_request,
)
from promoter.stages import wait_merged as wait_merged_stage
from promoter.trailers import MergeRecord
from tasks.common import AppRef, run_logger, suspending, transient_only
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
def open_pr(
    target: Target, state: PRState, check: Gate, record: MergeRecord | None = None
) -> AlreadyRuns | OpenedPR:
    """Bump `state.env` on its promotion branch, create or reset its PR (auto-merge as configured), and
    post `check` on its head: green lets the forge merge, red keeps it unmergeable."""
    with target.open(refresh=False) as promotion:  # publishing fetches
        opened = open_pull_request(promotion, state, check, record)
    log = run_logger()
    if isinstance(opened, AlreadyRuns):
        log.info(
            "%s/%s already runs %s in %s on %s: no PR needed",
            state.group,
            state.app,
            state.tag,
            state.env,
            opened.base,
        )
        return opened
    log.info(
        "PR #%s for %s on %s at %s (%s; %s pushed%s): %s",
        opened.number,
        state.env,
        opened.branch,
        opened.head_sha[:8],
        "auto-merge on"
        if opened.auto_merge
        else "no auto-merge while the check is red"
        if not check.open
        else "a person decides",
        ", ".join(opened.changed) or "nothing",
        f" after {opened.rebases} rebase(s)" if opened.rebases else "",
        opened.url,
    )
    log.info(
        "check %r is %s: %s",
        CHECK_CONTEXT,
        "green" if check.open else "red",
        check.description,
    )
    return opened


@task(
    name="wait-merged",
    task_run_name="wait merge {pr.env} #{pr.number} ({round})",
    timeout_seconds=3600,
    persist_result=True,
    retries=4,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient_only,
)
def wait_merged(
    target: Target,
    app: AppRef,
    tag: str,
    pr: OpenedPR,
    timeout: float,
    merge: bool = False,
    since: float | None = None,
    round: int = 0,
    record: MergeRecord | None = None,
) -> Merged | ClosedUnmerged | StillOpen | Pending:
    """Until the PR is merged (by auto-merge, a person, or us when `merge`), closed, `timeout` seconds
    after `since` passed, or this call's window (`target.wait_window_seconds`) ran out (`Pending`).

    Each window is its own cached task run (`round`), so a run resumed after a suspend replays the
    windows it already waited and polls a new one. Closed and still-open are outcomes the flow ends the
    run on, never retried: a retry would only wait again for what a person decided. Emits
    `promoter.environment.merged`."""
    began = since if since is not None else time.time()
    deadline = began + timeout
    window = min(target.wait_window_seconds, max(0.0, deadline - time.time()))
    with target.forge() as provider:
        outcome = wait_merged_stage(
            provider,
            pr,
            timeout=window,
            merge_method=target.merge_method if merge else None,
            record=record,
        )
    log = run_logger()
    if isinstance(outcome, StillOpen):
        if time.time() < deadline:
            return suspending(
                Pending(since=began, deadline=deadline, what=f"PR #{pr.number} for {pr.env} to merge")
            )
        outcome = outcome.model_copy(update={"waited": timeout})
    if not isinstance(outcome, Merged):
        log.warning("%s", outcome.reason)
        return outcome
    log.info(
        "PR #%s for %s merged as %s by %s after %.1f s",
        pr.number,
        pr.env,
        outcome.merge_commit[:8],
        outcome.merged_by or "the forge",
        time.time() - began,
    )
    emit(
        "environment.merged",
        app.group,
        app.app,
        {
            "tag": tag,
            "env": pr.env,
            "pr": pr.url,
            "merge_commit": outcome.merge_commit,
            "seconds": int((time.time() - began) * 1000) / 1000,  # for /metrics (`round` is a parameter)
        },
    )
    return outcome


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
