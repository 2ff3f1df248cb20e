"""The approval policy: how `gitops-promotion.yaml` states it, and how the forge's approvals are judged."""

from __future__ import annotations

import pytest

from promoter.approval_policy import ApprovalPolicy, Review, Reviews, evaluate
from promoter.config import parse_config
from promoter.errors import ConfigError

HEAD = "a" * 40
OLD = "b" * 40


def config(approval: str, auto: str = "false") -> str:
    return (
        "environments:\n  - name: dev\n    auto: true\n"
        f"  - name: prod\n    auto: {auto}\n    approval:\n"
        + "".join(f"      {line}\n" for line in approval.splitlines())
    )


def test_a_policy_loads_and_describes_itself() -> None:
    loaded = parse_config(config("approvers: [alice, '@acme/sre']\nmin_approvals: 2\nseparate_duties: true"))
    policy = loaded.environment("prod").approval
    assert policy is not None and loaded.environment("dev").approval is None
    assert (policy.users, policy.teams, policy.min_approvals) == (("alice",), ("acme/sre",), 2)
    assert (
        policy.describe() == "2 approvals from alice or @acme/sre in the forge; not by who pushed the release"
    )


@pytest.mark.parametrize(
    ("approval", "auto", "says"),
    [
        (
            "approvers: alice",
            "false",
            r":7: environments\[1\]\.approval\.approvers: expected a list of names",
        ),
        ("approverz: [alice]", "false", r":7: unknown key 'approverz'; did you mean 'approvers'\?"),
        ("approvers: []", "false", r"approvers needs at least 1 entry"),
        ("approvers: [alice, Alice]", "false", r"approvers must be unique; repeated: alice"),
        ("approvers: ['two words']", "false", r"'two words' is not an approver: write a forge login"),
        ("approvers: [alice]\nmin_approvals: 2", "false", r"no release could ever be approved"),
        ("approvers: [alice]\nmin_approvals: 0", "false", r"min_approvals is 0; it must be at least 1"),
        ("approvers: [alice]", "true", r"approval policy but auto: true merges without anyone"),
    ],
)
def test_a_bad_policy_says_where_and_what_to_do(approval: str, auto: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_config(config(approval, auto))


def reviews(*approvals: Review, author: str = "promoter-bot") -> Reviews:
    return Reviews(author=author, approvals=approvals)


def test_counted_approvals_are_listed_and_the_rest_say_why_not() -> None:
    policy = ApprovalPolicy(approvers=("alice", "bob", "@acme/sre"), min_approvals=2, separate_duties=True)
    found = reviews(
        Review(login="Alice", commit=HEAD),
        Review(login="bob", commit=OLD),
        Review(login="carol", commit=HEAD, teams=("acme/sre",)),
        Review(login="dave", commit=HEAD),
        Review(login="erin", commit=HEAD, teams=("acme/sre",)),
        Review(login="promoter-bot", commit=HEAD),
    )
    verdict = evaluate(policy, found, HEAD, 7, pushed_by="ERIN")
    assert verdict.granted and verdict.approvers == ("Alice", "carol")
    assert verdict.refused == (
        f"bob (approved an older commit {OLD[:8]})",
        "dave (not a listed approver)",
        "erin (pushed the release)",
        "promoter-bot (opened the PR)",
    )


def test_what_is_missing_is_said_in_one_line() -> None:
    policy = ApprovalPolicy(approvers=("alice", "@acme/sre"), min_approvals=2)
    verdict = evaluate(policy, reviews(Review(login="alice")), HEAD, 5)
    assert verdict.missing == "needs 1 approval more from alice or @acme/sre on PR #5"
    none = evaluate(policy, reviews(), HEAD, 5)
    assert none.missing == "needs 2 approvals from alice or @acme/sre on PR #5" and not none.approvers


def test_a_persons_last_review_stands_and_fingerprints_follow_the_approvals() -> None:
    policy = ApprovalPolicy(approvers=("alice",))
    twice = reviews(Review(login="alice", commit=OLD), Review(login="alice", commit=HEAD))
    assert evaluate(policy, twice, HEAD, 1).granted
    assert twice.fingerprint() != reviews(Review(login="alice", commit=OLD)).fingerprint()
    assert reviews().fingerprint() == Reviews().fingerprint()
