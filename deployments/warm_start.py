"""What the fork server of `promoter serve` prepares once, so that every run's process starts warm.

Imported by the fork server only (`forked_runs.PRELOAD`), before it forks any run. Measured in a run's
process, each of these cost time on every release before its first task:

- modules Prefect's engine imports lazily at run time (the task engine, the suspension observer,
  anyio's backend, ...): about 0.1 s;
- the rebuild of the run-context models that `hydrated_context` does on first use: about 0.06 s;
- the CA bundle: Prefect builds a new verifying TLS context for every API client it creates (five on
  the way to the first task), and loading certifi's bundle takes about 50 ms each. One context per
  CA file is built here and shared; a context is safe to share between clients and threads, and one
  built before the fork is valid in every child. Prefect's unverified variant (when
  `PREFECT_API_TLS_INSECURE_SKIP_VERIFY` is on) changes the context it gets, so it keeps a fresh one.
"""

from __future__ import annotations

import functools
import importlib
import ssl
from types import SimpleNamespace
from typing import Any

import certifi
from prefect._internal import version_checking
from prefect.client import orchestration
from prefect.context import FlowRunContext, TaskRunContext
from prefect.settings import PREFECT_API_SSL_CERT_FILE

from promoter.providers.http import tls_context

LAZY_IMPORTS = [
    "anyio._backends._asyncio",
    "prefect._internal.observers",
    "prefect._internal.states",
    "prefect.concurrency.sync",
    "prefect.task_engine",
    "prefect.utilities.visualization",
]


@functools.cache
def _verifying_context(cafile: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)


def _create_default_context(*args: Any, cafile: str | None = None, **kwargs: Any) -> ssl.SSLContext:
    if cafile and not args and not kwargs:
        return _verifying_context(cafile)
    return ssl.create_default_context(*args, cafile=cafile, **kwargs)


def prepare() -> None:
    for module in LAZY_IMPORTS:
        importlib.import_module(module)
    from prefect._internal.result_records import ResultRecordMetadata
    from prefect.flows import Flow
    from prefect.tasks import Task

    types = {"Flow": Flow, "Task": Task, "ResultRecordMetadata": ResultRecordMetadata}
    FlowRunContext.model_rebuild(_types_namespace=types)
    TaskRunContext.model_rebuild(_types_namespace=types)
    # Prefect's client and version check ask their module's `ssl` for `create_default_context`; give
    # them the sharing one, with the context of the CA file they will ask for already built.
    shared = SimpleNamespace(**{n: getattr(ssl, n) for n in dir(ssl) if not n.startswith("__")})
    shared.create_default_context = _create_default_context
    for client_module in (orchestration, version_checking):
        client_module.ssl = shared  # type: ignore[attr-defined]
    _verifying_context(PREFECT_API_SSL_CERT_FILE.value() or certifi.where())
    tls_context()  # the forge clients' context, built once for every run


prepare()
