"""The Flux wait task with an environment's `require`: its log names the contexts it waits for, its
outcome and event say which context decided."""

from __future__ import annotations

from uuid import uuid4

import pytest

from promoter.config import CONFIG_FILE, parse_config
from promoter.health import Failed, Healthy, NoReport
from promoter.stages import Pending
from tasks.common import AppRef
from tasks.contracts import Waits
from tasks.flux_health import wait_for_flux
from tasks.wait_watch import ForgeChange, WaitingRun, WaitWatcher, repo_key
from tests.helpers import run_git
from tests.tasks.conftest import Fake

APP = AppRef(group="apps", app="podinfo")
FLUX = "kustomization/apps-qa/0c9c2e41"


def require_smoke(fake: Fake, timeout: str = "5") -> None:
    """qa requires `e2e/smoke`, with `status_timeout_minutes: timeout`."""
    text = run_git(fake.forge.bare, "show", f"main:{CONFIG_FILE}") + "\n"
    text = text.replace(
        "  - name: qa\n    auto: true\n", "  - name: qa\n    auto: true\n    require: [e2e/smoke]\n"
    )
    fake.target._config = parse_config(
        text.replace("status_timeout_minutes: 5", f"status_timeout_minutes: {timeout}")
    )
    assert fake.target._config.environment("qa").require == ("e2e/smoke",)


def test_healthy_needs_the_required_context_and_the_log_names_it(fake: Fake) -> None:
    require_smoke(fake)
    main = fake.main()
    fake.forge.flux_says(main, "success", "reconciliation succeeded", FLUX)
    fake.forge.flux_says(main, "success", "5 passed", "e2e/smoke")
    health = wait_for_flux.fn(fake.target, APP, "t1", "qa", main)
    assert health == Healthy(
        kustomization="apps-qa",
        commit=main,
        description="reconciliation succeeded; e2e/smoke succeeded",
        required=("e2e/smoke",),
    )
    first, last = fake.lines()
    assert first == f"waiting for Flux to report apps-qa on {main[:8]} and e2e/smoke to succeed there"
    assert last.startswith(f"Flux apps-qa healthy on {main[:8]} after ")
    ((event, _, _, payload),) = fake.events
    assert event == "environment.healthy" and payload["required"] == ["e2e/smoke"]


def test_a_failed_required_context_is_a_failure_naming_it(fake: Fake) -> None:
    require_smoke(fake)
    main = fake.main()
    fake.forge.flux_says(main, "failure", "3 tests failed", "e2e/smoke")
    health = wait_for_flux.fn(fake.target, APP, "t1", "qa", main)
    assert isinstance(health, Failed) and health.context == "e2e/smoke"
    assert health.description == "e2e/smoke failed: 3 tests failed"
    assert fake.lines()[-1].startswith(f"apps-qa failed on {main[:8]} after ")  # not "Flux apps-qa failed"
    assert [event for event, *_ in fake.events] == ["environment.failed"]


def test_flux_healthy_and_the_context_silent_suspends_then_ends_as_no_report_from_it(fake: Fake) -> None:
    require_smoke(fake)
    main = fake.main()
    fake.forge.flux_says(main, "success", "reconciliation succeeded", FLUX)
    window = fake.target.model_copy(update={"wait_window_seconds": 0.05})
    first = wait_for_flux.fn(window, APP, "t1", "qa", main)
    assert (
        isinstance(first, Pending)
        and first.what == f"e2e/smoke to succeed on {main[:8]} (Flux healthy on apps-qa)"
    )
    require_smoke(fake, "50ms")
    health = wait_for_flux.fn(fake.target, APP, "t1", "qa", main)
    assert health == NoReport(
        kustomization="apps-qa",
        description=f"Flux healthy on {main[:8]}; waiting for e2e/smoke",
        waited=0.05,
        contexts=("e2e/smoke",),
    )
    assert fake.lines()[-1].startswith("apps-qa no report after ")


def test_a_required_contexts_status_wakes_the_runs_waiting_on_flux() -> None:
    """GitHub's `status` webhook for `e2e/smoke` must resume a qa wait: it is not Flux's context, so it
    cannot be told apart and wakes every Flux wait of the repository; our own check wakes none."""
    parameters = {"gitops_url": "https://github.com/acme/gitops.git", "provider": "github"}
    run = WaitingRun(
        uuid4(), Waits(group="apps", env="qa", commit="c0ffee", kustomization="apps-qa"), parameters, None
    )
    repository = repo_key("github", "acme", "gitops")
    assert ForgeChange(repository, context="e2e/smoke").concerns(run)
    assert not ForgeChange(repository, context="promoter").concerns(run)
    assert not ForgeChange(repo_key("github", "acme", "other"), context="e2e/smoke").concerns(run)


def test_the_wait_watcher_resumes_a_qa_wait_only_once_the_required_context_said_something_final(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Azure DevOps sends no status hooks: the watcher must not wake the run on every pass while Flux is
    healthy and e2e/smoke silent, and must wake it once e2e/smoke speaks."""
    require_smoke(fake)
    main = fake.main()
    fake.forge.flux_says(main, "success", "reconciliation succeeded", FLUX)
    watcher = WaitWatcher()
    parameters = {"gitops_url": fake.target.gitops_url, "provider": "github"}
    run = WaitingRun(
        uuid4(), Waits(group="apps", env="qa", commit=main, kustomization="apps-qa"), parameters, None
    )
    with fake.target.open() as promotion:
        monkeypatch.setattr(watcher, "_promotion", lambda target: promotion)
        assert not watcher._settled(run, {}, {})
        fake.forge.flux_says(main, "failure", "3 tests failed", "e2e/smoke")
        assert watcher._settled(run, {}, {})
