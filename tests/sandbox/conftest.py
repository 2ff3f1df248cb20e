"""Fixtures for the sandbox's own tests; other suites can import `run_sandbox` the same way.

`sandbox` is a running sandbox with the demo repositories seeded and API validation on whenever the specs
folder is found; at teardown it fails the test if the forge sent any response that breaks the API
descriptions.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import github
import pytest

from sandbox.forge import Repository
from sandbox.testing import Sandbox, run_sandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with run_sandbox(tmp_path / "sandbox", seed_demo=True) as running:
        yield running
        problems = running.violations()
        assert not problems, f"the sandbox answered outside the API descriptions: {problems}"


@pytest.fixture
def gh(sandbox: Sandbox) -> github.Github:
    """PyGithub, a client nobody here wrote, pointed at the GitHub personality as the bot."""
    return github.Github(
        base_url=sandbox.github_api,
        auth=github.Auth.Token(sandbox.token),
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


@pytest.fixture
def gitops(sandbox: Sandbox) -> Repository:
    """The demo repository acme/gitops (GitHub personality)."""
    repo: Repository = sandbox.forge.repo("github", "acme", "gitops")
    return repo


@pytest.fixture
def clone(sandbox: Sandbox, gitops: Repository, tmp_path: Path) -> Path:
    """A plain `git clone` of acme/gitops over HTTP."""
    work = tmp_path / "work"
    git(sandbox, tmp_path, "clone", "-q", sandbox.clone_url(gitops), str(work))
    git(sandbox, work, "config", "user.name", "Test")
    git(sandbox, work, "config", "user.email", "test@example.com")
    return work


def git(sandbox: Sandbox, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **sandbox.git_env()}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check)


def push_branch(
    sandbox: Sandbox, work: Path, branch: str, path: str, text: str, base: str = "origin/main"
) -> str:
    """Commit `text` into `path` on `branch` (from `base`), force-push it, return the commit sha."""
    git(sandbox, work, "fetch", "-q", "origin")
    git(sandbox, work, "checkout", "-q", "-B", branch, base)
    (work / path).parent.mkdir(parents=True, exist_ok=True)
    (work / path).write_text(text)
    git(sandbox, work, "add", path)
    git(sandbox, work, "commit", "-q", "-m", f"edit {path} on {branch}")
    git(sandbox, work, "push", "-q", "-f", "origin", f"HEAD:refs/heads/{branch}")
    return git(sandbox, work, "rev-parse", "HEAD").stdout.strip()


def settled(
    sandbox: Sandbox, gh: github.Github, number: int, repo: str = "acme/gitops", timeout: float = 10
) -> Any:
    """Re-read a pull request until GitHub has computed its mergeability, as GitHub asks clients to do
    ("After giving the job time to complete, resubmit the request"); PyGithub does not re-read by itself."""
    return sandbox.wait_for(
        lambda: next((p for p in [gh.get_repo(repo).get_pull(number)] if p.mergeable is not None), None),
        timeout=timeout,
    )
