"""Reading Flux's verdict on an environment from the commit statuses notification-controller posts.

Flux posts, per Kustomization `<group>-<env>`, a status whose context is `kustomization/<name>/<8 hex>`
(`kustomization/<name>` before late 2022), on the revision it applied: GitHub `success`/`failure`, Azure
DevOps `succeeded`/`error` with genre `fluxcd`. When several merges land before one reconcile, only the
newest commit gets a status, so a status on a descendant of the commit we care about answers for it too,
and a later green on main heals an older red. Flux never posts `pending`; some versions drop failure
events, so a wait needs a deadline, whose outcome is "no report", not "failed".
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from promoter.errors import InvalidInputError
from promoter.providers.base import CommitStatus

Outcome = Literal["healthy", "failed", "pending"]
DEFAULT_CONTEXT = r"kustomization/(?P<name>[^/]+)(?:/[0-9a-f]+)?"
_GOOD = {"success", "succeeded"}
_BAD = {"failure", "failed", "error"}


@dataclass(frozen=True)
class Verdict:
    """What Flux said about `kustomization` and on which commit; `commit` is None while nothing was said."""

    outcome: Outcome | Literal["no report"]
    kustomization: str
    commit: str | None = None
    description: str = ""

    @property
    def healthy(self) -> bool:
        return self.outcome == "healthy"


class StatusMatcher:
    """Which statuses are Flux's for one Kustomization: the context pattern's `name` group must equal it.

    `pattern` is a regular expression with a named group `name`, for users of `spec.commitStatusExpr`.
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

    def matches(self, status: CommitStatus) -> bool:
        if status.genre not in (None, "", "fluxcd"):
            return False
        match = self._pattern.fullmatch(status.context.lower())
        return bool(match) and match["name"] == self.kustomization.lower()  # type: ignore[index]


def verdict_on(statuses: Sequence[CommitStatus], matcher: StatusMatcher, commit: str) -> Verdict | None:
    """The newest Flux status for the Kustomization among `statuses` of `commit`, or None if there is none."""
    for status in sorted(statuses, key=lambda s: s.created_at, reverse=True):
        if not matcher.matches(status):
            continue
        state = status.state.lower()
        if state in _GOOD:
            return Verdict("healthy", matcher.kustomization, commit, status.description)
        if state in _BAD:
            return Verdict("failed", matcher.kustomization, commit, status.description)
        return Verdict("pending", matcher.kustomization, commit, status.description)
    return None


def current_verdict(
    candidates: Sequence[str], statuses_of: Callable[[str], Sequence[CommitStatus]], matcher: StatusMatcher
) -> Verdict:
    """Look at `candidates` newest first (the commit of interest and its descendants on main).

    The newest commit that carries a Flux status decides: it proves the environment applied everything
    before it, our commit included.
    """
    for commit in candidates:
        found = verdict_on(statuses_of(commit), matcher, commit)
        if found is not None:
            return found
    return Verdict("pending", matcher.kustomization)


def wait_for_verdict(
    poll: Callable[[], Verdict],
    timeout: float,
    *,
    interval: float = 2.0,
    max_interval: float = 15.0,
    on_wait: Callable[[Verdict, float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """Poll until healthy or failed, backing off; past `timeout` seconds the outcome is "no report"."""
    deadline = clock() + timeout
    delay = interval
    while True:
        verdict = poll()
        if verdict.outcome in ("healthy", "failed"):
            return verdict
        left = deadline - clock()
        if left <= 0:
            return Verdict("no report", verdict.kustomization, None, verdict.description)
        if on_wait is not None:
            on_wait(verdict, left)
        sleep(min(delay, left))
        delay = min(max_interval, delay * 1.5)
