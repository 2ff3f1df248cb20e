"""approval-sweeper: resume suspended promotions whose PR a person merged (or closed) in the forge.

A suspended run holds no process, so nothing inside it can notice a merge; this scheduled flow looks at
each run waiting for approval (tagged `pr:<number>`) and resumes it with the forge's record: approved by
`merged_by` when merged, rejected when closed without merging.
"""

from __future__ import annotations

from prefect import flow, get_client, get_run_logger
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from flows.promotion import target_from
from tasks.pull_request import read_pr_state


def awaiting_runs() -> list[tuple[str, int, dict[str, object]]]:
    """(flow run id, PR number, parameters) of every promotion suspended at an approval gate."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=["promoter"]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
            )
        )
    found = []
    for run in runs:
        numbers = [t.removeprefix("pr:") for t in run.tags if t.startswith("pr:")]
        if numbers and numbers[0].isdigit():
            found.append((str(run.id), int(numbers[0]), dict(run.parameters)))
    return found


@flow(name="approval-sweeper", log_prints=False)
def approval_sweeper() -> int:
    """Resume every suspended promotion whose PR was merged or closed; return how many were resumed."""
    logger = get_run_logger()
    resumed = 0
    for run_id, number, parameters in awaiting_runs():
        target = target_from(str(parameters.get("gitops_url") or ""), parameters.get("provider"))  # type: ignore[arg-type]
        state, _, merged_by = read_pr_state(target, number)
        if state == "open":
            continue
        decision = (
            {
                "decision": "approve",
                "approver": merged_by or "unknown",
                "comment": f"PR #{number} merged in the forge",
            }
            if state == "merged"
            else {
                "decision": "reject",
                "approver": "forge",
                "comment": f"PR #{number} closed without merging",
            }
        )
        resume_flow_run(run_id, run_input=decision)  # type: ignore[arg-type]
        logger.info("resumed %s: PR #%s %s", run_id, number, state)
        resumed += 1
    return resumed
