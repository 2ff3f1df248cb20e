"""Approvals as the forge shows them: reviews and teams on GitHub, votes and groups on Azure DevOps.

People approve over the forge's API with their own tokens (`tests.reviewing`); the providers read the
approvals back, and `evaluate` decides.
"""

from __future__ import annotations

import github
import pytest

from promoter.approval_policy import ApprovalPolicy, evaluate
from promoter.providers import GitProvider
from promoter.providers.base import PullRequest
from sandbox.azure_json import group_id
from sandbox.forge import Account
from tests import reviewing
from tests.providers.conftest import Forge

PEOPLE = {"bob-token": "bob", "carol-token": "carol", "dave-token": "dave"}
TEAM = {"github": "acme/sre", "azure": "[acme]\\SRE"}


@pytest.fixture
def people(forge: Forge) -> dict[str, str]:
    forge.sandbox.forge.tokens.update(PEOPLE)
    forge.sandbox.forge.teams[TEAM[forge.kind].lower()] = {"bob": "active", "dave": "pending"}
    return {login: token for token, login in PEOPLE.items()} | {"alice": forge.sandbox.human_token}


def opened(forge: Forge, provider: GitProvider) -> PullRequest:
    branch, _ = forge.push_branch("review")
    return provider.upsert_pull_request(branch, "main", f"Promote {branch}", "body")


def approve(forge: Forge, token: str, pr: int, event: str = "APPROVE") -> None:
    reviewing.approve(forge.sandbox, forge.repo, token, pr, event)


def login_of(forge: Forge, name: str) -> str:
    return reviewing.login_of(forge.kind, name)


def test_a_listed_reviewers_approval_counts_and_the_promoters_own_does_not(
    forge: Forge, provider: GitProvider, people: dict[str, str]
) -> None:
    pr = opened(forge, provider)
    policy = ApprovalPolicy(approvers=(login_of(forge, "alice"),))
    before = provider.reviews(pr.number)
    assert before.approvals == () and before.author == login_of(forge, "promoter-bot")
    missing = evaluate(policy, before, pr.head_sha, pr.number)
    assert missing.missing == f"needs 1 approval from {login_of(forge, 'alice')} on PR #{pr.number}"

    approve(forge, people["alice"], pr.number)
    after = provider.reviews(pr.number)
    [review] = after.approvals
    assert review.login == login_of(forge, "alice")
    assert review.commit == (pr.head_sha if forge.kind == "github" else None)
    assert after.fingerprint() != before.fingerprint()
    verdict = evaluate(policy, after, pr.head_sha, pr.number)
    assert verdict.granted and verdict.approvers == (login_of(forge, "alice"),)


def test_a_team_member_counts_and_a_non_member_or_invitee_does_not(
    forge: Forge, provider: GitProvider, people: dict[str, str]
) -> None:
    pr = opened(forge, provider)
    reviewing.add_group_reviewer(forge.sandbox, forge.repo, pr.number, TEAM[forge.kind])
    policy = ApprovalPolicy(approvers=(f"@{TEAM[forge.kind]}",), min_approvals=2)
    for person in ("carol", "dave", "bob"):
        approve(forge, people[person], pr.number)

    reviews = provider.reviews(pr.number, policy.teams)
    teams = {review.login: review.teams for review in reviews.approvals}
    assert teams == {
        login_of(forge, "carol"): (),
        login_of(forge, "dave"): (),  # invited, not yet a member
        login_of(forge, "bob"): (TEAM[forge.kind],),
    }
    verdict = evaluate(policy, reviews, pr.head_sha, pr.number)
    assert verdict.approvers == (login_of(forge, "bob"),)
    assert verdict.missing is not None and verdict.missing.startswith("needs 1 approval more from @")
    assert f"{login_of(forge, 'carol')} (not a listed approver)" in verdict.missing


def test_whoever_pushed_the_release_cannot_approve_it_under_separate_duties(
    forge: Forge, provider: GitProvider, people: dict[str, str]
) -> None:
    pr = opened(forge, provider)
    approve(forge, people["bob"], pr.number)
    reviews = provider.reviews(pr.number)
    bob = login_of(forge, "bob")
    separate = ApprovalPolicy(approvers=(bob, login_of(forge, "alice")), separate_duties=True)

    refused = evaluate(separate, reviews, pr.head_sha, pr.number, pushed_by=bob.upper())
    assert not refused.granted and f"{bob} (pushed the release)" in str(refused.missing)
    lenient = separate.model_copy(update={"separate_duties": False})
    assert evaluate(lenient, reviews, pr.head_sha, pr.number, pushed_by=bob).granted


def test_changes_requested_after_an_approval_withdraws_it(
    forge: Forge, provider: GitProvider, people: dict[str, str]
) -> None:
    pr = opened(forge, provider)
    approve(forge, people["alice"], pr.number)
    approve(forge, people["alice"], pr.number, event="REQUEST_CHANGES")
    assert provider.reviews(pr.number).approvals == ()


def test_an_approval_of_an_older_head_does_not_count_on_github(
    forge: Forge, provider: GitProvider, people: dict[str, str]
) -> None:
    if forge.kind != "github":
        pytest.skip("Azure DevOps votes belong to the PR; a branch policy can reset them on a push")
    pr = opened(forge, provider)
    approve(forge, people["alice"], pr.number)
    forge.git("commit", "-q", "--allow-empty", "-m", "moved")
    forge.git("push", "-q", "origin", f"HEAD:refs/heads/{pr.head_branch}")
    moved = provider.get_pull_request(pr.number)
    verdict = evaluate(
        ApprovalPolicy(approvers=("alice",)), provider.reviews(pr.number), moved.head_sha, pr.number
    )
    assert (
        verdict.missing is not None
        and f"alice (approved an older commit {pr.head_sha[:8]})" in verdict.missing
    )


def test_the_forge_refuses_what_its_users_cannot_do(
    forge: Forge, provider: GitProvider, people: dict[str, str]
) -> None:
    pr = opened(forge, provider)
    if forge.kind == "github":  # the author approving their own PR
        with pytest.raises(github.GithubException) as caught:
            approve(forge, forge.sandbox.token, pr.number)
        assert caught.value.status == 422
        assert caught.value.data["errors"] == ["Can not approve your own pull request"]
    else:  # voting for somebody else, and a group voting
        for reviewer in (Account("alice").uuid, group_id(TEAM["azure"])):
            answer = reviewing.azure_reviewer(
                forge.sandbox, forge.repo, people["bob"], pr.number, reviewer, {"vote": 10}
            )
            assert answer.status_code == 400
            assert "You cannot vote for another user" in answer.json()["message"]
    assert provider.reviews(pr.number).approvals == ()
