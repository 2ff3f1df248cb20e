"""The wait watcher: resumes suspended merge and Flux waits when what they wait on has happened.

Forge webhooks (`promoter webhook`) resume a waiting run at once; this is the fallback for a forge that
sends none (Azure DevOps has no service hook for commit statuses), for a delivery that was lost (GitHub
does not redeliver a failed one), and for a wait whose deadline passed (the run is resumed to end the
wait itself, before Prefect's pause expiry would fail it). It runs inside `promoter serve`, a long-lived
process, so its forge clients keep their ETags from one pass to the next: an unchanged PR or status list
is a `304`, which GitHub does not count against the rate limit (REFERENCE.md section 3). The
approval-sweeper makes one pass per sweep too, so runs served by Prefect workers are resumed as well. A resumed run settles the wait itself; resuming one too early only costs a
window of polling before it suspends again.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
from prefect.flow_runs import resume_flow_run
from prefect.logging import get_logger

from promoter.errors import PromoterError
from promoter.gate import CHECK_CONTEXT
from promoter.health import DEFAULT_CONTEXT
from promoter.promotion import Promotion, Target
from promoter.providers.base import CommitStatus
from promoter.providers.factory import parse_remote
from promoter.stages import environment_verdict
from tasks.contracts import (
    RUN_TAG,
    WAIT_GRACE_SECONDS,
    ApprovalInput,
    Waits,
    awaited_pr,
    reviews_seen,
    waits_of,
)

logger = get_logger("promoter.wait_watch")
DEFAULT_INTERVAL = 10.0


@dataclass
class WaitingRun:
    id: UUID
    waits: Waits
    parameters: dict[str, Any]
    expires: float | None  # when Prefect would fail the suspended run (its pause timeout)

    @property
    def overdue(self) -> bool:
        """The wait's own deadline has passed: the run must be resumed to end it."""
        return self.expires is not None and time.time() >= self.expires - WAIT_GRACE_SECONDS


def suspended_runs() -> list[FlowRun]:
    """Every promotion suspended now, whatever it waits on (its tags say)."""
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[RUN_TAG]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
            )
        )


def waiting_runs() -> list[WaitingRun]:
    """Every promotion suspended in a merge or Flux wait (not the approval gate: the sweeper has those)."""
    return [found for run in suspended_runs() if (found := _waiting(run)) is not None]


def reviewing_runs() -> list[WaitingRun]:
    """Every promotion suspended at an approval gate under a policy (tagged `reviews:`), as waits on its PR."""
    return [
        WaitingRun(run.id, Waits(pr=number), dict(run.parameters), None)
        for run in suspended_runs()
        if reviews_seen(run.tags) is not None and (number := awaited_pr(run.tags)) is not None
    ]


def _waiting(run: FlowRun) -> WaitingRun | None:
    waits = waits_of(run.tags)
    if waits is None:
        return None
    timeout = run.state.state_details.pause_timeout if run.state else None
    return WaitingRun(run.id, waits, dict(run.parameters), timeout.timestamp() if timeout else None)


RepoKey = tuple[str, str, str]  # (github | azdo, owner or Azure DevOps project, name), lower-case
_FLUX_CONTEXT = re.compile(DEFAULT_CONTEXT)


def repo_key(kind: str, owner_or_project: str, name: str) -> RepoKey:
    """How a webhook and a run's target name one repository (Azure DevOps: its project, not the org)."""
    return (kind, owner_or_project.lower(), name.lower())


def _run_repo(run: WaitingRun) -> RepoKey | None:
    """The run's GitOps repository; None when it cannot be told here (its URL comes from a worker's env)."""
    try:
        target = Target.of({k: run.parameters.get(k) for k in ("gitops_url", "provider")})
        remote = parse_remote(target.gitops_url, target.provider)
    except PromoterError:
        return None
    return repo_key(remote.kind, remote.project or remote.owner, remote.name)


@dataclass(frozen=True)
class ForgeChange:
    """What a verified forge webhook says happened in `repository`: PR `pr` closed, or a commit status
    with `context` was posted (Flux's `kustomization/<name>[/<cluster>]`, anything a `commitStatusExpr`
    writes, or an environment's `require`d check such as `e2e/smoke`)."""

    repository: RepoKey
    pr: int | None = None
    context: str | None = None
    reviewed: bool = False  # PR `pr` got or lost a review: its runs under an approval policy look again

    def concerns(self, run: WaitingRun) -> bool:
        """Whether `run` waits on this; a run whose repository is unknown here is woken to look itself."""
        if not self._about(run.waits):
            return False
        repository = _run_repo(run)
        return repository is None or repository == self.repository

    def _about(self, waits: Waits) -> bool:
        if self.pr is not None:
            return waits.pr == self.pr
        if self.context is None or waits.kustomization is None or self.context == CHECK_CONTEXT:
            return False
        flux = _FLUX_CONTEXT.fullmatch(self.context)
        return flux is None or flux["name"].lower() == waits.kustomization


def resume_affected(change: ForgeChange) -> list[UUID]:
    """Resume the suspended waits `change` may have settled; each run re-checks and suspends again if not.

    A status on an unrelated commit of the same Kustomization wakes its runs for one window only, which is
    cheaper than deciding here which commits descend from which (the run knows its own merge commit).
    """
    if change.reviewed:
        return [run.id for run in reviewing_runs() if change.concerns(run) and _resume(run.id, REVIEWED)]
    return [run.id for run in waiting_runs() if change.concerns(run) and _resume(run.id)]


@dataclass
class WaitWatcher:
    """One pass at a time (`sweep`); forge clients and clones stay open between passes, per target."""

    _open: dict[Target, Promotion] = field(default_factory=dict)
    _stack: ExitStack = field(default_factory=ExitStack)

    def sweep(self) -> list[UUID]:
        """Resume every waiting run whose wait is over (settled or overdue); return their ids."""
        resumed = []
        heads: dict[Target, str] = {}
        statuses: dict[Target, Callable[[str], Sequence[CommitStatus]]] = {}
        for run in waiting_runs():
            try:
                due = run.overdue or self._settled(run, heads, statuses)
            except PromoterError as error:  # a forge or git hiccup: the next pass tries again
                logger.warning("could not check %s's wait: %s", run.id, error)
                continue
            if due and _resume(run.id):
                resumed.append(run.id)
        return resumed

    def _settled(
        self,
        run: WaitingRun,
        heads: dict[Target, str],
        statuses: dict[Target, Callable[[str], Sequence[CommitStatus]]],
    ) -> bool:
        """Whether the run's wait is over. `heads` and `statuses` last one pass: runs waiting on one
        environment read the same commits near main's head, once per pass rather than once per run."""
        target = Target.of({k: run.parameters.get(k) for k in ("gitops_url", "provider")})
        promotion = self._promotion(target)
        waits = run.waits
        if waits.pr is not None:
            return promotion.provider.get_pull_request(waits.pr).state != "open"
        if waits.group and waits.env and waits.commit:
            if target not in heads:  # one fetch per target and pass
                heads[target] = promotion.workspace.fetch()
                statuses[target] = functools.cache(promotion.provider.commit_statuses)
            verdict = environment_verdict(  # Flux and the environment's required contexts
                promotion, waits.group, waits.env, waits.commit, heads[target], statuses[target]
            )
            return verdict.outcome != "pending"
        return True  # tags we cannot read: let the run look for itself

    def _promotion(self, target: Target) -> Promotion:
        if target not in self._open:
            self._open[target] = self._stack.enter_context(target.open(refresh=False))
        return self._open[target]

    def close(self) -> None:
        self._stack.close()
        self._open.clear()


# What a run at an approval gate is resumed with when its PR's reviews change: it asks the forge itself.
REVIEWED = ApprovalInput.of(True, "forge", "new review")


def _resume(run_id: UUID, given: ApprovalInput | None = None) -> bool:
    """Resume `run_id`; False when it is no longer suspended (a webhook or a person was quicker)."""
    try:
        resume_flow_run(run_id, run_input=given.as_run_input() if given else None)
    except (NotPausedError, FlowPauseTimeout, ObjectNotFound, RuntimeError) as error:
        logger.debug("%s not resumed: %s", run_id, error)
        return False
    logger.info("resumed %s: what it waited on has happened (or its deadline passed)", run_id)
    return True


async def watch_waits(interval: float = DEFAULT_INTERVAL) -> None:
    """Sweep every `interval` seconds until cancelled; a failing pass is logged and the next one runs."""
    watcher = WaitWatcher()
    try:
        while True:
            try:
                await asyncio.to_thread(watcher.sweep)
            except Exception as error:  # the server or a forge is down: keep watching
                logger.warning("wait watcher pass failed (%s); trying again in %.0f s", error, interval)
                watcher.close()
            await asyncio.sleep(interval)
    finally:
        watcher.close()
