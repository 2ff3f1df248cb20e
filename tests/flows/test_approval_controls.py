"""Approvals people can trust, end to end on both forge personalities (one stack per personality).

- An approval policy on prod lists alice and a team (bob is in it) and separates duties; bob pushed the
  release. A form approval (`promoter approve`) resumes the run, which checks the forge and suspends again
  saying what is missing; bob's approval in the forge is refused (he pushed it); alice's resumes the run
  (GitHub's `pull_request_review` webhook, Azure DevOps' sweeper), and the merge commit says
  `Approved-by: alice (verified)`.
- A freeze of qa holds releases there, suspended, their PR's check red naming the freeze; `promoter thaw`
  lets them go on; `promoter approve --break-glass` lets one through, in an artifact, an event and a
  `Break-glass` trailer.
"""

from __future__ import annotations

import getpass
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox.forge import BOT_TOKEN, HUMAN_TOKEN, PullRequest
from sandbox.prefect_server import PrefectServer
from sandbox.sample import DEPLOYMENT, config_text
from sandbox.stack import FINAL, Stack, promoter_stack
from tasks.freeze import FREEZE_VARIABLE
from tests import reviewing
from tests.flows.test_story_e2e import artifact, events_for, trailers

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
TEAM = {"github": "acme/sre", "azure": "[acme]\\SRE"}
BOB = "bob-token"


@pytest.fixture(scope="module", params=["github", "azure"])
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
        # GitHub's review webhook resumes the run at once, so its sweeper is all but off; Azure DevOps sends no
        # event for a vote that the receiver reads, so there the sweeper finds the new votes.
        sweep_seconds=3600 if kind == "github" else 3,
        tokens={BOT_TOKEN: "promoter-bot", HUMAN_TOKEN: "alice", BOB: "bob"},
    ) as running:
        running.sandbox.forge.teams[TEAM[kind].lower()] = {"bob": "active"}
        alice = reviewing.login_of(kind, "alice")
        policy = f"    approval:\n      approvers: [{alice}, '@{TEAM[kind]}']\n      separate_duties: true\n"
        config = config_text().replace("status_timeout_minutes: 5", "status_timeout_minutes: 8s") + policy
        files = {"gitops-promotion.yaml": config}
        for env in ("dev", "qa", "prod"):  # apps of their own: events are per app, the server the session's
            for app in ("payments", "catalog"):
                files[f"apps/{env}/{app}.yaml"] = DEPLOYMENT.format(
                    group="apps", app=app, registry="ghcr.io/acme", tag="1.0"
                )
        running.sandbox.forge.commit_files(
            running.repo, "main", {k: v.encode() for k, v in files.items()}, "prod needs a verified approval"
        )
        yield running
        assert running.sandbox.violations() == []


def promoter(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "promoter.cli", *args],
        env=stack.environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


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
    state = {"succeeded": "success", "failed": "failure"}.get(statuses[-1].state, statuses[-1].state)
    return f"{state}: {statuses[-1].description}"


def test_only_the_forges_word_approves_and_the_pusher_cannot(stack: Stack) -> None:
    kind = stack.repo.kind
    tag = f"verified-{kind}"
    alice, bob = reviewing.login_of(kind, "alice"), reviewing.login_of(kind, "bob")
    assert stack.push("ghcr.io/acme/payments", tag, pushed_by=bob).status_code == 202
    run = until(
        "the prod gate", lambda: (r := the_run(stack, tag)).get("state_type") in {"PAUSED", *FINAL} and r, 300
    )
    assert run["state_type"] == "PAUSED", run["state"]
    prod = pr_of(stack, "payments", "prod")
    assert not prod.merged
    needed = f"needs 1 approval from {alice} or @{TEAM[kind]} on PR #{prod.number}"
    until("the pending check", lambda: check_on(stack, prod) == f"pending: {needed}")
    reviewing.add_group_reviewer(stack.sandbox, stack.repo, prod.number, TEAM[kind])

    # The form (here `promoter approve`) only declares a name: the run checks the forge and suspends again.
    said = promoter(stack, "approve", "--app", "apps/payments", "--tag", tag, "--approver", "mallory")
    assert said.startswith(f"resumed apps/payments:{tag} as mallory: its approval policy counts only"), said
    run = suspended_after(stack, tag, run["state"]["timestamp"])
    assert not prod.merged and check_on(stack, prod) == f"pending: {needed}"
    assert "promoter.approval.unverified" in events_for(stack, "payments", "promoter.approval.unverified")

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


@pytest.fixture
def no_freeze_left(stack: Stack) -> Iterator[None]:
    """The Prefect server is the session's: whatever happens, no freeze outlives the test."""
    yield
    with stack.prefect.client() as api:
        api.delete(f"/variables/name/{FREEZE_VARIABLE}")


def pr_of(stack: Stack, app: str, env: str) -> PullRequest:
    """The app's newest PR for `env`."""

    def newest() -> PullRequest | None:
        mine = [p for p in stack.repo.pulls.values() if f"apps/{app} " in p.title and p.title.endswith(env)]
        return max(mine, key=lambda p: p.number, default=None)

    found: PullRequest = until(f"{app}'s {env} PR", newest)
    return found


def paused(stack: Stack, tag: str) -> dict[str, Any]:
    def suspended() -> dict[str, Any] | None:
        run = the_run(stack, tag)
        return run if run.get("state_type") == "PAUSED" else None

    found: dict[str, Any] = until(f"{tag} to suspend", suspended, 300)
    return found


def test_a_freeze_holds_releases_thaw_lets_them_go_and_break_glass_is_on_the_record(
    stack: Stack, no_freeze_left: None
) -> None:
    kind = stack.repo.kind
    said = promoter(stack, "freeze", "--env", "qa", "--reason", "quarter close", "--by", "carol")
    assert said.startswith("qa frozen by carol since ") and said.strip().endswith(": quarter close")
    until(
        "the freeze event",
        lambda: "promoter.freeze.set" in [e["event"] for e in stack.events(resource="promoter.freeze.qa")],
    )

    held, broken = f"held-{kind}", f"glass-{kind}"
    assert stack.push("ghcr.io/acme/payments", held).status_code == 202
    assert stack.push("ghcr.io/acme/catalog", broken).status_code == 202
    for tag in (held, broken):
        run = paused(stack, tag)
        assert "frozen:qa" in run["tags"], run["tags"]
    qa = pr_of(stack, "payments", "qa")
    assert not qa.merged and qa.auto_merge is None
    assert re.fullmatch(
        r"failure: qa frozen by carol since \S+ \S+: quarter close",
        check_on(stack, qa),
    )

    # Break-glass lets one release through, on the record; the other still waits.
    promoter(
        stack, "approve", "--app", "apps/catalog", "--tag", broken, "--break-glass", "--comment", "hotfix"
    )
    through = until("catalog's qa merge", lambda: (p := pr_of(stack, "catalog", "qa")).merged and p, 240)
    assert (
        trailers(stack, through.merge_commit_sha)["Break-glass"]
        == f"{stack.environment.get('PROMOTER_APPROVER') or getpass.getuser()}: hotfix"
    )
    assert "promoter.freeze.broken" in events_for(stack, "catalog", "promoter.freeze.broken")
    assert "quarter close" in artifact(stack, the_run(stack, broken)["id"], "break-glass")
    assert not qa.merged and the_run(stack, held)["state_type"] == "PAUSED"

    # Thaw: the held release goes on, to the prod gate, without a break-glass trailer.
    assert "resumed 1 waiting run(s)" in promoter(stack, "thaw", "--env", "qa")
    until("payments's qa merge", lambda: qa.merged, 240)
    assert "Break-glass" not in trailers(stack, str(qa.merge_commit_sha))
    gate = until(
        "the prod gate",
        lambda: (
            (r := the_run(stack, held)).get("state_type") == "PAUSED" and "frozen:qa" not in r["tags"] and r
        ),
        240,
    )
    assert any(t.startswith("pr:") for t in gate["tags"])
    promoter(stack, "approve", "--app", "apps/payments", "--tag", held, "--reject")  # leave no run waiting
    until("the rejection", lambda: the_run(stack, held).get("state_type") in FINAL)
