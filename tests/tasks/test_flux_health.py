from __future__ import annotations

from pathlib import Path

import pytest

from promoter.health import NO_REPORT_HINT, Failed, Healthy, NoReport
from promoter.stages import Pending
from tasks.common import AppRef
from tasks.flux_health import wait_for_flux
from tests.helpers import run_git
from tests.tasks.conftest import Fake

APP = AppRef(group="apps", app="podinfo")


def test_healthy_is_an_outcome_with_its_event_and_its_log(fake: Fake) -> None:
    main = fake.main()
    fake.forge.flux_says(main, "success", "reconciliation succeeded")
    health = wait_for_flux.fn(fake.target, APP, "a8b91c33", "dev", main)
    assert health == Healthy(kustomization="apps-dev", commit=main, description="reconciliation succeeded")
    (event, group, app, payload), *more = fake.events
    assert (event, group, app, more) == ("environment.healthy", "apps", "podinfo", [])
    assert 0 <= payload.pop("seconds") < 30
    assert payload == {
        "tag": "a8b91c33",
        "env": "dev",
        "outcome": "healthy",
        "description": "reconciliation succeeded",
        "commit": main,
    }
    first, last = fake.lines()
    assert first == f"waiting for Flux to report apps-dev on {main[:8]}"
    assert last.startswith(f"Flux apps-dev healthy on {main[:8]} after ")


def test_a_failure_is_an_outcome_with_the_failed_event(fake: Fake) -> None:
    main = fake.main()
    fake.forge.flux_says(main, "failure", "health check failed")
    health = wait_for_flux.fn(fake.target, APP, "a8b91c33", "dev", main)
    assert isinstance(health, Failed) and health.description == "health check failed"
    assert [event for event, *_ in fake.events] == ["environment.failed"]


@pytest.mark.timeout(30)
def test_silence_until_the_status_timeout_is_no_report(fake: Fake) -> None:
    fake.status_timeout("50ms")
    fake.forge.flux_says(fake.main(), "success", "dependency not ready")  # not the success reason
    health = wait_for_flux.fn(fake.target, APP, "a8b91c33", "dev", fake.main())
    assert health == NoReport(
        kustomization="apps-dev",
        description=f"last heard: dependency not ready; {NO_REPORT_HINT}",
        waited=0.05,
    )
    assert [event for event, *_ in fake.events] == ["environment.failed"]  # silence counts as failed


def test_a_window_without_a_verdict_is_pending_and_keeps_its_deadline_for_the_next(fake: Fake) -> None:
    target = fake.target.model_copy(update={"wait_window_seconds": 0.05})
    main = fake.main()
    first = wait_for_flux.fn(target, APP, "a8b91c33", "dev", main)
    assert isinstance(first, Pending) and fake.events == []  # no verdict, no event: the run suspends
    assert first.deadline - first.since == pytest.approx(300)  # the config's status_timeout_minutes: 5
    assert "still waiting for Flux to report apps-dev" in fake.lines()[-1]
    fake.forge.flux_says(main, "success", "reconciliation succeeded")
    then = wait_for_flux.fn(target, APP, "a8b91c33", "dev", main, since=first.since, round=1)
    assert isinstance(then, Healthy)
    assert [event for event, *_ in fake.events] == ["environment.healthy"]


def test_a_window_past_the_deadline_is_no_report_not_pending(fake: Fake) -> None:
    fake.status_timeout("50ms")
    target = fake.target.model_copy(update={"wait_window_seconds": 0.01})
    health = wait_for_flux.fn(target, APP, "a8b91c33", "dev", fake.main(), since=0.0, round=3)
    assert isinstance(health, NoReport) and health.waited == 0.05


@pytest.mark.timeout(60)
def test_a_report_on_a_descendant_behind_many_newer_commits_counts(fake: Fake, tmp_path: Path) -> None:
    """A burst lands commits on main faster than Flux reconciles: Flux reports only the newest revision it
    fetched, so the first report after our commit can sit under dozens of newer, unreported commits. Polls
    read the 10 newest; the last look before "no report" reads 50 and finds it."""
    ours = fake.main()
    clone = tmp_path / "pusher"
    run_git(tmp_path, "clone", "--quiet", str(fake.forge.bare), str(clone))
    commits = []
    for n in range(30):
        run_git(clone, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"{n}", "--allow-empty")
        commits.append(run_git(clone, "rev-parse", "HEAD"))
    run_git(clone, "push", "--quiet", "origin", "main")
    reported = commits[4]  # 25 newer commits above it, none reported yet
    fake.forge.flux_says(reported, "success", "reconciliation succeeded")
    fake.status_timeout("2s")
    health = wait_for_flux.fn(fake.target, APP, "a8b91c33", "dev", ours)
    assert health == Healthy(
        kustomization="apps-dev", commit=reported, description="reconciliation succeeded"
    )
