"""The run's log is the release's story: Prefect's line for every task that completed is left out of it.

Prefect logs "Finished in state Completed()" (or "Cached(...)") at INFO for each task run, twenty and more
per release, between the stages' own lines ("PR #3 for prod merged as ..."). A task that fails or crashes
is logged at ERROR and stays, and so do the flow run's own state lines; the Task Runs tab keeps every state.
"""

from __future__ import annotations

import logging

TASK_RUN_LOGGER = "prefect.task_runs"  # the logger of every task run's messages (Prefect's logging.yml)
FINISHED = "Finished in state "


class TaskCompletions(logging.Filter):
    """Drops a task run's INFO "Finished in state ..." line; anything else passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.INFO and isinstance(record.msg, str) and record.msg.startswith(FINISHED)
        )


def quiet_task_completions() -> None:
    """Install the filter once per process (flows call it at import, so served and worker runs both get it)."""
    logger = logging.getLogger(TASK_RUN_LOGGER)
    if not any(isinstance(f, TaskCompletions) for f in logger.filters):
        logger.addFilter(TaskCompletions())
