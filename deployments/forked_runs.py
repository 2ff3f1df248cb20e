"""Start served flow runs as forks of a warm process, not as fresh interpreters.

Prefect's runner starts each flow run in a new interpreter (`spawn`), which imports Prefect and the
promoter again: 3-5 s per run on a small machine, most of a dev promotion's latency. Here the runner's
documented patch point, `prefect.runner._starter_direct.run_flow_in_subprocess`, is wrapped so the same
call goes through a `forkserver` whose process imported the flows and prepared Prefect's engine once
(`deployments/warm_start.py`): a run starts in milliseconds and still gets a process of its own (a crash
or SIGKILL takes only that run, and the runner still sees its exit code). The fork server is itself a
fresh interpreter that has started no threads, so forking it is safe. Each start is logged with the run
id and its pid, for operators looking for a run's process.
"""

from __future__ import annotations

import multiprocessing
from functools import wraps
from types import SimpleNamespace
from typing import Any

from prefect import flow_engine
from prefect.logging import get_logger
from prefect.runner import _starter_direct

PRELOAD = ["deployments.warm_start", "flows.promotion", "flows.sweeper"]
logger = get_logger("promoter.serve")


def install(preload: list[str] = PRELOAD) -> None:
    """Route the runner's direct starts through a fork server that has `preload` imported."""
    if getattr(_starter_direct.run_flow_in_subprocess, "__promoter_forked__", False):  # type: ignore[attr-defined]
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload)
    original = flow_engine.run_flow_in_subprocess
    # `run_flow_in_subprocess` asks its module's `multiprocessing` for the "spawn" context; give it ours.
    flow_engine.multiprocessing = SimpleNamespace(get_context=lambda _method: context)  # type: ignore[attr-defined,assignment]

    @wraps(original)
    def run_flow_in_fork(*args: Any, **kwargs: Any) -> Any:
        process = original(*args, **kwargs)
        flow_run = kwargs.get("flow_run")
        logger.info("flow run %s started in process %s", getattr(flow_run, "id", "?"), process.pid)
        return process

    run_flow_in_fork.__promoter_forked__ = True  # type: ignore[attr-defined]
    _starter_direct.run_flow_in_subprocess = run_flow_in_fork  # type: ignore[attr-defined]
