"""Waits that hold no process: poll for a short window, then suspend until something resumes the run.

A merge or a Flux report can take minutes; a run that polled for them in its process would hold that
process (about 90 MB) and a runner slot the whole time. Instead each window is one cached task run that
returns `Pending` when nothing settled; the run tags itself with what it waits on and suspends
(`suspend_flow_run`, REFERENCE.md section 5). A forge webhook (`promoter webhook`) or the wait watcher in
`promoter serve` / `promoter worker` resumes it; the run then starts again from the top, its finished
tasks come back cached, each suspend it already passed is skipped by its key (Prefect refuses a pause key
that already fired), and it polls a new window.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from typing import TypeVar

from prefect.flow_runs import suspend_flow_run

from promoter.stages import Pending
from tasks.contracts import WAIT_GRACE_SECONDS

Settled = TypeVar("Settled")


def settle(
    window: Callable[[float | None, int], Settled | Pending], key: str, label: Callable[[bool], None]
) -> Settled:
    """Call `window(since, round)` until it settles, suspending after each `Pending`.

    `label(True)` runs before each suspend, `label(False)` once settled after at least one suspend.
    """
    since: float | None = None
    for round in count():
        outcome = window(since, round)
        if not isinstance(outcome, Pending):
            if round:
                label(False)
            return outcome
        since = outcome.since
        label(True)
        suspend_flow_run(timeout=int(outcome.left) + WAIT_GRACE_SECONDS, key=f"{key}:{round}")
    raise AssertionError("unreachable")
