"""Merge and Flux waits hold no process: past a short window the run suspends, the wait watcher resumes it.

A stack whose Flux takes 3 s per environment and whose runs poll in-process for 0.5 s only: every Flux
wait must end in a suspend and a resume, and the release must still walk dev -> qa -> prod gate with one PR
and one merge per environment, and a timeline that counts the time spent waiting.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.prefect_server import PrefectServer
from sandbox.stack import Stack, promoter_stack
from tasks.contracts import waits_of

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
FLUX_DELAY = 3.0


@pytest.fixture(scope="module")
def stack(prefect_api: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with promoter_stack(
        tmp_path_factory.mktemp("waits"),
        scenario={"default": {"delay": FLUX_DELAY}},
        prefect=prefect_api,
        poll_interval=0.2,
        sweep_seconds=10,
        watch_seconds=1.0,
        settings={"PROMOTER_WAIT_WINDOW_SECONDS": "0.5"},
    ) as running:
        yield running
        assert running.sandbox.violations() == []


def states_of(stack: Stack, run_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{stack.prefect.api_url}/flow_run_states/", params={"flow_run_id": run_id}, timeout=30
    )
    response.raise_for_status()
    return sorted(response.json(), key=lambda s: s["timestamp"])


def test_flux_waits_suspend_hold_no_process_and_resume(stack: Stack) -> None:
    assert stack.push("ghcr.io/acme/podinfo", "w1").status_code == 202
    seen_waiting: set[str] = set()
    # A suspending run's process takes a moment to exit; what counts is that it exits while the run is
    # still suspended, instead of living on through the wait.
    alive_while_suspended: set[int] = set()
    gone_while_suspended: set[int] = set()
    deadline = time.monotonic() + 300
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        runs = [r for r in stack.runs() if r["name"].endswith(":w1")]
        run = runs[-1] if runs else {}
        if run.get("state_type") == "PAUSED":
            waits = waits_of(run["tags"])
            if waits is not None and waits.commit:  # suspended in a Flux wait, not at the gate
                seen_waiting.add(waits.env or "?")
                for pid in stack.flow_run_pids(run["id"]):
                    (alive_while_suspended if _alive(pid) else gone_while_suspended).add(pid)
            elif any(t.startswith("pr:") for t in run["tags"]):
                break  # at the prod gate
        time.sleep(0.2)
    assert run.get("state_type") == "PAUSED" and any(t.startswith("pr:") for t in run["tags"]), run
    assert {"dev", "qa"} <= seen_waiting  # both Flux waits suspended
    assert alive_while_suspended <= gone_while_suspended  # no process lived on through a suspended wait
    suspends = [s for s in states_of(stack, run["id"]) if s["type"] == "PAUSED"]
    assert len(suspends) >= 3  # dev and qa Flux waits, then the approval gate
    # One PR and one merge per environment, however often the run was resumed.
    pulls = [pr for pr in stack.repo.pulls.values() if "podinfo" in pr.head_ref]
    assert sorted(pr.title.rsplit(" ", 1)[-1] for pr in pulls) == ["dev", "prod", "qa"]
    assert sum(pr.merged for pr in pulls) == 2
    # The run's processes: one per start, each gone by now (the approval wait holds none either).
    assert len(stack.flow_run_pids(run["id"])) >= 3
    gone_by = time.monotonic() + 60  # the last one is still exiting after suspending at the gate
    while any(_alive(pid) for pid in stack.flow_run_pids(run["id"])) and time.monotonic() < gone_by:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in stack.flow_run_pids(run["id"]))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
