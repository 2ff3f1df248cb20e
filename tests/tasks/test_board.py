from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from promoter.board import AppBoard, InFlight, Placement, format_board, overview
from promoter.promotion import Target
from tasks.board import board_key, publish_board


def test_board_keys_are_plain_where_prefect_allows_and_never_shared() -> None:
    assert board_key("apps", "podinfo") == "promoter-apps-podinfo"
    assert board_key("apps", "my-app") == "promoter-apps-my-app"
    folded = {board_key("a-b", "c"), board_key("a", "b-c"), board_key("Apps", "x"), board_key("apps", "x_y")}
    assert len(folded | {board_key("apps", "x-y")}) == 5
    for key in folded:
        assert re.fullmatch(r"[a-z0-9-]+", key) and key.startswith("promoter-")


BOARD = AppBoard(
    group="apps",
    app="podinfo",
    placements=(
        Placement(env="dev", tag="2.0", since=datetime(2026, 12, 1, 9, 30, tzinfo=UTC), pr=4, flux="healthy"),
        Placement(env="qa", tag="2.0", pr=5, flux="failed", flux_description="health check failed"),
        Placement(env="prod", tag="1.0", digest="sha256:" + "ab" * 32, approver="ops@acme", flux="healthy"),
    ),
    in_flight=(InFlight(tag="2.0", env="prod", pr=6, stage="blocked: apps-qa failed"),),
)


def test_rows_say_what_runs_where_and_what_is_on_its_way() -> None:
    dev, qa, prod = BOARD.rows()
    assert dev == {
        "environment": "dev",
        "tag": "2.0",
        "digest": "",
        "since": "2026-12-01 09:30 UTC",
        "PR": "#4",
        "approver": "",
        "Flux": "healthy",
        "in flight": "",
    }
    assert qa["Flux"] == "failed (health check failed)"
    assert prod["digest"] == "ab" * 6 and prod["approver"] == "ops@acme"
    assert prod["in flight"] == "2.0 (PR #6): blocked: apps-qa failed"
    text = format_board([BOARD])
    assert text.splitlines()[0] == "apps/podinfo"
    assert re.search(r"^dev\s+2\.0\s+-\s+2026-12-01 09:30 UTC\s+#4\s+-\s+healthy$", text, re.MULTILINE), text


def test_the_overview_marks_what_flux_did_not_call_healthy() -> None:
    (row,) = overview([BOARD], ["dev", "qa", "prod"])
    assert row == {
        "app": "apps/podinfo",
        "dev": "2.0",
        "qa": "2.0 (failed)",
        "prod": "1.0",
        "in flight": "2.0 (PR #6): blocked: apps-qa failed",
    }


def test_a_board_that_cannot_be_read_is_a_warning_and_the_release_goes_on(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    url = "http://127.0.0.1:9/acme/gitops.git"  # nothing listens on the discard port
    target = Target.of({"gitops_url": url, "provider": "github", "cache_dir": str(tmp_path)})
    with caplog.at_level(logging.WARNING, logger="promoter.tasks"):
        publish_board.fn(target, "apps", "podinfo", None)
    assert "the board of apps/podinfo was not updated" in caplog.text
