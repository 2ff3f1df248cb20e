"""What every stage task shares: which failures are worth a retry, and the models tasks return."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from promoter.errors import (
    ConfigError,
    InvalidInputError,
    ManifestError,
    ProviderAuthError,
    ProviderError,
    ProviderNotFoundError,
    WorkspaceError,
)

PERMANENT = (ConfigError, InvalidInputError, ManifestError, ProviderAuthError, ProviderNotFoundError)
TRANSIENT = (ProviderError, WorkspaceError, OSError)


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """`retry_condition_fn`: retry forge and git hiccups, never bad input or a missing permission."""
    try:
        state.result()
    except PERMANENT:
        return False
    except TRANSIENT:
        return True
    except Exception:
        return False
    return False


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class AppRef(Frozen):
    group: str
    app: str

    def __str__(self) -> str:
        return f"{self.group}/{self.app}"


class Check(Frozen):
    """The `promoter` status a PR gets: green when the previous environment is healthy, red with why."""

    state: Literal["success", "failure"]
    description: str


class EnvPR(Frozen):
    """One environment's PR as a task saw it."""

    env: str
    branch: str
    number: int | None
    url: str = ""
    head_sha: str = ""
    base_sha: str = ""


class Merged(Frozen):
    number: int
    merge_commit: str
    merged_by: str | None = None


class FluxVerdict(Frozen):
    env: str
    outcome: str
    commit: str | None = None
    description: str = ""

    @property
    def healthy(self) -> bool:
        return self.outcome == "healthy"
