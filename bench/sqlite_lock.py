"""SQLite "database is locked" at burst load: Prefect's default server settings vs `SQLITE_SETTINGS`.

For each configuration in turn starts `prefect server start` on a fresh SQLite file
(`sandbox.prefect_server.prefect_server`, with `PREFECT_SERVER_LOG_RETRYABLE_ERRORS=true` in both so
the server logs every lock it answers with 503) and fires, all at once:

- N writers, each doing what a worker and its flow-run process do at submission: create a run of a
  deployment, set its labels (`PATCH /flow_runs/<id>/labels`, where bench/scale.py saw 503s crash runs),
  Pending -> Running, 5 log lines, 2 events, Completed; through Prefect's own HTTP client
  (`PrefectHttpxAsyncClient`, which retries 503 `PREFECT_CLIENT_MAX_RETRIES` times);
- N `registry`-style events at a deployment whose automation runs it once per event (the
  `promote-release` trigger's run-deployment action, which does not retry an action that failed).

Then waits until the automation has made N runs (or made none for 20 s) and prints one row per
configuration: operations that failed after the client's retries, 503 answers the writers met, runs the
trigger created out of N, and what the server logged ("database is locked", retryable errors, "Action
failed").

    .venv/bin/python bench/sqlite_lock.py [--events N] [--configs default,tuned,retries] [--root DIR]
    .venv/bin/python bench/sqlite_lock.py --events 100 --configs default,retries,tuned   # docs/sqlite.md
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import prefect.settings
from prefect.client.base import PrefectHttpxAsyncClient
from prefect.settings import temporary_settings

from sandbox.prefect_server import SQLITE_CLIENT_SETTINGS, SQLITE_SETTINGS, prefect_server

MEASURE = {"PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true"}  # both: the server logs each lock it met
CONFIGS: dict[str, tuple[dict[str, str], dict[str, str]]] = {  # name -> (server env, client env)
    "default": ({}, {}),
    "tuned": (dict(SQLITE_SETTINGS), dict(SQLITE_CLIENT_SETTINGS)),
    "retries": (dict(SQLITE_CLIENT_SETTINGS), dict(SQLITE_CLIENT_SETTINGS)),  # the client retries alone
}
DEFAULT_CONFIGS = ("default", "tuned")
SETTLE = 20.0


@dataclass
class Result:
    config: str
    events: int
    operations: int = 0
    failed: int = 0
    writer_503: int = 0
    created: int = 0
    locked: int = 0
    retryable: int = 0
    action_failed: int = 0
    burst: float = 0.0
    wait: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)


def now() -> str:
    return datetime.now(UTC).isoformat()


def event(name: str, resource: dict[str, str]) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "occurred": now(), "event": name, "resource": resource, "payload": {}}


async def setup(client: httpx.AsyncClient) -> tuple[str, str]:
    """A flow, the writers' deployment, and a triggered deployment with its automation: their ids."""
    flow = (await client.post("/flows/", json={"name": "sqlite-lock"})).json()["id"]
    writers = (await client.post("/deployments/", json={"name": "writers", "flow_id": flow})).json()["id"]
    triggered = (await client.post("/deployments/", json={"name": "triggered", "flow_id": flow})).json()["id"]
    automation = {
        "name": "sqlite-lock trigger",
        "trigger": {
            "type": "event",
            "expect": ["bench.image.pushed"],
            "match": {"prefect.resource.id": "bench.image.*"},
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        "actions": [
            {
                "type": "run-deployment",
                "source": "selected",
                "deployment_id": triggered,
                "parameters": {"tag": "{{ event.resource['bench.tag'] }}"},
            }
        ],
    }
    (await client.post("/automations/", json=automation)).raise_for_status()
    return writers, triggered


async def count_runs(client: httpx.AsyncClient, deployment: str) -> int:
    response = await client.post(
        "/flow_runs/count", json={"flow_runs": {"deployment_id": {"any_": [deployment]}}}
    )
    response.raise_for_status()
    return int(response.json())


async def push(client: httpx.AsyncClient, index: int, prefix: str = "app") -> None:
    resource = {"prefect.resource.id": f"bench.image.{prefix}-{index}", "bench.tag": f"{prefix}-{index}"}
    (await client.post("/events", json=[event("bench.image.pushed", resource)])).raise_for_status()


async def warm_up(client: httpx.AsyncClient, triggered: str, timeout: float = 60.0) -> None:
    """One event until its run appears: the triggers service has loaded the automation."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await push(client, 0, prefix="warm-up")
        for _ in range(10):
            await asyncio.sleep(0.5)
            if await count_runs(client, triggered):
                return
    raise RuntimeError(f"the automation made no run within {timeout:.0f} s")


async def writer(client: httpx.AsyncClient, deployment: str, index: int, result: Result) -> None:
    """What a worker and its flow-run process write when a run is submitted and runs."""

    async def call(method: str, path: str, body: Any) -> Any:
        result.operations += 1
        try:
            response = await client.request(method, path, json=body)
            response.raise_for_status()
            return response.json() if response.content else None
        except httpx.HTTPError as error:
            result.failed += 1
            code = (
                error.response.status_code
                if isinstance(error, httpx.HTTPStatusError)
                else type(error).__name__
            )
            key = f"{method} {path.split('/')[1]} {code}"
            result.errors[key] = result.errors.get(key, 0) + 1
            return None

    run = await call("POST", f"/deployments/{deployment}/create_flow_run", {"state": {"type": "SCHEDULED"}})
    if not run:
        return
    run_id = run["id"]
    await call("PATCH", f"/flow_runs/{run_id}/labels", {"bench.writer": str(index)})
    for state in ("PENDING", "RUNNING"):
        await call("POST", f"/flow_runs/{run_id}/set_state", {"state": {"type": state}})
    logs = [
        {"name": "bench", "level": 20, "message": f"line {n}", "timestamp": now(), "flow_run_id": run_id}
        for n in range(5)
    ]
    await call("POST", "/logs/", logs)
    resource = {"prefect.resource.id": f"prefect.flow-run.{run_id}"}
    await call("POST", "/events", [event("bench.step", resource), event("bench.step", resource)])
    await call("POST", f"/flow_runs/{run_id}/set_state", {"state": {"type": "COMPLETED"}})


async def burst(api_url: str, count: int, result: Result, settings: Mapping[str, str]) -> None:
    """The writers and the events at once, as Prefect clients configured with `settings`."""

    async def on_response(response: httpx.Response) -> None:
        if response.status_code == 503:
            result.writer_503 += 1

    limits = httpx.Limits(max_connections=4 * count, max_keepalive_connections=4 * count)
    with temporary_settings(updates={getattr(prefect.settings, k): v for k, v in settings.items()}):
        async with PrefectHttpxAsyncClient(
            base_url=api_url, timeout=120, limits=limits, event_hooks={"response": [on_response]}
        ) as client:
            writers, triggered = await setup(client)
            await warm_up(client, triggered)
            before = await count_runs(client, triggered)
            started = time.monotonic()
            await asyncio.gather(
                *(writer(client, writers, index, result) for index in range(count)),
                *(push(client, index) for index in range(count)),
            )
            result.burst = time.monotonic() - started
            last, changed = -1, time.monotonic()
            while True:
                created = await count_runs(client, triggered) - before
                if created != last:
                    last, changed = created, time.monotonic()
                if created >= count or time.monotonic() - changed > SETTLE:
                    break
                await asyncio.sleep(1.0)
            result.created = created
            result.wait = time.monotonic() - started


def run_config(name: str, count: int, root: Path) -> Result:
    server_env, client_env = CONFIGS[name]
    result = Result(name, count)
    home = root / name
    log = home / "server.log"
    print(f"[{name}] starting a Prefect server on SQLite under {home} ...", flush=True)
    with prefect_server(
        home, log=log, environment={**MEASURE, **server_env}, sqlite_settings=False
    ) as server:
        asyncio.run(burst(server.api_url, count, result, client_env))
    text = log.read_text(errors="replace")
    result.locked = text.count("database is locked")
    result.retryable = text.count("Encountered retryable exception")
    result.action_failed = text.count("Action failed")
    print(f"[{name}] done in {result.wait:.0f} s after the burst", flush=True)
    return result


def table(results: list[Result]) -> str:
    head = (
        f"{'config':<8} {'writer ops failed':>18} {'writer 503s':>12} {'trigger runs':>13}"
        f" {'db locked in log':>17} {'server 503s':>12} {'Action failed':>14} {'burst s':>8} {'all runs s':>11}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.config:<8} {f'{r.failed}/{r.operations}':>18} {r.writer_503:>12} {f'{r.created}/{r.events}':>13}"
            f" {r.locked:>17} {r.retryable:>12} {r.action_failed:>14} {r.burst:>8.1f} {r.wait:>11.1f}"
        )
    for r in results:
        if r.errors:
            lines.append(
                f"  {r.config}: failed " + ", ".join(f"{k} x{v}" for k, v in sorted(r.errors.items()))
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=50, help="writers and trigger events, each (default 50)"
    )
    parser.add_argument(
        "--configs",
        default=",".join(DEFAULT_CONFIGS),
        help=f"comma-separated, of {', '.join(CONFIGS)} (default {','.join(DEFAULT_CONFIGS)})",
    )
    parser.add_argument("--root", help="keep the servers' databases and logs here (default: a temp dir)")
    args = parser.parse_args()
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    if unknown := set(names) - set(CONFIGS):
        parser.error(f"unknown configs {sorted(unknown)}; choose from {', '.join(CONFIGS)}")
    with tempfile.TemporaryDirectory(prefix="promoter-sqlite-lock-") as tmp:
        root = Path(args.root) if args.root else Path(tmp)
        results = [run_config(name, args.events, root) for name in names]
    print(
        f"\n{args.events} writers (create run, labels, Pending, Running, logs, events, Completed) and"
        f" {args.events} trigger events, all at once, per config; a fresh SQLite database each\n"
    )
    print(table(results))
    for name in names:
        server_env, client_env = CONFIGS[name]
        if server_env or client_env:
            print(f"  {name}: " + " ".join(f"{k}={v}" for k, v in {**server_env, **client_env}.items()))
    if args.root:
        print(f"\nlogs kept under {args.root}")
    return 0 if all(r.failed == 0 and r.created == r.events for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
