"""The acceptance story driven by `promoter new | promote | status` alone, as CI pipelines would call them,
on both sandbox personalities (GitHub Enterprise-style and Azure DevOps)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from promoter.cli import main
from promoter.providers import GitProvider, parse_remote, provider_for
from sandbox.forge import Repository
from sandbox.sample import DEPLOYMENT, config_text
from sandbox.testing import Sandbox, run_sandbox

# End to end through the forge and the Flux emulator: the whole suite runs it, `make unit-fast` does not.
pytestmark = pytest.mark.slow
FAST = ["--poll-interval", "0.05"]


@dataclass
class Story:
    """One personality's seeded repository, a CI checkout of it, and the commands run against it."""

    sandbox: Sandbox
    repo: Repository
    checkout: Path
    cache: Path
    capsys: pytest.CaptureFixture[str]

    def run(self, *args: str, token: str | None = None) -> tuple[int, str, str]:
        provider = ["--provider", "github"] if self.repo.kind == "github" else []
        os.environ["PROMOTER_TOKEN"] = token or self.sandbox.token
        try:
            code = main(
                [*args, "--sourcedir", str(self.checkout), "--cache-dir", str(self.cache), *provider, *FAST]
            )
        finally:
            del os.environ["PROMOTER_TOKEN"]
        captured = self.capsys.readouterr()
        return code, captured.out.strip(), captured.err.strip()

    def ok(self, *args: str) -> str:
        code, out, err = self.run(*args)
        assert code == 0, err
        return out

    def provider(self, token: str) -> GitProvider:
        url = self.sandbox.clone_url(self.repo)
        return provider_for(parse_remote(url, "github" if self.repo.kind == "github" else None), token)

    def pull(self, number: int) -> Any:
        return self.repo.pulls[number]

    def wait_merged(self, number: int) -> str:
        merged: str = self.sandbox.wait_for(lambda: self.pull(number).merge_commit_sha, timeout=10)
        return merged

    def main_file(self, path: str) -> str:
        return git(self.sandbox, self.checkout, "show", f"{self.main_sha()}:{path}")

    def main_sha(self) -> str:
        git(self.sandbox, self.checkout, "fetch", "-q", "origin")
        return git(self.sandbox, self.checkout, "rev-parse", "origin/main")


def git(sandbox: Sandbox, cwd: Path, *args: str) -> str:
    env = {**os.environ, **sandbox.git_env()}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def story_for(sandbox: Sandbox, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Story:
    repo = (
        sandbox.forge.repo("github", "acme", "gitops")
        if kind == "github"
        else sandbox.forge.repo("azure", "acme", "gitops", "gitops")
    )
    checkout = tmp_path / "checkout"
    git(sandbox, tmp_path, "clone", "-q", sandbox.clone_url(repo), str(checkout))
    return Story(sandbox, repo, checkout, tmp_path / "cache", capsys)


@pytest.fixture(params=["github", "azure"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def story(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Story]:
    scenario = {"default": {"delay": 0.05}, "rules": [{"env": "qa", "tag": "a8b91c33", "outcome": "failing"}]}
    with run_sandbox(tmp_path / "sandbox", seed_demo=True, scenario=scenario) as sandbox:
        yield story_for(sandbox, kind, tmp_path, capsys)
        assert sandbox.violations() == []


def test_story_new_promote_status_up_to_a_human_merge_of_prod(story: Story) -> None:
    # cc2b7e0a is healthy everywhere in this scenario.
    out = story.ok("new", "--group", "apps", "--app", "podinfo", "--tag", "cc2b7e0a")
    assert out.startswith("created branch promote/apps-podinfo with pull request 1 on commit ")
    dev = story.pull(1)
    assert dev.title == "Promote apps/podinfo version cc2b7e0a to environment dev"
    assert '"env":"dev"' in dev.body and dev.body.endswith("\tENV: dev\n\tAPP: podinfo\n\tTAG: cc2b7e0a")

    assert (
        story.ok("status", "--branch", "promote/apps-podinfo")
        == '"dev" is the first environment so status check is skipped'
    )
    dev_merge = story.wait_merged(1)  # auto-merge, now that the promoter check is green

    out = story.ok("promote", "--commit", dev_merge)
    assert out.startswith("created branch promote/apps-podinfo with pull request 2 on commit ")
    assert f'"sha":"{dev_merge}"' in story.pull(2).body
    assert "successful reconciliation for apps-dev" in story.ok("status", "--branch", "promote/apps-podinfo")
    qa_merge = story.wait_merged(2)
    story.main_sha()  # fetches
    trailers = git(story.sandbox, story.checkout, "log", "-1", "--format=%(trailers)", qa_merge)
    assert trailers.splitlines() == ["Release: apps/podinfo:cc2b7e0a", "Promoted-by: promoter (cli)"]

    out = story.ok("promote", "--commit", qa_merge)
    assert "with pull request 3" in out
    prod = story.pull(3)
    assert prod.auto_merge is None  # auto: false
    assert "successful reconciliation for apps-qa" in story.ok("status", "--branch", "promote/apps-podinfo")
    assert story.pull(3).merge_commit_sha is None  # a person decides

    person = story.provider(story.sandbox.human_token)
    merged = person.merge(person.get_pull_request(3), "merge")
    assert merged.state == "merged" and merged.merge_commit_sha
    assert story.ok("promote", "--commit", merged.merge_commit_sha) == "no next environment to promote to"
    for env in ("dev", "qa", "prod"):
        assert "ghcr.io/acme/podinfo:cc2b7e0a" in story.main_file(f"apps/{env}/podinfo.yaml")

    # The board, from git and the forge alone: each environment's tag, its merge and PR, Flux's word.
    story.sandbox.wait_for(lambda: board(story)["prod"]["flux"] == "healthy", timeout=10)
    placed = board(story)
    merges = {"dev": dev_merge, "qa": qa_merge, "prod": merged.merge_commit_sha}
    for number, env in enumerate(("dev", "qa", "prod"), start=1):
        assert placed[env]["tag"] == "cc2b7e0a" and placed[env]["pr"] == number
        assert placed[env]["commit"] == merges[env] and placed[env]["flux"] == "healthy"
        when = git(story.sandbox, story.checkout, "log", "-1", "--format=%cI", merges[env])
        assert datetime.fromisoformat(placed[env]["since"]) == datetime.fromisoformat(when)
    assert placed["prod"]["approver"] is None  # merged by a person in the forge: no trailer says who


def test_flux_failure_in_qa_fails_the_prod_check_and_a_newer_release_resets_the_branch(story: Story) -> None:
    story.ok("new", "--group", "apps", "--app", "podinfo", "--tag", "a8b91c33")
    story.ok("status", "--branch", "promote/apps-podinfo")
    story.ok("promote", "--commit", story.wait_merged(1))
    story.ok("status", "--branch", "promote/apps-podinfo")
    story.ok("promote", "--commit", story.wait_merged(2))

    code, _, err = story.run("status", "--branch", "promote/apps-podinfo")
    assert code == 1
    assert err.startswith("Application failed with error: failed reconciliation for apps-qa found on")
    assert "health check failed" in err
    prod = story.pull(3)
    assert prod.merge_commit_sha is None

    out = story.ok("new", "--group", "apps", "--app", "podinfo", "--tag", "cc2b7e0a")
    assert "with pull request 3 " in out  # the same PR, reset to dev
    reset = story.pull(3)
    assert reset.title == "Promote apps/podinfo version cc2b7e0a to environment dev"
    assert reset.auto_merge is not None

    placed, flights = board(story), board(story, "in_flight")
    assert [placed[env]["tag"] for env in ("dev", "qa", "prod")] == ["a8b91c33", "a8b91c33", "6.5.0"]
    assert (placed["qa"]["flux"], placed["qa"]["flux_description"]) == ("failed", "health check failed")
    assert placed["dev"]["flux"] == "healthy" and placed["prod"]["pr"] is None  # seeded, not promoted
    assert [(f["tag"], f["env"], f["pr"], f["stage"]) for f in flights] == [
        ("cc2b7e0a", "dev", 3, "no check yet")  # `new` posts none; `status` would
    ]


def board(story: Story, part: str = "environments") -> Any:
    """`promoter board --json` for apps/podinfo: its environments by name, or what is in flight."""
    (only,) = json.loads(story.ok("board", "--app", "apps/podinfo", "--json"))
    return {p["env"]: p for p in only[part]} if part == "environments" else only[part]


def test_board_of_an_unknown_app_and_a_bad_app_name_are_clear(story: Story) -> None:
    code, _, err = story.run("board", "--app", "apps/nothing")
    assert code == 2 and "no environment of" in err and '"apps:nothing"' in err
    code, _, err = story.run("board", "--app", "podinfo")
    assert code == 2 and "--app 'podinfo': give <group>/<app>" in err


def test_unchanged_tag_makes_no_commit_and_no_pr(story: Story) -> None:
    out = story.ok("new", "--group", "apps", "--app", "podinfo", "--tag", "6.5.0")
    assert out == "apps/podinfo already runs 6.5.0 in dev on main; nothing to promote"
    assert story.repo.pulls == {}


def test_a_commit_not_from_a_promotion_pr_is_skipped(story: Story) -> None:
    assert story.ok("promote", "--commit", story.main_sha()) == (
        "skipping PR creation as commit does not originate from promotion PR"
    )


def test_status_on_a_manual_branch_is_skipped_and_detached_head_needs_the_branch(story: Story) -> None:
    assert story.ok("status", "--branch", "feature/x") == "Promotion was manual, skipping check"
    git(story.sandbox, story.checkout, "checkout", "-q", "--detach")
    code, _, err = story.run("status")
    assert code == 1 and "detached HEAD" in err and "--branch" in err


def test_wrong_token_is_refused_clearly_and_never_echoed(story: Story) -> None:
    code, out, err = story.run(
        "new", "--group", "apps", "--app", "podinfo", "--tag", "v1", token="not-a-real-token"
    )
    assert code == 1 and out == ""
    assert "Application failed with error:" in err and ("401" in err or "token" in err)
    assert "not-a-real-token" not in err


def custom_story(
    story: Story,
    tmp_path: Path,
    name: str,
    *,
    prflow: str = "per-app",
    timeout: str = "5",
    reporters: dict[str, str] | None = None,
) -> Story:
    """A second repository in the same sandbox with its own config, and a checkout of it."""
    config = config_text(prflow=prflow).replace(
        "status_timeout_minutes: 5", f"status_timeout_minutes: {timeout}"
    )
    for env, value in (reporters or {}).items():
        config = config.replace(f"  - name: {env}\n", f"  - name: {env}\n    reporters: {value}\n")
    files = {"gitops-promotion.yaml": config}
    for env in ("dev", "qa", "prod"):
        files[f"apps/{env}/podinfo.yaml"] = DEPLOYMENT.format(
            group="apps", app="podinfo", registry="ghcr.io/acme", tag="1.0"
        )
    full = f"acme/{name}" if story.repo.kind == "github" else f"acme/gitops/{name}"
    repo = story.sandbox.create_repo(full, kind=story.repo.kind, files=files, protect={"main": ["promoter"]})
    checkout = tmp_path / f"checkout-{name}"
    git(story.sandbox, tmp_path, "clone", "-q", story.sandbox.clone_url(repo), str(checkout))
    return Story(story.sandbox, repo, checkout, story.cache, story.capsys)


OLD_DIGEST = "sha256:" + "0" * 64
NEW_DIGEST = "sha256:" + "9f" * 32
PINNED = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pinned
spec:
  template:
    spec:
      containers:
        - name: pinned
          image: ghcr.io/acme/pinned:1.0@{digest} # {{"$imagepolicy": "apps:pinned"}}
"""
KUSTOMIZATION = """\
images:
  - name: ghcr.io/acme/sidecar
    newTag: "1.0" # {{"$imagepolicy": "apps:pinned:tag"}}
    digest: {digest} # {{"$imagepolicy": "apps:pinned:digest"}}
"""


def test_a_digest_pinned_release_carries_its_digest_to_every_environment(
    story: Story, tmp_path: Path
) -> None:
    pinned = custom_story(story, tmp_path, "pinned")
    files = {}
    for env in ("dev", "qa", "prod"):
        files[f"apps/{env}/pinned.yaml"] = PINNED.format(digest=OLD_DIGEST).encode()
        files[f"apps/{env}/kustomization.yaml"] = KUSTOMIZATION.format(digest=OLD_DIGEST).encode()
    story.sandbox.forge.commit_files(pinned.repo, "main", files, "A pinned app")

    # Without the digest the pin would go stale: refused before anything is pushed.
    code, _, err = pinned.run("new", "--group", "apps", "--app", "pinned", "--tag", "2.0")
    assert code == 1 and "pins apps:pinned; give the release's digest" in err
    assert pinned.repo.pulls == {} and "promote/apps-pinned" not in pinned.repo.branches

    pinned.ok("new", "--group", "apps", "--app", "pinned", "--tag", "2.0", "--digest", NEW_DIGEST)
    assert f'"digest":"{NEW_DIGEST}"' in pinned.pull(1).body
    pinned.ok("status", "--branch", "promote/apps-pinned")
    pinned.ok("promote", "--commit", pinned.wait_merged(1))
    assert f'"digest":"{NEW_DIGEST}"' in pinned.pull(2).body  # read back from dev's PR by `promote`
    pinned.ok("status", "--branch", "promote/apps-pinned")
    pinned.ok("promote", "--commit", pinned.wait_merged(2))
    assert f'"digest":"{NEW_DIGEST}"' in pinned.pull(3).body
    for env in ("dev", "qa"):
        assert f"ghcr.io/acme/pinned:2.0@{NEW_DIGEST} #" in pinned.main_file(f"apps/{env}/pinned.yaml")
        kustomization = pinned.main_file(f"apps/{env}/kustomization.yaml")
        assert 'newTag: "2.0" #' in kustomization and f"digest: {NEW_DIGEST} #" in kustomization
    assert OLD_DIGEST in pinned.main_file("apps/prod/pinned.yaml")  # prod waits for a person


def test_per_env_flow_upserts_one_pr_per_environment(story: Story, tmp_path: Path) -> None:
    per_env = custom_story(story, tmp_path, "perenv", prflow="per-env")
    first = per_env.ok("new", "--group", "apps", "--app", "podinfo", "--tag", "v1")
    assert first.startswith("created branch promote/dev/apps-podinfo with pull request 1 ")
    again = per_env.ok("new", "--group", "apps", "--app", "podinfo", "--tag", "v2")
    assert again.startswith("created branch promote/dev/apps-podinfo with pull request 1 ")  # upserted
    assert per_env.pull(1).title.endswith("version v2 to environment dev")

    per_env.ok("status", "--branch", "promote/dev/apps-podinfo")
    out = per_env.ok("promote", "--commit", per_env.wait_merged(1))
    assert out.startswith("created branch promote/qa/apps-podinfo with pull request 2 ")
    newer = per_env.ok("new", "--group", "apps", "--app", "podinfo", "--tag", "v3")
    assert newer.startswith("created branch promote/dev/apps-podinfo with pull request 3 ")
    assert per_env.pull(2).state == "open" and "version v2 to environment qa" in per_env.pull(2).title


def test_flux_that_never_reports_times_out_as_no_report(story: Story, tmp_path: Path) -> None:
    quiet = custom_story(story, tmp_path, "quiet", timeout="'1s'")
    story.sandbox.set_scenario(
        {"default": {"delay": 0.05}, "rules": [{"repo": "*quiet", "env": "dev", "outcome": "never"}]}
    )
    quiet.ok("new", "--group", "apps", "--app", "podinfo", "--tag", "v1")
    quiet.ok("status", "--branch", "promote/apps-podinfo")
    quiet.ok("promote", "--commit", quiet.wait_merged(1))
    code, _, err = quiet.run("status", "--branch", "promote/apps-podinfo")
    assert code == 1 and "commit status check for apps-dev has timed out" in err
    head = quiet.pull(2).head_sha
    checks = [s for s in story.sandbox.forge.statuses(quiet.repo, head) if s.context.endswith("promoter")]
    assert checks and checks[0].description.startswith("no report from Flux for apps-dev")


def test_an_environment_two_clusters_serve_waits_for_both_and_fails_with_either(
    story: Story, tmp_path: Path
) -> None:
    twin = custom_story(story, tmp_path, "twin", reporters={"dev": "2"})
    story.sandbox.set_scenario(
        {
            "default": {"delay": 0.05},
            "flux": {"clusters": ["east", "west"]},
            "rules": [
                {"repo": "*twin", "env": "dev", "cluster": "west", "tag": "v2", "outcome": "failing"},
                {"repo": "*twin", "env": "dev", "cluster": "west", "delay": 1.5},
            ],
        }
    )
    east, west = (story.sandbox.flux_context(twin.repo, "apps-dev", cluster) for cluster in (0, 1))
    twin.ok("new", "--group", "apps", "--app", "podinfo", "--tag", "v1")
    twin.ok("status", "--branch", "promote/apps-podinfo")
    dev_merge = twin.wait_merged(1)
    twin.ok("promote", "--commit", dev_merge)
    story.sandbox.wait_for(lambda: _posted(twin, dev_merge, east))  # east is fast; one cluster used to do
    assert not _posted(twin, dev_merge, west)
    out = twin.ok("status", "--branch", "promote/apps-podinfo")
    assert "successful reconciliation for apps-dev" in out
    assert _posted(twin, dev_merge, west)  # it waited for the slow cluster
    twin.wait_merged(2)

    assert "with pull request 3 " in twin.ok("new", "--group", "apps", "--app", "podinfo", "--tag", "v2")
    twin.ok("status", "--branch", "promote/apps-podinfo")
    twin.ok("promote", "--commit", twin.wait_merged(3))
    code, _, err = twin.run("status", "--branch", "promote/apps-podinfo")
    assert code == 1 and "failed reconciliation for apps-dev" in err
    assert f"health check failed ({west.rsplit('/', 1)[1]})" in err  # west failed; east is healthy


def _posted(story: Story, sha: str, context: str) -> bool:
    return any(s.context == context for s in story.sandbox.forge.statuses(story.repo, sha))


def test_every_command_succeeds_through_5xx_and_rate_limits(story: Story) -> None:
    story.sandbox.set_faults(
        {
            "seed": 7,
            "rules": [
                {"route": "/api/*", "kind": "error", "rate": 0.2, "status": 502},
                {"route": "/api/*", "kind": "rate_limit", "rate": 0.2, "retry_after": 0},
                {"route": "*/_apis/*", "kind": "error", "rate": 0.2, "status": 503},
                {"route": "*/_apis/*", "kind": "rate_limit", "rate": 0.2, "retry_after": 0},
            ],
        }
    )
    story.ok("new", "--group", "apps", "--app", "podinfo", "--tag", "cc2b7e0a")
    story.ok("status", "--branch", "promote/apps-podinfo")
    story.ok("promote", "--commit", story.wait_merged(1))
    assert "successful reconciliation for apps-dev" in story.ok("status", "--branch", "promote/apps-podinfo")
    faults = sum(route.get("faults", 0) for route in _routes(story.sandbox.stats()))
    assert faults > 0


def _routes(stats: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(stats, dict):
        if "faults" in stats and isinstance(stats["faults"], int):
            found.append(stats)
        for value in stats.values():
            found.extend(_routes(value))
    elif isinstance(stats, list):
        for value in stats:
            found.extend(_routes(value))
    return found


def test_unknown_repository_and_unsupported_host_are_clear_errors(story: Story) -> None:
    git(
        story.sandbox,
        story.checkout,
        "remote",
        "set-url",
        "origin",
        story.sandbox.clone_url(story.repo).replace("gitops", "nothere", 1),
    )
    code, _, err = story.run("new", "--group", "apps", "--app", "podinfo", "--tag", "v1")
    assert code == 1 and "check the URL" in err

    git(
        story.sandbox,
        story.checkout,
        "remote",
        "set-url",
        "origin",
        "https://gitlab.example.com/acme/gitops.git",
    )
    os.environ["PROMOTER_TOKEN"] = "t"
    try:
        code = main(
            ["new", "--group", "apps", "--app", "podinfo", "--tag", "v1", "--sourcedir", str(story.checkout)]
        )
    finally:
        del os.environ["PROMOTER_TOKEN"]
    err = story.capsys.readouterr().err
    assert code == 1 and "cannot tell which forge serves https://gitlab.example.com/acme/gitops.git" in err


def test_hand_edited_metadata_is_a_clear_error(story: Story) -> None:
    story.ok("new", "--group", "apps", "--app", "podinfo", "--tag", "v1")
    pr = story.pull(1)
    pr.body = pr.body.replace('"tag":"v1"', '"tag":"v1;rm -rf /"')
    code, _, err = story.run("status", "--branch", "promote/apps-podinfo")
    assert code == 1 and "metadata is wrong: tag: " in err
    pr.body = pr.body.replace('{"group"', "{group")
    code, _, err = story.run("status", "--branch", "promote/apps-podinfo")
    assert code == 1 and "not valid JSON" in err
