"""Delivery metrics of a GitOps repository: its deployments from main, Flux's verdict on each from the forge.

Flux posts its word on the newest revision it applied, and `<group>-<env>` covers every app of the group
in that environment. So a deployment is judged on its own commit and the commits after it up to the
next change to `<group>/<env>/` on main (any app's, or a person's edit), never past it: a later release
of this app or of another one, and the failure it may bring, is not credited to it. A deployment that
Flux said nothing on before the environment changed again (a burst, between two reconciles) has no
report: it counts as a deployment, not as a failure.

Each commit's statuses are read from the forge once per call, however many deployments look at it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from promoter.delivery import DeliveryMetrics, DeploymentKey, Outcome, compute, key
from promoter.history import Deployment, deployments
from promoter.promotion import Promotion
from promoter.providers.base import CommitStatus
from promoter.stages import MAX_CANDIDATES, flux_verdict
from promoter.workspace import Snapshot, Workspace

# How far before the window deployments are read, only to date the start of releases still on their way
# through the environments when the window opens: a release that took longer than this to reach an
# environment is measured from its earliest deployment seen.
LOOKBACK = timedelta(days=30)
Progress = Callable[[str], None]
_SETTLED: dict[str, Outcome] = {"healthy": "healthy", "failed": "failed"}


def groups_of(snapshot: Snapshot, environments: Sequence[str]) -> list[str]:
    """The top-level directories that hold at least one environment's directory: the groups."""
    return [
        group
        for group in snapshot.directories("")
        if any(snapshot.is_dir(f"{group}/{env}") for env in environments)
    ]


def verdict_heads(
    workspace: Workspace, head: str, group: str, env: str, commits: Iterable[str]
) -> dict[str, str]:
    """commit -> the last commit of main before the next change to `<group>/<env>/` after it (`head` when
    there is none): how far Flux's reports may speak for that commit."""
    output = workspace.run("log", "--first-parent", "--format=%H %P", head, "--", f"{group}/{env}/")
    changes = [line.split() for line in output.splitlines() if line.strip()]  # newest first
    before_next: dict[str, str] = {}
    for newer, older in pairwise(changes):
        before_next[older[0]] = newer[1]  # the newer change's first parent
    if changes:
        before_next[changes[0][0]] = head
    return {commit: before_next.get(commit, head) for commit in commits}


def judge(
    promotion: Promotion,
    found: Sequence[Deployment],
    head: str,
    *,
    depth: int = MAX_CANDIDATES,
) -> dict[DeploymentKey, Outcome]:
    """Flux's verdict on each deployment, read up to the commit before its environment's next change
    (at most `depth` of the newest commits there, and the deployment's own)."""
    cache: dict[str, list[CommitStatus]] = {}

    def statuses_of(sha: str) -> list[CommitStatus]:
        if sha not in cache:
            cache[sha] = promotion.provider.commit_statuses(sha)
        return cache[sha]

    heads: dict[tuple[str, str, str], str] = {}
    for group, env in sorted({(d.group, d.env) for d in found}):
        commits = {d.commit for d in found if (d.group, d.env) == (group, env)}
        for commit, until in verdict_heads(promotion.workspace, head, group, env, commits).items():
            heads[(group, env, commit)] = until
    outcomes: dict[DeploymentKey, Outcome] = {}
    for deployment in found:
        verdict = flux_verdict(
            promotion,
            deployment.group,
            deployment.env,
            deployment.commit,
            head=heads[(deployment.group, deployment.env, deployment.commit)],
            statuses_of=statuses_of,
            depth=depth,
        )
        outcomes[key(deployment)] = _SETTLED.get(verdict.outcome, "no report")  # pending: nothing conclusive
    return outcomes


def measure(
    promotion: Promotion,
    since: datetime,
    until: datetime | None = None,
    *,
    group: str | None = None,
    app: str | None = None,
    lookback: timedelta = LOOKBACK,
    progress: Progress | None = None,
) -> DeliveryMetrics:
    """The delivery metrics of every app of the repository (or of `group`, or of `group`/`app`) over
    [since, until], until now by default. Fetches main first."""
    until = until or datetime.now(UTC)
    head = promotion.workspace.fetch()
    environments = promotion.config.environment_names
    groups = [group] if group else groups_of(promotion.workspace.snapshot(head), environments)
    found: list[Deployment] = []
    for name in groups:
        found += deployments(promotion.workspace, head, name, environments, app=app, since=since - lookback)
    window = [d for d in found if since <= d.deployed_at <= until]
    if progress is not None:
        progress(f"reading {len(window)} deployments' Flux reports...")
    outcomes = judge(promotion, window, head)
    return compute(found, outcomes, environments, since, until)
