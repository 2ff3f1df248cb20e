"""`promoter approve --app G/A [--tag T] [--reject] [--comment C]`: decide a waiting promotion from a shell;
`--break-glass --comment C` lets a release through the freeze it waits out instead."""

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
from prefect.client.schemas.responses import SetStateStatus

from deployments.prefect_api import require_api
from promoter.errors import InvalidInputError
from promoter.names import check_app, check_group, check_tag
from tasks.contracts import (
    ApprovalInput,
    BreakGlassInput,
    app_tag,
    awaited_pr,
    frozen_env,
    release_tag,
    reviews_seen,
)


def waiting_runs(group: str, app: str, tag: str | None, frozen: bool = False) -> list[FlowRun]:
    """The app's runs suspended at an approval gate (tagged `pr:<number>`), or with `frozen` those waiting
    out a freeze (`frozen:<env>`); runs suspended in a merge or Flux wait are paused too, but an approval
    must not resume them."""
    tags = [app_tag(group, app), *([release_tag(tag)] if tag else [])]
    with get_client(sync_client=True) as client:
        paused = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=tags),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
            )
        )
    if frozen:
        return [run for run in paused if frozen_env(run.tags) is not None]
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
    _resume(runs[0], ApprovalInput.of(not reject, approver, comment).as_run_input())
    return runs[0]


def break_glass(group: str, app: str, tag: str | None, *, approver: str, comment: str) -> FlowRun:
    """Let the one run of `group/app` (and `tag`) waiting out a freeze through it."""
    if not comment.strip():
        raise InvalidInputError(
            "--break-glass needs --comment saying why it cannot wait; it goes on the record"
        )
    runs = waiting_runs(group, app, tag, frozen=True)
    if not runs:
        raise InvalidInputError(f"no promotion of {group}/{app}{':' + tag if tag else ''} waits out a freeze")
    if len(runs) > 1:
        names = ", ".join(sorted(run.name for run in runs))
        raise InvalidInputError(
            f"several promotions of {group}/{app} wait out a freeze ({names}); pass --tag"
        )
    _resume(runs[0], BreakGlassInput(break_glass=True, approver=approver, comment=comment).as_run_input())
    return runs[0]


def _resume(run: FlowRun, given: dict[str, object]) -> None:
    """Resume `run` with `given`, and say so when the server does not (`resume_flow_run` passes over an
    ABORT, e.g. an input the form's schema refuses, in silence)."""
    with get_client(sync_client=True) as client:
        answer = client.resume_flow_run(run.id, run_input=given)
    if answer.status != SetStateStatus.ACCEPT:
        reason = getattr(answer.details, "reason", None)
        raise InvalidInputError(
            f"the Prefect server did not resume {run.name}: {reason or answer.status.value}"
        )


def run(args: argparse.Namespace) -> int:
    group, _, app = args.app.partition("/")
    if not app:
        raise InvalidInputError("--app takes GROUP/APP, e.g. apps/podinfo")
    check_group(group)  # the arguments first: a typo is reported the same with or without a server
    check_app(app)
    if args.tag is not None:
        check_tag(args.tag)
    if args.break_glass and args.reject:
        raise InvalidInputError("--break-glass lets a release through; it cannot --reject")
    if args.break_glass and not args.comment.strip():
        raise InvalidInputError(
            "--break-glass needs --comment saying why it cannot wait; it goes on the record"
        )
    require_api("approve")
    approver = args.approver or os.environ.get("PROMOTER_APPROVER") or getpass.getuser()
    if args.break_glass:
        flow_run = break_glass(group, app, args.tag, approver=approver, comment=args.comment)
        print(f"broke the glass for {flow_run.name} as {approver}: {args.comment}")
        return 0
    flow_run = approve(group, app, args.tag, reject=args.reject, approver=approver, comment=args.comment)
    if reviews_seen(flow_run.tags) is not None and not args.reject:
        print(
            f"resumed {flow_run.name} as {approver}: its approval policy counts only approvals in the forge; "
            f"if they fall short it waits again, saying what is missing on PR #{awaited_pr(flow_run.tags)}"
        )
        return 0
    print(f"{'rejected' if args.reject else 'approved'} {flow_run.name} as {approver}")
    return 0
