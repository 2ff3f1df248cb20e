"""Fixtures for the provider tests: one sandbox per module, driven over HTTP by both providers.

Starting a sandbox costs about a second, so the module shares one and every test works on its own branch
(and file) of the seeded repositories. Each test leaves no fault plan behind, and the sandbox must not
have answered outside the API descriptions.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from promoter.providers import GitProvider, parse_remote, provider_for
from sandbox.forge import Repository
from sandbox.testing import Sandbox, run_sandbox

_numbers = itertools.count(1)


def quick_sleep(seconds: float) -> None:
    """Retries wait what the client asks, at most 10 ms, so fault tests stay fast."""
    time.sleep(min(seconds, 0.01))


@dataclass
class Forge:
    """One personality of the shared sandbox: its seeded repository, a clone and provider factories."""

    sandbox: Sandbox
    kind: str
    repo: Repository
    checkout: Path

    @property
    def remote_url(self) -> str:
        return self.sandbox.clone_url(self.repo)

    def provider(self, token: str | None = None, url: str | None = None, **client: Any) -> GitProvider:
        remote = parse_remote(url or self.remote_url, "github" if self.kind == "github" else None)
        return provider_for(remote, token or self.sandbox.token, **{"timeout": 5.0, **client})

    def git(self, *args: str) -> str:
        env = {**os.environ, **self.sandbox.git_env()}
        done = subprocess.run(
            ["git", *args], cwd=self.checkout, env=env, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    def push_branch(self, prefix: str = "topic", base: str = "origin/main") -> tuple[str, str]:
        """A new branch from `base` with one commit on a file of its own; returns (branch, sha)."""
        branch = f"{prefix}-{next(_numbers)}"
        self.git("fetch", "-q", "origin")
        self.git("checkout", "-q", "-B", branch, base)
        path = self.checkout / "notes" / f"{branch}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"{branch}\n")
        self.git("add", str(path))
        self.git("commit", "-q", "-m", f"note {branch}")
        self.git("push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return branch, self.git("rev-parse", "HEAD")

    def main_sha(self) -> str:
        sha = self.sandbox.forge.resolve(self.repo, "main")
        assert isinstance(sha, str)
        return sha


@pytest.fixture(scope="module")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with run_sandbox(tmp_path_factory.mktemp("sandbox"), seed_demo=True, flux_delay=0.05) as running:
        yield running


@pytest.fixture
def sandbox(shared_sandbox: Sandbox) -> Iterator[Sandbox]:
    before = len(shared_sandbox.violations())
    yield shared_sandbox
    shared_sandbox.clear_faults()
    problems = shared_sandbox.violations()[before:]
    assert not problems, f"the sandbox answered outside the API descriptions: {problems}"


@pytest.fixture(scope="module")
def checkouts(shared_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One clone per personality, made once."""
    clones = {}
    for kind, repo in (
        ("github", shared_sandbox.forge.repo("github", "acme", "gitops")),
        ("azure", shared_sandbox.forge.repo("azure", "acme", "gitops", "gitops")),
    ):
        work = tmp_path_factory.mktemp(f"clone-{kind}")
        env = {**os.environ, **shared_sandbox.git_env()}
        for args in (
            ["clone", "-q", shared_sandbox.clone_url(repo), str(work)],
            ["-C", str(work), "config", "user.name", "Test"],
            ["-C", str(work), "config", "user.email", "test@example.com"],
        ):
            subprocess.run(["git", *args], env=env, check=True, capture_output=True)
        clones[kind] = work
    return clones


@pytest.fixture(params=["github", "azure"])
def forge(request: pytest.FixtureRequest, sandbox: Sandbox, checkouts: dict[str, Path]) -> Forge:
    kind = str(request.param)
    repo = (
        sandbox.forge.repo("github", "acme", "gitops")
        if kind == "github"
        else sandbox.forge.repo("azure", "acme", "gitops", "gitops")
    )
    return Forge(sandbox, kind, repo, checkouts[kind])


@pytest.fixture
def provider(forge: Forge) -> Iterator[GitProvider]:
    made = forge.provider()
    yield made
    made.close()


@pytest.fixture
def make_provider(forge: Forge) -> Iterator[Callable[..., GitProvider]]:
    """Providers with other tokens or client options, all closed at teardown."""
    made: list[GitProvider] = []

    def make(token: str | None = None, url: str | None = None, **client: Any) -> GitProvider:
        made.append(forge.provider(token, url, **client))
        return made[-1]

    yield make
    for each in made:
        each.close()
