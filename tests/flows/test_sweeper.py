"""The approval-sweeper keeps sweeping when one run's forge cannot be read (a PR deleted, a repository
moved, a token revoked): that run waits for the next pass, the others are still resumed."""

from __future__ import annotations

import logging
import uuid

import pytest

from flows import sweeper
from promoter.errors import ProviderNotFoundError
from sandbox.prefect_server import PrefectServer
from tasks.wait_watch import WaitWatcher


def test_one_runs_forge_trouble_does_not_stop_the_sweep(
    prefect_api: PrefectServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    gone, fine = (sweeper.AwaitingRun(uuid.uuid4(), n, {}, ("promoter", f"pr:{n}"), None) for n in (7, 8))
    swept: list[int] = []

    def sweep(run: sweeper.AwaitingRun) -> int:
        swept.append(run.pr)
        if run is gone:
            raise ProviderNotFoundError("GitHub repository acme/gitops: not found (get pull)")
        return 1

    monkeypatch.setattr(sweeper, "awaiting_runs", lambda: [gone, fine])
    monkeypatch.setattr(sweeper, "_sweep", sweep)
    monkeypatch.setattr(sweeper, "thaw_resumes", lambda env=None: 0)
    monkeypatch.setattr(WaitWatcher, "sweep", lambda self: [])
    monkeypatch.setattr(sweeper, "reconcile", lambda: None)
    caplog.set_level(logging.WARNING)

    assert sweeper.approval_sweeper() == 1
    assert swept == [7, 8]
    assert any(
        f"could not check PR #7 of {gone.id}: GitHub repository acme/gitops: not found" in r.getMessage()
        for r in caplog.records
    )
