from __future__ import annotations

from promoter.gate import Gate
from promoter.health import Healthy
from promoter.pull_request import PRState
from promoter.stages import OpenedPR
from tasks.approval import approval_request
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
