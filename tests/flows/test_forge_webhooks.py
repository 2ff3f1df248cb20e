"""Forge webhooks resume suspended waits: with the wait watcher and the sweeper all but off, only the
forge's deliveries into `promoter webhook` (`/forge/github`, `/forge/azure`) can wake a waiting run.

- GitHub: Flux takes 3 s per environment and runs poll for 0.5 s, so each Flux wait suspends; Flux's
  commit status reaches the receiver as a `status` event, which resumes the run.
- Azure DevOps, which has no service hook for statuses: its merges take 3 s (they complete
  asynchronously), so each merge wait suspends; `git.pullrequest.merged` resumes the run.
Either way the release must reach the prod gate with one PR and one merge per environment.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from deployments.approve import approve
from promoter.errors import InvalidInputError
from sandbox.prefect_server import PrefectServer
from sandbox.stack import Stack, promoter_stack

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
OFF = 3600.0  # the wait watcher's and the sweeper's interval: neither makes a second pass in the test


@pytest.fixture(params=["github", "azure"])
def stack(
    request: pytest.FixtureRequest, prefect_api: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    kind = request.param
    with promoter_stack(
        tmp_path_factory.mktemp(f"forge-{kind}"),
        kind=kind,
        scenario={"default": {"delay": 3.0 if kind == "github" else 0.2}},
        prefect=prefect_api,
        poll_interval=0.2,
        sweep_seconds=OFF,
        watch_seconds=OFF,
        azure_merge_delay=3.0,
        settings={"PROMOTER_WAIT_WINDOW_SECONDS": "0.5"},
    ) as running:
        yield running
        assert running.sandbox.violations() == []


def test_forge_webhooks_resume_the_waiting_runs(stack: Stack) -> None:
    tag = f"hook-{stack.repo.kind}"  # the server is shared: each personality's release is its own
    assert stack.push("ghcr.io/acme/podinfo", tag).status_code == 202
    deadline = time.monotonic() + 240
    run: dict[str, Any] = {}
    refused = ""
    while time.monotonic() < deadline:
        runs = [r for r in stack.runs() if r["name"].endswith(f":{tag}")]
        run = runs[-1] if runs else {}
        if (
            not refused
            and run.get("state_type") == "PAUSED"
            and not any(t.startswith("pr:") for t in run["tags"])
        ):
            with pytest.raises(InvalidInputError) as error:  # suspended in dev's wait, not at a gate
                approve("apps", "podinfo", tag, reject=False, approver="alice", comment="")
            refused = str(error.value)
        if run.get("state_type") == "PAUSED" and any(t.startswith("pr:") for t in run["tags"]):
            break  # at the prod gate
        time.sleep(0.2)
    assert run.get("state_type") == "PAUSED" and any(t.startswith("pr:") for t in run["tags"]), run
    assert refused == f"no promotion of apps/podinfo:{tag} is waiting for approval"
    # A wait's second round, `(1)`, only runs after the run suspended in it and was resumed.
    wait = "flux" if stack.repo.kind == "github" else "wait merge"
    names = task_run_names(stack, run["id"])
    resumed = {
        env for env in ("dev", "qa") for n in names if n.startswith(wait) and env in n and n.endswith("(1)")
    }
    assert resumed == {"dev", "qa"}, names
    woken = [
        line for line in (stack.logs / "webhook.log").read_text().splitlines() if "resumed 1 run" in line
    ]
    assert len(woken) >= 2, woken  # by the forge's deliveries: the watcher and sweeper never ran again
    pulls = [pr for pr in stack.repo.pulls.values() if "podinfo" in pr.head_ref]
    assert sorted(pr.title.rsplit(" ", 1)[-1] for pr in pulls) == ["dev", "prod", "qa"]
    assert sum(pr.merged for pr in pulls) == 2


def task_run_names(stack: Stack, run_id: str) -> list[str]:
    response = httpx.post(
        f"{stack.prefect.api_url}/task_runs/filter",
        json={"flow_runs": {"id": {"any_": [run_id]}}},
        timeout=30,
    )
    response.raise_for_status()
    return sorted(task["name"] for task in response.json())
