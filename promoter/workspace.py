"""The GitOps repository through git: a cached clone per remote, promotion branches, commits and pushes.

Why it is shaped this way:
- One bare clone per remote URL is kept under a cache folder and fetched, never re-cloned, and a bump
  never checks out a work tree: files are read from the commit and the new commit is built from trees, so
  the cost of a bump does not grow with the number of files or the length of history, and several
  processes can prepare bumps in one clone at once.
- Which files carry which setter markers is remembered per blob id, so finding an app's files reads only
  blobs that changed since the last run.
- A promotion branch is always rebuilt from the base branch (as gitops-promotion does) and pushed with a
  lease on the value we last saw. When someone else moved it first, the edit is re-applied on the new base
  instead of retrying the same push; the number of such rebases is reported. Before re-applying, a
  publisher that lost the race waits a random time whose ceiling doubles with each loss (jittered
  backoff), so many publishers of one branch spread out instead of colliding again: retrying at once,
  20 publishers of `main` needed up to 19 rebases each and some gave up (bench/push_race.py).
- A fetch or push that met a 5xx or a dropped connection is tried again (up to GIT_ATTEMPTS, jittered
  backoff): otherwise one git hiccup costs a whole task attempt, and under 5% 503 + 5% drops on git a
  few releases in 20 failed with their task retries spent (bench/faults.py).
- Credentials travel as an HTTP header in git's environment (`GIT_CONFIG_*`), never in the remote URL,
  `.git/config`, argv or logs; error texts are scrubbed of the token all the same.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import random
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import git

from promoter.errors import InvalidInputError, PushRejectedError, WorkspaceError

DEFAULT_AUTHOR_NAME = "promoter"
DEFAULT_AUTHOR_EMAIL = "promoter@users.noreply.github.com"
MAX_REBASES = 20
BACKOFF_FIRST = 0.1  # seconds; the ceiling of the random wait doubles after each lost race
BACKOFF_MAX = 4.0

_REF = re.compile(r"[A-Za-z0-9._/-]{1,200}")
_COMMIT = re.compile(r"[0-9a-f]{4,64}")
_REJECTED = ("stale info", "rejected", "non-fast-forward", "fetch first", "cannot lock ref")
# What git and curl say when the forge answered 5xx or the connection broke: worth another try.
_TRANSIENT = (
    "returned error: 5",
    "transfer closed",
    "hung up",
    "unexpected disconnect",
    "early EOF",
    "Empty reply",
    "bad line length",
    "Connection reset",
    "timed out",
)
GIT_ATTEMPTS = 4
_REGULAR_FILE = {0o100644, 0o100755}


@dataclass(frozen=True)
class Author:
    name: str = DEFAULT_AUTHOR_NAME
    email: str = DEFAULT_AUTHOR_EMAIL

    @classmethod
    def from_env(cls) -> Author:
        return cls(
            os.environ.get("PROMOTER_GIT_AUTHOR_NAME", DEFAULT_AUTHOR_NAME),
            os.environ.get("PROMOTER_GIT_AUTHOR_EMAIL", DEFAULT_AUTHOR_EMAIL),
        )


@dataclass(frozen=True)
class PushResult:
    """What `Workspace.publish` did: the commit now on the branch, whether we pushed it, rebases needed."""

    branch: str
    sha: str
    base_sha: str
    changed: list[str]
    pushed: bool
    rebases: int


def split_credentials(url: str) -> tuple[str, str | None]:
    """Remove `user:secret@` from an http(s) URL; return the clean URL and the secret (if any)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    _, _, secret = userinfo.partition(":")  # a user name alone (dev.azure.com's `org@`) is not a secret
    return urlunsplit(parts._replace(netloc=host)), secret or None


def check_ref_name(name: str) -> str:
    if (
        not _REF.fullmatch(name)
        or ".." in name
        or name.startswith(("/", "-"))
        or name.endswith((".lock", "/"))
    ):
        raise InvalidInputError(f"invalid branch name {name!r}: use letters, digits, '.', '_', '-' and '/'")
    return name


class Snapshot:
    """The files of one commit, read from the object database; no work tree involved."""

    def __init__(self, workspace: Workspace, commit: str) -> None:
        self.workspace = workspace
        self.commit = commit

    def is_dir(self, directory: str) -> bool:
        try:
            return bool(self.workspace.repo.commit(self.commit).tree[directory.strip("/")].type == "tree")
        except KeyError:
            return False

    def directories(self, directory: str) -> list[str]:
        """The names of the directories directly inside `directory` ("" for the root), hidden ones left out."""
        path = directory.strip("/")
        output = self.workspace.run(
            "ls-tree", "-z", "-d", "--name-only", self.commit + (f":{path}" if path else "")
        )
        return sorted(name for name in output.split("\0") if name and not name.startswith("."))

    def files(self, directory: str) -> dict[str, str]:
        """Regular files below `directory` (recursively) as path -> blob id; symlinks are never followed."""
        return self._ls([directory.rstrip("/") + "/"], recursive=True)

    def _ls(self, paths: list[str], *, recursive: bool) -> dict[str, str]:
        options = ["-r"] if recursive else []
        output = self.workspace.run("ls-tree", "-z", "--full-tree", *options, self.commit, "--", *paths)
        files = {}
        for record in output.split("\0"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            mode, _, sha = meta.split(" ")
            if int(mode, 8) in _REGULAR_FILE:
                files[path] = sha
        return files

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        """The contents of regular files at `paths`; a path that is missing or not a file is left out."""
        wanted = list(paths)
        if not wanted:
            return {}
        odb = self.workspace.repo.odb
        return {
            path: odb.stream(bytes.fromhex(sha)).read()
            for path, sha in self._ls(wanted, recursive=False).items()
        }

    def index(self, directory: str, keys: Callable[[bytes], Iterable[str]]) -> dict[str, list[str]]:
        """Group the files below `directory` by the keys `keys` finds in them, reading each blob id once ever."""
        cache = self.workspace.blob_cache(keys.__qualname__)
        odb = self.workspace.repo.odb
        grouped: dict[str, list[str]] = {}
        for path, sha in sorted(self.files(directory).items()):
            if sha not in cache:
                cache[sha] = sorted(set(keys(odb.stream(bytes.fromhex(sha)).read())))
            for key in cache[sha]:
                grouped.setdefault(key, []).append(path)
        return grouped


Edit = Callable[[Snapshot], Mapping[str, bytes]]


class Workspace:
    """A bare clone of one remote, kept in `cache_root` and reused between runs."""

    def __init__(
        self,
        remote_url: str,
        cache_root: Path | str,
        *,
        token: str | None = None,
        username: str = "x-access-token",
        base_branch: str = "main",
        author: Author | None = None,
    ) -> None:
        url, secret = split_credentials(remote_url)
        self.remote_url = url
        self.base_branch = check_ref_name(base_branch)
        self.author = author or Author.from_env()
        self._token = token or secret
        self._username = username
        self.path = Path(cache_root) / hashlib.sha256(url.encode()).hexdigest()[:16]
        self._repo: git.Repo | None = None
        self._caches: dict[str, dict[str, list[str]]] = {}

    # -- git plumbing -------------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        env = {"GIT_TERMINAL_PROMPT": "0"}
        if self._token:
            basic = base64.b64encode(f"{self._username}:{self._token}".encode()).decode()
            env |= {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }
        return env

    def _scrub(self, text: str) -> str:
        if self._token:
            basic = base64.b64encode(f"{self._username}:{self._token}".encode()).decode()
            text = text.replace(basic, "***").replace(self._token, "***")
        return text

    def _detail(self, error: git.GitCommandError) -> str:
        """git's own words (stderr, and stdout where --porcelain puts the reason), without secrets."""
        parts = [str(part).strip() for part in (error.stderr, error.stdout) if part]
        text = " ".join(
            part.removeprefix("stderr: ").removeprefix("stdout: ").strip("'\n ") for part in parts
        )
        return self._scrub(" ".join(text.split())) or f"exit status {error.status}"

    def run(self, *args: str) -> str:
        """Run one git command in the clone; a failure becomes a `WorkspaceError` without secrets."""
        try:
            with self.repo.git.custom_environment(**self._environment()):
                return str(self.repo.git.execute(["git", *args], strip_newline_in_stdout=False))
        except git.GitCommandError as error:
            raise WorkspaceError(
                f"git {args[0]} failed for {self.remote_url}: {self._detail(error)}"
            ) from None

    def _transport(self, *args: str) -> str:
        """`run` for a command that talks to the remote: a 5xx or a dropped connection is tried again.

        Fetching is idempotent; a push retried after it did land is refused by its lease, and `publish`
        then finds its change already there. Anything else (401, 404, a refused push) fails at once.
        """
        for attempt in range(GIT_ATTEMPTS):
            try:
                return self.run(*args)
            except WorkspaceError as error:
                if attempt + 1 == GIT_ATTEMPTS or not any(word in str(error) for word in _TRANSIENT):
                    raise
                time.sleep(backoff(attempt + 2))
        raise AssertionError("unreachable")

    def run_input(self, data: bytes, *args: str) -> str:
        """Run one git command that reads `data` on its standard input."""
        result = subprocess.run(
            ["git", *args],
            cwd=self.path,
            input=data,
            capture_output=True,
            env=os.environ | self._environment(),
        )
        if result.returncode != 0:
            detail = self._scrub(result.stderr.decode("utf-8", "replace").strip())
            raise WorkspaceError(f"git {args[0]} failed for {self.remote_url}: {detail}")
        return result.stdout.decode()

    @property
    def repo(self) -> git.Repo:
        if self._repo is None:
            with _locked(self.path.with_name(self.path.name + ".init.lock")):
                if not (self.path / "HEAD").is_file():
                    self.path.mkdir(parents=True, exist_ok=True)
                    git.Repo.init(self.path, bare=True)
                    git.Repo(self.path).create_remote("origin", self.remote_url)
            self._repo = git.Repo(self.path)
        return self._repo

    # -- reading ------------------------------------------------------------------------------------

    def fetch(self) -> str:
        """Bring the cached clone up to date with the remote; return the base branch's commit."""
        with _locked(self.path.with_name(self.path.name + ".fetch.lock")):
            try:
                self._transport(
                    "fetch",
                    "--quiet",
                    "--prune",
                    "--no-tags",
                    "origin",
                    "+refs/heads/*:refs/remotes/origin/*",
                )
            except WorkspaceError as error:
                raise WorkspaceError(
                    f"{error}; check the URL and that the token may read the repository"
                ) from None
        sha = self.remote_sha(self.base_branch)
        if sha is None:
            raise WorkspaceError(f"{self.remote_url} has no branch {self.base_branch!r}; push one first")
        return sha

    def remote_sha(self, branch: str) -> str | None:
        """The commit of `origin/<branch>` as last fetched, or None when the branch does not exist."""
        try:
            return str(self.repo.commit(f"refs/remotes/origin/{check_ref_name(branch)}").hexsha)
        except (git.BadName, ValueError):
            return None

    def snapshot(self, commit: str | None = None) -> Snapshot:
        return Snapshot(self, commit or f"refs/remotes/origin/{self.base_branch}")

    def read(self, path: str, ref: str | None = None) -> str:
        """The text of `path` at `ref` (default: the base branch as last fetched)."""
        try:
            return self.snapshot(ref).read([path])[path].decode("utf-8")
        except KeyError:
            raise WorkspaceError(
                f"{path} does not exist on {ref or self.base_branch} of {self.remote_url}"
            ) from None

    def diff(self, base: str, head: str, path: str) -> str:
        """What `head` changes below `path` since `base`: a summary of the files, then the patch."""
        for commit in (base, head):
            if not _COMMIT.fullmatch(commit):
                raise InvalidInputError(f"{commit!r} is not a commit id; give the hex sha of a commit")
        return self.run("diff", "--stat", "--patch", f"{base}..{head}", "--", path)

    def blob_cache(self, name: str) -> dict[str, list[str]]:
        """A persistent map from blob id to what `name` found in it; blobs never change, so it never expires."""
        if name not in self._caches:
            path = self._cache_file(name)
            try:
                self._caches[name] = json.loads(path.read_text())
            except (OSError, ValueError):
                self._caches[name] = {}
        return self._caches[name]

    def _cache_file(self, name: str) -> Path:
        return self.path / "promoter" / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.json"

    def _save_caches(self) -> None:
        for name, cache in self._caches.items():
            path = self._cache_file(name)
            path.parent.mkdir(exist_ok=True)
            temp = path.with_suffix(f".{os.getpid()}.tmp")
            temp.write_text(json.dumps(cache))
            os.replace(temp, path)

    # -- writing ------------------------------------------------------------------------------------

    def commit(self, base: str, changes: Mapping[str, bytes], message: str) -> str | None:
        """A commit on top of `base` with `changes` (path -> content); None when they change nothing."""
        repo = self.repo
        base_commit = repo.commit(base)
        new_tree = self._write_tree(base_commit.tree.hexsha, _nest(changes))
        if new_tree == base_commit.tree.hexsha:
            return None
        actor = git.Actor(self.author.name, self.author.email)
        commit = git.Commit.create_from_tree(
            repo,
            repo.tree(new_tree),
            message,
            parent_commits=[base_commit],
            author=actor,
            committer=actor,
        )
        return str(commit.hexsha)

    def _write_tree(self, tree: str | None, changes: dict[str, object]) -> str:
        """Write the tree `tree` with `changes` applied; only trees on a changed path are rewritten (by git)."""
        entries: dict[str, str] = {}  # name -> "mode type sha", as ls-tree and mktree speak
        if tree is not None:
            for record in self.run("ls-tree", "-z", tree).split("\0"):
                if record:
                    meta, _, name = record.partition("\t")
                    entries[name] = meta
        for name, change in changes.items():
            mode, kind, sha = entries[name].split(" ") if name in entries else ("", "", "")
            if isinstance(change, dict):
                entries[name] = f"040000 tree {self._write_tree(sha if kind == 'tree' else None, change)}"
            else:
                assert isinstance(change, bytes)
                blob = self.run_input(change, "hash-object", "-w", "--stdin").strip()
                entries[name] = f"{mode if mode in ('100644', '100755') else '100644'} blob {blob}"
        listing = "".join(f"{meta}\t{name}\0" for name, meta in entries.items())
        return self.run_input(listing.encode(), "mktree", "-z").strip()

    def push(self, commit: str, branch: str, expected: str | None) -> None:
        """Push `commit` to `branch` only if the remote still holds `expected` (None: must not exist yet)."""
        # The lease alone permits the forced update; a `+` in the refspec would override the lease.
        lease = f"--force-with-lease=refs/heads/{branch}:{expected or ''}"
        try:
            # git updates origin/<branch> after a push: the same lock as fetch keeps two processes apart.
            with _locked(self.path.with_name(self.path.name + ".fetch.lock")):
                self._transport(
                    "push", "--porcelain", "--quiet", lease, "origin", f"{commit}:refs/heads/{branch}"
                )
        except WorkspaceError as error:
            if any(word in str(error) for word in _REJECTED):
                raise PushRejectedError(
                    f"{branch} moved on {self.remote_url} while we were working"
                ) from None
            raise

    def publish(self, branch: str, edit: Edit, message: str) -> PushResult:
        """Rebuild `branch` from the base branch with the changes `edit` returns, and push it.

        `edit` reads a snapshot of the base and returns path -> new content; it is called again on the new
        base when the branch or the base moved underneath us. Every push carries a lease, so nobody's
        commit is overwritten unseen. A rerun that finds its own change already pushed pushes nothing.
        """
        check_ref_name(branch)
        try:
            for attempt in range(MAX_REBASES + 1):
                base = self.fetch()
                current = self.remote_sha(branch)
                changes = edit(self.snapshot(base))
                sha = self.commit(base, changes, message)
                if sha is None:
                    return PushResult(branch, current or base, base, [], pushed=False, rebases=attempt)
                changed = sorted(changes)
                if current is not None and current != base and self._same_change(current, sha, base):
                    return PushResult(branch, current, base, changed, pushed=False, rebases=attempt)
                try:
                    self.push(sha, branch, current)
                except PushRejectedError:
                    if attempt < MAX_REBASES:
                        time.sleep(backoff(attempt))
                    continue
                return PushResult(branch, sha, base, changed, pushed=True, rebases=attempt)
        finally:
            self._save_caches()
        raise WorkspaceError(
            f"{branch} on {self.remote_url} kept moving: gave up after {MAX_REBASES} rebases; try again later"
        )

    def _same_change(self, current: str, new: str, base: str) -> bool:
        """True when the remote branch already holds this very change on this very base (a rerun)."""
        remote, ours = self.repo.commit(current), self.repo.commit(new)
        return remote.tree == ours.tree and [p.hexsha for p in remote.parents] == [base]


def backoff(attempt: int) -> float:
    """Seconds to wait after losing the race `attempt + 1` times: random, so racers stop colliding."""
    return random.uniform(0.0, min(BACKOFF_MAX, BACKOFF_FIRST * 2**attempt))


def _nest(changes: Mapping[str, bytes]) -> dict[str, object]:
    """`{"a/b/c": data}` -> `{"a": {"b": {"c": data}}}`, refusing paths that could leave the tree."""
    root: dict[str, object] = {}
    for path, data in changes.items():
        parts = path.split("/")
        if any(part in ("", ".", "..", ".git") for part in parts) or "\0" in path:
            raise InvalidInputError(f"refusing to write {path!r}: not a plain relative path")
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InvalidInputError(f"refusing to write {path!r}: {part} is a file")
            node = child
        node[parts[-1]] = data
    return root


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise processes on this machine that update the same cached clone's refs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
