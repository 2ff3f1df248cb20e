"""The forge's state and rules, shared by both personalities (GitHub and Azure DevOps).

Repositories are real bare git repositories; pull requests, commit statuses, branch protection and
auto-merge live here, in memory, and are saved next to each repository (`sandbox.json`) when the forge
closes, so a restarted sandbox carries on where it stopped. The personalities only translate HTTP into
these calls and these objects into their own JSON.

Concurrency: one lock guards the metadata and is never held across a git command; merges into a branch
are serialised by a lock per (repository, branch), and the ref itself moves by compare-and-swap, so a
concurrent `git push` can make a merge retry but never lose a commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from sandbox.gitrepo import SHA, BareRepo, CommitInfo, GitError, Identity, is_branch_name

log = logging.getLogger("sandbox")

Kind = Literal["github", "azure"]
MergeMethod = Literal["merge", "squash", "rebase", "rebaseMerge"]
GREEN = frozenset({"success", "succeeded"})
PENDING = frozenset({"pending", "notSet", "notApplicable"})
NAME = re.compile(r"(?!\.)[A-Za-z0-9_.-]{1,100}")
BOT_TOKEN = "sandbox-token"  # noqa: S105 - a documented, well-known default for a loopback sandbox
HUMAN_TOKEN = "alice-token"  # noqa: S105
DEFAULT_TOKENS = {BOT_TOKEN: "promoter-bot", HUMAN_TOKEN: "alice"}
WEB_COMMITTER = Identity("GitHub", "noreply@github.com")


class ForgeError(Exception):
    """A request the forge refuses; `kind` picks the HTTP status in each personality."""

    def __init__(
        self,
        kind: Literal["not_found", "invalid", "exists", "not_mergeable", "head_moved", "conflict"],
        message: str,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.field = field


def _stable_int(text: str, digits: int = 8) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:digits], 16)


@dataclass(frozen=True)
class Account:
    login: str

    @property
    def id(self) -> int:
        return _stable_int(f"user:{self.login}", 7)

    @property
    def uuid(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"promoter-sandbox:user:{self.login}"))

    @property
    def identity(self) -> Identity:
        return Identity(self.login, f"{self.login}@users.noreply.sandbox.local")


@dataclass
class AutoMerge:
    enabled_by: str
    method: MergeMethod = "merge"
    commit_title: str = ""
    commit_message: str = ""
    delete_source_branch: bool = False
    enabled_at: float = field(default_factory=time.time)


@dataclass
class Review:
    """A GitHub pull request review: `state` APPROVED, CHANGES_REQUESTED, COMMENTED or DISMISSED."""

    id: int
    login: str
    state: str
    commit_id: str
    body: str
    submitted_at: float


@dataclass
class PullRequest:
    number: int
    title: str
    body: str
    head_ref: str
    base_ref: str
    head_sha: str
    created_by: str
    created_at: float
    updated_at: float
    state: Literal["open", "closed"] = "open"
    merged: bool = False
    merged_at: float | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    base_sha_at_merge: str | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    auto_merge: AutoMerge | None = None
    merge_failure: str | None = None
    completion_options: dict[str, Any] = field(
        default_factory=dict
    )  # Azure DevOps' completionOptions, as sent
    reviews: list[Review] = field(default_factory=list)  # GitHub's, oldest first


@dataclass
class Status:
    id: int
    sha: str
    state: str
    context: str
    description: str | None
    target_url: str | None
    creator: str
    created_at: float
    genre: str | None = None

    @property
    def key(self) -> str:
        return f"{self.genre}/{self.context}" if self.genre else self.context


@dataclass
class Repository:
    kind: Kind
    owner: str
    name: str
    project: str | None = None
    default_branch: str = "main"
    created_at: float = field(default_factory=time.time)
    created_by: str = "promoter-bot"
    description: str | None = None
    protection: dict[str, list[str]] = field(default_factory=dict)
    pulls: dict[int, PullRequest] = field(default_factory=dict)
    statuses: dict[str, list[Status]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict, repr=False)
    known_commits: set[str] = field(default_factory=set, repr=False)

    @property
    def key(self) -> str:
        return repo_key(self.kind, self.owner, self.name, self.project)

    @property
    def full_name(self) -> str:
        return (
            f"{self.owner}/{self.project}/{self.name}"
            if self.kind == "azure"
            else f"{self.owner}/{self.name}"
        )

    @property
    def id(self) -> int:
        return _stable_int(f"repo:{self.key}")

    @property
    def uuid(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"promoter-sandbox:repo:{self.key}"))

    @property
    def project_uuid(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"promoter-sandbox:project:{self.owner}/{self.project}"))

    @property
    def flux_uid(self) -> str:
        """Stands in for the UID of the Flux `Provider` object: 8 hex digits, stable per repository."""
        return hashlib.sha256(f"flux-provider:{self.key}".encode()).hexdigest()[:8]

    def node_id(self, number: int) -> str:
        return "PR_" + hashlib.sha256(f"{self.key}#{number}".encode()).hexdigest()[:20]

    def pull_id(self, number: int) -> int:
        return _stable_int(f"{self.key}#{number}", 9)


def repo_key(kind: Kind, owner: str, name: str, project: str | None = None) -> str:
    parts = [kind, owner, project, name] if kind == "azure" else [kind, owner, name]
    return "/".join(str(part).lower() for part in parts)


def check_name(value: str, what: str) -> str:
    if not NAME.fullmatch(value) or value.lower().endswith(".git"):
        raise ForgeError(
            "invalid",
            f"{what} {value[:100]!r} is invalid: use 1-100 letters, digits, '.', '_' or '-' "
            "(not starting with '.' nor ending with '.git')",
            field=what,
        )
    return value


RefListener = Callable[[Repository, str, str | None, str | None], None]


class ForgeObserver(Protocol):
    def status_added(self, repo: Repository, status: Status) -> None: ...

    def pull_closed(self, repo: Repository, pr: PullRequest) -> None: ...

    def review_added(self, repo: Repository, pr: PullRequest, review: Review) -> None: ...


AutoCompleter = Callable[[Repository, PullRequest, AutoMerge], None]


class Forge:
    """All repositories of one sandbox root."""

    def __init__(self, root: Path, tokens: dict[str, str] | None = None) -> None:
        # Absolute: `git http-backend` needs GIT_PROJECT_ROOT that does not depend on its working directory.
        self.root = root.resolve()
        self.tokens = dict(tokens or DEFAULT_TOKENS)
        # Teams (GitHub `org/slug`) and groups (Azure DevOps display names), lower-cased: login -> state
        # ("active", or "pending" for an invitation not yet accepted).
        self.teams: dict[str, dict[str, str]] = {}
        self._lock = threading.RLock()
        self._repos: dict[str, Repository] = {}
        self._git: dict[str, BareRepo] = {}
        self._ref_locks: dict[tuple[str, str], threading.Lock] = {}
        self._listeners: list[RefListener] = []
        # Told of statuses and closed PRs after the change (the webhooks, sandbox/webhooks.py).
        self.observers: list[ForgeObserver] = []
        self._nodes: dict[str, tuple[str, int]] = {}
        self._mergeable: dict[tuple[str, str, str], bool] = {}
        self._status_ids = 0
        self._automerge = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-automerge")
        self._queued: set[str] = set()
        self._closed = False
        # Azure DevOps completes asynchronously: its personality queues auto-completions itself.
        self.auto_completer: AutoCompleter | None = None
        self._load()

    # -- accounts ---------------------------------------------------------------------------------------

    def account_for_token(self, token: str) -> Account | None:
        login = self.tokens.get(token)
        return Account(login) if login else None

    # -- repositories -----------------------------------------------------------------------------------

    def _path(self, kind: Kind, owner: str, name: str, project: str | None) -> Path:
        if kind == "azure":
            return self.root / "azure" / owner.lower() / str(project).lower() / f"{name.lower()}.git"
        return self.root / "github" / owner.lower() / f"{name.lower()}.git"

    def _load(self) -> None:
        for meta in sorted(self.root.glob("*/**/*.git/sandbox.json")):
            try:
                repo = _repository_from_json(json.loads(meta.read_text()))
            except (ValueError, TypeError, KeyError) as error:
                log.warning("ignoring unreadable forge state %s: %s", meta, error)
                continue
            self._register(repo, BareRepo.init(meta.parent, repo.default_branch))
            for statuses in repo.statuses.values():
                self._status_ids = max([self._status_ids, *(s.id for s in statuses)])

    def _register(self, repo: Repository, git: BareRepo) -> None:
        self._repos[repo.key] = repo
        self._git[repo.key] = git
        repo.branches = git.branches()
        git.set_protected(repo.protection)
        for number in repo.pulls:
            self._nodes[repo.node_id(number)] = (repo.key, number)

    def save(self) -> None:
        with self._lock:
            for key, repo in self._repos.items():
                data = json.dumps(_repository_to_json(repo), indent=1)
                target = self._git[key].path / "sandbox.json"
                tmp = target.with_suffix(".tmp")
                tmp.write_text(data)
                tmp.replace(target)

    def close(self) -> None:
        self._closed = True
        self._automerge.shutdown(wait=True)
        self.save()

    def create_repo(
        self,
        kind: Kind,
        owner: str,
        name: str,
        project: str | None = None,
        created_by: str = "promoter-bot",
        description: str | None = None,
        exist_ok: bool = False,
    ) -> Repository:
        check_name(owner, "owner")
        check_name(name, "name")
        if kind == "azure":
            check_name(str(project), "project")
        key = repo_key(kind, owner, name, project)
        with self._lock:
            existing = self._repos.get(key)
            if existing is not None:
                if exist_ok:
                    return existing
                raise ForgeError("exists", "name already exists on this account", field="name")
            repo = Repository(kind, owner, name, project, created_by=created_by, description=description)
            self._register(repo, BareRepo.init(self._path(kind, owner, name, project)))
        return repo

    def repo(self, kind: Kind, owner: str, name: str, project: str | None = None) -> Repository:
        found = self._repos.get(repo_key(kind, owner, name, project))
        if found is None:
            raise ForgeError("not_found", "Not Found")
        return found

    def find_repo(self, kind: Kind, owner: str, name_or_id: str, project: str | None = None) -> Repository:
        """Azure DevOps addresses a repository by name or by id."""
        try:
            return self.repo(kind, owner, name_or_id, project)
        except ForgeError:
            for repo in self.repos():
                if repo.kind == kind and repo.uuid == name_or_id.lower():
                    return repo
            raise

    def repos(self) -> list[Repository]:
        with self._lock:
            return list(self._repos.values())

    def git(self, repo: Repository) -> BareRepo:
        return self._git[repo.key]

    def repo_for_node(self, node_id: str) -> tuple[Repository, PullRequest]:
        with self._lock:
            found = self._nodes.get(node_id)
            if found is None:
                raise ForgeError(
                    "not_found", f"Could not resolve to a node with the global id of '{node_id}'"
                )
            repo = self._repos[found[0]]
            return repo, repo.pulls[found[1]]

    # -- refs and commits -------------------------------------------------------------------------------

    def subscribe(self, listener: RefListener) -> None:
        self._listeners.append(listener)

    def resolve_known(self, repo: Repository, ref: str) -> str | None:
        """`resolve` without running git: a branch, or a commit the forge has already seen."""
        with self._lock:
            branch = ref.removeprefix("refs/").removeprefix("heads/")
            if branch in repo.branches:
                return repo.branches[branch]
            if ref in repo.known_commits or ref in repo.branches.values():
                return ref
        return None

    def resolve(self, repo: Repository, ref: str) -> str | None:
        """A branch name, `heads/<b>`, `refs/heads/<b>` or a (possibly short) commit id, as a full sha."""
        known = self.resolve_known(repo, ref)
        if known is not None:
            return known
        if re.fullmatch(r"[0-9a-f]{7,40}", ref):
            result = self.git(repo).git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
            sha = result.stdout.decode().strip()
            if result.returncode == 0 and SHA.fullmatch(sha):
                with self._lock:
                    repo.known_commits.add(sha)
                return sha
        return None

    def refresh(self, repo: Repository) -> None:
        """Re-read the branches after a push: move PR heads, wake watchers and auto-merge."""
        branches = self.git(repo).branches()
        with self._lock:
            old = repo.branches
            repo.branches = branches
            changed = [(b, old.get(b), branches.get(b)) for b in set(old) | set(branches)]
            changed = [item for item in changed if item[1] != item[2]]
            now = time.time()
            for branch, _, new in changed:
                for pr in repo.pulls.values():
                    if pr.state == "open" and pr.head_ref == branch and new is not None:
                        pr.head_sha = new
                        pr.updated_at = now
        for branch, before, after in changed:
            self._notify(repo, branch, before, after)
        if changed:
            self.kick(repo)

    def _notify(self, repo: Repository, branch: str, before: str | None, after: str | None) -> None:
        for listener in self._listeners:
            try:
                listener(repo, branch, before, after)
            except Exception:
                log.exception("ref listener failed for %s %s", repo.full_name, branch)

    def commit(self, repo: Repository, sha: str) -> CommitInfo:
        return self.git(repo).commit_info(sha)

    def commit_files(
        self, repo: Repository, branch: str, files: dict[str, bytes], message: str, by: str = "promoter-bot"
    ) -> str:
        """Commit files onto a branch as `by` (for seeding and tests), as if pushed.

        A new branch starts from the default branch (or is a root commit in an empty repository).
        """
        if not is_branch_name(branch):
            raise ForgeError("invalid", f"invalid branch name {branch!r}", field="branch")
        with self._ref_lock(repo, branch):
            branches = self.git(repo).branches()
            current = branches.get(branch)
            parent = current or branches.get(repo.default_branch)
            sha = self.git(repo).commit_files(branch, files, message, Account(by).identity, parent, current)
        self.refresh(repo)
        return sha

    @contextmanager
    def _ref_lock(self, repo: Repository, branch: str) -> Iterator[None]:
        with self._lock:
            lock = self._ref_locks.setdefault((repo.key, branch), threading.Lock())
        with lock:
            yield

    # -- protection -------------------------------------------------------------------------------------

    def protect(self, repo: Repository, branch: str, contexts: list[str] | None) -> None:
        """Protect `branch` (no force-push, no deletion) requiring `contexts`; None removes protection."""
        with self._lock:
            if contexts is None:
                repo.protection.pop(branch, None)
            else:
                repo.protection[branch] = list(dict.fromkeys(contexts))
            protected = list(repo.protection)
        self.git(repo).set_protected(protected)
        self.kick(repo)

    def checks(self, repo: Repository, branch: str, sha: str) -> tuple[list[str], list[str]]:
        """(required contexts still missing or pending, required contexts failing) for `sha` into `branch`."""
        with self._lock:
            required = repo.protection.get(branch, [])
            latest = self._latest(repo, sha)
        missing, failing = [], []
        for context in required:
            status = latest.get(context) or next((s for s in latest.values() if s.context == context), None)
            if status is None or status.state in PENDING:
                missing.append(context)
            elif status.state not in GREEN:
                failing.append(context)
        return missing, failing

    def _latest(self, repo: Repository, sha: str) -> dict[str, Status]:
        latest: dict[str, Status] = {}
        for status in reversed(repo.statuses.get(sha, [])):
            latest.setdefault(status.key, status)
        return latest

    # -- statuses ---------------------------------------------------------------------------------------

    def add_status(
        self,
        repo: Repository,
        sha: str,
        by: str,
        state: str,
        context: str,
        description: str | None = None,
        target_url: str | None = None,
        genre: str | None = None,
    ) -> Status:
        if self.resolve(repo, sha) != sha:
            raise ForgeError("invalid", f"No commit found for SHA: {sha}", field="sha")
        with self._lock:
            self._status_ids += 1
            status = Status(
                self._status_ids, sha, state, context, description, target_url, by, time.time(), genre
            )
            repo.statuses.setdefault(sha, []).append(status)
        for observer in self.observers:
            observer.status_added(repo, status)
        self.kick(repo)
        return status

    def statuses(self, repo: Repository, sha: str) -> list[Status]:
        """Newest first, as both providers list them."""
        with self._lock:
            return list(reversed(repo.statuses.get(sha, [])))

    def latest_statuses(self, repo: Repository, sha: str) -> list[Status]:
        """The newest status of each context, newest first."""
        with self._lock:
            return sorted(self._latest(repo, sha).values(), key=lambda s: s.id, reverse=True)

    # -- pull requests ----------------------------------------------------------------------------------

    def pull(self, repo: Repository, number: int) -> PullRequest:
        with self._lock:
            pr = repo.pulls.get(number)
        if pr is None:
            raise ForgeError("not_found", "Not Found")
        return pr

    def pulls(self, repo: Repository) -> list[PullRequest]:
        with self._lock:
            return list(repo.pulls.values())

    def create_pull(
        self, repo: Repository, by: str, head: str, base: str, title: str, body: str = ""
    ) -> PullRequest:
        if not title.strip():
            raise ForgeError("invalid", "title is missing", field="title")
        with self._lock:
            head_sha = repo.branches.get(head)
            base_sha = repo.branches.get(base)
        if base_sha is None:
            raise ForgeError("invalid", f"base branch {base!r} does not exist", field="base")
        if head_sha is None:
            raise ForgeError("invalid", f"head branch {head!r} does not exist", field="head")
        if head == base or self.git(repo).is_ancestor(head_sha, base_sha):
            raise ForgeError("invalid", f"No commits between {base} and {head}", field="head")
        with self._lock:
            self._refuse_duplicate(repo, head, base)
            now = time.time()
            number = max(repo.pulls, default=0) + 1
            pr = PullRequest(number, title, body, head, base, head_sha, by, now, now)
            repo.pulls[number] = pr
            self._nodes[repo.node_id(number)] = (repo.key, number)
        return pr

    def _refuse_duplicate(self, repo: Repository, head: str, base: str, number: int | None = None) -> None:
        for other in repo.pulls.values():
            if (
                other.state == "open"
                and other.head_ref == head
                and other.base_ref == base
                and other.number != number
            ):
                raise ForgeError("exists", f"A pull request already exists for {repo.owner}:{head}.")

    def update_pull(
        self,
        repo: Repository,
        number: int,
        by: str,
        *,
        title: str | None = None,
        body: str | None = None,
        state: Literal["open", "closed"] | None = None,
        base: str | None = None,
    ) -> PullRequest:
        pr = self.pull(repo, number)
        with self._lock:
            if base is not None and base not in repo.branches:
                raise ForgeError("invalid", f"Proposed base branch '{base}' was not found", field="base")
            if state == "open" and pr.state == "closed":
                if pr.merged:
                    raise ForgeError("invalid", "Cannot reopen a merged pull request", field="state")
                self._refuse_duplicate(repo, pr.head_ref, base or pr.base_ref, number)
            if title is not None:
                if not title.strip():
                    raise ForgeError("invalid", "title is missing", field="title")
                pr.title = title
            if body is not None:
                pr.body = body
            if base is not None:
                pr.base_ref = base
            if state is not None and state != pr.state:
                pr.state = state
                pr.closed_at = time.time() if state == "closed" else None
                pr.closed_by = by if state == "closed" else None
                if state == "closed":
                    pr.auto_merge = None
                    for observer in self.observers:
                        observer.pull_closed(repo, pr)
            pr.updated_at = time.time()
        self.kick(repo)
        return pr

    def add_review(
        self, repo: Repository, number: int, by: str, state: str, commit_id: str | None, body: str
    ) -> Review:
        """GitHub refuses an author's approval of their own PR: 422 "Can not approve your own pull
        request" (a real answer quoted in hubtty/hubtty#33)."""
        pr = self.pull(repo, number)
        with self._lock:
            if pr.state != "open":
                raise ForgeError("invalid", "Can not review a closed pull request")
            if state == "APPROVED" and by.lower() == pr.created_by.lower():
                raise ForgeError("invalid", "Can not approve your own pull request")
            ids = [r.id for p in repo.pulls.values() for r in p.reviews]
            review = Review(
                max(ids, default=_stable_int(repo.key, 6)) + 1,
                by,
                state,
                commit_id or pr.head_sha,
                body,
                time.time(),
            )
            pr.reviews.append(review)
            pr.updated_at = time.time()
        for observer in self.observers:
            observer.review_added(repo, pr, review)
        return review

    def member(self, team: str, login: str) -> str | None:
        """`login`'s membership state in `team` (None when not a member, or no such team)."""
        return self.teams.get(team.lower(), {}).get(login.lower())

    def mergeable(self, repo: Repository, pr: PullRequest) -> bool | None:
        """Whether head merges cleanly into base (None once closed), cached per (base, head) pair."""
        if pr.state != "open":
            return None
        base_sha = repo.branches.get(pr.base_ref)
        if base_sha is None:
            return False
        key = (repo.key, base_sha, pr.head_sha)
        if key not in self._mergeable:
            self._mergeable[key] = self.git(repo).merge_tree(base_sha, pr.head_sha) is not None
        return self._mergeable[key]

    def set_auto_merge(self, repo: Repository, number: int, auto: AutoMerge | None) -> PullRequest:
        pr = self.pull(repo, number)
        with self._lock:
            if auto is not None and pr.state != "open":
                raise ForgeError("not_mergeable", "Pull request is closed")
            pr.auto_merge = auto
            pr.updated_at = time.time()
        self.kick(repo)
        return pr

    def merge(
        self,
        repo: Repository,
        number: int,
        by: str,
        method: MergeMethod = "merge",
        sha: str | None = None,
        title: str | None = None,
        message: str | None = None,
        delete_source_branch: bool = False,
    ) -> PullRequest:
        """Merge a pull request: a real three-way merge, gated on the base branch's required checks."""
        pr = self.pull(repo, number)
        if method in ("rebase", "rebaseMerge") and repo.kind == "github":
            raise ForgeError("not_mergeable", "Rebase merges are not allowed on this repository.")
        with self._ref_lock(repo, pr.base_ref):
            with self._lock:
                if pr.state != "open":
                    raise ForgeError("not_mergeable", "Pull Request is not mergeable")
                head_sha, base_ref = pr.head_sha, pr.base_ref
            if sha is not None and sha != head_sha:
                raise ForgeError("head_moved", "Head branch was modified. Review and try the merge again.")
            missing, failing = self.checks(repo, base_ref, head_sha)
            if failing:
                raise ForgeError("not_mergeable", f'Required status check "{failing[0]}" is failing.')
            if missing:
                raise ForgeError("not_mergeable", f'Required status check "{missing[0]}" is expected.')
            author = Account(by).identity
            committer = WEB_COMMITTER if repo.kind == "github" else author
            text = _merge_message(repo, pr, method, title, message)
            git = self.git(repo)
            for _attempt in range(5):
                base_sha = git.branches().get(base_ref)
                if base_sha is None:
                    raise ForgeError("not_mergeable", f"Base branch {base_ref} no longer exists")
                commit, source = self._merge_commit(git, method, base_sha, head_sha, text, author, committer)
                if git.update_ref(base_ref, commit, base_sha):
                    break
            else:
                raise ForgeError("conflict", f"Base branch {base_ref} kept moving; try the merge again.")
            if source != head_sha:  # Azure DevOps' rebase strategies rewrite the source branch too
                git.update_ref(pr.head_ref, source, head_sha)
                head_sha = source
            with self._lock:
                now = time.time()
                pr.state, pr.merged, pr.merged_at, pr.merged_by = "closed", True, now, by
                pr.merge_commit_sha, pr.base_sha_at_merge = commit, base_sha
                pr.closed_at, pr.closed_by, pr.updated_at, pr.auto_merge = now, by, now, None
                repo.known_commits.add(commit)
            if delete_source_branch:
                git.delete_branch(pr.head_ref, head_sha)
        self.refresh(repo)
        for observer in self.observers:
            observer.pull_closed(repo, pr)
        return pr

    def _merge_commit(
        self,
        git: BareRepo,
        method: MergeMethod,
        base_sha: str,
        head_sha: str,
        text: str,
        author: Identity,
        committer: Identity,
    ) -> tuple[str, str]:
        """(the commit the target moves to, the source branch's head afterwards) for one strategy.

        Azure DevOps' `rebase` replays the source onto the target and fast-forwards it; `rebaseMerge`
        replays, then adds a two-parent merge; both update the source branch (GitPullRequestMergeStrategy).
        """
        if method in ("rebase", "rebaseMerge"):
            rebased = git.rebase(base_sha, head_sha, committer)
            if rebased is None:
                raise ForgeError("not_mergeable", "Pull Request is not mergeable: the rebase conflicts")
            if method == "rebase":
                return rebased, rebased
            rebased_tree = git.commit_info(rebased).tree
            return git.commit_tree(rebased_tree, [base_sha, rebased], text, author, committer), rebased
        tree = git.merge_tree(base_sha, head_sha)
        if tree is None:
            raise ForgeError("not_mergeable", "Pull Request is not mergeable")
        parents = [base_sha, head_sha] if method == "merge" else [base_sha]
        return git.commit_tree(tree, parents, text, author, committer), head_sha

    def kick(self, repo: Repository) -> None:
        """Re-evaluate auto-merge for a repository, in the background, at most once queued at a time."""
        with self._lock:
            if self._closed or repo.key in self._queued:
                return
            if not any(pr.auto_merge and pr.state == "open" for pr in repo.pulls.values()):
                return
            self._queued.add(repo.key)
        self._automerge.submit(self._auto_merge_pass, repo)

    def _auto_merge_pass(self, repo: Repository) -> None:
        with self._lock:
            self._queued.discard(repo.key)
            candidates = [pr for pr in repo.pulls.values() if pr.auto_merge and pr.state == "open"]
        for pr in candidates:
            auto = pr.auto_merge
            if auto is None or self.checks(repo, pr.base_ref, pr.head_sha) != ([], []):
                continue
            if not self.mergeable(repo, pr):
                continue
            if repo.kind == "azure" and self.auto_completer is not None:
                self.auto_completer(repo, pr, auto)
                continue
            try:
                self.merge(
                    repo,
                    pr.number,
                    auto.enabled_by,
                    auto.method,
                    title=auto.commit_title or None,
                    message=auto.commit_message or None,
                    delete_source_branch=auto.delete_source_branch,
                )
            except (ForgeError, GitError) as error:
                with self._lock:
                    pr.merge_failure = str(error)
                log.info("auto-merge of %s#%d did not happen: %s", repo.full_name, pr.number, error)


def _merge_message(
    repo: Repository, pr: PullRequest, method: MergeMethod, title: str | None, message: str | None
) -> str:
    """Each forge's default merge commit message: GitHub's "Merge pull request #N from ...", Azure's "Merged PR N: ..."."""
    if repo.kind == "azure":
        title = title or f"Merged PR {pr.number}: {pr.title}"
        message = message or ""
    elif method == "merge":
        title = title or f"Merge pull request #{pr.number} from {repo.owner}/{pr.head_ref}"
        message = pr.title if message is None else message
    else:
        title = title or f"{pr.title} (#{pr.number})"
        message = message or ""
    return title + (f"\n\n{message}" if message else "") + "\n"


def _repository_to_json(repo: Repository) -> dict[str, Any]:
    data = asdict(repo)
    data.pop("branches")
    data.pop("known_commits")
    data["pulls"] = [asdict(pr) for pr in repo.pulls.values()]
    data["statuses"] = [asdict(s) for statuses in repo.statuses.values() for s in statuses]
    return data


def _repository_from_json(data: dict[str, Any]) -> Repository:
    pulls = {}
    for item in data.pop("pulls"):
        auto = item.pop("auto_merge")
        reviews = [Review(**r) for r in item.pop("reviews", [])]
        pulls[item["number"]] = PullRequest(
            **item, auto_merge=AutoMerge(**auto) if auto else None, reviews=reviews
        )
    statuses: dict[str, list[Status]] = {}
    for item in data.pop("statuses"):
        statuses.setdefault(item["sha"], []).append(Status(**item))
    return Repository(**data, pulls=pulls, statuses=statuses)
