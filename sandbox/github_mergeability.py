"""GitHub computes a pull request's mergeability in the background, so for a moment it does not know.

GitHub's REST reference for "Get a pull request" (docs.github.com/rest/pulls/pulls#get-a-pull-request):
"The value of the `mergeable` attribute can be `true`, `false`, or `null`. If the value is `null`, then
GitHub has started a background job to compute the mergeability. After giving the job time to complete,
resubmit the request." The job starts when a pull request is opened, when its head moves, and when its
base moves (cirrus-actions/rebase#57: null "if it's requested right when another commit is merged into
the base branch"; troymoder/brawl#35: "After a change in BASE github puts a PR in an unknown mergeable
state").

While it is computing, GitHub answers:

- REST: `mergeable: null`, `rebaseable: null`, `mergeable_state: "unknown"`;
- GraphQL: `mergeable: UNKNOWN`, `mergeStateStatus: UNKNOWN`, and `enablePullRequestAutoMerge` fails with
  "Pull request Pull request is in unstable status" (ksimback/hermes-ecosystem#217, 2026: the error when
  auto-merge is enabled "immediately after PR creation, because `mergeStateStatus` is still `UNKNOWN`");
- `PUT .../merge`: 405 "Base branch was modified. Review and try the merge again." right after a PR is
  created (KnpLabs/php-github-api#497), which kubernetes-retired/contrib#141 traced to the mergeability
  not being computed yet ("the workaround is to check mergeability and then try to merge again").

The window here starts at the later of the PR's creation and the last move of its head or base branch,
and lasts `delay` seconds. The forge's own auto-merge is not delayed: GitHub merges by itself once it
knows, so only how soon changes, not whether.
"""

from __future__ import annotations

import threading
import time

from sandbox.forge import Forge, PullRequest, Repository

DEFAULT_DELAY = 3.0
"""`promoter sandbox`: a few seconds, as clients in the threads above had to wait (5 s was not always enough)."""


class Mergeability:
    """When each branch last moved, so a pull request can tell whether GitHub would still be computing."""

    def __init__(self, forge: Forge, delay: float = DEFAULT_DELAY) -> None:
        self.delay = delay
        self._moved: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        forge.subscribe(self._on_ref)

    def _on_ref(self, repo: Repository, branch: str, _before: str | None, after: str | None) -> None:
        if repo.kind != "github":
            return
        with self._lock:
            if after is None:
                self._moved.pop((repo.key, branch), None)
            else:
                self._moved[(repo.key, branch)] = time.time()

    def computing(self, repo: Repository, pr: PullRequest) -> bool:
        """Whether GitHub would answer "unknown" for this open pull request right now."""
        if self.delay <= 0 or pr.state != "open":
            return False
        with self._lock:
            head = self._moved.get((repo.key, pr.head_ref), 0.0)
            base = self._moved.get((repo.key, pr.base_ref), 0.0)
        return time.time() < max(pr.created_at, head, base) + self.delay
