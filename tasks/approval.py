"""The gate before an `auto: false` environment: what a person sees, and the record of what they decided."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import task
from prefect.artifacts import create_markdown_artifact

from promoter.approval_policy import ApprovalPolicy, Review, Reviews, Verdict, evaluate
from promoter.gate import Gate, post_check
from promoter.health import Health
from promoter.promotion import Target
from promoter.stages import OpenedPR
from promoter.stages import approval_request as approval_text
from tasks.common import run_logger, transient_only
from tasks.contracts import ApprovalInput
from tasks.report import emit, prefect_key


@task(
    name="approval-request",
    task_run_name="approval request {pr.env}",
    timeout_seconds=120,
    persist_result=True,
    retries=3,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
)
def approval_request(target: Target, pr: OpenedPR, previous: Health | None) -> str:
    """The markdown the approval form shows: release, PR link, the env's diff and the previous env's health.

    Logged here, in a task that a resumed run finds cached, so the run's log says it once."""
    with target.open() as promotion:
        text = approval_text(promotion, pr, previous)
    state = pr.state
    run_logger().info(
        "waiting for approval of PR #%s for %s: approve in the form on this run's page, merge the PR in "
        "the forge, or `promoter approve --app %s/%s --tag %s`; the run suspends and holds no process",
        pr.number,
        pr.env,
        state.group,
        state.app,
        state.tag,
    )
    return text


class Checked(Verdict):
    """A verdict and the approvals it was made on (`fingerprint`, what the sweeper compares)."""

    fingerprint: str


@task(
    name="verify-approval",
    task_run_name="verify approval of PR #{pr.number} ({attempt})",
    timeout_seconds=120,
    persist_result=True,  # a resumed run replays earlier attempts from here, without asking the forge
    retries=3,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
)
def verify_approval(
    target: Target, pr: OpenedPR, policy: ApprovalPolicy, pushed_by: str | None, attempt: int
) -> Checked:
    """Ask the forge whether the policy holds on the PR's head, and say so in its `promoter` check: green
    with who approved, or pending with what is missing (the forge then refuses a merge by anyone else)."""
    with target.forge() as provider:
        reviews = provider.reviews(pr.number, policy.teams)
        verdict = evaluate(policy, reviews, pr.head_sha, pr.number, pushed_by)
        if verdict.granted:
            check = Gate(state="success", description=f"approved by {', '.join(verdict.approvers)}")
        else:
            assert verdict.missing is not None
            check = Gate(state="pending", description=verdict.missing)
        post_check(provider, pr.head_sha, check)
    if verdict.granted:
        run_logger().info("%s approved in the forge by %s", pr.env, ", ".join(verdict.approvers))
    else:
        _unverified(
            pr,
            f"{pr.env} not approved yet: {verdict.missing}; approve PR #{pr.number} in the forge, the run "
            "resumes by itself",
        )
    return Checked(**verdict.model_dump(), fingerprint=reviews.fingerprint())


@task(
    name="vouch-merge",
    task_run_name="who merged PR #{pr.number}",
    timeout_seconds=120,
    persist_result=True,
    retries=3,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
)
def vouch_merge(
    target: Target, pr: OpenedPR, policy: ApprovalPolicy, merged_by: str | None, pushed_by: str | None
) -> Verdict:
    """Whether the person who merged the PR in the forge is one the policy lists (a team member, where the
    forge can say outside a PR). The merge stands either way; one the policy does not cover is reported."""
    with target.forge() as provider:
        teams = provider.teams_of(merged_by, policy.teams) if merged_by else ()
    merger = Reviews(approvals=(Review(login=merged_by, teams=teams),) if merged_by else ())
    verdict = evaluate(policy, merger, pr.head_sha, pr.number, pushed_by)
    if not verdict.granted:
        by = merged_by or "someone unknown"
        _unverified(
            pr, f"PR #{pr.number} was merged in the forge by {by}, outside the policy: {verdict.missing}"
        )
    return verdict


def _unverified(pr: OpenedPR, missing: str) -> None:
    """Said in the run's log and as `promoter.approval.unverified` on the app."""
    run_logger().warning("%s", missing)
    state = pr.state
    payload = {"tag": state.tag, "env": pr.env, "pr": pr.url, "missing": missing}
    emit("approval.unverified", state.group, state.app, payload)


def record_decision(
    group: str,
    app: str,
    tag: str,
    digest: str | None,
    env: str,
    decision: ApprovalInput,
    source: str,
    verified: bool = False,
) -> None:
    """The approval record, as an artifact: who, when, what, and why."""
    when = datetime.now(UTC).isoformat(timespec="seconds")
    create_markdown_artifact(
        key=prefect_key("approval", group, app, env),
        description=f"{decision.decision} of {group}/{app}:{tag} for {env}",
        markdown="\n".join(
            [
                f"### {decision.decision.capitalize()}d: {group}/{app} `{tag}` to {env}",
                "",
                "| field | value |",
                "| --- | --- |",
                f"| approver | {_cell(decision.approver)} ({'verified' if verified else 'declared'}) |",
                f"| when | {when} |",
                f"| decision | {decision.decision} |",
                f"| comment | {_cell(decision.comment)} |",
                f"| tag | `{tag}` |",
                f"| digest | `{digest or '-'}` |",
                f"| through | {source} |",
            ]
        ),
    )


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split()) or "-"
