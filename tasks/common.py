"""What every stage task shares: which failures are worth a retry, the run's logger, small models."""

from __future__ import annotations

import logging
import time
from typing import Any

from prefect import get_run_logger
from prefect.exceptions import MissingContextError
from prefect.logging.loggers import LoggingAdapter
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
from promoter.stages import Pending
from tasks.forge_usage import report_forge_usage

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


def run_logger() -> logging.Logger | LoggingAdapter:
    """The run's logger; outside a run (a task's `.fn` called on its own) the `promoter.tasks` logger."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("promoter.tasks")


def suspending(pending: Pending) -> Pending:
    """Log, once per window (a replayed window comes back cached and silent), that the run suspends; and
    report the window's forge requests, which its process would otherwise take with it when it ends."""
    report_forge_usage()
    run_logger().info(
        "still waiting for %s after %.0f s (%.0f s left): the run suspends, holding no process, until "
        "the forge's webhook or the wait watcher resumes it",
        pending.what,
        time.time() - pending.since,
        pending.left,
    )
    return pending


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class AppRef(Frozen):
    group: str
    app: str

    def __str__(self) -> str:
        return f"{self.group}/{self.app}"
