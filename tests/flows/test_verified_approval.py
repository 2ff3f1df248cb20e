"""An approval policy on prod, end to end on both forge personalities: only the forge's word counts.

prod lists alice and a team (bob is in it) and separates duties; bob pushed the release. A form approval
(`promoter approve`) resumes the run, which checks the forge and suspends again saying what is missing;
bob's approval in the forge is refused (he pushed it); alice's resumes the run through the sweeper, and
the merge commit says `Approved-by: alice (verified)`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox.forge import BOT_TOKEN, HUMAN_TOKEN, PullRequest
from sandbox.prefect_server import PrefectServer
from sandbox.sample import config_text
from sandbox.stack import FINAL, Stack, promoter_stack
from tests import reviewing
from tests.flows.test_story_e2e import artifact, events_for, trailers

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
TEAM = {"github": "acme/sre", "azure": "[acme]\\SRE"}
BOB = "bob-token"


@pytest.fixture(params=["github", "azure"])
def stack(
    request: pytest.FixtureRequest, prefect_api: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    kind = str(request.param)
    with promoter_stack(
        tmp_path_factory.mktemp(f"verified-{kind}"),
        kind=kind,
        scenario={"default": {"delay": 0.2}},
        prefect=prefect_api,
        poll_interval=0.2,
        sweep_seconds=3,
        tokens={BOT_TOKEN: "promoter-bot", HUMAN_TOKEN: "alice", BOB: "bob"},
    ) as running:
        running.sandbox.forge.teams[TEAM[kind].lower()] = {"bob": "active"}
        alice = reviewing.login_of(kind, "alice")
        policy = f"    approval:\n      approvers: [{alice}, '@{TEAM[kind]}']\n      separate_duties: true\n"
        config = config_text().replace("status_timeout_minutes: 5", "status_timeout_minutes: 8s") + policy
        running.sandbox.forge.commit_files(
            running.repo, "main", {"gitops-promotion.yaml": config.encode()}, "prod needs a verified approval"
        )
        yield running
        assert running.sandbox.violations() == []


def until(what: str, found: Callable[[], Any], timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def the_run(stack: Stack, tag: str) -> dict[str, Any]:
    runs = [r for r in stack.runs() if r["name"].endswith(f":{tag}")]
    assert len(runs) <= 1, runs
    return runs[0] if runs else {}


def suspended_after(stack: Stack, tag: str, since: str) -> dict[str, Any]:
    """The run once it is suspended again by a later state than `since`'s."""
    run: dict[str, Any] = until(
        f"{tag} to suspend again",
        lambda: (
            (r := the_run(stack, tag)).get("state_type") == "PAUSED" and r["state"]["timestamp"] > since and r
        ),
        timeout=180,
    )
    return run


def check_on(stack: Stack, pr: PullRequest) -> str:
    statuses = [s for s in stack.sandbox.forge.statuses(stack.repo, pr.head_sha) if s.context == "promoter"]
    statuses.sort(key=lambda s: s.id)
    if not statuses:
        return ""
    state = {"succeeded": "success"}.get(statuses[-1].state, statuses[-1].state)  # Azure DevOps' word
    return f"{state}: {statuses[-1].description}"


def test_only_the_forges_word_approves_and_the_pusher_cannot(stack: Stack) -> None:
    kind = stack.repo.kind
    tag = f"verified-{kind}"
    alice, bob = reviewing.login_of(kind, "alice"), reviewing.login_of(kind, "bob")
    assert stack.push("ghcr.io/acme/podinfo", tag, pushed_by=bob).status_code == 202
    run = until(
        "the prod gate", lambda: (r := the_run(stack, tag)).get("state_type") in {"PAUSED", *FINAL} and r, 300
    )
    assert run["state_type"] == "PAUSED", run["state"]
    prod = next(pr for pr in stack.repo.pulls.values() if pr.title.endswith("to environment prod"))
    assert not prod.merged
    needed = f"needs 1 approval from {alice} or @{TEAM[kind]} on PR #{prod.number}"
    until("the pending check", lambda: check_on(stack, prod) == f"pending: {needed}")
    reviewing.add_group_reviewer(stack.sandbox, stack.repo, prod.number, TEAM[kind])

    # The form (here `promoter approve`) only declares a name: the run checks the forge and suspends again.
    approved = subprocess.run(
        [
            sys.executable,
            "-m",
            "promoter.cli",
            "approve",
            "--app",
            "apps/podinfo",
            "--tag",
            tag,
            "--approver",
            "mallory",
        ],
        env=stack.environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert approved.returncode == 0, approved.stderr
    run = suspended_after(stack, tag, run["state"]["timestamp"])
    assert not prod.merged and check_on(stack, prod) == f"pending: {needed}"
    assert "promoter.approval.unverified" in events_for(stack, "podinfo", "promoter.approval.unverified")

    # bob is in the team but pushed the release; the sweeper resumes the run on his review, which is refused.
    reviewing.approve(stack.sandbox, stack.repo, BOB, prod.number)
    run = suspended_after(stack, tag, run["state"]["timestamp"])
    until("bob refused", lambda: f"{bob} (pushed the release)" in check_on(stack, prod))
    assert not prod.merged

    # alice is listed: her approval in the forge is enough.
    reviewing.approve(stack.sandbox, stack.repo, HUMAN_TOKEN, prod.number)
    done = until("the release", lambda: (r := the_run(stack, tag)).get("state_type") in FINAL and r, 240)
    assert done["state_type"] == "COMPLETED", done["state"]
    assert prod.merged and prod.merge_commit_sha
    assert trailers(stack, prod.merge_commit_sha)["Approved-by"] == f"{alice} (verified)"
    assert check_on(stack, prod) == f"success: approved by {alice}"
    record = artifact(stack, done["id"], "approval")
    assert f"{alice} (verified)" in record and "the forge's reviews" in record
