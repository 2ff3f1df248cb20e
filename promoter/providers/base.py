"""The few forge operations a promotion needs, behind one Protocol so GitHub and Azure DevOps look alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from promoter.approval_policy import Reviews
from promoter.providers.http import RateBudget, Stats
from promoter.trailers import MergeRecord

MergeMethod = Literal["merge", "squash", "rebase"]
StatusState = Literal["pending", "success", "failure", "error"]


@dataclass(frozen=True)
class PullRequest:
    """A PR as both forges can describe it. `number` is GitHub's number or Azure DevOps' id."""

    number: int
    title: str
    body: str
    head_branch: str
    base_branch: str
    head_sha: str
    state: Literal["open", "merged", "closed"]
    url: str
    merge_commit_sha: str | None = None
    merged_by: str | None = None
    auto_merge: bool = False
    node_id: str | None = None


@dataclass(frozen=True)
class CommitStatus:
    """One commit status, as posted. `state` is the forge's own word (GitHub `success`, Azure `succeeded`)."""

    context: str
    state: str
    description: str
    created_at: str
    genre: str | None = None
    target_url: str | None = None


class GitProvider(Protocol):
    """What a promotion asks of a forge. Every method reads before it writes, so reruns are harmless."""

    kind: str
    repository: str

    @property
    def budget(self) -> RateBudget: ...

    @property
    def stats(self) -> Stats: ...

    def find_pull_request(
        self, branch: str, base: str, state: Literal["open", "all"] = "open"
    ) -> PullRequest | None:
        """The newest PR from `branch` into `base` (open ones only unless `state` is "all")."""
        ...

    def get_pull_request(self, number: int) -> PullRequest: ...

    def upsert_pull_request(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        """Create the PR, or update the title and body of the open one from `branch`."""
        ...

    def set_auto_merge(
        self, pr: PullRequest, enabled: bool, method: MergeMethod, record: MergeRecord | None = None
    ) -> None:
        """Let the forge merge once the checks pass; `record` becomes the merge commit's trailers."""
        ...

    def merge(self, pr: PullRequest, method: MergeMethod, record: MergeRecord | None = None) -> PullRequest:
        """Merge now (a no-op when it already is); returns the PR as merged, `record` in its message.

        A `rebase` merge makes no merge commit, so it carries no trailers on either forge.
        """
        ...

    def merged_pull_request_for(self, commit: str) -> PullRequest | None:
        """The merged PR whose merge commit is `commit`, if any."""
        ...

    def reviews(self, number: int, teams: Sequence[str] = ()) -> Reviews:
        """The PR's standing approvals and its author; each approval names which of `teams` (written
        without `@`) the forge vouches its reviewer belongs to."""
        ...

    def teams_of(self, login: str, teams: Sequence[str]) -> tuple[str, ...]:
        """Which of `teams` the forge says `login` is an active member of (outside any PR)."""
        ...

    def commit_statuses(self, sha: str) -> list[CommitStatus]:
        """All statuses of a commit, every page, newest first."""
        ...

    def set_commit_status(
        self, sha: str, context: str, state: StatusState, description: str, target_url: str | None = None
    ) -> None: ...

    def is_ancestor(self, ancestor: str, descendant: str) -> bool: ...

    def close(self) -> None: ...
