"""The gate before an environment: the `promoter` check on its PR, and the words it says.

The flow and `promoter status` both decide here, so a PR's check reads the same whoever posted it, and
the run's Blocked message is the red check's description. The CLI's own stdout and stderr lines stay
gitops-promotion's (`promoter.commands`); these descriptions are ours.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from promoter.health import Failed, Health, Healthy, Verdict
from promoter.providers.base import GitProvider

CHECK_CONTEXT = "promoter"


class Gate(BaseModel):
    """The `promoter` commit status for a PR: green lets the forge merge it, red keeps it unmergeable."""

    model_config = ConfigDict(frozen=True)

    state: Literal["pending", "success", "failure"]
    description: str

    @property
    def open(self) -> bool:
        return self.state == "success"


def gate(env: str, previous: Health | None) -> Gate:
    """The check on `env`'s PR, from Flux's word on the environment before it (None: `env` is first)."""
    if previous is None:
        return Gate(state="success", description=f"{env} is the first environment")
    return Gate(state="success" if previous.healthy else "failure", description=summary(previous))


def summary(health: Health) -> str:
    """Flux's word on an environment in one line: a check's description, a Blocked run's message. A
    required context that failed or never reported is named (`e2e/smoke failed: ...`)."""
    if isinstance(health, Healthy):
        passed = f", {', '.join(health.required)} succeeded" if health.required else ""
        return f"{health.kustomization} healthy on {health.commit[:8]}{passed}"
    reason = f": {health.description}" if health.description else ""
    if isinstance(health, Failed):
        if health.context:
            return f"{health.kustomization} on {health.commit[:8]}{reason}"
        return f"{health.kustomization} failed on {health.commit[:8]}{reason}"
    within = _duration(health.waited)
    if health.contexts:
        return (
            f"no report from {', '.join(health.contexts)} for {health.kustomization} within {within}{reason}"
        )
    return f"no report from Flux for {health.kustomization} within {within}{reason}"


def waiting(kustomization: str) -> Gate:
    """The check while `promoter status` waits for Flux."""
    return Gate(state="pending", description=f"waiting for Flux to report {kustomization} healthy")


def waiting_for_required(env: str, verdict: Verdict) -> Gate:
    """The check once Flux is healthy on `env` and its required contexts are still awaited
    (`qa: Flux healthy on 1a2b3c4d; waiting for e2e/smoke`)."""
    return Gate(state="pending", description=f"{env}: {verdict.description}")


def post_check(provider: GitProvider, head_sha: str, check: Gate) -> None:
    """Context `promoter` on the PR head, which the base branch's protection requires."""
    provider.set_commit_status(head_sha, CHECK_CONTEXT, check.state, check.description)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
