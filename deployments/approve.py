"""`promoter approve --app G/A [--tag T] [--reject] [--comment C]`: decide a waiting promotion from a shell."""

from __future__ import annotations

import argparse
import getpass
import os

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.flow_runs import resume_flow_run

from deployments.prefect_api import require_api
from promoter.errors import InvalidInputError
from promoter.names import check_app, check_group, check_tag
from tasks.contracts import ApprovalInput, app_tag, awaited_pr, release_tag


def waiting_runs(group: str, app: str, tag: str | None) -> list[FlowRun]:
    """The app's runs suspended at an approval gate (tagged `pr:<number>`); runs suspended in a merge or
    Flux wait are paused too, but an approval must not resume them."""
    tags = [app_tag(group, app), *([release_tag(tag)] if tag else [])]
    with get_client(sync_client=True) as client:
        paused = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=tags),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
            )
        )
    return [run for run in paused if awaited_pr(run.tags) is not None]


def approve(group: str, app: str, tag: str | None, *, reject: bool, approver: str, comment: str) -> FlowRun:
    """Resume the one run of `group/app` (and `tag`) waiting for approval; refuse when it is ambiguous."""
    check_group(group)
    check_app(app)
    if tag:
        check_tag(tag)
    runs = waiting_runs(group, app, tag)
    if not runs:
        raise InvalidInputError(
            f"no promotion of {group}/{app}{':' + tag if tag else ''} is waiting for approval"
        )
    if len(runs) > 1:
        names = ", ".join(sorted(run.name for run in runs))
        raise InvalidInputError(
            f"several promotions of {group}/{app} wait for approval ({names}); pass --tag"
        )
    decision = ApprovalInput.of(not reject, approver, comment)
    resume_flow_run(runs[0].id, run_input=decision.as_run_input())
    return runs[0]


def run(args: argparse.Namespace) -> int:
    group, _, app = args.app.partition("/")
    if not app:
        raise InvalidInputError("--app takes GROUP/APP, e.g. apps/podinfo")
    check_group(group)  # the arguments first: a typo is reported the same with or without a server
    check_app(app)
    if args.tag is not None:
        check_tag(args.tag)
    require_api("approve")
    approver = args.approver or os.environ.get("PROMOTER_APPROVER") or getpass.getuser()
    flow_run = approve(group, app, args.tag, reject=args.reject, approver=approver, comment=args.comment)
    print(f"{'rejected' if args.reject else 'approved'} {flow_run.name} as {approver}")
    return 0
