"""What ran where, and since when, read from the GitOps repository's main branch.

Prefect forgets runs, artifacts and events after its retention period; main keeps every change for as long
as the repository exists, whoever made it (the promoter, gitops-promotion, a person). So the board and the
delivery metrics are read from it:

- what runs in an environment is what the Flux setter markers of `<group>/<env>/` say on main's head;
- a deployment is a commit on main's first-parent line that changed an app's tag or digest in an
  environment; it reached main at its committer date;
- its PR is read from the merge message each forge writes by default (GitHub "Merge pull request #N from
  ..." and "<title> (#N)" for squashes, Azure DevOps "Merged PR N: ..."), its approver from the
  `Approved-by:` trailer (promoter/trailers.py);
- the release started when its bump commit was written: the promoter writes it within seconds of the
  registry's push, so that is where the lead time counts from. For a merge commit that is its second
  parent's author date; otherwise the commit's own author date, which a rebase keeps but GitHub's
  "squash and merge" sets to the merge (netblue30/firejail#3845): with squash merges the lead time
  counts from the first environment's merge.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from promoter.errors import InvalidInputError, ManifestError
from promoter.manifests import YAML_SUFFIXES, find_markers, policies
from promoter.names import parse_image_reference
from promoter.trailers import TRAILER_KEYS
from promoter.workspace import Snapshot, Workspace

# Each forge's default merge headline, as the providers also write it (github.py `_message_fields`,
# azure_devops.py `_completion_options`). GitHub's merge headline "Merge pull request #${number} from
# ${user}/${branch}" is quoted in sindresorhus/refined-github#2843; its squash headline is the title with
# " (#16)" appended (microsoft/vscode-pull-request-github#1444, "similar to what GitHub does").
_PR_NUMBER = (
    re.compile(r"^Merge pull request #(\d+) from "),  # GitHub, merge
    re.compile(r"^Merged PR (\d+): "),  # Azure DevOps
    re.compile(r"^Merge pull request (\d+) from "),  # Azure DevOps' merge commit of a completion
    re.compile(r"\(#(\d+)\)$"),  # GitHub, squash: the PR title, then " (#N)"
)
_TRAILER = re.compile(rf"^({'|'.join(map(re.escape, TRAILER_KEYS))}): (.+)$", re.MULTILINE)
_RECORD, _UNIT = "\x1e", "\x1f"
_APPROVAL = re.compile(r" \((verified|declared)\)$")


@dataclass(frozen=True)
class Running:
    """One app's release in one environment, as main's manifests pin it."""

    tag: str | None
    digest: str | None = None


@dataclass(frozen=True)
class Deployment:
    """A commit on main that changed what an app runs in an environment."""

    group: str
    app: str
    env: str
    tag: str | None
    digest: str | None
    commit: str
    deployed_at: datetime
    started_at: datetime
    pr: int | None = None
    approved_by: str | None = None
    trailers: Mapping[str, str] = field(default_factory=dict)

    @property
    def lead_seconds(self) -> float:
        return max(0.0, (self.deployed_at - self.started_at).total_seconds())


def running(snapshot: Snapshot, group: str, env: str) -> dict[str, Running]:
    """app -> what the markers of `<group>/<env>/` pin at `snapshot`; an app whose markers disagree
    shows the first file's (in path order), as Flux would apply them all."""
    directory = f"{group}/{env}"
    if not snapshot.is_dir(directory):
        return {}
    index = snapshot.index(directory, policies)
    paths = sorted({path for key, found in index.items() if key.startswith(f"{group}:") for path in found})
    return _pinned(snapshot.read(paths), group)


def _pinned(files: Mapping[str, bytes], group: str) -> dict[str, Running]:
    found: dict[str, dict[str, str | None]] = {}
    for path in sorted(files):
        if not path.endswith(YAML_SUFFIXES):
            continue
        try:
            markers = find_markers(files[path].decode("utf-8"), path)
        except (ManifestError, UnicodeDecodeError):
            continue  # a broken file pins nothing the board can show; `promoter bump` names the problem
        for marker in markers:
            if marker.group != group:
                continue
            pinned = found.setdefault(marker.app, {"tag": None, "digest": None})
            if marker.field == "digest":
                pinned["digest"] = pinned["digest"] or marker.value
                continue
            pinned["tag"] = pinned["tag"] or marker.tag
            if marker.field in ("image", "tag") and "@" in marker.value:
                with contextlib.suppress(InvalidInputError):
                    pinned["digest"] = pinned["digest"] or parse_image_reference(marker.value).digest
    return {app: Running(tag=value["tag"], digest=value["digest"]) for app, value in found.items()}


@dataclass(frozen=True)
class _Commit:
    sha: str
    parents: tuple[str, ...]
    committed: datetime
    authored: datetime
    subject: str
    trailers: dict[str, str]
    paths: tuple[str, ...]


def _when(seconds: str) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def _log(workspace: Workspace, head: str, group: str, since: datetime | None) -> list[_Commit]:
    """main's first-parent commits that touched `<group>/`, newest first."""
    options = [f"--since={since.isoformat()}"] if since else []
    output = workspace.run(
        "log",
        "--first-parent",
        "-m",  # a merge's changes against its first parent: what it brought to main
        "--name-only",
        f"--format={_RECORD}%H{_UNIT}%P{_UNIT}%ct{_UNIT}%at{_UNIT}%s{_UNIT}%(trailers:only,unfold){_UNIT}",
        *options,
        head,
        "--",
        f"{group}/",
    )
    commits = []
    for record in output.split(_RECORD)[1:]:
        sha, parents, committed, authored, subject, trailers, names = record.split(_UNIT)
        commits.append(
            _Commit(
                sha=sha,
                parents=tuple(parents.split()),
                committed=_when(committed),
                authored=_when(authored),
                subject=subject,
                trailers=dict(_TRAILER.findall(trailers)),
                paths=tuple(line for line in names.splitlines() if line),
            )
        )
    return commits


def pr_number(subject: str) -> int | None:
    """The PR a merge commit came from, by each forge's default merge message; None when it says none."""
    for pattern in _PR_NUMBER:
        match = pattern.search(subject.strip())
        if match:
            return int(match.group(1))
    return None


def deployments(
    workspace: Workspace,
    head: str,
    group: str,
    environments: Iterable[str],
    *,
    app: str | None = None,
    since: datetime | None = None,
) -> list[Deployment]:
    """Every change of what an app of `group` runs in `environments` on main up to `head`, oldest first.

    A commit counts for an app and an environment when the tag or digest its markers pin there differs
    from the first parent's: a commit that only edits other keys of a manifest is not a deployment.
    """
    return list(reversed(list(_changes(workspace, head, group, list(environments), app, since))))


def latest(
    workspace: Workspace, head: str, group: str, app: str, environments: Iterable[str]
) -> dict[str, Deployment]:
    """env -> the deployment that put there what the app runs now: the newest one, read back only as far
    as needed."""
    wanted = set(environments)
    found: dict[str, Deployment] = {}
    for deployment in _changes(workspace, head, group, sorted(wanted), app, None):
        found.setdefault(deployment.env, deployment)
        if wanted <= found.keys():
            break
    return found


def _changes(
    workspace: Workspace,
    head: str,
    group: str,
    environments: list[str],
    app: str | None,
    since: datetime | None,
) -> Iterator[Deployment]:
    """Deployments newest first (see `deployments`)."""
    commits = _log(workspace, head, group, since)
    second_parents = [c.parents[1] for c in commits if len(c.parents) > 1]
    authored = _author_dates(workspace, second_parents)
    for commit in commits:
        started = (
            authored.get(commit.parents[1], commit.authored) if len(commit.parents) > 1 else commit.authored
        )
        approver = commit.trailers.get("Approved-by")
        for env in environments:
            prefix = f"{group}/{env}/"
            paths = [p for p in commit.paths if p.startswith(prefix)]
            if not paths:
                continue
            after = _pinned(Snapshot(workspace, commit.sha).read(paths), group)
            before = (
                _pinned(Snapshot(workspace, commit.parents[0]).read(paths), group) if commit.parents else {}
            )
            for name, now in sorted(after.items()):
                if (app is not None and name != app) or before.get(name) == now:
                    continue
                yield Deployment(
                    group=group,
                    app=name,
                    env=env,
                    tag=now.tag,
                    digest=now.digest,
                    commit=commit.sha,
                    deployed_at=commit.committed,
                    started_at=min(started, commit.committed),
                    pr=pr_number(commit.subject),
                    approved_by=_APPROVAL.sub("", approver) if approver else None,
                    trailers=commit.trailers,
                )


def _author_dates(workspace: Workspace, commits: list[str]) -> dict[str, datetime]:
    if not commits:
        return {}
    output = workspace.run("show", "--no-patch", f"--format=%H{_UNIT}%at", *sorted(set(commits)))
    return {
        sha: _when(seconds)
        for sha, _, seconds in (line.partition(_UNIT) for line in output.splitlines() if _UNIT in line)
    }
