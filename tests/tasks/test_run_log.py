"""The run's log keeps the stages' lines and failures, and leaves out each task's "Finished in state" line."""

from __future__ import annotations

import logging

import pytest

from tasks.run_log import TASK_RUN_LOGGER, TaskCompletions, quiet_task_completions


def record(level: int, msg: str, name: str = TASK_RUN_LOGGER) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


@pytest.mark.parametrize(
    ("level", "msg", "kept"),
    [
        (logging.INFO, "Finished in state Completed()", False),
        (logging.INFO, "Finished in state Cached(type=COMPLETED)", False),
        (logging.ERROR, "Finished in state Failed('Task run encountered an exception ProviderError')", True),
        (logging.INFO, "PR #3 for prod merged as a6c013ca by promoter-bot after 0.0 s", True),
        (
            logging.WARNING,
            "Task run failed with exception ... Retry 1/4 will start 2 second(s) from now",
            True,
        ),
    ],
)
def test_only_a_completed_tasks_line_is_left_out(level: int, msg: str, kept: bool) -> None:
    assert TaskCompletions().filter(record(level, msg)) is kept


def test_installed_once_on_the_task_run_logger() -> None:
    logger = logging.getLogger(TASK_RUN_LOGGER)
    quiet_task_completions()
    quiet_task_completions()
    assert sum(isinstance(f, TaskCompletions) for f in logger.filters) == 1
    assert not logger.filter(record(logging.INFO, "Finished in state Completed()"))
    assert logger.filter(record(logging.INFO, "waiting for Flux to report apps-dev on 8b578494"))
