"""Reading Flux's verdict on an environment from the commit statuses notification-controller posts.

What Flux posts (fluxcd/notification-controller `internal/notifier`, kustomize-controller
`internal/controller/kustomization_controller.go`; docs/sandbox.md lists the sources):

- one status per Kustomization `<group>-<env>` and Flux `Provider`, on the revision it reconciled, with the
  context `kustomization/<name>/<first 8 hex of the Provider UID>` (`kustomization/<name>` before late
  2022; a `commitStatusExpr` may write anything). GitHub `success`/`failure`; Azure DevOps
  `succeeded`/`error` with `context.genre` `fluxcd`, or `fluxcd:<summary>` when the Alert has a summary
  (`commitStatusGenre` in azure_devops.go);
- the description is the event reason in lower-case words (`formatNameAndDescription`):
  `reconciliation succeeded` on success; `health check failed`, `build failed`, `reconciliation failed`,
  `prune failed`, `artifact failed` on failure. Every info event maps to `success`, so up to v1.7 a
  Kustomization waiting on `dependsOn` posts `success` "dependency not ready": only the success reason
  counts as healthy, anything else on a `success` keeps us waiting;
- it never posts `pending`; v1.8.0 posts nothing for Kustomizations and v1.8.1-v1.8.4 drop failures, so a
  wait needs a deadline whose outcome is "no report", not "failed";
- commits that land between two polls of the GitRepository never get a status, so a status on a
  descendant of the commit we care about answers for it, and a later green on main heals an older red.

Several clusters may serve one environment under one Kustomization name, each through its own Provider:
their contexts differ in the cluster part. Each reporter's newest word counts on its own; a failure from
any of them fails the environment, and it is healthy once the expected reporters (`Reporters`) all say so.

An environment may also `require` other commit statuses on the applied commit (`RequiredContexts`):
test suites and scanners become gates. It is healthy when Flux says so and each of them says `success`;
one that says `failure` or `error` fails it at once, one still silent at the deadline is "no report".

A `Verdict` is one reading, which may still be pending; `Health` is what a wait settles on: `Healthy`,
`Failed` or `NoReport`, values a caller matches on (and Prefect persists) instead of comparing strings.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from promoter.errors import InvalidInputError
from promoter.providers.base import CommitStatus

Outcome = Literal["healthy", "failed", "pending"]
DEFAULT_CONTEXT = r"kustomization/(?P<name>[^/]+)(?:/(?P<cluster>[0-9a-f]+))?"
FLUX_GENRE = "fluxcd"
# The one reason kustomize-controller gives a Ready=True reconcile (meta.ReconciliationSucceededReason).
HEALTHY_DESCRIPTIONS = frozenset({"reconciliation succeeded"})
NO_REPORT_HINT = (
    "Flux notification-controller v1.8.0 posts no Kustomization statuses and v1.8.1-v1.8.4 drop failures; "
    "`success` means healthy only when the Kustomization has `wait: true` or `healthChecks`"
)
_GOOD = {"success", "succeeded"}
_BAD = {"failure", "failed", "error"}


@dataclass(frozen=True)
class Verdict:
    """What Flux said about `kustomization` and on which commit; `commit` is None while nothing was said.

    With required contexts: `context` is the one whose failure this is, `waiting_for` those not yet
    `success` while Flux is healthy on `commit`, `required` those that all succeeded.
    """

    outcome: Outcome
    kustomization: str
    commit: str | None = None
    description: str = ""
    context: str = ""
    waiting_for: tuple[str, ...] = ()
    required: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return self.outcome == "healthy"


class _Settled(BaseModel):
    model_config = ConfigDict(frozen=True)

    kustomization: str
    description: str = ""

    @property
    def healthy(self) -> bool:
        return isinstance(self, Healthy)


class Healthy(_Settled):
    """Every expected reporter said `reconciliation succeeded` on `commit` (or on a descendant of it), and
    each `required` context said `success`."""

    outcome: Literal["healthy"] = "healthy"
    commit: str
    required: tuple[str, ...] = ()


class Failed(_Settled):
    """A reporter said the reconcile failed; `description` is its reason (`health check failed`). When
    `context` is set, that required context failed instead (`e2e/smoke failed: 3 tests failed`)."""

    outcome: Literal["failed"] = "failed"
    commit: str
    context: str = ""


class NoReport(_Settled):
    """Nothing conclusive within `waited` seconds; `description` says what was last heard and why Flux
    may have said nothing. Not a failure: some Flux versions drop failure events. When `contexts` is set,
    Flux was healthy and those required contexts never said `success`."""

    outcome: Literal["no report"] = "no report"
    commit: None = None
    waited: float = 0.0
    contexts: tuple[str, ...] = ()


Health = Annotated[Healthy | Failed | NoReport, Field(discriminator="outcome")]


@dataclass(frozen=True)
class Reporters:
    """Who must say healthy: `count` distinct reporters, or exactly the `names` listed (others ignored).

    A name is a context's cluster part (the Provider UID's 8 hex, a `commitStatusExpr` cluster name) or a
    whole context, compared without case.
    """

    count: int = 1
    names: tuple[str, ...] = ()

    @classmethod
    def of(cls, configured: int | Sequence[str] | None) -> Reporters:
        """From an environment's `reporters` in gitops-promotion.yaml (validated by `promoter.config`)."""
        if configured is None:
            return cls()
        if isinstance(configured, int):
            return cls(count=configured)
        names = tuple(name.lower() for name in configured)
        return cls(count=len(names), names=names)

    def wanted(self, report: Report) -> bool:
        return not self.names or bool({report.reporter, report.context} & set(self.names))

    def heard_from_all(self, reports: Iterable[Report]) -> bool:
        """Enough reporters have spoken that older commits cannot change the answer."""
        wanted = [report for report in reports if self.wanted(report)]
        if self.names:
            return all(any(name in (r.reporter, r.context) for r in wanted) for name in self.names)
        return len(wanted) >= self.count


@dataclass(frozen=True)
class Report:
    """One reporter's newest word on one commit; `rank` orders commits, 0 the newest."""

    reporter: str
    context: str
    outcome: Outcome
    commit: str
    description: str
    rank: int = 0


class StatusMatcher:
    """Which statuses are Flux's for one Kustomization: the context pattern's `name` group must equal it.

    `pattern` is a regular expression with a named group `name`, for users of `spec.commitStatusExpr`;
    an optional group `cluster` says which cluster posted (without it the whole context does).
    Matching ignores case: Flux lowercases the context, while an environment may be spelled `Dev`.
    """

    def __init__(self, kustomization: str, pattern: str = DEFAULT_CONTEXT) -> None:
        self.kustomization = kustomization
        try:
            self._pattern = re.compile(pattern, re.IGNORECASE)
        except re.error as error:
            raise InvalidInputError(
                f"the status context pattern {pattern!r} is not a regular expression ({error})"
            ) from None
        if "name" not in self._pattern.groupindex:
            raise InvalidInputError(
                f"the status context pattern {pattern!r} needs a named group (?P<name>...) "
                "that captures the Kustomization name"
            )

    def reporter(self, status: CommitStatus) -> str | None:
        """Who posted `status` if it is Flux's word on this Kustomization, else None."""
        if not _flux_genre(status.genre):
            return None
        context = status.context.lower()
        match = self._pattern.fullmatch(context)
        if not match or (match["name"] or "").lower() != self.kustomization.lower():
            return None
        cluster = match.groupdict().get("cluster")
        return cluster.lower() if cluster else context

    def matches(self, status: CommitStatus) -> bool:
        return self.reporter(status) is not None


def _flux_genre(genre: str | None) -> bool:
    """Azure DevOps genre `fluxcd`, or `fluxcd:<summary>` when the Alert has a summary; none elsewhere."""
    return not genre or genre == FLUX_GENRE or genre.startswith(f"{FLUX_GENRE}:")


def outcome_of(status: CommitStatus) -> Outcome:
    """`success` is healthy only with the success reason: Flux maps every info event to `success`."""
    state = status.state.lower()
    if state in _BAD:
        return "failed"
    if state in _GOOD and " ".join(status.description.lower().split()) in HEALTHY_DESCRIPTIONS:
        return "healthy"
    return "pending"


def reports_on(
    statuses: Sequence[CommitStatus], matcher: StatusMatcher, commit: str, rank: int = 0
) -> dict[str, Report]:
    """The newest status of each reporter for the Kustomization among the statuses of `commit`."""
    found: dict[str, Report] = {}
    for status in sorted(statuses, key=lambda s: s.created_at, reverse=True):
        reporter = matcher.reporter(status)
        if reporter is None or reporter in found:
            continue
        found[reporter] = Report(
            reporter, status.context.lower(), outcome_of(status), commit, status.description, rank
        )
    return found


def combine(kustomization: str, reports: Mapping[str, Report], expected: Reporters) -> Verdict | None:
    """One verdict from each reporter's newest word: any failure fails; healthy once all expected agree."""
    wanted = sorted((r for r in reports.values() if expected.wanted(r)), key=lambda r: (r.rank, r.reporter))
    if not wanted:
        return None
    alone = expected.count == 1 and not expected.names
    failed = [r for r in wanted if r.outcome == "failed"]
    if failed:
        first = failed[0]
        return Verdict("failed", kustomization, first.commit, _said(first, alone))
    healthy = [r for r in wanted if r.outcome == "healthy"]
    if expected.heard_from_all(healthy):
        if alone:
            return Verdict("healthy", kustomization, healthy[0].commit, healthy[0].description)
        proof = max(healthy, key=lambda r: r.rank)  # the oldest commit every expected cluster applied
        who = ", ".join(r.reporter for r in healthy)
        return Verdict("healthy", kustomization, proof.commit, f"{proof.description} ({who})")
    if alone:
        return Verdict("pending", kustomization, wanted[0].commit, wanted[0].description)
    return Verdict("pending", kustomization, None, _waiting(healthy, wanted, expected))


def _said(report: Report, alone: bool) -> str:
    return report.description if alone else f"{report.description} ({report.reporter})"


def _waiting(healthy: Sequence[Report], heard: Sequence[Report], expected: Reporters) -> str:
    seen = {r.reporter for r in heard}
    if expected.names:
        ok = {name for name in expected.names if any(name in (r.reporter, r.context) for r in healthy)}
        missing = [name for name in expected.names if name not in ok]
        return f"{len(ok)} of {len(expected.names)} reporters healthy; waiting for {', '.join(missing)}"
    others = ", ".join(f"{r.reporter}: {r.description}" for r in heard if r.outcome != "healthy")
    detail = f" ({others})" if others else ""
    return f"{len(healthy)} of {expected.count} reporters healthy, {len(seen)} heard from{detail}"


@dataclass(frozen=True)
class RequiredContexts:
    """Commit statuses besides Flux's that must say `success` (an environment's `require`).

    A context is compared without case with GitHub's `context`, and with Azure DevOps' `genre/name`, or
    `name` alone when the genre is empty. Azure DevOps' GitStatusContext has two parts: `genre`,
    "Typically name of the service/tool generating the status, can be empty", and `name`, "Name
    identifier of the status, cannot be null or empty"
    (https://learn.microsoft.com/en-us/javascript/api/azure-devops-extension-api/gitstatuscontext).
    So `e2e/smoke` is genre `e2e`, name `smoke`, as the Azure DevOps provider posts it (split at the last
    `/`), and `smoke` is a name with no genre; comparing the joined form also accepts a poster that
    split `a/b/c` at its first `/`.
    """

    contexts: tuple[str, ...] = ()

    def reports_on(self, statuses: Sequence[CommitStatus], commit: str, rank: int = 0) -> dict[str, Report]:
        """The newest status of each required context among the statuses of `commit`, by context."""
        if not self.contexts:
            return {}
        wanted = {context.lower(): context for context in self.contexts}
        found: dict[str, Report] = {}
        for status in sorted(statuses, key=lambda s: s.created_at, reverse=True):
            key = f"{status.genre}/{status.context}" if status.genre else status.context
            context = wanted.get(key.lower())
            if context is None or context in found:
                continue
            state = status.state.lower()
            outcome: Outcome = "healthy" if state in _GOOD else "failed" if state in _BAD else "pending"
            found[context] = Report(context, key, outcome, commit, status.description, rank)
        return found

    def heard_from_all(self, reports: Mapping[str, Report]) -> bool:
        return all(context in reports for context in self.contexts)

    def combine(self, flux: Verdict, reports: Mapping[str, Report]) -> Verdict:
        """Healthy when Flux is and every context said `success`; a context's failure fails at once."""
        if not self.contexts or flux.outcome == "failed":
            return flux
        for context in self.contexts:
            report = reports.get(context)
            if report is not None and report.outcome == "failed":
                said = (
                    f"{context} failed: {report.description}" if report.description else f"{context} failed"
                )
                return Verdict("failed", flux.kustomization, report.commit, said, context=context)
        if flux.outcome != "healthy":
            return flux
        waiting = [c for c in self.contexts if c not in reports or reports[c].outcome != "healthy"]
        if not waiting:
            passed = f"{', '.join(self.contexts)} succeeded"
            described = f"{flux.description}; {passed}" if flux.description else passed
            return Verdict("healthy", flux.kustomization, flux.commit, described, required=self.contexts)
        heard = [
            f"{c} ({reports[c].description})" if c in reports and reports[c].description else c
            for c in waiting
        ]
        on = f" on {flux.commit[:8]}" if flux.commit else ""
        return Verdict(
            "pending",
            flux.kustomization,
            flux.commit,
            f"Flux healthy{on}; waiting for {', '.join(heard)}",
            waiting_for=tuple(waiting),
        )


def verdict_on(
    statuses: Sequence[CommitStatus], matcher: StatusMatcher, commit: str, expected: Reporters | None = None
) -> Verdict | None:
    """Flux's word on the Kustomization among `statuses` of `commit`, or None if there is none."""
    return combine(matcher.kustomization, reports_on(statuses, matcher, commit), expected or Reporters())


def current_verdict(
    candidates: Sequence[str],
    statuses_of: Callable[[str], Sequence[CommitStatus]],
    matcher: StatusMatcher,
    expected: Reporters | None = None,
    required: RequiredContexts | None = None,
) -> Verdict:
    """Look at `candidates` newest first (the commit of interest and its descendants on main).

    For each reporter, and each `required` context, the newest commit it posted on decides: it proves
    that cluster applied (or that check saw) everything before it, our commit included. Each commit's
    statuses are read once, for Flux and the required contexts alike, and older commits only until every
    expected reporter and required context was heard.
    """
    expected = expected or Reporters()
    required = required or RequiredContexts()
    found: dict[str, Report] = {}
    checks: dict[str, Report] = {}
    for rank, commit in enumerate(candidates):
        statuses = statuses_of(commit)
        for reporter, report in reports_on(statuses, matcher, commit, rank).items():
            found.setdefault(reporter, report)
        for context, report in required.reports_on(statuses, commit, rank).items():
            checks.setdefault(context, report)
        if expected.heard_from_all(found.values()) and required.heard_from_all(checks):
            break
    flux = combine(matcher.kustomization, found, expected) or Verdict("pending", matcher.kustomization)
    return required.combine(flux, checks)


def settled(verdict: Verdict) -> Health | None:
    """The health a final verdict says; None while it is pending."""
    if verdict.outcome == "pending":
        return None
    if verdict.outcome == "healthy":
        return Healthy(
            kustomization=verdict.kustomization,
            commit=verdict.commit or "",
            description=verdict.description,
            required=verdict.required,
        )
    return Failed(
        kustomization=verdict.kustomization,
        commit=verdict.commit or "",
        description=verdict.description,
        context=verdict.context,
    )


def wait_for_verdict(
    poll: Callable[[], Verdict],
    timeout: float,
    *,
    interval: float = 2.0,
    max_interval: float = 15.0,
    on_wait: Callable[[Verdict, float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Health:
    """Poll until healthy or failed, backing off; past `timeout` seconds the outcome is `NoReport`,
    whose description says what was last heard and why Flux may have said nothing."""
    deadline = clock() + timeout
    delay = interval
    while True:
        verdict = poll()
        if (health := settled(verdict)) is not None:
            return health
        left = deadline - clock()
        if left <= 0:
            if verdict.waiting_for:  # Flux is healthy; the required contexts are silent
                return NoReport(
                    kustomization=verdict.kustomization,
                    description=verdict.description,
                    waited=timeout,
                    contexts=verdict.waiting_for,
                )
            return NoReport(
                kustomization=verdict.kustomization,
                description=_no_report(verdict.description),
                waited=timeout,
            )
        if on_wait is not None:
            on_wait(verdict, left)
        sleep(min(delay, left))
        delay = min(max_interval, delay * 1.5)


def _no_report(last: str) -> str:
    heard = f"last heard: {last}" if last else "no status from Flux"
    return f"{heard}; {NO_REPORT_HINT}"
