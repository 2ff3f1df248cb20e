from __future__ import annotations

from promoter.approval_policy import ApprovalPolicy, Review
from promoter.gate import Gate
from promoter.health import Healthy
from promoter.pull_request import PRState
from promoter.stages import OpenedPR
from tasks.approval import approval_request, verify_approval, vouch_merge
from tasks.pull_request import open_pr
from tests.tasks.conftest import Fake

DIGEST = "sha256:" + "9f" * 32
QA = Healthy(kustomization="apps-qa", commit="1a2b3c4d" * 5, description="reconciliation succeeded")


def prod_pr(fake: Fake, digest: str = "") -> OpenedPR:
    state = PRState(group="apps", app="podinfo", tag="a8b91c33", env="prod", digest=digest)
    pr = open_pr.fn(fake.target, state, Gate(state="success", description="apps-qa healthy on 1a2b3c4d"))
    assert isinstance(pr, OpenedPR)
    return pr


def test_the_approval_text_shows_the_release_the_pr_the_health_and_the_diff(fake: Fake) -> None:
    pr = prod_pr(fake)
    text = approval_request.fn(fake.target, pr, QA)
    lines = text.splitlines()
    assert lines[0] == "## Promote apps/podinfo `a8b91c33` to **prod**"
    assert "- Release: `a8b91c33`" in lines
    assert f"- Pull request: [#1]({pr.url})" in lines
    assert "- Previous environment: qa: **healthy** on `1a2b3c4d` reconciliation succeeded" in lines
    diff = text[text.index("```diff\n") : text.rindex("```")]
    assert "apps/prod/podinfo.yaml | 2 +-" in diff  # the summary, then the patch
    assert "-          image: ghcr.io/acme/podinfo:6.5.0 #" in diff
    assert "+          image: ghcr.io/acme/podinfo:a8b91c33 #" in diff
    assert "apps/dev/" not in diff and "apps/qa/" not in diff  # only this environment's folder
    assert fake.lines()[-1].startswith("waiting for approval of PR #1 for prod: approve in the form")


def test_a_pinned_release_shows_its_digest(fake: Fake) -> None:
    text = approval_request.fn(fake.target, prod_pr(fake, DIGEST), QA)
    assert f"- Release: `a8b91c33` (`{DIGEST}`)" in text.splitlines()


POLICY = ApprovalPolicy(approvers=("alice", "@acme/sre"), separate_duties=True)


def test_verify_approval_turns_the_check_green_only_for_what_the_policy_lists(fake: Fake) -> None:
    pr = prod_pr(fake)
    fake.forge.approvals = (Review(login="mallory", commit=pr.head_sha),)
    short = verify_approval.fn(fake.target, pr, POLICY, "bob", 0)
    assert (
        short.missing
        == "needs 1 approval from alice or @acme/sre on PR #1; not counted: mallory (not a listed approver)"
    )
    assert fake.forge.checks[-1] == (pr.head_sha, "promoter", "pending", short.missing)
    assert fake.events[-1][0] == "approval.unverified"

    fake.forge.members = {"acme/sre": {"bob", "carol"}}
    fake.forge.approvals += (
        Review(login="bob", commit=pr.head_sha),
        Review(login="carol", commit=pr.head_sha),
    )
    granted = verify_approval.fn(fake.target, pr, POLICY, "bob", 1)
    assert granted.granted and granted.approvers == ("carol",)
    assert fake.forge.checks[-1] == (pr.head_sha, "promoter", "success", "approved by carol")
    assert granted.fingerprint != short.fingerprint


def test_a_merge_in_the_forge_is_vouched_for_only_by_a_listed_person(fake: Fake) -> None:
    pr = prod_pr(fake)
    fake.forge.members = {"acme/sre": {"carol"}}
    assert vouch_merge.fn(fake.target, pr, POLICY, "carol", "bob").granted
    assert vouch_merge.fn(fake.target, pr, POLICY, "alice", None).granted
    pusher = vouch_merge.fn(fake.target, pr, POLICY, "bob", "bob")
    assert not pusher.granted and pusher.refused == ("bob (pushed the release)",)
    assert not vouch_merge.fn(fake.target, pr, POLICY, None, None).granted
    assert fake.lines()[-1].startswith(
        "PR #1 was merged in the forge by someone unknown, outside the policy: needs 1"
    )
