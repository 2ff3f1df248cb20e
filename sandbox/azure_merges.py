"""Azure DevOps' asynchronous merges, as the service runs them (docs/sandbox.md, "Azure DevOps as it behaves").

- A pull request's merge is computed in the background: after it is created, or whenever its source or
  target branch moves, `mergeStatus` reads `queued` for `delay` seconds, then `succeeded` (with a
  `lastMergeCommit`, the merge the service would push) or `conflicts`. Microsoft's own example of
  `POST .../pullRequests` answers `mergeStatus: queued` without `lastMergeCommit`.
- Completion is queued too: `PATCH ... status: completed` answers the pull request still `active`, with
  `mergeStatus: queued` and `completionQueueTime`; `delay` seconds later the service merges, or leaves it
  active with `rejectedByPolicy` (a required status missing or failing), `conflicts` or `failure`
  (REFERENCE.md section 9; berenddeboer/ready-for-agent#1209, loncadev/baron#217: about 1.6 s).
- Auto-complete goes through the same queue, so it completes `delay` seconds after its policies pass.

Queued completions live in memory only: a restarted sandbox forgets them, as a client must tolerate.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.forge import Account, AutoMerge, Forge, ForgeError, MergeMethod, PullRequest, Repository
from sandbox.gitrepo import GitError

log = logging.getLogger("sandbox")
DEFAULT_DELAY = 1.0  # seconds; the service takes about one to two (loncadev/baron#217 measured 1.6 s)
Key = tuple[str, int]


class Scheduler:
    """One background thread running callables at their due time; `close` drops what is left."""

    def __init__(self, name: str) -> None:
        self._jobs: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def at(self, delay: float, job: Callable[[], None]) -> None:
        with self._wake:
            if self._closed:
                return
            heapq.heappush(self._jobs, (time.monotonic() + delay, next(self._order), job))
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._jobs.clear()
            self._wake.notify()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._jobs or self._jobs[0][0] > time.monotonic()):
                    self._wake.wait(self._jobs[0][0] - time.monotonic() if self._jobs else None)
                if self._closed:
                    return
                _, _, job = heapq.heappop(self._jobs)
            try:
                job()
            except Exception:
                log.exception("an Azure DevOps background merge failed")


@dataclass
class Completion:
    """A completion the service has accepted and not yet run."""

    queued_at: float
    by: str
    method: MergeMethod
    sha: str | None  # the lastMergeSourceCommit it was asked for; None for auto-complete
    title: str | None
    delete_source_branch: bool
    auto: bool


@dataclass(frozen=True)
class Outcome:
    """Why the last completion did not happen, valid while the source and target stay where they were."""

    base_sha: str | None
    head_sha: str
    status: str  # rejectedByPolicy | conflicts | failure
    message: str | None = None
    queued_at: float | None = None


class MergeQueue:
    """The merge and completion state the Azure DevOps personality reports, over the shared forge."""

    def __init__(self, forge: Forge, delay: float = DEFAULT_DELAY) -> None:
        if delay < 0:
            raise ValueError("the Azure DevOps merge delay must be zero or more seconds")
        self.forge = forge
        self.delay = delay
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str | None, str], float] = {}
        self._queued: dict[Key, Completion] = {}
        self._outcomes: dict[Key, Outcome] = {}
        self._previews: dict[tuple[str, str, str], str | None] = {}
        self._completed: dict[Key, float] = {}  # completionQueueTime of the completion that merged
        self._noticing: set[Key] = set()
        self._scheduler = Scheduler("sandbox-azure-merges")
        forge.auto_completer = self._auto_complete

    def close(self) -> None:
        self._scheduler.close()

    # -- what a pull request shows ----------------------------------------------------------------------

    def merge_status(self, repo: Repository, pr: PullRequest) -> str:
        """`mergeStatus` as the service reports it at this moment."""
        if pr.merged:
            return "succeeded"
        key = (repo.key, pr.number)
        base = repo.branches.get(pr.base_ref)
        with self._lock:
            queued = self._queued.get(key)
            outcome = self._outcomes.get(key)
        if pr.state != "open":
            return outcome.status if outcome else "notSet"
        if queued is not None:
            return "queued"
        if outcome is not None and (outcome.base_sha, outcome.head_sha) == (base, pr.head_sha):
            return outcome.status
        if not self._computed(repo, pr, base):
            return "queued"
        return "succeeded" if self.forge.mergeable(repo, pr) else "conflicts"

    def failure_message(self, repo: Repository, pr: PullRequest) -> str | None:
        with self._lock:
            outcome = self._outcomes.get((repo.key, pr.number))
        return outcome.message if outcome and outcome.status == "failure" else None

    def queued_at(self, repo: Repository, pr: PullRequest) -> float | None:
        """`completionQueueTime`: when completion was last asked for (kept after a refusal, as the service)."""
        with self._lock:
            queued = self._queued.get((repo.key, pr.number))
            outcome = self._outcomes.get((repo.key, pr.number))
            completed = self._completed.get((repo.key, pr.number))
        if queued is not None:
            return queued.queued_at
        if completed is not None:
            return completed
        return outcome.queued_at if outcome else None

    def preview_commit(self, repo: Repository, pr: PullRequest) -> str | None:
        """`lastMergeCommit` of an active pull request: the merge commit the service computed, once it has."""
        if pr.state != "open" or self.merge_status(repo, pr) != "succeeded":
            return None
        base = repo.branches.get(pr.base_ref)
        if base is None:
            return None
        key = (repo.key, base, pr.head_sha)
        with self._lock:
            if key in self._previews:
                return self._previews[key]
        git = self.forge.git(repo)
        tree = git.merge_tree(base, pr.head_sha)
        sha = None
        if tree is not None:
            author = Account(pr.created_by).identity
            message = f"Merge pull request {pr.number} from {pr.head_ref} into {pr.base_ref}\n"
            sha = git.commit_tree(tree, [base, pr.head_sha], message, author, author)
        with self._lock:
            self._previews[key] = sha
        return sha

    def _computed(self, repo: Repository, pr: PullRequest, base: str | None) -> bool:
        key = (repo.key, pr.number, base, pr.head_sha)
        now = time.monotonic()
        with self._lock:
            first = self._seen.setdefault(key, now)
        return now - first >= self.delay

    # -- completion ---------------------------------------------------------------------------------------

    def request(self, repo: Repository, pr: PullRequest, completion: Completion) -> None:
        """Queue a completion: the caller has checked what the service checks synchronously."""
        key = (repo.key, pr.number)
        with self._lock:
            if key in self._queued:
                return
            self._queued[key] = completion
            self._outcomes.pop(key, None)
        self._scheduler.at(self.delay, lambda: self._run(repo, pr.number))

    def _auto_complete(self, repo: Repository, pr: PullRequest, auto: AutoMerge) -> None:
        """The forge's auto-merge pass found the policies met: the service notices a moment later
        (its policy evaluation is asynchronous too), then queues the completion."""
        key = (repo.key, pr.number)
        with self._lock:
            if key in self._noticing or key in self._queued:
                return
            self._noticing.add(key)

        def enter() -> None:
            with self._lock:
                self._noticing.discard(key)
            if pr.state == "open" and pr.auto_merge is auto:
                completion = Completion(
                    time.time(),
                    auto.enabled_by,
                    auto.method,
                    None,
                    auto.commit_title or None,
                    auto.delete_source_branch,
                    auto=True,
                )
                self.request(repo, pr, completion)

        self._scheduler.at(self.delay, enter)

    def _run(self, repo: Repository, number: int) -> None:
        key = (repo.key, number)
        with self._lock:
            completion = self._queued.get(key)
        if completion is None:
            return
        try:
            refusal = self._complete(repo, number, completion)
        finally:
            with self._lock:
                self._queued.pop(key, None)
                if self.forge.pull(repo, number).merged:
                    self._completed[key] = completion.queued_at
        if refusal is not None:
            with self._lock:
                self._outcomes[key] = refusal
            log.info("Azure DevOps completion of %s!%d: %s", repo.full_name, number, refusal.status)

    def _complete(self, repo: Repository, number: int, completion: Completion) -> Outcome | None:
        pr = self.forge.pull(repo, number)
        if pr.state != "open":
            return None
        base = repo.branches.get(pr.base_ref)

        def refuse(status: str, message: str | None = None) -> Outcome:
            return Outcome(base, pr.head_sha, status, message, completion.queued_at)

        if completion.sha is not None and completion.sha != pr.head_sha:
            return refuse("failure", "The source branch was updated after completion was requested.")
        missing, failing = self.forge.checks(repo, pr.base_ref, pr.head_sha)
        if missing or failing:
            # Auto-complete keeps waiting for its policies; an explicit completion is rejected.
            return None if completion.auto else refuse("rejectedByPolicy")
        if not self.forge.mergeable(repo, pr):
            return refuse("conflicts")
        try:
            self.forge.merge(
                repo,
                number,
                completion.by,
                completion.method,
                pr.head_sha,
                title=completion.title,
                delete_source_branch=completion.delete_source_branch,
            )
        except ForgeError as error:
            return refuse("conflicts" if error.kind == "not_mergeable" else "failure", error.message)
        except GitError as error:
            return refuse("failure", str(error))
        return None
