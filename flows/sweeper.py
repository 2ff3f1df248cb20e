"""approval-sweeper: resume suspended promotions whose PR a person merged (or closed) in the forge.

Each sweep also makes one pass of the wait watcher (`tasks.wait_watch`), so merge and Flux waits of runs
executed by Prefect workers are resumed too (`promoter serve` watches them more often by itself), and
one pass of the reconciler (`tasks.reconcile`), so a push whose trigger failed still gets its run.

A suspended run holds no process, so nothing inside it can notice a merge; this scheduled flow looks at
each run waiting for approval (tagged `pr:<number>`) and resumes it with the forge's record: approved by
`merged_by` when merged, rejected when closed without merging.
"""

from __future__ import annotations

from uuid import UUID

from prefect import flow, get_client, get_run_logger
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from promoter.promotion import Target
from tasks.contracts import RUN_TAG, ApprovalInput, awaited_pr
from tasks.pull_request import read_pr_state
from tasks.reconcile import reconcile
from tasks.wait_watch import WaitWatcher


def awaiting_runs() -> list[tuple[UUID, int, dict[str, object]]]:
    """(flow run id, PR number, parameters) of every promotion suspended at an approval gate."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[RUN_TAG]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
            )
        )
    found = []
    for run in runs:
        number = awaited_pr(run.tags)
        if number is not None:
            found.append((run.id, number, dict(run.parameters)))
    return found


@flow(name="approval-sweeper", log_prints=False)
def approval_sweeper() -> int:
    """Resume every suspended promotion whose PR was merged or closed; return how many were resumed."""
    logger = get_run_logger()
    resumed = 0
    for run_id, number, parameters in awaiting_runs():
        target = Target.of(
            {"gitops_url": parameters.get("gitops_url"), "provider": parameters.get("provider")}
        )
        state, _, merged_by = read_pr_state(target, number)
        if state == "open":
            continue
        decision = (
            ApprovalInput.of(True, merged_by or "unknown", f"PR #{number} merged in the forge")
            if state == "merged"
            else ApprovalInput.of(False, "forge", f"PR #{number} closed without merging")
        )
        resume_flow_run(run_id, run_input=decision.as_run_input())
        logger.info("resumed %s: PR #%s %s", run_id, number, state)
        resumed += 1
    watcher = WaitWatcher()
    try:
        resumed += len(watcher.sweep())
    finally:
        watcher.close()
    reconcile()
    return resumed
