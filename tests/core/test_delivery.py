"""Delivery metrics computed from a scripted list of deployments and verdicts: every figure by hand.

The week from Monday T0 09:00 (UTC) to the next Monday 09:00:

    podinfo 0.9   dev  T0-60m (before the window; its bump at T0-70m starts the release)
                  qa   T0+10m healthy                       lead 80m (dev's time included)
    podinfo 1.0   dev  +1d 2m healthy  lead 2m;  qa +1d 15m failed   lead 15m  (outage begins)
    podinfo 1.1   dev  +2d 4m healthy  lead 4m;  qa +2d 12m failed   lead 12m  (the fix fails too)
    podinfo 1.2   dev  +3d 6m healthy  lead 6m;  qa +3d 20m healthy  lead 20m  (restored: 2d 5m)
                  prod +4d  no report            lead 1d (bumped for prod at +3d 30m)
    frontend 2.0  dev  +5d 8m healthy  lead 8m;  qa +5d 30m failed   lead 30m  (still failing)
"""

from __future__ import annotations

import base64
import io
import re
import sys
from datetime import date, datetime, timedelta

import pytest
from PIL import Image

from promoter.delivery import DeploymentKey, Outcome, compute, key, percentile
from promoter.delivery_render import chart, duration, markdown, table
from promoter.history import Deployment
from tests.scripted_history import T0, at

ENVS = ("dev", "qa", "prod")
UNTIL = T0 + timedelta(days=7)


def deployment(
    env: str, tag: str, started: datetime, deployed: datetime, app: str = "podinfo", commit: str = ""
) -> Deployment:
    return Deployment(
        group="apps",
        app=app,
        env=env,
        tag=tag,
        digest=None,
        commit=commit or f"{app}-{env}-{tag}",
        deployed_at=deployed,
        started_at=started,
    )


SCRIPT: list[tuple[Deployment, Outcome | None]] = [
    (deployment("dev", "0.9", at(T0, -70), at(T0, -60)), None),
    (deployment("qa", "0.9", at(T0, 5), at(T0, 10)), "healthy"),
    (deployment("dev", "1.0", at(T0, days=1), at(T0, 2, days=1)), "healthy"),
    (deployment("qa", "1.0", at(T0, 10, days=1), at(T0, 15, days=1)), "failed"),
    (deployment("dev", "1.1", at(T0, days=2), at(T0, 4, days=2)), "healthy"),
    (deployment("qa", "1.1", at(T0, 10, days=2), at(T0, 12, days=2)), "failed"),
    (deployment("dev", "1.2", at(T0, days=3), at(T0, 6, days=3)), "healthy"),
    (deployment("qa", "1.2", at(T0, 10, days=3), at(T0, 20, days=3)), "healthy"),
    (deployment("prod", "1.2", at(T0, 30, days=3), at(T0, days=4)), "no report"),
    (deployment("dev", "2.0", at(T0, days=5), at(T0, 8, days=5), app="frontend"), "healthy"),
    (deployment("qa", "2.0", at(T0, 10, days=5), at(T0, 30, days=5), app="frontend"), "failed"),
]
DEPLOYMENTS = [d for d, _ in SCRIPT]
OUTCOMES: dict[DeploymentKey, Outcome] = {key(d): said for d, said in SCRIPT if said is not None}


def test_deployments_per_environment_per_day_and_week() -> None:
    metrics = compute(DEPLOYMENTS, OUTCOMES, ENVS, T0, UNTIL)
    assert metrics.days == 7
    assert [(m.env, m.deployments) for m in metrics.environments] == [("dev", 4), ("qa", 5), ("prod", 1)]
    dev = metrics.environment("dev")
    assert (dev.per_day, dev.per_week) == (4 / 7, 4.0)
    assert dict(dev.daily) == {
        date(2024, 5, 6): 0,  # dev's 0.9 landed before the window opened at 09:00
        date(2024, 5, 7): 1,
        date(2024, 5, 8): 1,
        date(2024, 5, 9): 1,
        date(2024, 5, 10): 0,
        date(2024, 5, 11): 1,
        date(2024, 5, 12): 0,
        date(2024, 5, 13): 0,
    }
    assert metrics.apps == ("apps/frontend", "apps/podinfo")


def test_lead_time_counts_from_the_first_environments_bump() -> None:
    metrics = compute(DEPLOYMENTS, OUTCOMES, ENVS, T0, UNTIL)
    dev, qa, prod = metrics.environments
    assert (dev.lead_p50, dev.lead_p90) == (240.0, 480.0)  # of 2m 4m 6m 8m: the 2nd and the 4th
    # 12m 15m 20m 30m 80m: 0.9 reached qa 80 minutes after its bump for dev, before the window.
    assert (qa.lead_p50, qa.lead_p90) == (1200.0, 4800.0)
    assert (prod.lead_p50, prod.lead_p90) == (86400.0, 86400.0)  # from dev's bump, not prod's


def test_change_failure_rate_counts_failures_not_silence() -> None:
    metrics = compute(DEPLOYMENTS, OUTCOMES, ENVS, T0, UNTIL)
    dev, qa, prod = metrics.environments
    assert (dev.failures, dev.change_failure_rate) == (0, 0.0)
    assert (qa.failures, qa.change_failure_rate) == (3, 0.6)
    assert (prod.failures, prod.unreported, prod.change_failure_rate) == (0, 1, 0.0)


def test_time_to_restore_runs_from_an_outages_first_failure_to_the_next_healthy_deployment() -> None:
    qa = compute(DEPLOYMENTS, OUTCOMES, ENVS, T0, UNTIL).environment("qa")
    # 1.0 failed at +1d 15m, 1.1 failed too, 1.2 healthy at +3d 20m; frontend still failing.
    assert (qa.restore_p50, qa.restored, qa.unrestored) == (2 * 86400 + 5 * 60, 1, 1)


def test_a_healthy_deployment_of_another_app_restores_nothing() -> None:
    failed = deployment("qa", "1.0", at(T0, 0), at(T0, 10), commit="a")
    other = deployment("qa", "2.0", at(T0, 20), at(T0, 30), app="frontend", commit="b")
    fixed = deployment("qa", "1.1", at(T0, 40), at(T0, 70), commit="c")
    outcomes: dict[DeploymentKey, Outcome] = {key(failed): "failed", key(other): "healthy"}
    qa = compute([failed, other, fixed], outcomes, ENVS, T0, UNTIL).environment("qa")
    assert (qa.restored, qa.unrestored) == (0, 1)  # and "no report" on the fix does not restore it
    qa = compute([failed, other, fixed], {**outcomes, key(fixed): "healthy"}, ENVS, T0, UNTIL).environment(
        "qa"
    )
    assert (qa.restore_p50, qa.restored, qa.unrestored) == (3600.0, 1, 0)


def test_the_window_includes_both_ends_and_missing_verdicts_are_no_report() -> None:
    edges = [deployment("dev", "1", T0, T0, commit="a"), deployment("dev", "2", UNTIL, UNTIL, commit="b")]
    dev = compute(edges, {}, ENVS, T0, UNTIL).environment("dev")
    assert (dev.deployments, dev.unreported, dev.failures, dev.change_failure_rate) == (2, 2, 0, 0.0)


def test_an_empty_window_has_no_rates() -> None:
    metrics = compute([], {}, ENVS, T0, UNTIL)
    dev = metrics.environment("dev")
    assert (dev.deployments, dev.lead_p50, dev.change_failure_rate, dev.restore_p50) == (0, None, None, None)
    assert metrics.apps == ()
    with pytest.raises(ValueError, match="end after"):
        compute([], {}, ENVS, UNTIL, T0)


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([1, 2, 3, 4], 50, 2),
        ([1, 2, 3, 4], 90, 4),
        ([5], 90, 5),
        ([3, 1, 2], 50, 2),
        ([1, 2], 0, 1),
        ([], 50, None),
    ],
)
def test_percentiles_are_nearest_rank(values: list[float], p: float, expected: float | None) -> None:
    assert percentile(values, p) == expected


def test_json_has_stable_keys_and_seconds() -> None:
    document = compute(DEPLOYMENTS, OUTCOMES, ENVS, T0, UNTIL).as_json()
    assert list(document) == ["since", "until", "days", "apps", "environments"]
    assert (document["since"], document["until"], document["days"]) == (
        "2024-05-06T09:00:00Z",
        "2024-05-13T09:00:00Z",
        7.0,
    )
    qa = document["environments"][1]
    assert qa == {
        "env": "qa",
        "deployments": 5,
        "per_day": 0.714,
        "per_week": 5.0,
        "daily": {
            "2024-05-06": 1,
            "2024-05-07": 1,
            "2024-05-08": 1,
            "2024-05-09": 1,
            "2024-05-10": 0,
            "2024-05-11": 1,
            "2024-05-12": 0,
            "2024-05-13": 0,
        },
        "lead_time_seconds": {"p50": 1200.0, "p90": 4800.0},
        "failures": 3,
        "no_report": 0,
        "change_failure_rate": 0.6,
        "time_to_restore_seconds": {"p50": 173100.0, "restored": 1, "unrestored": 1},
    }


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (45, "45s"), (125, "2m 05s"), (3600, "1h 00m"), (173100, "2d 00h"), (90061, "1d 01h")],
)
def test_durations_read_at_a_glance(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown


def test_the_table_lines_up_for_a_ci_log() -> None:
    text = table(compute(DEPLOYMENTS, OUTCOMES, ENVS, T0, UNTIL))
    assert text.splitlines() == [
        "Delivery of apps/frontend, apps/podinfo, 2024-05-06 09:00 to 2024-05-13 09:00 UTC (7 days)",
        "",
        "env   deployments  per day  per week  lead p50  lead p90  change failure  restore p50  unrestored",
        "dev             4     0.57      4.00    4m 00s    8m 00s     0% (0 of 4)            -           0",
        "qa              5     0.71      5.00   20m 00s    1h 20m    60% (3 of 5)       2d 00h           1",
        "prod            1     0.14      1.00    1d 00h    1d 00h     0% (0 of 1)            -           0",
        "",
        "1 deployment without a Flux report: counted as deployments, not as failures.",
    ]


def test_the_artifact_has_the_table_and_a_bar_per_day_and_environment() -> None:
    metrics = compute(DEPLOYMENTS, OUTCOMES, ENVS, T0, UNTIL)
    text = markdown(metrics)
    assert "| qa | 5 | 0.71 | 5.00 | 20m 00s | 1h 20m | 60% (3 of 5) | 2d 00h | 1 |" in text
    assert "```text\n" + chart(metrics) + "\n```" in text
    lines = chart(metrics).splitlines()
    assert len(lines) == 8 * 3
    assert lines[:3] == ["Mon 05-06  dev    0", "           qa    █ 1", "           prod   0"]
    assert lines[3] == "Tue 05-07  dev   █ 1"


def test_the_chart_scales_the_busiest_day_to_the_bar_width_and_never_hides_one_deployment() -> None:
    busy = [deployment("dev", str(n), at(T0, n), at(T0, n), commit=f"c{n}") for n in range(30)]
    busy.append(deployment("qa", "0", at(T0, 40), at(T0, 40), commit="q"))
    lines = chart(compute(busy, {}, ENVS, T0, T0 + timedelta(hours=1))).splitlines()
    assert lines == ["Mon 05-06  dev   " + "█" * 24 + " 30", "           qa    █ 1", "           prod   0"]


def test_the_artifact_shows_the_chart_as_a_picture_when_matplotlib_is_there() -> None:
    metrics = compute(DEPLOYMENTS, OUTCOMES, ENVS, T0, UNTIL)
    found = re.search(
        r"!\[Deployments per day and environment\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)",
        markdown(metrics),
    )
    assert found, "no PNG chart in the artifact"
    picture = Image.open(io.BytesIO(base64.b64decode(found.group(1))))
    assert picture.format == "PNG" and 500 <= picture.width <= 900 and 150 <= picture.height <= 400
    colours = {colour for _, colour in picture.convert("RGB").getcolors(maxcolors=1 << 16) or []}
    assert len(colours) > 10, "an empty picture"  # bars, labels and the legend, anti-aliased


def test_without_matplotlib_the_artifact_keeps_its_text_chart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails, as when it is not installed
    metrics = compute(DEPLOYMENTS, OUTCOMES, ENVS, T0, UNTIL)
    text = markdown(metrics)
    assert "data:image/png" not in text and "```text\n" + chart(metrics) + "\n```" in text
