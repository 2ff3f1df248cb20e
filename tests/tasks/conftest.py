"""A fake promotion for the stage tasks: a real bare repository on disk and a forge in memory.

Each task's `.fn` is called on its own, outside any flow: no Prefect server, no sleeping. The forge
records what the task did (PRs, auto-merge, checks, merges, reads); the events a task emits and the
lines it logs are captured too, since they are part of what a task is for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import PrivateAttr

from promoter.approval_policy import Review, Reviews
from promoter.config import CONFIG_FILE, Config, parse_config
from promoter.promotion import Promotion, Target
from promoter.providers.base import CommitStatus, GitProvider, MergeMethod, PullRequest, StatusState
from promoter.providers.http import RateBudget, Stats
from promoter.trailers import MergeRecord
from promoter.workspace import Workspace
from tests.helpers import run_git

FLUX = "kustomization/apps-dev/0c9c2e41"


@dataclass
class FakeForge:
    """The forge calls a promotion makes, answered from memory; branch heads come from the bare repo."""

    bare: Path
    kind: str = "github"
    repository: str = "acme/gitops"
    pulls: dict[int, PullRequest] = field(default_factory=dict)
    auto_merge: dict[int, tuple[bool, MergeMethod]] = field(default_factory=dict)
    checks: list[tuple[str, str, StatusState, str]] = field(default_factory=list)
    statuses: dict[str, list[CommitStatus]] = field(default_factory=dict)
    merges: list[tuple[int, MergeMethod]] = field(default_factory=list)
    records: dict[int, MergeRecord | None] = field(default_factory=dict)  # what each merge would carry
    reads: int = 0
    approvals: tuple[Review, ...] = ()
    members: dict[str, set[str]] = field(default_factory=dict)  # team -> logins
    # What `get_pull_request` answers next, in turn (the last one stays); empty: the PR as it is.
    answers: list[Literal["open", "merged", "closed"]] = field(default_factory=list)

    @property
    def budget(self) -> RateBudget:
        return RateBudget()

    @property
    def stats(self) -> Stats:
        return Stats()

    def find_pull_request(
        self, branch: str, base: str, state: Literal["open", "all"] = "open"
    ) -> PullRequest | None:
        found = [pr for pr in self.pulls.values() if pr.head_branch == branch and pr.base_branch == base]
        found = [pr for pr in found if state == "all" or pr.state == "open"]
        return found[-1] if found else None

    def get_pull_request(self, number: int) -> PullRequest:
        self.reads += 1
        if self.answers:
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            self.settle(number, answer)
        return self.pulls[number]

    def settle(self, number: int, state: Literal["open", "merged", "closed"], by: str = "alice") -> None:
        pr = self.pulls[number]
        merged = state == "merged"
        self.pulls[number] = replace(
            pr,
            state=state,
            merge_commit_sha="f" * 40 if merged else None,
            merged_by=by if merged else None,
        )

    def upsert_pull_request(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        head = run_git(self.bare, "rev-parse", f"refs/heads/{branch}")
        pr = self.find_pull_request(branch, base)
        number = pr.number if pr else len(self.pulls) + 1
        self.pulls[number] = PullRequest(
            number, title, body, branch, base, head, "open", f"https://forge.example/pulls/{number}"
        )
        return self.pulls[number]

    def set_auto_merge(
        self, pr: PullRequest, enabled: bool, method: MergeMethod, record: MergeRecord | None = None
    ) -> None:
        self.auto_merge[pr.number] = (enabled, method)
        if enabled:
            self.records[pr.number] = record

    def merge(self, pr: PullRequest, method: MergeMethod, record: MergeRecord | None = None) -> PullRequest:
        self.merges.append((pr.number, method))
        self.records[pr.number] = record
        self.settle(pr.number, "merged", by="promoter")
        return self.pulls[pr.number]

    def merged_pull_request_for(self, commit: str) -> PullRequest | None:
        return next((pr for pr in self.pulls.values() if pr.merge_commit_sha == commit), None)

    def reviews(self, number: int, teams: Sequence[str] = ()) -> Reviews:
        vouched = tuple(r.model_copy(update={"teams": self.teams_of(r.login, teams)}) for r in self.approvals)
        return Reviews(author="promoter-bot", approvals=vouched)

    def teams_of(self, login: str, teams: Sequence[str]) -> tuple[str, ...]:
        return tuple(team for team in teams if login in self.members.get(team, set()))

    def commit_statuses(self, sha: str) -> list[CommitStatus]:
        return self.statuses.get(sha, [])

    def set_commit_status(
        self, sha: str, context: str, state: StatusState, description: str, target_url: str | None = None
    ) -> None:
        self.checks.append((sha, context, state, description))

    def flux_says(self, sha: str, state: str, description: str, context: str = FLUX) -> None:
        self.statuses.setdefault(sha, []).insert(0, CommitStatus(context, state, description, "2024-01-01"))

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return True

    def close(self) -> None:
        pass


class FakeTarget(Target):
    """A `Target` whose forge is the `FakeForge` and whose repository is a local bare one."""

    _forge: FakeForge = PrivateAttr()
    _remote: str = PrivateAttr()
    _config: Config | None = PrivateAttr(default=None)

    @contextmanager
    def forge(self, token: str | None = None) -> Iterator[GitProvider]:
        yield self._forge

    @contextmanager
    def open(
        self, refresh: bool = True, *, token: str | None = None, config: Config | None = None
    ) -> Iterator[Promotion]:
        workspace = Workspace(self._remote, self.cache_path)
        if refresh or workspace.remote_sha(workspace.base_branch) is None:
            workspace.fetch()
        config = config or self._config or parse_config(workspace.read(CONFIG_FILE))
        yield Promotion(config, workspace, self._forge, self)


@dataclass
class Fake:
    target: FakeTarget
    forge: FakeForge
    events: list[tuple[str, str, str, dict[str, Any]]]
    log: pytest.LogCaptureFixture

    def lines(self) -> list[str]:
        return [record.getMessage() for record in self.log.records]

    def main(self) -> str:
        return run_git(self.forge.bare, "rev-parse", "refs/heads/main")

    def status_timeout(self, duration: str) -> None:
        """The repository's config with another `status_timeout_minutes`, for waits that must end soon."""
        text = run_git(self.forge.bare, "show", f"main:{CONFIG_FILE}") + "\n"
        self.target._config = parse_config(
            text.replace("status_timeout_minutes: 5", f"status_timeout_minutes: {duration}")
        )


@pytest.fixture
def fake(
    remote: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Fake:
    forge = FakeForge(Path(remote.removeprefix("file://")))
    target = FakeTarget(
        gitops_url="https://github.com/acme/gitops.git", cache_dir=str(tmp_path / "cache"), poll_interval=0.01
    )
    target._forge = forge
    target._remote = remote
    events: list[tuple[str, str, str, dict[str, Any]]] = []

    def emit(event: str, group: str, app: str, payload: dict[str, Any]) -> None:
        events.append((event, group, app, payload))

    for module in ("tasks.pull_request", "tasks.flux_health", "tasks.approval"):
        monkeypatch.setattr(f"{module}.emit", emit)
    caplog.set_level(logging.INFO, logger="promoter.tasks")
    return Fake(target, forge, events, caplog)
