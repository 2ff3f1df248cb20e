"""A bare git repository driven through git's plumbing, so the forge never needs a work tree.

Merges are real three-way merges (`git merge-tree --write-tree`), commits are made with `git commit-tree`,
and every ref update is a compare-and-swap (`git update-ref <ref> <new> <old>`): a client pushing at the same
moment can make an update fail, never silently lose a commit.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

SHA = re.compile(r"[0-9a-f]{40}")
ZERO = "0" * 40
# A conservative subset of git's ref-name rules (check-ref-format): enough for real branch names,
# and nothing that could be read as an option, a revision range or a path outside refs/heads.
BRANCH = re.compile(r"(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)(?!.*\.lock$)[A-Za-z0-9._/-]{1,200}(?<![./])")

_HOOK = """#!/bin/sh
# Installed by the promoter sandbox: the push side of branch protection. Protected branches
# (git config sandbox.protected) refuse deletion and non-fast-forward updates, as GitHub does.
protected=$(git config --get-all sandbox.protected)
zero=0000000000000000000000000000000000000000
status=0
while read -r old new ref; do
  for branch in $protected; do
    [ "$ref" = "refs/heads/$branch" ] || continue
    if [ "$new" = "$zero" ]; then
      echo "error: GH006: Protected branch update failed for $ref."
      echo "error: Cannot delete this protected branch"
      status=1
    elif [ "$old" != "$zero" ] && ! git merge-base --is-ancestor "$old" "$new"; then
      echo "error: GH006: Protected branch update failed for $ref."
      echo "error: Cannot force-push to this branch"
      status=1
    fi
  done
done
exit $status
"""


class GitError(Exception):
    """A git command failed; the message carries git's own stderr."""


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Identity
    author_date: int
    committer: Identity
    committer_date: int
    message: str


def is_branch_name(name: str) -> bool:
    return bool(BRANCH.fullmatch(name))


class BareRepo:
    """One bare repository on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def git(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        full_env = {**os.environ, "GIT_DIR": str(self.path), "LC_ALL": "C", **(env or {})}
        result = subprocess.run(
            ["git", *args], input=input, capture_output=True, env=full_env, cwd=self.path, check=False
        )
        if check and result.returncode != 0:
            raise GitError(f"git {args[0]} failed: {result.stderr.decode(errors='replace').strip()}")
        return result

    def out(self, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
        return self.git(*args, input=input, env=env).stdout.decode().strip()

    @classmethod
    def init(cls, path: Path, default_branch: str = "main") -> BareRepo:
        """Create (or reopen) a bare repository with the protection hook and push over HTTP enabled."""
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        if not (path / "HEAD").exists():
            repo.git("init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path))
            repo.git("config", "http.receivepack", "true")
            repo.git("config", "receive.fsckObjects", "true")
        hook = path / "hooks" / "pre-receive"
        hook.parent.mkdir(exist_ok=True)
        if not hook.exists() or hook.read_text() != _HOOK:
            hook.write_text(_HOOK)
            hook.chmod(0o755)
        return repo

    def branches(self) -> dict[str, str]:
        text = self.out("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/")
        result = {}
        for line in text.splitlines():
            sha, ref = line.split(" ", 1)
            result[ref.removeprefix("refs/heads/")] = sha
        return result

    def tags(self) -> dict[str, tuple[str, str | None]]:
        """tag name -> (the tag's object id, the commit it peels to when it is an annotated tag)."""
        text = self.out("for-each-ref", "--format=%(objectname) %(*objectname) %(refname)", "refs/tags/")
        result: dict[str, tuple[str, str | None]] = {}
        for line in text.splitlines():
            sha, peeled, ref = line.split(" ", 2)
            result[ref.removeprefix("refs/tags/")] = (sha, peeled or None)
        return result

    def has_commit(self, sha: str) -> bool:
        return SHA.fullmatch(sha) is not None and (
            self.git("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0
        )

    def set_protected(self, branches: Iterable[str]) -> None:
        self.git("config", "--unset-all", "sandbox.protected", check=False)
        for branch in sorted(set(branches)):
            self.git("config", "--add", "sandbox.protected", branch)

    def is_ancestor(self, older: str, newer: str) -> bool:
        return self.git("merge-base", "--is-ancestor", older, newer, check=False).returncode == 0

    def merge_base(self, a: str, b: str) -> str | None:
        result = self.git("merge-base", a, b, check=False)
        return result.stdout.decode().strip() or None

    def ahead_behind(self, base: str, head: str) -> tuple[int, int]:
        """(commits in head not in base, commits in base not in head)."""
        left, right = self.out("rev-list", "--left-right", "--count", f"{base}...{head}").split()
        return int(right), int(left)

    def log(self, base: str, head: str, limit: int = 250) -> list[str]:
        text = self.out("rev-list", "--reverse", f"--max-count={limit}", f"{base}..{head}")
        return text.split()

    def commit_info(self, sha: str) -> CommitInfo:
        raw = self.git("cat-file", "commit", sha).stdout.decode(errors="replace")
        header, _, message = raw.partition("\n\n")
        tree, parents, people = "", [], {}
        for line in header.splitlines():
            key, _, value = line.partition(" ")
            if key == "tree":
                tree = value
            elif key == "parent":
                parents.append(value)
            elif key in ("author", "committer"):
                match = re.fullmatch(r"(.*) <(.*)> (\d+) [+-]\d{4}", value)
                if match:
                    people[key] = (Identity(match[1], match[2]), int(match[3]))
        author = people.get("author", (Identity("unknown", "unknown@invalid"), 0))
        committer = people.get("committer", author)
        return CommitInfo(
            sha, tree, tuple(parents), author[0], author[1], committer[0], committer[1], message
        )

    def changed_files(self, base: str, head: str) -> list[tuple[str, str, int, int]]:
        """(status letter, path, additions, deletions) of the diff base..head, rename detection off."""
        status = self.out("diff", "--no-renames", "--name-status", "-z", base, head)
        parts = status.split("\0")
        numstat = self.out("diff", "--no-renames", "--numstat", "-z", base, head).split("\0")
        counts: dict[str, tuple[int, int]] = {}
        for item in numstat:
            fields = item.split("\t")
            if len(fields) == 3:
                counts[fields[2]] = (
                    int(fields[0]) if fields[0] != "-" else 0,
                    int(fields[1]) if fields[1] != "-" else 0,
                )
        result = []
        for letter, path in zip(parts[0::2], parts[1::2], strict=False):
            if path:
                added, deleted = counts.get(path, (0, 0))
                result.append((letter, path, added, deleted))
        return result

    def files(self, sha: str, directory: str) -> dict[str, bytes]:
        """Every file under `directory` at commit `sha`, read in one `cat-file --batch`."""
        listing = self.out("ls-tree", "-r", "-z", sha, "--", directory.rstrip("/") + "/")
        entries = []
        for item in listing.split("\0"):
            if not item:
                continue
            meta, path = item.split("\t", 1)
            _mode, kind, blob = meta.split()
            if kind == "blob":
                entries.append((path, blob))
        if not entries:
            return {}
        batch = self.git("cat-file", "--batch", input="".join(f"{blob}\n" for _, blob in entries).encode())
        data, result, offset = batch.stdout, {}, 0
        for path, _ in entries:
            end = data.index(b"\n", offset)
            size = int(data[offset:end].split()[2])
            result[path] = data[end + 1 : end + 1 + size]
            offset = end + 1 + size + 1
        return result

    def tree_dirs(self, sha: str, directory: str = "") -> list[str]:
        prefix = [f"{sha}:{directory}"] if directory else [sha]
        result = self.git("ls-tree", "-d", "--name-only", *prefix, check=False)
        return result.stdout.decode().split() if result.returncode == 0 else []

    def read_file(self, sha: str, path: str) -> bytes | None:
        result = self.git("cat-file", "blob", f"{sha}:{path}", check=False)
        return result.stdout if result.returncode == 0 else None

    def merge_tree(self, base: str, head: str) -> str | None:
        """The tree of merging head into base, or None when they conflict."""
        result = self.git("merge-tree", "--write-tree", "--no-messages", base, head, check=False)
        if result.returncode == 1 or b"unrelated histories" in result.stderr:
            return None
        if result.returncode != 0:
            raise GitError(f"git merge-tree failed: {result.stderr.decode(errors='replace').strip()}")
        return result.stdout.decode().split()[0]

    def commit_tree(
        self,
        tree: str,
        parents: Iterable[str],
        message: str,
        author: Identity,
        committer: Identity,
        author_time: int | None = None,
    ) -> str:
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
        }
        if author_time is not None:
            env["GIT_AUTHOR_DATE"] = f"@{author_time} +0000"
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return self.out(*args, input=message.encode(), env=env)

    def rebase(self, onto: str, head: str, committer: Identity) -> str | None:
        """Replay the commits of onto..head on top of `onto`, as `git rebase` does; None on a conflict.

        Each commit is cherry-picked with a real three-way merge: a throwaway commit holding the new
        base's tree, whose parent is the picked commit's parent, makes that parent the merge base of
        `git merge-tree --write-tree` (git 2.39 has no `--merge-base`). Merge commits are dropped and
        commits that become empty are skipped, as `git rebase` does. Already on top: `head` itself.
        """
        if self.is_ancestor(onto, head):
            return head
        current = onto
        for sha in self.out(
            "rev-list", "--reverse", "--topo-order", "--no-merges", f"{onto}..{head}"
        ).split():
            info = self.commit_info(sha)
            base_tree = self.commit_info(current).tree
            if not info.parents:
                return None
            scratch = self.commit_tree(base_tree, [info.parents[0]], "rebase\n", committer, committer)
            tree = self.merge_tree(scratch, sha)
            if tree is None:
                return None
            if tree == base_tree:
                continue
            current = self.commit_tree(
                tree, [current], info.message, info.author, committer, author_time=info.author_date
            )
        return current

    def update_ref(self, branch: str, new: str, old: str | None) -> bool:
        """Compare-and-swap refs/heads/<branch> from `old` (None: must not exist) to `new`."""
        result = self.git("update-ref", f"refs/heads/{branch}", new, old or ZERO, check=False)
        return result.returncode == 0

    def delete_branch(self, branch: str, old: str) -> bool:
        return self.git("update-ref", "-d", f"refs/heads/{branch}", old, check=False).returncode == 0

    def commit_files(
        self,
        branch: str,
        files: Mapping[str, bytes],
        message: str,
        author: Identity,
        parent: str | None = None,
        expected: str | None = None,
    ) -> str:
        """Commit `files` on top of `parent` (or as a root commit); move `branch` from `expected` to it."""
        with tempfile.TemporaryDirectory(prefix="sandbox-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parent:
                self.git("read-tree", parent, env=env)
            lines = []
            for path, data in sorted(files.items()):
                blob = self.out("hash-object", "-w", "--stdin", input=data)
                lines.append(f"100644 {blob}\t{path}\n")
            self.git("update-index", "--add", "--index-info", input="".join(lines).encode(), env=env)
            tree = self.out("write-tree", env=env)
        sha = self.commit_tree(tree, [parent] if parent else [], message, author, author)
        if not self.update_ref(branch, sha, expected):
            raise GitError(f"branch {branch} moved while committing; try again")
        return sha
