"""A GitOps repository whose main is written commit by commit at chosen times, as the forges write it.

The history and delivery tests assert exact lead times and restore times, so every commit carries a fixed
author and committer date: a promotion branch's bump is authored when the release reached the environment's
PR, and its merge (GitHub's "Merge pull request #N from ...", or a squash "<title> (#N)") lands later.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from promoter.manifests import rewrite_environment
from sandbox.sample import write_gitops_tree

if TYPE_CHECKING:
    from sandbox.forge import Repository
    from sandbox.testing import Sandbox

SEEDED = "6.5.0"


def stamp(when: datetime) -> str:
    return f"{int(when.timestamp())} +0000"


class ScriptedHistory:
    """A work tree on main; each method adds one commit (or a branch and its merge) and returns main's sha."""

    def __init__(self, root: Path, seeded: datetime, apps: dict[str, list[str]] | None = None) -> None:
        self.root = root
        write_gitops_tree(root, apps or {"apps": ["podinfo", "frontend"]}, tag=SEEDED)
        self.git("init", "--quiet", "--initial-branch=main")
        self.git("add", "-A")
        self.commit("Seed", seeded)
        self.seed = self.head()

    def git(self, *args: str, when: datetime | None = None, authored: datetime | None = None) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Promoter Bot",
            "GIT_AUTHOR_EMAIL": "bot@example.com",
            "GIT_COMMITTER_NAME": "GitHub",
            "GIT_COMMITTER_EMAIL": "noreply@github.com",
        }
        if when is not None:
            env |= {"GIT_AUTHOR_DATE": stamp(authored or when), "GIT_COMMITTER_DATE": stamp(when)}
        done = subprocess.run(
            ["git", *args], cwd=self.root, env=env, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def commit(self, message: str, when: datetime, authored: datetime | None = None) -> str:
        self.git("commit", "--quiet", "--allow-empty", "-m", message, when=when, authored=authored)
        return self.head()

    def bump(self, env: str, app: str, tag: str, group: str = "apps") -> None:
        rewrite_environment(self.root, group, app, env, tag)
        self.git("add", "-A")

    def merge(
        self,
        env: str,
        app: str,
        tag: str,
        *,
        pr: int,
        bumped: datetime,
        merged: datetime,
        trailers: tuple[str, ...] = (),
        group: str = "apps",
    ) -> str:
        """The promoter's PR for `env`: a bump commit on `promote/<group>-<app>` at `bumped`, merged with
        a merge commit at `merged`, as GitHub's merge button writes it."""
        branch = f"promote/{group}-{app}"
        self.git("checkout", "--quiet", "-B", branch, "main")
        self.bump(env, app, tag, group)
        title = f"Promote {group}/{app} version {tag} to environment {env}"
        self.commit(title, bumped)
        self.git("checkout", "--quiet", "main")
        message = f"Merge pull request #{pr} from acme/{branch}\n\n{title}"
        if trailers:
            message += "\n\n" + "\n".join(trailers)
        self.git("merge", "--quiet", "--no-ff", "-m", message, branch, when=merged)
        return self.head()

    def squash(
        self,
        env: str,
        app: str,
        tag: str,
        *,
        pr: int,
        bumped: datetime,
        merged: datetime,
        group: str = "apps",
    ) -> str:
        """A squash merge: one commit on main keeping the bump's author date, committed at `merged`."""
        self.bump(env, app, tag, group)
        title = f"Promote {group}/{app} version {tag} to environment {env} (#{pr})"
        return self.commit(title, merged, authored=bumped)

    def edit(self, path: str, old: str, new: str, when: datetime) -> str:
        """A person's direct change to a manifest that leaves every tag as it is."""
        file = self.root / path
        file.write_text(file.read_text().replace(old, new))
        self.git("add", "-A")
        return self.commit(f"Edit {path}", when)

    def other(self, path: str, when: datetime) -> str:
        """A commit outside every environment's folder (a README, another tool's files)."""
        (self.root / path).write_text(f"{when.isoformat()}\n")
        self.git("add", "-A")
        return self.commit(f"Update {path}", when)


def publish(history: ScriptedHistory, sandbox: Sandbox, full_name: str) -> Repository:
    """Push the history's main to a new repository of the sandbox (GitHub personality) and make it the
    work tree's `origin`, so the work tree serves as the CI checkout `--sourcedir` names."""
    repo: Repository = sandbox.create_repo(full_name)
    history.git("remote", "add", "origin", sandbox.clone_url(repo))
    env = {**os.environ, **sandbox.git_env()}
    subprocess.run(
        ["git", "push", "-q", "origin", "main"], cwd=history.root, env=env, check=True, capture_output=True
    )
    sandbox.forge.refresh(repo)
    return repo


FLUX_OK, FLUX_FAILED = ("success", "reconciliation succeeded"), ("failure", "health check failed")


@dataclass
class Scripted:
    """A scripted history on the sandbox forge, with the cache directory the promoter's clones go to."""

    sandbox: Sandbox
    repo: Repository
    history: ScriptedHistory
    cache: Path
    base: datetime

    def flux(self, sha: str, env: str, said: tuple[str, str]) -> None:
        context = self.sandbox.flux_context(self.repo, f"apps-{env}")
        self.sandbox.forge.add_status(self.repo, sha, "flux", said[0], context, said[1])


def script_failure_then_fix(sandbox: Sandbox, tmp_path: Path) -> Scripted:
    """Three days ago: podinfo 1.0 reaches dev (healthy) and fails qa; an hour later 1.1 goes through dev and
    heals qa. Flux watches none of the sandbox's repositories: the test posts every status itself."""
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=3)
    history = ScriptedHistory(tmp_path / "checkout", base - timedelta(days=90))
    commits = [
        (
            history.merge("dev", "podinfo", "1.0", pr=1, bumped=at(base, 0), merged=at(base, 2)),
            "dev",
            FLUX_OK,
        ),
        (
            history.merge("qa", "podinfo", "1.0", pr=2, bumped=at(base, 10), merged=at(base, 20)),
            "qa",
            FLUX_FAILED,
        ),
        (
            history.merge("dev", "podinfo", "1.1", pr=3, bumped=at(base, 60), merged=at(base, 62)),
            "dev",
            FLUX_OK,
        ),
        (
            history.merge("qa", "podinfo", "1.1", pr=4, bumped=at(base, 70), merged=at(base, 90)),
            "qa",
            FLUX_OK,
        ),
    ]
    scripted = Scripted(
        sandbox, publish(history, sandbox, "acme/delivery"), history, tmp_path / "cache", base
    )
    for sha, env, said in commits:
        scripted.flux(sha, env, said)
    return scripted


def at(base: datetime, minutes: float = 0, *, days: float = 0, hours: float = 0) -> datetime:
    return base + timedelta(days=days, hours=hours, minutes=minutes)


T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)  # a Monday
