"""Plain `git` over smart HTTP against both personalities' URLs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import github
import httpx
import pytest

from sandbox.forge import Repository
from sandbox.testing import Sandbox, run_sandbox
from tests.sandbox.conftest import git, push_branch


def test_clone_has_the_demo_layout(clone: Path) -> None:
    assert (clone / "gitops-promotion.yaml").is_file()
    text = (clone / "apps/prod/podinfo.yaml").read_text()
    assert 'image: ghcr.io/acme/podinfo:6.5.0 # {"$imagepolicy": "apps:podinfo"}' in text


def test_push_updates_branches_and_pull_request_head(
    sandbox: Sandbox, gh: github.Github, clone: Path, gitops: Repository
) -> None:
    first = push_branch(sandbox, clone, "feature", "apps/dev/podinfo.yaml", "one\n")
    assert gitops.branches["feature"] == first
    pr = gh.get_repo("acme/gitops").create_pull(title="t", body="", head="feature", base="main")
    second = push_branch(sandbox, clone, "feature", "apps/dev/podinfo.yaml", "two\n")
    assert second != first
    assert gh.get_repo("acme/gitops").get_pull(pr.number).head.sha == second


def test_non_fast_forward_push_to_protected_branch_is_rejected(
    sandbox: Sandbox, clone: Path, gitops: Repository
) -> None:
    before = gitops.branches["main"]
    git(sandbox, clone, "commit", "-q", "--amend", "-m", "rewritten history")
    rejected = git(sandbox, clone, "push", "-f", "origin", "HEAD:main", check=False)
    assert rejected.returncode != 0
    assert "Cannot force-push to this branch" in rejected.stderr
    deleted = git(sandbox, clone, "push", "origin", ":main", check=False)
    assert deleted.returncode != 0
    assert gitops.branches["main"] == before
    fsck = subprocess.run(
        ["git", "fsck", "--no-progress"], cwd=sandbox.forge.git(gitops).path, capture_output=True
    )
    assert fsck.returncode == 0


def test_fast_forward_push_to_protected_branch_is_allowed(
    sandbox: Sandbox, clone: Path, gitops: Repository
) -> None:
    sha = push_branch(sandbox, clone, "main", "notes.txt", "hello\n")
    assert gitops.branches["main"] == sha


def test_git_without_credentials_gets_401(sandbox: Sandbox, gitops: Repository, tmp_path: Path) -> None:
    response = httpx.get(f"{sandbox.clone_url(gitops)}/info/refs", params={"service": "git-upload-pack"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    result = subprocess.run(
        ["git", "clone", "-q", sandbox.clone_url(gitops), str(tmp_path / "x")], env=env, capture_output=True
    )
    assert result.returncode != 0


def test_unknown_repository_is_404_over_git(sandbox: Sandbox) -> None:
    response = httpx.get(
        f"{sandbox.url}/acme/missing.git/info/refs",
        params={"service": "git-upload-pack"},
        auth=("x", sandbox.token),
    )
    assert response.status_code == 404


def test_azure_devops_clone_url(sandbox: Sandbox, tmp_path: Path) -> None:
    repo = sandbox.forge.repo("azure", "acme", "gitops", "gitops")
    assert sandbox.clone_url(repo).endswith("/acme/gitops/_git/gitops")
    git(sandbox, tmp_path, "clone", "-q", sandbox.clone_url(repo), str(tmp_path / "ado"))
    assert (tmp_path / "ado" / "apps" / "qa" / "podinfo.yaml").is_file()


def test_a_relative_root_still_serves_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with run_sandbox(Path("relative-root"), seed_demo=True) as running:
        repo = running.forge.repo("github", "acme", "gitops")
        listed = subprocess.run(
            ["git", "ls-remote", running.clone_url(repo)],
            env={**os.environ, **running.git_env()},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert "refs/heads/main" in listed.stdout
