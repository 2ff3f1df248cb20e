"""Every Prefect name the promoter uses that is not Prefect's public API, in one place, each one checked.

Prefect is pinned to the minor these were written and tested against (`prefect>=3.9.1,<3.10` in
pyproject.toml, the whole tested set in `constraints.txt`); `docs/prefect-upgrade.md` says how to move
on. Each patch names the private thing it leans on, has a test in tests/deployments/test_prefect_compat.py,
and is checked by `check()` when `promoter serve` starts: where a name moved or a patch would no longer
take effect, serve says so loudly and Prefect's own behaviour is kept (slower, never wrong).

| patch | private name | what it buys | fallback |
| --- | --- | --- | --- |
| `fork_runs` | `prefect.runner._starter_direct.run_flow_in_subprocess`, `prefect.flow_engine.multiprocessing` | a run starts as a fork of a warm process, not a new interpreter (3-5 s) | a fresh interpreter per run |
| `share_tls_context` | the `ssl` module as seen by `prefect.client.orchestration` and `prefect._internal.version_checking` | one CA bundle load per process instead of five per run (~50 ms each) | a context per client |
| `rebuild_run_contexts` | `model_rebuild(_types_namespace=...)`, `prefect._internal.result_records` | the run-context models are built once (~0.06 s) | rebuilt in each run |
| `LAZY_IMPORTS` | `prefect._internal.observers`, `prefect._internal.states` | imported once (~0.1 s) | imported in each run |
| `poll_now` | `Runner._get_and_submit_flow_runs` | a run starts on the server's Scheduled event | the runner's poll |
| `run_in_fork` | `prefect.runner._flow_run_executor.FlowRunExecutorContext`, `prefect.runner._starter_direct.DirectSubprocessStarter` | `promoter worker` starts a work-pool run as a fork, as `serve` does | the process worker's own start (a fresh interpreter) |
"""

from __future__ import annotations

import functools
import importlib
import inspect
import multiprocessing
import ssl
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from prefect import Flow, flow_engine
from prefect.context import FlowRunContext
from prefect.logging import get_logger
from prefect.runner import Runner

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

logger = get_logger("promoter.prefect_compat")
FORKED = "__promoter_forked__"
LAZY_IMPORTS = [
    "anyio._backends._asyncio",
    "prefect._internal.observers",
    "prefect._internal.states",
    "prefect.concurrency.sync",
    "prefect.task_engine",
    "prefect.utilities.visualization",
]
# Environment for the forks started in this context (a work-pool run's job variables); see `run_in_fork`.
_RUN_ENV: ContextVar[dict[str, str | None]] = ContextVar("promoter_run_env")


def _starter() -> ModuleType:
    from prefect.runner import _starter_direct

    return _starter_direct


def _executor() -> ModuleType:
    from prefect.runner import _flow_run_executor

    return _flow_run_executor


def _ssl_users() -> list[ModuleType]:
    from prefect._internal import version_checking
    from prefect.client import orchestration

    return [orchestration, version_checking]


def _source(thing: Any) -> str:
    try:
        return inspect.getsource(thing)
    except (OSError, TypeError):
        return ""


def check() -> list[str]:
    """What no longer holds on the installed Prefect, one line each (empty when every patch applies)."""
    problems = []
    try:
        starter = _starter()
    except ImportError:
        starter = None
    if starter is None or not callable(getattr(starter, "run_flow_in_subprocess", None)):
        problems.append(
            "fork_runs: prefect.runner._starter_direct.run_flow_in_subprocess is gone; "
            "each run starts a fresh interpreter"
        )
    if 'multiprocessing.get_context("spawn")' not in _source(flow_engine.run_flow_in_subprocess):
        problems.append(
            "fork_runs: prefect.flow_engine.run_flow_in_subprocess no longer asks its module's "
            "multiprocessing for the spawn context; each run starts a fresh interpreter"
        )
    for module in _ssl_users():
        if getattr(module, "ssl", None) is None or "ssl.create_default_context(" not in _source(module):
            problems.append(
                f"share_tls_context: {module.__name__} no longer builds its TLS context through its "
                "module's ssl; each client loads the CA bundle"
            )
    if "_types_namespace" not in inspect.signature(FlowRunContext.model_rebuild).parameters:
        problems.append("rebuild_run_contexts: model_rebuild takes no _types_namespace; each run rebuilds")
    for name in [*LAZY_IMPORTS, "prefect._internal.result_records"]:
        try:
            importlib.import_module(name)
        except ImportError:
            problems.append(f"warm-up: {name} cannot be imported; it is left to each run")
    if not inspect.iscoroutinefunction(getattr(Runner, "_get_and_submit_flow_runs", None)):
        problems.append(
            "poll_now: Runner._get_and_submit_flow_runs is gone; runs start at the runner's next poll"
        )
    problems.extend(_check_run_in_fork(starter))
    return problems


def _check_run_in_fork(starter: ModuleType | None) -> list[str]:
    try:
        context = getattr(_executor(), "FlowRunExecutorContext", None)
    except ImportError:
        context = None
    direct = getattr(starter, "DirectSubprocessStarter", None)
    wanted = {"flow", "deployment_name", "control_channel"}
    if (
        context is None
        or direct is None
        or "control_channel = " not in _source(context.__aenter__)
        or not {"starter", "resolve_flow", "propose_submitting"}
        <= set(inspect.signature(context.create_executor).parameters)
        or not wanted <= set(inspect.signature(direct).parameters)
        or "run_flow_in_subprocess(" not in _source(direct.start)
    ):
        return [
            "run_in_fork: prefect.runner._flow_run_executor.FlowRunExecutorContext or "
            "prefect.runner._starter_direct.DirectSubprocessStarter changed; `promoter worker` starts "
            "each run as a fresh interpreter"
        ]
    return []


def warn_about(problems: list[str]) -> None:
    for problem in problems:
        logger.warning(
            "Prefect compatibility: %s. This Prefect is not the one promoter was tested with; "
            "see docs/prefect-upgrade.md",
            problem,
        )


# -- fork_runs ----------------------------------------------------------------------------------------


def fork_runs(preload: list[str]) -> bool:
    """Route the runner's direct starts through a fork server that imported `preload` once.

    Prefect's runner starts each flow run in a new interpreter (`spawn`); its own docstring names the
    patch point ("patch the module to override"). `run_flow_in_subprocess` asks its module's
    `multiprocessing` for the spawn context, so that module attribute is swapped for one that answers
    with a `forkserver` context. Returns whether the patch is in place.
    """
    starter = _starter()
    if getattr(starter.run_flow_in_subprocess, FORKED, False):
        return True
    if any(problem.startswith("fork_runs") for problem in check()):
        return False
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload)
    original = flow_engine.run_flow_in_subprocess
    flow_engine.multiprocessing = SimpleNamespace(get_context=lambda _method: context)  # type: ignore[attr-defined,assignment]

    @wraps(original)
    def run_flow_in_fork(*args: Any, **kwargs: Any) -> Any:
        kwargs["env"] = {**_RUN_ENV.get({}), **(kwargs.get("env") or {})}
        process = original(*args, **kwargs)
        flow_run = kwargs.get("flow_run")
        get_logger("promoter.fork").info(
            "flow run %s started in process %s", getattr(flow_run, "id", "?"), process.pid
        )
        return process

    setattr(run_flow_in_fork, FORKED, True)
    starter.run_flow_in_subprocess = run_flow_in_fork  # type: ignore[attr-defined]
    return forked()


def forked() -> bool:
    """Whether runs now start from the fork server: both halves of `fork_runs` are in place."""
    patched = getattr(_starter().run_flow_in_subprocess, FORKED, False)
    get_context = getattr(getattr(flow_engine, "multiprocessing", None), "get_context", None)
    return (
        bool(patched) and get_context is not None and get_context("spawn").get_start_method() == "forkserver"
    )


# -- the fork server's warm-up ------------------------------------------------------------------------


@functools.cache
def _verifying_context(cafile: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)


def _create_default_context(*args: Any, cafile: str | None = None, **kwargs: Any) -> ssl.SSLContext:
    if cafile and not args and not kwargs:
        return _verifying_context(cafile)
    return ssl.create_default_context(*args, cafile=cafile, **kwargs)


def share_tls_context(cafile: str) -> None:
    """Prefect's API clients ask their module's `ssl` for `create_default_context`; give them one that
    shares a verifying context per CA file. A context is safe to share between clients and threads, and
    one built before a fork is valid in every child. Any other call (Prefect's unverified variant, whose
    context it then changes) still gets a fresh one."""
    shared = SimpleNamespace(**{n: getattr(ssl, n) for n in dir(ssl) if not n.startswith("__")})
    shared.create_default_context = _create_default_context
    for module in _ssl_users():
        module.ssl = shared  # type: ignore[attr-defined]
    _verifying_context(cafile)


def rebuild_run_contexts() -> None:
    """The rebuild `hydrated_context` does on first use in every run, done once before the forks."""
    from prefect._internal.result_records import ResultRecordMetadata
    from prefect.context import TaskRunContext
    from prefect.flows import Flow
    from prefect.tasks import Task

    types = {"Flow": Flow, "Task": Task, "ResultRecordMetadata": ResultRecordMetadata}
    FlowRunContext.model_rebuild(_types_namespace=types)
    TaskRunContext.model_rebuild(_types_namespace=types)


def warm_up(cafile: str) -> None:
    """Everything the fork server prepares once; each part is skipped, with a warning, where it no
    longer applies."""
    problems = check()
    warn_about([p for p in problems if not p.startswith(("fork_runs", "poll_now"))])
    for module in LAZY_IMPORTS:
        try:
            importlib.import_module(module)
        except ImportError:
            continue
    if not any(p.startswith("rebuild_run_contexts") for p in problems):
        rebuild_run_contexts()
    if not any(p.startswith("share_tls_context") for p in problems):
        share_tls_context(cafile)


# -- poll_now -----------------------------------------------------------------------------------------


def poll_now(runner: Runner) -> Callable[[], Awaitable[None]] | None:
    """The runner's "poll for scheduled runs now", or None where this Prefect has no such method."""
    method = getattr(runner, "_get_and_submit_flow_runs", None)
    return method if inspect.iscoroutinefunction(method) else None


# -- run_in_fork --------------------------------------------------------------------------------------


@contextmanager
def _run_env(env: dict[str, str | None]) -> Iterator[None]:
    token = _RUN_ENV.set(env)
    try:
        yield
    finally:
        _RUN_ENV.reset(token)


async def run_in_fork(
    flow_run: FlowRun,
    flow: Flow[..., Any],
    *,
    deployment_name: str | None,
    env: dict[str, str | None],
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> tuple[int | None, int | None]:
    """Execute one work-pool run as a fork of the warm server (`fork_runs` must be in place): the fork's
    pid and exit code.

    The same lifecycle Prefect's process worker gives a run (its executor context: cancellation observer,
    control channel, crash reporting), with the runner's direct starter in place of `python -m
    prefect.engine`, so the start goes through the patched `run_flow_in_subprocess`. `env` (the job
    configuration's environment) reaches the fork as it would reach a new interpreter. The worker has
    already proposed Pending and Submitting, so the executor does not.
    """
    starter_module, executor_module = _starter(), _executor()

    async def resolve_flow(_: FlowRun) -> Flow[..., Any]:
        return flow

    async with executor_module.FlowRunExecutorContext() as context:
        starter = starter_module.DirectSubprocessStarter(
            flow=flow, deployment_name=deployment_name, control_channel=context.control_channel
        )
        executor = context.create_executor(
            flow_run, starter, resolve_flow=resolve_flow, propose_submitting=False
        )
        started = _PidOf(task_status)
        with _run_env(env):
            result = await executor.submit(task_status=started)
    if started.pid is None:  # cancelled or refused before it started: no infrastructure to report
        task_status.started(0)
    return started.pid, None if result is None else result.status_code


class _PidOf:
    """The executor reports the started process's handle; the worker wants its pid."""

    def __init__(self, outer: anyio.abc.TaskStatus[int]) -> None:
        self.outer = outer
        self.pid: int | None = None

    def started(self, handle: Any = None) -> None:
        self.pid = handle.pid
        self.outer.started(handle.pid)
