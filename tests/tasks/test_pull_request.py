from __future__ import annotations

import pytest
from prefect import flow
from prefect.cache_policies import NO_CACHE

from promoter.gate import CHECK_CONTEXT, Gate
from promoter.pull_request import PRState
from promoter.stages import AlreadyRuns, ClosedUnmerged, Merged, OpenedPR, Pending, StillOpen
from sandbox.prefect_server import PrefectServer
from tasks.common import AppRef
from tasks.pull_request import open_pr, wait_merged
from tests.tasks.conftest import Fake

APP = AppRef(group="apps", app="podinfo")
GREEN = Gate(state="success", description="apps-dev healthy on 0c9c2e41")
RED = Gate(state="failure", description="apps-qa failed on 1a2b3c4d: health check failed")


def state(env: str = "dev", tag: str = "a8b91c33") -> PRState:
    return PRState(group="apps", app="podinfo", tag=tag, env=env)


def opened(fake: Fake, env: str = "dev", check: Gate = GREEN) -> OpenedPR:
    pr = open_pr.fn(fake.target, state(env), check)
    assert isinstance(pr, OpenedPR)
    return pr


def test_open_pr_posts_the_gate_on_the_head_it_pushed_and_logs_the_story(fake: Fake) -> None:
    pr = opened(fake, "qa", RED)

    assert (pr.number, pr.env, pr.branch, pr.changed) == (
        1,
        "qa",
        "promote/apps-podinfo",
        ("apps/qa/podinfo.yaml",),
    )
    assert fake.forge.checks == [(pr.head_sha, CHECK_CONTEXT, "failure", RED.description)]
    # qa is `auto: true`, but not while its check is red: a green check posted by anyone must not merge it
    assert fake.forge.auto_merge == {1: (False, "merge")}
    assert pr.state.sha == pr.base_sha  # stamped with the commit the branch was built on
    assert (
        f"PR #1 for qa on promote/apps-podinfo at {pr.head_sha[:8]} (no auto-merge while the check is red; "
        in fake.lines()[0]
    )
    opened(fake, "qa", GREEN)
    assert fake.forge.auto_merge == {1: (True, "merge")}
    assert fake.lines()[1] == f"check 'promoter' is red: {RED.description}"


def test_open_pr_again_reuses_the_pr_and_the_commit(fake: Fake) -> None:
    first = opened(fake)
    again = opened(fake)
    assert (again.number, again.commit) == (first.number, first.commit)
    assert len(fake.forge.pulls) == 1


def test_a_person_decides_for_a_manual_environment(fake: Fake) -> None:
    opened(fake, "prod")
    assert fake.forge.auto_merge == {1: (False, "merge")}
    assert "a person decides" in fake.lines()[0]


def test_an_environment_that_already_runs_the_tag_gets_no_pr_and_no_check(fake: Fake) -> None:
    found = open_pr.fn(fake.target, state(tag="6.5.0"), GREEN)  # the tree's current tag
    assert isinstance(found, AlreadyRuns) and found.env == "dev"
    assert fake.forge.pulls == {} and fake.forge.checks == []
    assert fake.lines() == ["apps/podinfo already runs 6.5.0 in dev on main: no PR needed"]


def test_a_merge_is_an_outcome_with_its_event(fake: Fake) -> None:
    pr = opened(fake)
    fake.forge.answers = ["open", "open", "merged"]
    merged = wait_merged.fn(fake.target, APP, "a8b91c33", pr, 30.0)
    assert merged == Merged(number=1, env="dev", merge_commit="f" * 40, merged_by="alice", url=pr.url)
    assert fake.forge.reads == 3
    assert 0 <= fake.events[0][3].pop("seconds") < 30
    assert fake.events == [
        (
            "environment.merged",
            "apps",
            "podinfo",
            {"tag": "a8b91c33", "env": "dev", "pr": pr.url, "merge_commit": "f" * 40},
        )
    ]


def test_a_pr_closed_without_merging_is_an_outcome_not_an_error(fake: Fake) -> None:
    pr = opened(fake)
    fake.forge.answers = ["closed"]
    closed = wait_merged.fn(fake.target, APP, "a8b91c33", pr, 30.0)
    assert closed == ClosedUnmerged(number=1, env="dev", url=pr.url)
    assert closed.reason == "PR #1 for dev was closed without merging"
    assert fake.forge.reads == 1 and fake.events == []  # read once: nothing left to wait for
    assert fake.lines()[-1] == closed.reason


def test_a_pr_still_open_at_the_deadline_says_so(fake: Fake) -> None:
    pr = opened(fake)
    still = wait_merged.fn(fake.target, APP, "a8b91c33", pr, 0.0)
    assert isinstance(still, StillOpen) and still.number == 1 and fake.events == []
    assert "PR #1 for dev is still open after 0 s" in still.reason


def test_a_pr_still_open_after_the_window_but_before_the_deadline_is_pending(fake: Fake) -> None:
    target = fake.target.model_copy(update={"wait_window_seconds": 0.0})
    pr = opened(fake)
    pending = wait_merged.fn(target, APP, "a8b91c33", pr, 1800.0)
    assert isinstance(pending, Pending) and fake.events == []
    assert pending.deadline - pending.since == 1800.0 and pending.left > 1700
    assert "still waiting for PR #1 for dev to merge" in fake.lines()[-1]
    late = wait_merged.fn(target, APP, "a8b91c33", pr, 1800.0, since=pending.since - 1800.0, round=1)
    assert isinstance(late, StillOpen) and late.waited == 1800.0  # past the deadline: the run ends


def test_an_approved_pr_is_merged_by_us_with_the_targets_method(fake: Fake) -> None:
    target = fake.target.model_copy(update={"merge_method": "squash"})
    pr = opened(fake, "prod")
    merged = wait_merged.fn(target, APP, "a8b91c33", pr, 30.0, merge=True)
    assert isinstance(merged, Merged) and merged.merged_by == "promoter"
    assert fake.forge.merges == [(1, "squash")]


def test_a_pr_merged_already_is_not_merged_again(fake: Fake) -> None:
    pr = opened(fake, "prod")
    fake.forge.settle(1, "merged")
    merged = wait_merged.fn(fake.target, APP, "a8b91c33", pr, 30.0, merge=True)
    assert isinstance(merged, Merged) and merged.merged_by == "alice" and fake.forge.merges == []


def test_closed_unmerged_is_not_retried_by_prefect(fake: Fake, prefect_api: PrefectServer) -> None:
    """The task's retry condition retries forge errors four times: a closed PR must not be one."""
    pr = opened(fake)
    fake.forge.answers = ["closed"]
    fake.forge.reads = 0

    @flow(name="closed-unmerged")
    def run() -> object:
        return wait_merged.with_options(cache_policy=NO_CACHE)(fake.target, APP, "a8b91c33", pr, 30.0)

    assert run() == ClosedUnmerged(number=1, env="dev", url=pr.url)
    assert fake.forge.reads == 1


@pytest.mark.parametrize("check", [GREEN, RED])
def test_open_pr_says_green_or_red(fake: Fake, check: Gate) -> None:
    opened(fake, "qa", check)
    assert fake.lines()[1].startswith(f"check 'promoter' is {'green' if check.open else 'red'}: ")
