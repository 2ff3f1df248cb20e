"""Releases through a misbehaving forge: do they all complete anyway, and what does it cost in retries?

Starts the whole stack on loopback (`sandbox/stack.py`), adds N apps to `acme/gitops`, turns on the
sandbox's fault injection, sends one signed webhook delivery per app at once (a new tag each), approves
each run with `promoter approve` as soon as it waits at the prod gate, and waits until every run ends.

Faults (`sandbox/faults.py`), on every forge API request (REST and GraphQL, under `/api/`):
about 20% 5xx (10% 500, 10% 502), 5% 429 with `retry-after: 1`, 3% GitHub secondary limits (403 with
`retry-after: 1`), 3% dropped connections (headers sent, body cut), and 0.3 s of latency on 20%. On git
smart-HTTP (fetch and push) `--git-rate` (default 5%) of requests answer 503 and as many are dropped (0
turns git faults off). The provider's HTTP client retries API faults, the workspace retries git ones, and
Prefect retries a task that still fails. Flux statuses are posted by the emulator inside the forge, so
they are never lost to a fault.

Guarantees checked (exit status 1 when one is broken):
- every delivery accepted and every run COMPLETED (dev, qa and prod merged, Flux healthy);
- on `main`: every app's dev, qa and prod manifests at its new tag, one merge commit per environment and
  app (3N) and exactly one bump commit each (3N, none twice);
- faults were really injected.
Also reported: task runs retried (`run_count > 1`, from the Prefect API) and the extra attempts, injected
faults by kind and where (API or git), wall time. The provider's own HTTP retries stay inside the flow-run
processes; every injected API fault that did not fail a task was absorbed by one of them.

    .venv/bin/python bench/faults.py [--apps N] [--limit L] [--git-rate R] [--root DIR]
    .venv/bin/python bench/faults.py --apps 5        # the short version, for CI
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from concurrency import (
    DEFAULT_LIMIT,
    ENVS,
    GROUP,
    REGISTRY,
    Row,
    app_files,
    app_name,
    log_counts,
    main_since,
    print_rows,
    push_all,
    tag_of,
)

from sandbox.prefect_server import prefect_server
from sandbox.stack import FINAL, Stack, promoter_stack

API_FAULTS: list[dict[str, Any]] = [
    {"route": "/api/*", "kind": "error", "status": 500, "rate": 0.1},
    {"route": "/api/*", "kind": "error", "status": 502, "rate": 0.1},
    {"route": "/api/*", "kind": "rate_limit", "retry_after": 1, "rate": 0.05},
    {"route": "/api/*", "kind": "secondary", "retry_after": 1, "rate": 0.03},
    {"route": "/api/*", "kind": "drop", "rate": 0.03},
    {"route": "/api/*", "kind": "latency", "latency": 0.3, "rate": 0.2},
]


def fault_plan(git_rate: float) -> dict[str, Any]:
    git = [
        {"route": "*.git/*", "kind": "error", "status": 503, "rate": git_rate},
        {"route": "*.git/*", "kind": "drop", "rate": git_rate},
    ]
    return {"seed": 7, "rules": API_FAULTS + (git if git_rate else [])}


def approve(stack: Stack, name: str) -> bool:
    """`promoter approve` for the run named `group/app:tag`, as a person at a shell would."""
    app, _, tag = name.partition(":")
    command = [
        sys.executable,
        "-m",
        "promoter.cli",
        "approve",
        "--app",
        app,
        "--tag",
        tag,
        "--comment",
        "bench",
    ]
    done = subprocess.run(command, env=stack.environment, capture_output=True, timeout=300)
    return done.returncode == 0


def run_to_the_end(stack: Stack, count: int, timeout: float) -> tuple[dict[str, dict[str, Any]], int]:
    """Approve runs as they reach the prod gate until all `count` have ended; (runs by id, approvals)."""
    deadline = time.monotonic() + timeout
    runs: dict[str, dict[str, Any]] = {}
    approving: dict[str, Future[bool]] = {}
    approvals, last_print = 0, 0.0
    with ThreadPoolExecutor(max_workers=2) as pool:  # each approval is a Python process: two at a time
        while time.monotonic() < deadline:
            try:
                runs = {run["id"]: run for run in stack.runs()}
            except httpx.HTTPError:  # a loaded server may be slow to answer: keep watching
                time.sleep(2)
                continue
            for run_id, run in runs.items():
                pending = approving.get(run_id)
                if pending is not None and pending.done() and not pending.result():
                    del approving[run_id]  # failed (the run may have been between states): try again
                if run["state_type"] == "PAUSED" and run_id not in approving:
                    approving[run_id] = pool.submit(approve, stack, run["name"])
                    approvals += 1
            states = collections.Counter(run["state_type"] for run in runs.values())
            if states and time.monotonic() - last_print >= 15:
                last_print = time.monotonic()
                elapsed = time.monotonic() - deadline + timeout
                print(
                    f"  {elapsed:6.0f}s  " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())),
                    flush=True,
                )
            if len(runs) >= count and all(run["state_type"] in FINAL for run in runs.values()):
                break
            time.sleep(1.0)
    return runs, approvals


def task_retries(stack: Stack) -> tuple[int, int]:
    """(task runs that ran more than once, extra attempts in all), from the Prefect API."""
    retried = extra = offset = 0
    while True:
        response = httpx.post(
            f"{stack.prefect.api_url}/task_runs/filter", json={"limit": 200, "offset": offset}, timeout=30
        )
        response.raise_for_status()
        page = response.json()
        counts = [run.get("run_count") or 0 for run in page]
        retried += sum(1 for n in counts if n > 1)
        extra += sum(n - 1 for n in counts if n > 1)
        if len(page) < 200:
            return retried, extra
        offset += 200


def landed(stack: Stack, seed: str, count: int) -> tuple[int, int, int, int]:
    """(manifests at the new tag, merge commits, bump commits, bumps seen twice) on main since `seed`."""
    git, main, merges, bumps = main_since(stack, seed)
    at_tag = sum(
        f"{REGISTRY}/{app_name(i)}:{tag_of(i)} "
        in (git.read_file(main, f"{GROUP}/{env}/{app_name(i)}.yaml") or b"").decode()
        for i in range(count)
        for env in ENVS
    )
    return at_tag, merges, len(bumps), len(bumps) - len(set(bumps))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=20, help="apps released at once (default 20)")
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"promoter serve --limit (default {DEFAULT_LIMIT})"
    )
    parser.add_argument(
        "--git-rate", type=float, default=0.05, help="git requests answered 503, and as many dropped"
    )
    parser.add_argument("--flux-delay", type=float, default=1.0, help="seconds before Flux reports")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up after this many seconds")
    parser.add_argument("--root", help="keep the stack's state and logs here (default: a temp dir)")
    args = parser.parse_args()
    count: int = args.apps
    scenario = {"default": {"outcome": "healthy", "delay": args.flux_delay}}
    with tempfile.TemporaryDirectory(prefix="promoter-faults-") as tmp:
        root = Path(args.root) if args.root else Path(tmp)
        print(f"starting the stack under {root} ...", flush=True)
        starting = time.monotonic()
        logs = root / "stack" / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        # A fresh database's migrations took over the default 90 s on the loaded 2-core machine.
        with (
            prefect_server(root / "prefect", log=logs / "prefect-server.log", startup_timeout=300) as server,
            promoter_stack(
                root / "stack", scenario=scenario, prefect=server, sweep_seconds=60, limit=args.limit or None
            ) as stack,
        ):
            boot = time.monotonic() - starting
            stack.sandbox.create_repo("acme/gitops", files=app_files(count))
            seed = stack.sandbox.forge.git(stack.repo).branches()[stack.repo.default_branch]
            stack.sandbox.set_faults(fault_plan(args.git_rate))
            print(f"pushing {count} releases at once, faults on ...", flush=True)
            started = time.monotonic()
            codes = push_all(stack, count)
            runs, approvals = run_to_the_end(stack, count, args.timeout)
            wall = time.monotonic() - started
            stack.sandbox.clear_faults()
            stats = stack.sandbox.stats()
            injected = dict(stack.sandbox.app.faults.injected)
            at_tag, merges, bumps, twice = landed(stack, seed, count)
            retried, extra = task_retries(stack)
            found = log_counts(stack.logs)

    accepted = sum(1 for code in codes if 200 <= code < 300)
    completed = sum(1 for run in runs.values() if run["state_type"] == "COMPLETED")
    git_faults = sum(row["faults"] for row in stats["routes"] if ".git/" in row["route"])
    failing = sum(n for kind, n in injected.items() if kind != "latency")
    rows: list[Row] = [
        ("releases (apps) at once", str(count), None),
        ("runner limit (promoter serve --limit)", str(args.limit or "none"), None),
        ("deliveries accepted", f"{accepted}/{count}", accepted == count),
        ("runs COMPLETED / attempted", f"{completed}/{count}", completed == count and len(runs) == count),
        ("approvals sent (promoter approve)", str(approvals), None),
        ("manifests on main at the new tag", f"{at_tag}/{3 * count}", at_tag == 3 * count),
        ("merge commits on main", f"{merges}/{3 * count}", merges == 3 * count),
        ("bump commits on main", f"{bumps}/{3 * count}", bumps == 3 * count),
        ("bump commits twice", str(twice), twice == 0),
        ("task runs retried (run_count > 1)", str(retried), None),
        ("task attempts beyond the first", str(extra), None),
        ("faults injected (failing requests)", str(failing), failing > 0),
        *((f"  {kind}", str(n), None) for kind, n in sorted(injected.items())),
        ("  of the failing ones, on git (fetch/push)", str(git_faults), None),
        (
            "forge requests served (API + git) / 304",
            f"{stats['total']['counted']} / {stats['total']['conditional']}",
            None,
        ),
        ("wall time: first push -> all ended", f"{wall:.1f} s", None),
        ("stack start-up (not in the wall time)", f"{boot:.1f} s", None),
        *((name, str(value), None) for name, value in found.items()),
    ]
    print_rows(f"{count} releases through a forge injecting faults", rows)
    for run in sorted(runs.values(), key=lambda r: str(r["name"])):
        if run["state_type"] != "COMPLETED":
            print(f"  {run['name']}: {run['state_name']}: {(run.get('state') or {}).get('message')}")
    if args.root:
        print(f"\nlogs kept in {logs}")
    return 0 if all(ok is not False for _, _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
