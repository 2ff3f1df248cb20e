"""The `promoter` commands that live above the core. Their parsers are cheap; each handler imports
Prefect and the flows only when it runs, so `promoter bump` stays quick."""

from __future__ import annotations

import argparse
import importlib
from typing import Any


def _lazy(module: str, function: str = "run") -> Any:
    def handler(args: argparse.Namespace) -> int:
        result: int = getattr(importlib.import_module(module), function)(args)
        return result

    return handler


def add_serve(commands: Any) -> None:
    parser = commands.add_parser(
        "serve", help="serve the promote-release, approval-sweeper and delivery-report deployments"
    )
    parser.add_argument(
        "--sweep-seconds", type=float, default=60.0, help="approval-sweeper interval (default 60)"
    )
    parser.add_argument(
        "--watch-seconds",
        type=_positive,
        default=10.0,
        help="how often suspended merge and Flux waits are checked, for forges without webhooks (default 10)",
    )
    parser.add_argument(
        "--reconcile-seconds",
        type=_positive,
        default=30.0,
        help="how often pushes whose trigger started no run are looked for and started (default 30)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="at most this many runs at once in this process"
    )
    parser.set_defaults(handler=_lazy("deployments.serve"))


def add_worker(commands: Any) -> None:
    parser = commands.add_parser(
        "worker",
        help="a Prefect process worker on a work pool that starts each promoter run as a warm fork",
        description="Poll a process work pool (e.g. the `promoter` pool prefect.yaml deploys to) like "
        "`prefect worker start`, but start each run of the promoter's flows as a fork of a process that "
        "imported them once; see docs/scale-out.md.",
    )
    parser.add_argument("--pool", required=True, type=_worker_name, help="the work pool, e.g. promoter")
    parser.add_argument(
        "--limit", type=_count, default=None, help="at most this many runs at once in this worker"
    )
    parser.add_argument(
        "--name", type=_worker_name, default=None, help="the worker's name in the pool (default: random)"
    )
    parser.add_argument(
        "--watch-seconds",
        type=_positive,
        default=10.0,
        help="how often suspended merge and Flux waits are checked, for forges without webhooks (default 10)",
    )
    parser.set_defaults(handler=_lazy("deployments.worker"))


def _worker_name(text: str) -> str:
    """Prefect refuses '/' and '%' in worker names and URL-quotes pool names; say so before connecting."""
    if not text.strip() or "/" in text or "%" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a name: give a non-empty name without '/' or '%'")
    return text


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of runs, 1 or more")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def add_approve(commands: Any) -> None:
    parser = commands.add_parser(
        "approve", help="approve (or --reject) a promotion waiting at an approval gate"
    )
    parser.add_argument("--app", required=True, help="GROUP/APP, e.g. apps/podinfo")
    parser.add_argument("--tag", help="the release tag, when several releases of the app wait")
    parser.add_argument("--reject", action="store_true", help="reject: end the run and leave the PR open")
    parser.add_argument("--comment", default="", help="why, for the record")
    parser.add_argument("--approver", help="who decides (default: $PROMOTER_APPROVER or the login name)")
    parser.add_argument(
        "--break-glass",
        action="store_true",
        help="let this release through a freeze (needs --comment; recorded in an artifact, an event and "
        "the merge commit)",
    )
    parser.set_defaults(handler=_lazy("deployments.approve"))


def add_freeze(commands: Any) -> None:
    parser = commands.add_parser(
        "freeze", help="stop the line: releases wait at a frozen environment until it is thawed"
    )
    parser.add_argument("--env", help="the environment to freeze (default: every environment)")
    parser.add_argument("--reason", required=True, help="why; shown on every red check it causes")
    parser.add_argument(
        "--until", help="when it ends by itself: a time (2026-12-24T18:00Z) or a duration (2h)"
    )
    parser.add_argument("--by", help="who freezes (default: $PROMOTER_APPROVER or the login name)")
    parser.set_defaults(handler=_lazy("deployments.freeze", "freeze"))
    thaw = commands.add_parser("thaw", help="lift a freeze; the releases waiting on it go on")
    thaw.add_argument("--env", help="the environment to thaw (default: the freeze of every environment)")
    thaw.set_defaults(handler=_lazy("deployments.freeze", "thaw"))


def add_demo(commands: Any) -> None:
    parser = commands.add_parser(
        "demo", help="the whole story on the embedded default: sandbox forge, Flux emulator, Prefect server"
    )
    parser.add_argument(
        "--root", default=".promoter/demo", help="state of the demo (default: .promoter/demo)"
    )
    parser.add_argument(
        "--approve", action="store_true", help="approve prod by itself instead of waiting for you"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    parser.set_defaults(handler=_lazy("deployments.demo"))
