"""The promotion flow: one release of one app, environment by environment, gated on Flux and on people.

For each environment in `gitops-promotion.yaml` order: open (or reset) its PR; post the `promoter` check,
green when the previous environment is healthy and red with the reason otherwise (then the run ends
Blocked, and the forge's branch protection keeps the PR unmergeable); let the forge auto-merge, or for an
`auto: false` environment suspend until a person approves (Prefect UI form, `promoter approve`, or merging
the PR in the forge); then wait for Flux to report the merge healthy. The merge and Flux waits poll in
the run's process only for a short window (`PROMOTER_WAIT_WINDOW_SECONDS`, 20 s), then the run suspends,
holding no process, until a forge webhook or the wait watcher resumes it (flows/waits.py).

Every task reads the forge before acting and is cached for the run, so a resumed or restarted run walks
the same path again without a second branch, PR, commit or merge.
"""

from __future__ import annotations

import contextvars
import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any, cast
from uuid import UUID

from prefect import flow, get_client, get_run_logger
from prefect.artifacts import update_progress_artifact
from prefect.client.schemas.objects import FlowRun, State
from prefect.context import get_run_context
from prefect.deployments import run_deployment
from prefect.flow_runs import suspend_flow_run
from prefect.futures import PrefectFuture
from prefect.states import Cancelled, Completed, Failed
from prefect.utilities.urls import url_for

from flows.aside import Aside
from flows.waits import settle
from promoter.approval_policy import ApprovalPolicy
from promoter.board import InFlight
from promoter.config import Config
from promoter.freeze import Freeze
from promoter.gate import Gate, gate, summary
from promoter.health import Health
from promoter.promotion import Target
from promoter.pull_request import PRState
from promoter.release import Release
from promoter.stages import AlreadyRuns, ClosedUnmerged, Merged, OpenedPR, Pending, StillOpen
from promoter.trailers import MergeRecord
from tasks.approval import Checked, approval_request, record_decision, verify_approval, vouch_merge
from tasks.board import publish_board
from tasks.common import AppRef
from tasks.contracts import (
    PROMOTE_DEPLOYMENT,
    WAIT_GRACE_SECONDS,
    ApprovalInput,
    BreakGlassInput,
    commit_wait_tag,
    flux_wait_tag,
    merge_wait_tag,
    run_tags,
)
from tasks.flux_health import wait_for_flux
from tasks.freeze import frozen_at, frozen_check, post_gate, record_break_glass
from tasks.pull_request import open_pr, read_pr_state, wait_merged
from tasks.reconcile import stand_down
from tasks.report import StageRecord, announce, prefect_key, publish_report
from tasks.resolve import resolve_release
from tasks.run_log import quiet_task_completions
from tasks.supersede import start_release, supersede_older_runs

quiet_task_completions()  # the Logs tab tells the stages, not each task's completion
DEPLOYMENT = PROMOTE_DEPLOYMENT
MERGE_TIMEOUT = 1800.0


@flow(name="promote-release", flow_run_name="{image}:{tag}", persist_result=True, validate_parameters=True)
def promote_release(
    image: str,
    tag: str,
    digest: str | None = None,
    group: str | None = None,
    app: str | None = None,
    gitops_url: str | None = None,
    provider: str | None = None,
    approval_timeout_hours: float = 168.0,
    event_id: str | None = None,
    pushed_by: str | None = None,
) -> State[Any]:
    """Carry `image:tag` through every environment of the apps it feeds (one run per app).

    `gitops_url` and `provider` default to the worker's `PROMOTER_GITOPS_URL` and `PROMOTER_PROVIDER`.
    `event_id` is the `registry.image.pushed` event the run is for (the trigger and the reconciler set
    it): when the trigger and the reconciler both started a run for it, the later one stands down.
    `pushed_by` is who pushed the image, when the registry said so: it goes into the merge commits.
    """
    logger = get_run_logger()
    if event_id is not None:
        run = get_run_context().flow_run  # type: ignore[union-attr]
        duplicate = stand_down(run, event_id) if run is not None else None
        if duplicate is not None:
            return duplicate
    release = Release.of(image, tag, digest)
    target = Target.of({"gitops_url": gitops_url, "provider": provider})
    resolved = resolve_release(target, release.image, AppRef(group=group, app=app) if group and app else None)
    config, apps = resolved.config, resolved.apps
    if not apps:
        logger.info("%s feeds no app in %s: nothing to promote", release.image, target.gitops_url)
        return Completed(message=f"{release.image} feeds no app")
    if len(apps) > 1:
        for ref in apps:
            run_deployment(
                DEPLOYMENT,
                parameters={
                    **_parameters(release, target),
                    "group": ref.group,
                    "app": ref.app,
                    "pushed_by": pushed_by,
                },
                timeout=0,
                as_subflow=False,
            )
        return Completed(message=f"started one run per app: {', '.join(map(str, apps))}")
    with Aside() as aside:
        return _walk(target, config, apps[0], release, approval_timeout_hours, aside, pushed_by)


def _parameters(release: Release, target: Target) -> dict[str, Any]:
    return {
        "image": release.image,
        "tag": release.tag,
        "digest": release.digest,
        "gitops_url": target.gitops_url,
        "provider": target.provider,
    }


def _walk(
    target: Target,
    config: Config,
    ref: AppRef,
    release: Release,
    approval_hours: float,
    aside: Aside,
    pushed_by: str | None = None,
) -> State[Any]:
    run = get_run_context().flow_run  # type: ignore[union-attr]
    assert run is not None
    record = MergeRecord.of(
        release.image,
        release.tag,
        release.digest,
        flow_run_id=str(run.id),
        flow_run_url=url_for("flow-run", obj_id=run.id),  # the UI's route; prefect.runtime's is older
        pushed_by=pushed_by,
    )
    started = run.created.timestamp() if run.created else time.time()
    group, app, tag = ref.group, ref.app, release.tag
    aside.submit(_label_run, run, ref, tag, "start")
    # Beside the first bump: older runs of the app stand down (per-app), the start event, the progress bar.
    start = start_release.submit(group, app, tag, release.digest, run.id, started, config.prflow == "per-app")
    aside.submit(start.result)  # its failure fails the run, when the flow drains

    def board(env: str | None = None, pr: int | None = None, stage: str = "", stops: bool = True) -> None:
        """The boards after a stage; the all-apps one only where the release `stops` (see publish_board)."""
        flight = InFlight(tag=tag, env=env, pr=pr, stage=stage) if env else None
        aside.submit(contextvars.copy_context().run, publish_board, target, group, app, flight, stops)

    stages: list[StageRecord] = []
    previous: Health | None = None
    merge_commit = ""
    environments = config.environments
    for index, env in enumerate(environments):
        if config.prflow == "per-env":
            # An older release waiting here (e.g. at the prod gate) keeps its place until we arrive.
            aside.submit(_label_run, run, ref, tag, env.name)
            supersede_older_runs(group, app, tag, run.id, started, env.name)
        state = PRState(
            group=group, app=app, tag=tag, env=env.name, sha=merge_commit, digest=release.digest or ""
        )
        check = gate(env.name, previous)
        frozen = frozen_at(env.name, "gate") if check.open else None
        pr = open_pr(target, state, frozen_check(frozen) if frozen else check, record)
        if frozen is not None and isinstance(pr, OpenedPR):
            record, _ = _thawed(target, ref, tag, pr, record, approval_hours, aside, "gate", frozen)
            pr = open_pr(target, state, check, record)  # green again, auto-merge on with the record
        if isinstance(pr, AlreadyRuns):  # its health on main decides, as if we had merged it
            stages.append(StageRecord(env=env.name, note=f"already runs {tag}"))
            previous = _flux(target, ref, tag, env.name, pr.base_sha, aside)
            board(env.name, None, f"already ran here, Flux {previous.outcome}", stops=not previous.healthy)
            merge_commit = pr.base_sha
            continue
        link = f"#{pr.number}"
        board(env.name, pr.number, _waiting_for(env.auto, check), stops=not (check.open and env.auto))
        if not check.open:
            stages.append(
                StageRecord(env=env.name, pr=link, note=check.description, seconds=time.time() - pr.started)
            )
            get_run_logger().warning(
                "blocked at %s: %s; PR %s stays unmergeable", env.name, check.description, link
            )
            announce(
                "release.blocked",
                group,
                app,
                {"tag": tag, "env": env.name, "reason": check.description, "pr": pr.url},
            )
            publish_report(group, app, tag, stages, f"blocked at {env.name}", started)
            return Failed(name="Blocked", message=check.description)
        if env.auto:
            outcome = _merged(target, ref, tag, pr, aside, record)
        else:
            decision = _approval(
                target, ref, release, pr, previous, approval_hours, aside, record, env.approval
            )
            if decision is None:
                reason = f"{env.name} rejected; PR {link} left open"
                stages.append(
                    StageRecord(env=env.name, pr=link, note=reason, seconds=time.time() - pr.started)
                )
                publish_report(group, app, tag, stages, f"rejected at {env.name}", started)
                return Cancelled(name="Rejected", message=reason)
            outcome = decision
        if not isinstance(outcome, Merged):
            stages.append(
                StageRecord(env=env.name, pr=link, note=outcome.reason, seconds=time.time() - pr.started)
            )
            return _unmerged(ref, tag, outcome, stages, started)
        verdict = _flux(target, ref, tag, env.name, outcome.merge_commit, aside)
        stages.append(
            StageRecord(
                env=env.name,
                pr=link,
                merge_commit=outcome.merge_commit,
                flux=verdict.outcome,
                seconds=time.time() - pr.started,
            )
        )
        board(env.name, pr.number, f"merged, Flux {verdict.outcome}", stops=not verdict.healthy)
        aside.submit(_progress, start, 100.0 * (index + 1) / len(environments))
        previous, merge_commit = verdict, outcome.merge_commit

    assert previous is not None  # a config has at least one environment
    last = environments[-1].name
    if not previous.healthy:
        reason = summary(previous)
        get_run_logger().warning("blocked after %s: %s", last, reason)
        announce("release.blocked", group, app, {"tag": tag, "env": last, "reason": reason})
        publish_report(group, app, tag, stages, f"blocked after {last}", started)
        return Failed(name="Blocked", message=reason)
    get_run_logger().info(
        "%s/%s:%s promoted through %s", group, app, tag, " -> ".join(e.name for e in environments)
    )
    announce("release.promoted", group, app, {"tag": tag, "digest": release.digest or ""})
    board()
    publish_report(group, app, tag, stages, "promoted", started)
    return Completed(message=f"{group}/{app}:{tag} runs in {', '.join(e.name for e in environments)}")


def _waiting_for(auto: bool, check: Gate) -> str:
    if not check.open:
        return f"blocked: {check.description}"
    return "auto-merge on, waiting for the merge" if auto else "waiting for approval"


def _unmerged(
    ref: AppRef, tag: str, outcome: ClosedUnmerged | StillOpen, stages: list[StageRecord], started: float
) -> State[Any]:
    """The PR will not merge: closed by a person (the release stops here, like a rejection), or still
    open past the merge timeout (something in the forge holds it)."""
    get_run_logger().warning("%s", outcome.reason)
    if isinstance(outcome, ClosedUnmerged):
        publish_report(ref.group, ref.app, tag, stages, f"PR closed at {outcome.env}", started)
        return Cancelled(name="Closed", message=outcome.reason)
    publish_report(ref.group, ref.app, tag, stages, f"not merged at {outcome.env}", started)
    return Failed(name="NotMerged", message=outcome.reason)


def _approval(
    target: Target,
    ref: AppRef,
    release: Release,
    pr: OpenedPR,
    previous: Health | None,
    hours: float,
    aside: Aside,
    record: MergeRecord,
    policy: ApprovalPolicy | None = None,
) -> Merged | ClosedUnmerged | StillOpen | None:
    """Wait for a person: suspended (no process held) until the UI, `promoter approve` or a merge resumes us.

    A PR that a person already merged in the forge counts as approved by them; None when rejected.
    Without a policy the approver the form names goes into the merge commit as `Approved-by: <name>
    (declared)`: nothing has checked it. With one, only the forge's word counts: each resume (the form,
    `promoter approve`, or the sweeper on a new review) checks the PR's reviews again, and while they fall
    short the run suspends anew, saying what is missing; the approvers then go in as `(verified)`.
    """
    group, app, tag = ref.group, ref.app, release.tag
    state, merge_commit, merged_by = read_pr_state.with_options(refresh_cache=True)(target, pr.number)
    if state == "merged" and merge_commit:
        vouched = policy is not None and vouch_merge(target, pr, policy, merged_by, record.pushed_by).granted
        decision = ApprovalInput(
            decision="approve", approver=merged_by or "unknown", comment="merged in the forge"
        )
        record_decision(group, app, tag, release.digest, pr.env, decision, "merge in the forge", vouched)
        return Merged(
            number=pr.number, env=pr.env, merge_commit=merge_commit, merged_by=merged_by, url=pr.url
        )
    description = approval_request(target, pr, previous)
    if policy is not None:
        description += f"\n\n**Approval policy:** {policy.describe()}. The form alone does not approve."
    announce("approval.requested", group, app, {"tag": tag, "env": pr.env, "pr": pr.url})
    run = get_run_context().flow_run  # type: ignore[union-attr]
    deadline = pr.started + hours * 3600
    verdict: Checked | None = None
    for attempt in itertools.count():
        if policy is not None:
            verdict = verify_approval(target, pr, policy, record.pushed_by, attempt)
            if verdict.granted:
                approvers = ", ".join(verdict.approvers)[:100]
                decision = ApprovalInput.of(True, approvers, f"approved on PR #{pr.number}")
                break
        fingerprint = verdict.fingerprint if verdict is not None else None
        aside.submit(_label_run, run, ref, tag, pr.env, awaiting=pr.number, reviews=fingerprint)
        aside.drain()  # `promoter approve` and the sweeper find the suspended run by these tags
        decision = suspend_flow_run(
            wait_for_input=ApprovalInput.with_initial_data(description=description),
            # the sweeper ends it at the deadline, by name
            timeout=max(1, int(deadline - time.time())) + WAIT_GRACE_SECONDS,
            key=prefect_key("approval", pr.env, tag, *([str(attempt)] if attempt else [])),
        )
        if policy is None or decision.decision == "reject":
            break
        get_run_logger().info(
            "resumed by %s: the approval policy asks the forge, a declared name does not count",
            decision.approver,
        )
    aside.submit(_label_run, run, ref, tag, pr.env)
    verified = policy is not None and decision.decision == "approve"
    source = "the forge's reviews" if verified else "resume (UI form, promoter approve or sweeper)"
    record_decision(group, app, tag, release.digest, pr.env, decision, source, verified)
    get_run_logger().info(
        "%s %s by %s%s",
        pr.env,
        "approved" if decision.decision == "approve" else "rejected",
        decision.approver,
        f": {decision.comment}" if decision.comment else "",
    )
    if decision.decision == "reject":
        announce(
            "approval.rejected",
            group,
            app,
            {
                "tag": tag,
                "env": pr.env,
                "approver": decision.approver,
                "comment": decision.comment,
                "since": pr.started,  # when the wait for a person began, stable across replays: /metrics
            },
        )
        return None
    announce(
        "approval.granted",
        group,
        app,
        {
            "tag": tag,
            "env": pr.env,
            "approver": decision.approver,
            "comment": decision.comment,
            "since": pr.started,
        },
    )
    approved = record.approved(decision.approver, "verified" if verified else "declared")
    frozen = frozen_at(pr.env, "merge")  # frozen while it waited for a person?
    approved, waited = _thawed(target, ref, tag, pr, approved, hours, aside, "merge", frozen)
    if waited:
        thawed = Gate(state="success", description=f"{pr.env} thawed; approved by {decision.approver}")
        post_gate(target, pr, thawed, "merge")
    return _merged(target, ref, tag, pr, aside, approved, merge=True)


def _thawed(
    target: Target,
    ref: AppRef,
    tag: str,
    pr: OpenedPR,
    record: MergeRecord,
    hours: float,
    aside: Aside,
    where: str,
    freeze: Freeze | None,
) -> tuple[MergeRecord, bool]:
    """Wait out `freeze` (the first look) on `pr.env`, suspended and tagged `frozen:<env>`, its PR's check
    red naming it: `promoter thaw` (or the sweeper, once the freeze is over) resumes the run, which looks
    again; `promoter approve --break-glass` lets this release through, and the record says so. Returns the
    record and whether the run waited."""
    run = get_run_context().flow_run  # type: ignore[union-attr]
    for look in itertools.count():
        name = f"{where}-{look}"
        if look:
            freeze = frozen_at(pr.env, name)
        if freeze is None:
            return record, look > 0
        post_gate(target, pr, frozen_check(freeze), name)
        get_run_logger().warning(
            "%s; the run waits (suspended) for `promoter thaw --env %s`, or `promoter approve --app %s/%s "
            "--tag %s --break-glass --comment WHY`",
            freeze.describe(),
            pr.env,
            ref.group,
            ref.app,
            tag,
        )
        aside.submit(_label_run, run, ref, tag, pr.env, frozen=pr.env)
        aside.drain()
        decision = suspend_flow_run(
            wait_for_input=BreakGlassInput.with_initial_data(
                description=f"**{freeze.describe()}.** Resume with break_glass to let this release through."
            ),
            timeout=int(hours * 3600) + WAIT_GRACE_SECONDS,
            key=prefect_key("freeze", pr.env, tag, name),
        )
        aside.submit(_label_run, run, ref, tag, pr.env)
        if decision.break_glass:
            record_break_glass(ref.group, ref.app, tag, pr.env, freeze, decision)
            get_run_logger().warning(
                "break-glass by %s through the freeze of %s: %s", decision.approver, pr.env, decision.comment
            )
            return record.broke_glass(decision.approver, decision.comment), True
    raise AssertionError("unreachable")


def _merged(
    target: Target,
    ref: AppRef,
    tag: str,
    pr: OpenedPR,
    aside: Aside,
    record: MergeRecord,
    merge: bool = False,
) -> Merged | ClosedUnmerged | StillOpen:
    """The PR merged, closed or still open at the merge timeout; suspended between windows. When we
    merge, `record` is the merge commit's trailers (an auto-merge got it when it was enabled)."""

    def window(since: float | None, round: int) -> Merged | ClosedUnmerged | StillOpen | Pending:
        return wait_merged(
            target, ref, tag, pr, MERGE_TIMEOUT, merge=merge, since=since, round=round, record=record
        )

    label = _waiting_label(ref, tag, pr.env, aside, [merge_wait_tag(pr.number)])
    # mypy infers the common base of a union's members for `settle`'s type variable: name the union
    return cast("Merged | ClosedUnmerged | StillOpen", settle(window, f"merge:{pr.env}:{pr.number}", label))


def _flux(target: Target, ref: AppRef, tag: str, env: str, commit: str, aside: Aside) -> Health:
    """Flux's word on `commit` in `env`, and its `require`d checks'; suspended between windows (a
    required context's status wakes the run as Flux's does)."""

    def window(since: float | None, round: int) -> Health | Pending:
        return wait_for_flux(target, ref, tag, env, commit, since=since, round=round)

    waiting = [flux_wait_tag(f"{ref.group}-{env}"), commit_wait_tag(commit)]
    label = _waiting_label(ref, tag, env, aside, waiting)
    return cast(Health, settle(window, f"flux:{env}:{commit[:12]}", label))


def _waiting_label(
    ref: AppRef, tag: str, env: str, aside: Aside, waiting: list[str]
) -> Callable[[bool], None]:
    """Tags the run with what it waits on before it suspends (the webhook receiver and the wait watcher
    find it by them), and takes them off once it is resumed."""
    run = get_run_context().flow_run  # type: ignore[union-attr]

    def label(suspending: bool) -> None:
        aside.submit(_label_run, run, ref, tag, env, waiting=waiting if suspending else ())
        if suspending:
            aside.drain()

    return label


def _label_run(
    run: FlowRun,
    ref: AppRef,
    tag: str,
    at: str,
    awaiting: int | None = None,
    waiting: Iterable[str] = (),
    reviews: str | None = None,
    frozen: str | None = None,
) -> None:
    """Name the run `<group>/<app>:<tag>` and tag it so runs can be found by app, tag and stage."""
    tags = run_tags(run.tags or [], ref.group, ref.app, tag, at, awaiting, waiting, reviews, frozen)
    with get_client(sync_client=True) as client:
        client.update_flow_run(run.id, name=f"{ref.group}/{ref.app}:{tag}", tags=tags)
    run.tags = tags


def _progress(start: PrefectFuture[UUID], percent: float) -> None:
    update_progress_artifact(start.result(), progress=percent)
