"""Forge usage out of the run processes: their forge requests and rate budgets as `forge.api.usage` events.

The requests happen in the run processes, the metrics are served by the webhook receiver, and the Prefect
event stream is what both already share. So the usage the forge clients tallied (`take_usage`) rides along
with the events a run emits anyway: after each `promoter.*` event and before each suspend (most requests
are polls, and a suspended run's process ends), one event per forge used, and none when nothing was sent.
"""

from __future__ import annotations

from typing import Any

from prefect.context import FlowRunContext, TaskRunContext
from prefect.events import emit_event

from promoter.providers.http import Usage, take_usage
from tasks.contracts import FORGE_USAGE_EVENT, forge_resource


def usage_payloads(usage: Usage) -> dict[str, dict[str, Any]]:
    """provider -> `{"requests": {status: count}, "rate_limit": {"limit", "remaining", "reset"}}`, the
    rate limit only where the forge reported one. Counts and statuses only: nothing that names a token."""
    payloads: dict[str, dict[str, Any]] = {}
    for (provider, status), count in usage.requests.items():
        payloads.setdefault(provider, {"requests": {}})["requests"][status] = count
    for provider, budget in usage.budgets.items():
        limits = {"limit": budget.limit, "remaining": budget.remaining, "reset": budget.reset}
        payloads.setdefault(provider, {"requests": {}})["rate_limit"] = {
            name: value for name, value in limits.items() if value is not None
        }
    return payloads


def report_forge_usage() -> None:
    """Emit what the process's forge clients did since the last report, if anything.

    Only inside a flow or task run: a task's `.fn` called on its own (the task tests) has no server to
    tell, and Prefect would start a throw-away one. The tally then waits for the process's next run."""
    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return
    for provider, payload in usage_payloads(take_usage()).items():
        emit_event(event=FORGE_USAGE_EVENT, resource=forge_resource(provider), payload=payload)
