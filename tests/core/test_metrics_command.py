"""`promoter metrics` end to end: a scripted history pushed to the sandbox forge, Flux's statuses posted on
its commits as notification-controller would, and the figures read back through the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from promoter.cli import main
from promoter.metrics_command import parse_window
from sandbox.testing import run_sandbox
from tests.scripted_history import Scripted, script_failure_then_fix


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[Scripted]:
    with run_sandbox(tmp_path / "sandbox", scenario={"repos": ["nobody/*"]}) as sandbox:
        yield script_failure_then_fix(sandbox, tmp_path)
        assert sandbox.violations() == []


def run_metrics(
    scripted: Scripted, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("PROMOTER_TOKEN", scripted.sandbox.token)
    source = ["--sourcedir", str(scripted.history.root), "--cache-dir", str(scripted.cache)]
    code = main(["metrics", *args, *source, "--provider", "github"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_metrics_json_has_the_figures_of_a_failure_in_qa_and_its_fix(
    scripted: Scripted, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_metrics(scripted, capsys, monkeypatch, "--json", "--since", "30d")
    assert code == 0, err
    assert "reading 4 deployments' Flux reports..." in err
    document = json.loads(out)
    assert document["apps"] == ["apps/podinfo"] and document["days"] == 30.0
    dev, qa, prod = document["environments"]
    assert (dev["env"], dev["deployments"], dev["failures"], dev["change_failure_rate"]) == ("dev", 2, 0, 0.0)
    assert dev["lead_time_seconds"] == {"p50": 120.0, "p90": 120.0}
    assert (qa["deployments"], qa["failures"], qa["no_report"], qa["change_failure_rate"]) == (2, 1, 0, 0.5)
    # 1.0 reached qa 20 minutes after its bump for dev, 1.1 30 minutes after: nearest-rank p50 is 20m.
    assert qa["lead_time_seconds"] == {"p50": 1200.0, "p90": 1800.0}
    # qa failed at +20m and was healthy again with 1.1 at +90m.
    assert qa["time_to_restore_seconds"] == {"p50": 4200.0, "restored": 1, "unrestored": 0}
    assert (prod["deployments"], prod["change_failure_rate"], prod["lead_time_seconds"]["p50"]) == (
        0,
        None,
        None,
    )
    day = scripted.base.date().isoformat()
    assert qa["daily"][day] == 2 and sum(qa["daily"].values()) == 2


def test_metrics_table_for_one_app_and_a_shorter_window(
    scripted: Scripted, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_metrics(scripted, capsys, monkeypatch, "--app", "apps/podinfo", "--since", "2w")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Delivery of apps/podinfo, ") and lines[0].endswith(" UTC (14 days)")
    assert lines[4].split() == [
        "qa",
        "2",
        "0.14",
        "1.00",
        "20m",
        "00s",
        "30m",
        "00s",
        "50%",
        "(1",
        "of",
        "2)",
        "1h",
        "10m",
        "0",
    ]
    code, out, err = run_metrics(scripted, capsys, monkeypatch, "--since", "12h")
    assert code == 0, err
    assert "Delivery of no deployments, " in out and "reading 0 deployments' Flux reports..." in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--since", "30"],
            "--since '30' is not a duration: use a number and a unit, w, d, h or m (30d, 12h, 2w)",
        ),
        (["--since", "0d"], "--since '0d': give a window longer than zero and at most 3660 days"),
        (["--since=-3d"], "is not a duration"),
        (["--app", "podinfo"], "--app 'podinfo': give <group>/<app>, e.g. apps/podinfo"),
        (["--app", "../etc/podinfo"], "invalid group name"),
    ],
)
def test_bad_input_exits_2_with_one_line_before_any_read(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["metrics", *args, "--sourcedir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("promoter metrics: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "days"), [("30d", 30), ("12h", 0.5), ("2w", 14), ("1w3d", 10), (" 90M ", 90 / 1440)]
)
def test_windows_are_a_number_and_a_unit(text: str, days: float) -> None:
    assert parse_window(text) == timedelta(days=days)
