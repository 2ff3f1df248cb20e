"""approval-sweeper: resume suspended promotions whose PR a person merged (or closed) in the forge.

Each sweep also makes one pass of the wait watcher (`tasks.wait_watch`), so merge and Flux waits of runs
executed by Prefect workers are resumed too (`promoter serve` watches them more often by itself), and
one pass of the reconciler (`tasks.reconcile`), so a push whose trigger failed still gets its run.

A suspended run holds no process, so nothing inside it can notice a merge; this scheduled flow looks at
each run waiting for approval (tagged `pr:<number>`) and resumes it with the forge's record: approved by
`merged_by` when merged, rejected when closed without merging. A run under an approval policy (tagged
`reviews:<fingerprint>`) is also resumed when the PR's approvals change, to check them itself, and a run
waiting out a freeze (tagged `frozen:<env>`) once the freeze is over (its `--until` passed). A run whose approval wait passed its
timeout (the flow's `approval_timeout_hours`) is ended here: the run suspends for that long plus
`WAIT_GRACE_SECONDS`, because Prefect's pause-expiry service fails an expired suspension with "The flow was
paused and never resumed.", which names neither the release nor the PR. It ends `Failed` named `ApprovalTimedOut`, with the reason in its state and
its logs and a `promoter.approval.timed-out` event; its PR stays open.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect import flow, get_client, get_run_logger
from prefect.client.schemas.objects import FlowRun
from prefect.flow_runs import resume_flow_run
from prefect.logging.loggers import flow_run_logger
from prefect.states import Failed

from promoter.errors import PromoterError
from promoter.promotion import Target
from tasks.contracts import (
    WAIT_GRACE_SECONDS,
    ApprovalInput,
    BreakGlassInput,
    awaited_pr,
    frozen_env,
    reviews_seen,
    tag_value,
)
from tasks.freeze import read_freezes
from tasks.pull_request import read_pr_state
from tasks.reconcile import reconcile
from tasks.report import emit
from tasks.wait_watch import REVIEWED, WaitWatcher, suspended_runs

APPROVAL_TIMED_OUT = "ApprovalTimedOut"


@dataclass(frozen=True)
class AwaitingRun:
    """A promotion suspended at an approval gate, as its tags and state say."""

    id: UUID
    pr: int
    parameters: dict[str, Any]
    tags: tuple[str, ...]
    expires: datetime.datetime | None  # the approval deadline: the suspension's timeout less the grace

    @property
    def expired(self) -> bool:
        return self.expires is not None and self.expires <= datetime.datetime.now(datetime.UTC)


def awaiting_runs() -> list[AwaitingRun]:
    """Every promotion suspended at an approval gate (tagged `pr:<number>`)."""
    runs = suspended_runs()
    found = []
    for run in runs:
        number = awaited_pr(run.tags)
        if number is not None:
            timeout = run.state.state_details.pause_timeout if run.state else None
            expires = timeout - datetime.timedelta(seconds=WAIT_GRACE_SECONDS) if timeout else None
            found.append(AwaitingRun(run.id, number, dict(run.parameters), tuple(run.tags), expires))
    return found


def time_out(run: AwaitingRun) -> str:
    """End `run`'s expired approval wait: a named failed state with the reason, a log line, an event."""
    app, tag, env = (tag_value(run.tags, p) or "?" for p in ("app:", "tag:", "at:"))
    since = f" at {run.expires.isoformat(timespec='seconds')}" if run.expires else ""
    reason = (
        f"no approval of {app}:{tag} for {env} before the approval timeout{since}; PR #{run.pr} stays "
        "open: start the release again (push the tag again, or run promote-release with the same image "
        "and tag) to ask anew, or close the PR"
    )
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Failed(name=APPROVAL_TIMED_OUT, message=reason), force=True)
    flow_run_logger(flow_run_id=run.id).warning(reason)  # in the run's own Logs tab
    group, _, name = app.partition("/")
    emit("approval.timed-out", group, name, {"tag": tag, "env": env, "pr": run.pr, "reason": reason})
    return reason


def frozen_runs(env: str | None = None) -> list[FlowRun]:
    """Promotions suspended until an environment thaws (tagged `frozen:<env>`), of `env` or of any."""
    return [run for run in suspended_runs() if (at := frozen_env(run.tags)) is not None and env in (None, at)]


def thaw_resumes(env: str | None = None) -> int:
    """Resume the runs (of `env`, or of any) waiting out a freeze that is over; each looks again and
    suspends anew if it is frozen once more by then."""
    waiting = frozen_runs(env)
    if not waiting:  # the common case: no Variable read
        return 0
    freezes, now = read_freezes(), datetime.datetime.now(datetime.UTC)
    thawed = BreakGlassInput(break_glass=False, approver="promoter", comment="thawed")
    count = 0
    for run in waiting:
        at = frozen_env(run.tags)
        if at is not None and freezes.covering(at, now) is None:
            resume_flow_run(run.id, run_input=thawed.as_run_input())
            count += 1
    return count


def _sweep(run: AwaitingRun) -> int:
    """Resume `run` if its PR merged, closed, or (under an approval policy) got new approvals."""
    logger = get_run_logger()
    number, parameters = run.pr, run.parameters
    target = Target.of({"gitops_url": parameters.get("gitops_url"), "provider": parameters.get("provider")})
    state, _, merged_by = read_pr_state(target, number)
    if state == "open":
        if not _reviews_changed(target, run):
            return 0
        resume_flow_run(run.id, run_input=REVIEWED.as_run_input())
        logger.info("resumed %s: the reviews on PR #%s changed; it checks its policy", run.id, number)
        return 1
    decision = (
        ApprovalInput.of(True, merged_by or "unknown", f"PR #{number} merged in the forge")
        if state == "merged"
        else ApprovalInput.of(False, "forge", f"PR #{number} closed without merging")
    )
    resume_flow_run(run.id, run_input=decision.as_run_input())
    logger.info("resumed %s: PR #%s %s", run.id, number, state)
    return 1


def _reviews_changed(target: Target, run: AwaitingRun) -> bool:
    """Whether the PR's approvals differ from those the run's approval policy last found wanting: then
    the run checks again (approving the PR in the forge is enough), and suspends anew if still short."""
    seen = reviews_seen(run.tags)
    if seen is None:
        return False
    with target.forge() as provider:
        return provider.reviews(run.pr).fingerprint() != seen


@flow(name="approval-sweeper", log_prints=False)
def approval_sweeper() -> int:
    """Resume every suspended promotion whose PR was merged or closed, end those whose approval timed
    out; return how many were resumed."""
    logger = get_run_logger()
    resumed = 0
    for run in awaiting_runs():
        if run.expired:
            logger.warning("ended %s: %s", run.id, time_out(run))
            continue
        try:
            resumed += _sweep(run)
        except PromoterError as error:  # one run's forge trouble must not stop the sweep for the others
            logger.warning("could not check PR #%s of %s: %s", run.pr, run.id, error)
    resumed += thaw_resumes()
    watcher = WaitWatcher()
    try:
        resumed += len(watcher.sweep())
    finally:
        watcher.close()
    reconcile()
    return resumed
