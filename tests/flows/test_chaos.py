"""SIGKILL the process executing a promotion, restart it: the release ends as an uninterrupted one does.

The small case of `bench/chaos.py` (which does 24 kills at seeded points), on the session's Prefect server:
one release killed at the two points the issue names, between its branch push and its PR (dev) and between
a merge and Flux's status (qa), against the same release run uninterrupted in a twin repository.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sandbox.prefect_server import PrefectServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import chaos  # bench/ holds scripts, not a package

pytestmark = pytest.mark.timeout(600)


def test_killed_between_push_and_pr_and_between_merge_and_status_a_release_ends_as_if_never_killed(
    prefect_api: PrefectServer, tmp_path: Path
) -> None:
    report = chaos.run_chaos(tmp_path / "stack", 2, points=["pushed:dev", "merged:qa"], prefect=prefect_api)
    table = report.table()
    # A point a release passed with no process to kill moves to the next release (a faster run passes
    # `pushed:dev` more often before the watcher sees it): each point is hit once, in whichever release.
    assert sorted(point for release in report.releases for point in release.hit) == [
        "merged:qa",
        "pushed:dev",
    ], table
    assert report.survived == report.attempted == 2, table
    assert report.same_tree, table
