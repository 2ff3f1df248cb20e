"""`promoter status` honours `require`: a CI system's `e2e/smoke` status on qa's merge commit gates the
prod PR as Flux's does, on both sandbox personalities. Silence first (the pending check says what is
missing, then "no report"), then a failure, then a success, on the same PR."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.seed import CONFIG
from sandbox.testing import run_sandbox
from tests.compat.test_story import Story, story_for

pytestmark = pytest.mark.slow
QA_REQUIRES = CONFIG.replace("status_timeout_minutes: 5", "status_timeout_minutes: 2s").replace(
    "  - name: qa\n    auto: true\n", "  - name: qa\n    auto: true\n    require: [e2e/smoke]\n"
)


@pytest.fixture(params=["github", "azure"])
def story(
    request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[Story]:
    with run_sandbox(tmp_path / "sandbox", seed_demo=True, flux_delay=0.05) as sandbox:
        kind = str(request.param)
        repo = (
            sandbox.forge.repo("github", "acme", "gitops")
            if kind == "github"
            else sandbox.forge.repo("azure", "acme", "gitops", "gitops")
        )
        sandbox.forge.commit_files(
            repo, "main", {"gitops-promotion.yaml": QA_REQUIRES.encode()}, "qa needs e2e"
        )
        yield story_for(sandbox, kind, tmp_path, capsys)
        assert sandbox.violations() == []


def checks(story: Story, sha: str) -> list[tuple[str, str]]:
    """The `promoter` checks on `sha`, oldest first, in GitHub's words."""
    found = sorted(
        (s for s in story.sandbox.forge.statuses(story.repo, sha) if s.context == "promoter"),
        key=lambda s: s.id,
    )
    words = {"succeeded": "success", "failed": "failure"}
    return [(words.get(s.state, s.state), s.description or "") for s in found]


def test_status_waits_for_the_required_context_and_gates_on_its_word(story: Story) -> None:
    story.ok("new", "--group", "apps", "--app", "podinfo", "--tag", "cc2b7e0a")
    story.ok("status", "--branch", "promote/apps-podinfo")
    story.ok("promote", "--commit", story.wait_merged(1))
    story.ok("status", "--branch", "promote/apps-podinfo")  # dev requires nothing
    qa_merge = story.wait_merged(2)
    story.ok("promote", "--commit", qa_merge)
    prod = story.pull(3)

    code, _, err = story.run("status", "--branch", "promote/apps-podinfo")
    assert code == 1, err
    assert err.endswith(
        f'Application failed with error: commit status check for apps-qa has timed out "{qa_merge}": no report from e2e/smoke'
    )
    said = checks(story, prod.head_sha)
    assert ("pending", f"qa: Flux healthy on {qa_merge[:8]}; waiting for e2e/smoke") in said, said
    assert said[-1] == (
        "failure",
        f"no report from e2e/smoke for apps-qa within 2 s: Flux healthy on {qa_merge[:8]}; waiting for e2e/smoke",
    )

    ci = story.provider(story.sandbox.human_token)  # a CI system posts with its own token
    ci.set_commit_status(qa_merge, "e2e/smoke", "failure", "3 tests failed")
    code, _, err = story.run("status", "--branch", "promote/apps-podinfo")
    assert code == 1
    assert err.endswith(
        f'required check for apps-qa failed on "{qa_merge}": e2e/smoke failed: 3 tests failed'
    )
    assert checks(story, prod.head_sha)[-1] == (
        "failure",
        f"apps-qa on {qa_merge[:8]}: e2e/smoke failed: 3 tests failed",
    )

    ci.set_commit_status(qa_merge, "e2e/smoke", "success", "5 passed")  # a rerun: the newest word wins
    out = story.ok("status", "--branch", "promote/apps-podinfo")
    assert out == f'successful reconciliation for apps-qa found on "{qa_merge}"; e2e/smoke succeeded'
    assert checks(story, prod.head_sha)[-1] == (
        "success",
        f"apps-qa healthy on {qa_merge[:8]}, e2e/smoke succeeded",
    )
