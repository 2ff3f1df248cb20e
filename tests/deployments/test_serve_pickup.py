"""`promoter serve` starts a triggered run on the server's Scheduled event, not at the runner's next poll."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sandbox.stack import promoter_stack

if TYPE_CHECKING:
    from sandbox.prefect_server import PrefectServer

pytestmark = pytest.mark.timeout(500)


def _left_the_queue(run: dict[str, object]) -> bool:
    return run["state_type"] not in ("SCHEDULED", "PENDING")


def test_a_triggered_run_starts_although_the_runner_polls_once_an_hour(
    prefect_api: PrefectServer, tmp_path: Path
) -> None:
    hourly = {"PREFECT_RUNNER_POLL_FREQUENCY": "3600"}
    with promoter_stack(
        tmp_path, prefect=prefect_api, scenario={"default": {"delay": 0.0}}, settings=hourly
    ) as stack:
        # The first release may meet the runner's first poll; once it runs, that poll is behind us, and
        # the next one is an hour away: only the Scheduled event can start the second release.
        stack.push("ghcr.io/acme/podinfo", "5f1d2c3b").raise_for_status()
        stack.wait_for_run(_left_the_queue, "tag:5f1d2c3b", timeout=180)
        stack.push("ghcr.io/acme/podinfo", "6a2e3d4c").raise_for_status()
        second = stack.wait_for_run(_left_the_queue, "tag:6a2e3d4c", timeout=180)
        assert second["name"] == "apps/podinfo:6a2e3d4c"
