"""The Flux emulator reports as notification-controller does, following the scenario.

Each test names the Flux source of the behaviour it checks; docs/sandbox.md lists them with links.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox.flux import describe, posts, split_camelcase
from sandbox.forge import Repository, Status
from sandbox.scenario import Flux, ScenarioError, load_scenario, parse_scenario
from sandbox.seed import DEPLOYMENT
from sandbox.testing import Sandbox, run_sandbox

ALL = {"apps-dev", "apps-qa", "apps-prod"}


def _deploy(sandbox: Sandbox, repo: Repository, env: str, tag: str) -> str:
    files = {f"apps/{env}/podinfo.yaml": DEPLOYMENT.format(env=env, tag=tag).encode()}
    sha: str = sandbox.forge.commit_files(repo, "main", files, f"deploy {tag} to {env}")
    return sha


def _flux(sandbox: Sandbox, repo: Repository, sha: str) -> dict[str, Status]:
    """The newest Flux status of each Kustomization on `sha` (the first cluster's, or any one's)."""
    found: dict[str, Status] = {}
    for s in sandbox.forge.statuses(repo, sha):  # newest first
        if s.creator == "flux":
            found.setdefault(s.context.split("/")[1], s)
    return found


def _history(sandbox: Sandbox, repo: Repository, sha: str, context: str) -> list[tuple[str, str]]:
    """(state, description) of every status of one context on `sha`, oldest first."""
    return [
        (s.state, s.description) for s in reversed(sandbox.forge.statuses(repo, sha)) if s.context == context
    ]


def _wait_all(
    sandbox: Sandbox, repo: Repository, sha: str, names: set[str], timeout: float = 5.0
) -> dict[str, Status]:
    def ready() -> dict[str, Status] | None:
        found = _flux(sandbox, repo, sha)
        return found if set(found) >= names else None

    return sandbox.wait_for(ready, timeout=timeout)


def _settled(sandbox: Sandbox, repo: Repository, scenario: dict[str, Any]) -> None:
    """The seed commit reconciled before the test's own commits, so that it does not hold the queue."""
    _wait_all(sandbox, repo, repo.branches["main"], ALL)
    sandbox.set_scenario(scenario)


# -- wording: notification-controller internal/notifier/util.go `formatNameAndDescription` ----------------


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("ReconciliationSucceeded", "reconciliation succeeded"),
        ("HealthCheckFailed", "health check failed"),
        ("BuildFailed", "build failed"),  # not "kustomize build failed": that is the event message
        ("ReconciliationFailed", "reconciliation failed"),
        ("PruneFailed", "prune failed"),
        ("ArtifactFailed", "artifact failed"),
        ("DependencyNotReady", "dependency not ready"),
        ("HealthCheckCanceled", "health check canceled"),
        ("info", "info"),  # kustomize-controller `event` falls back to the severity as the reason
    ],
)
def test_descriptions_are_the_event_reason_in_lower_case_words(reason: str, words: str) -> None:
    assert describe(reason) == words


def test_camel_case_is_split_as_go_splitcamelcase_does() -> None:
    assert split_camelcase("PDFLoader") == ["PDF", "Loader"]  # the example in the Go source's comment
    assert split_camelcase("OCIRepository2Ready") == ["OCI", "Repository", "2", "Ready"]
    assert split_camelcase("") == []


def test_healthy_by_default_with_flux_context_and_wording(sandbox: Sandbox, gitops: Repository) -> None:
    sha = _deploy(sandbox, gitops, "dev", "a8b91c33")
    statuses = _wait_all(sandbox, gitops, sha, ALL)
    for name, status in statuses.items():
        assert re.fullmatch(rf"kustomization/{name}/[0-9a-f]{{8}}", status.context)
        assert (status.state, status.description) == ("success", "reconciliation succeeded")
    assert statuses["apps-dev"].context == sandbox.flux_context(gitops, "apps-dev")


def test_failing_rule_matches_env_app_and_tag(sandbox: Sandbox, gitops: Repository) -> None:
    sandbox.set_scenario(
        {
            "default": {"delay": 0.05},
            "rules": [{"env": "qa", "app": "podinfo", "tag": "a8b*", "outcome": "failing"}],
        }
    )
    healthy = _deploy(sandbox, gitops, "qa", "cc2b7e0a")
    assert _wait_all(sandbox, gitops, healthy, {"apps-qa"})["apps-qa"].state == "success"
    failing = _deploy(sandbox, gitops, "qa", "a8b91c33")
    statuses = _wait_all(sandbox, gitops, failing, {"apps-dev", "apps-qa"})
    assert (statuses["apps-qa"].state, statuses["apps-qa"].description) == ("failure", "health check failed")
    assert statuses["apps-dev"].state == "success"


@pytest.mark.parametrize(
    ("outcome", "state", "words"),
    [
        ("build-failed", "failure", "build failed"),
        ("apply-failed", "failure", "reconciliation failed"),
        ("prune-failed", "failure", "prune failed"),
    ],
)
def test_other_failures_carry_their_reason(
    sandbox: Sandbox, gitops: Repository, outcome: str, state: str, words: str
) -> None:
    _settled(sandbox, gitops, {"default": {"delay": 0.05}, "rules": [{"env": "qa", "outcome": outcome}]})
    sha = _deploy(sandbox, gitops, "qa", "4.0.0")
    assert _wait_all(sandbox, gitops, sha, {"apps-qa"})["apps-qa"].description == words
    assert _flux(sandbox, gitops, sha)["apps-qa"].state == state


# -- when: GitRepository polls; a Kustomization reconciles one revision at a time ------------------------


def test_commits_landing_between_two_polls_are_never_reported(sandbox: Sandbox, gitops: Repository) -> None:
    _settled(sandbox, gitops, {"default": {"delay": 0.05}, "flux": {"poll": 0.6}})
    older = _deploy(sandbox, gitops, "dev", "1.0.0")
    newer = _deploy(sandbox, gitops, "dev", "1.0.1")
    landed = time.monotonic()
    _wait_all(sandbox, gitops, newer, ALL)
    assert time.monotonic() - landed <= 0.6 + 0.5  # at the next poll, not at once nor much later
    time.sleep(0.2)
    assert _flux(sandbox, gitops, older) == {}


def test_a_fetched_commit_is_reported_even_when_a_newer_one_lands_during_its_reconcile(
    sandbox: Sandbox, gitops: Repository
) -> None:
    _settled(sandbox, gitops, {"default": {"delay": 0.4}})  # poll 0: a Receiver fetches every push
    older = _deploy(sandbox, gitops, "dev", "1.1.0")
    time.sleep(0.1)  # fetched and reconciling
    newer = _deploy(sandbox, gitops, "dev", "1.1.1")
    first = _wait_all(sandbox, gitops, older, {"apps-dev"})["apps-dev"]
    assert "apps-dev" not in _flux(sandbox, gitops, newer)  # it waits for the reconcile in flight
    assert set(_flux(sandbox, gitops, newer)) <= {"apps-qa", "apps-prod"}  # unchanged there: at once
    second = _wait_all(sandbox, gitops, newer, {"apps-dev"})["apps-dev"]
    assert first.state == second.state == "success" and first.id < second.id


def test_a_failing_health_check_reports_after_the_timeout_not_the_delay(
    sandbox: Sandbox, gitops: Repository
) -> None:
    _settled(
        sandbox,
        gitops,
        {"default": {"delay": 0.05}, "rules": [{"env": "qa", "outcome": "failing", "timeout": 0.8}]},
    )
    started = time.monotonic()
    sha = _deploy(sandbox, gitops, "qa", "5.0.0")
    _wait_all(sandbox, gitops, sha, {"apps-dev", "apps-prod"})
    assert time.monotonic() - started < 0.6 and "apps-qa" not in _flux(sandbox, gitops, sha)
    assert _wait_all(sandbox, gitops, sha, {"apps-qa"})["apps-qa"].description == "health check failed"
    assert time.monotonic() - started >= 0.75


def test_the_same_commit_heals_or_drifts_on_later_reconciles_without_repeating_itself(
    sandbox: Sandbox, gitops: Repository
) -> None:
    _settled(
        sandbox,
        gitops,
        {
            "default": {"delay": 0.05, "interval": 0.15},
            "rules": [
                {"env": "qa", "outcome": ["failing", "failing", "healthy"], "timeout": 0.05},
                {"env": "prod", "outcome": ["healthy", "failing"]},
            ],
        },
    )
    sha = _deploy(sandbox, gitops, "qa", "6.0.0")
    qa, prod = sandbox.flux_context(gitops, "apps-qa"), sandbox.flux_context(gitops, "apps-prod")
    sandbox.wait_for(
        lambda: (
            len(_history(sandbox, gitops, sha, qa)) == 2 and len(_history(sandbox, gitops, sha, prod)) == 2
        )
    )
    time.sleep(0.5)  # several more reconciles: identical statuses are not posted again
    assert _history(sandbox, gitops, sha, qa) == [
        ("failure", "health check failed"),
        ("success", "reconciliation succeeded"),
    ]
    assert _history(sandbox, gitops, sha, prod) == [
        ("success", "reconciliation succeeded"),
        ("failure", "health check failed"),
    ]


def test_a_folder_the_commit_did_not_change_reports_at_once(sandbox: Sandbox, gitops: Repository) -> None:
    _settled(sandbox, gitops, {"default": {"delay": 0.8}})
    started = time.monotonic()
    sha = _deploy(sandbox, gitops, "dev", "1.2.0")
    _wait_all(sandbox, gitops, sha, {"apps-qa", "apps-prod"})
    assert time.monotonic() - started < 0.6 and "apps-dev" not in _flux(sandbox, gitops, sha)
    _wait_all(sandbox, gitops, sha, {"apps-dev"})
    assert time.monotonic() - started >= 0.75


def test_never_reports_and_slow(sandbox: Sandbox, gitops: Repository) -> None:
    sandbox.set_scenario(
        {
            "default": {"delay": 0.05},
            "rules": [{"env": "prod", "outcome": "never"}, {"env": "dev", "delay": 0.6}],
        }
    )
    sha = _deploy(sandbox, gitops, "dev", "2.0.0")
    started = time.monotonic()
    _wait_all(sandbox, gitops, sha, {"apps-qa"})
    assert "apps-dev" not in _flux(sandbox, gitops, sha)
    _wait_all(sandbox, gitops, sha, {"apps-dev"})
    assert time.monotonic() - started >= 0.5
    assert "apps-prod" not in _flux(sandbox, gitops, sha)


def test_no_repeat_of_identical_status_after_restart(tmp_path: Path) -> None:
    with run_sandbox(tmp_path, seed_demo=True, flux_delay=0.05) as sandbox:
        repo = sandbox.forge.repo("github", "acme", "gitops")
        head = repo.branches["main"]
        _wait_all(sandbox, repo, head, ALL)
    with run_sandbox(tmp_path, seed_demo=True, flux_delay=0.05) as again:
        repo = again.forge.repo("github", "acme", "gitops")
        assert repo.branches["main"] == head
        time.sleep(0.3)
        assert len([s for s in again.forge.statuses(repo, head) if s.creator == "flux"]) == 3


# -- versions: notification-controller's known gaps ------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "posted"),
    [
        ("1.7.5", {"apps-dev": "success", "apps-qa": "failure", "apps-prod": "success"}),  # prod: dependency
        ("1.8.0", {}),  # notification-controller#1246, flux2#5737
        ("1.8.4", {"apps-dev": "success"}),  # notification-controller#1373: no failures
        ("1.9.0", {"apps-dev": "success", "apps-qa": "failure"}),  # #1317; info without the mark dropped
    ],
)
def test_notification_controller_versions_drop_what_they_dropped(
    sandbox: Sandbox, gitops: Repository, version: str, posted: dict[str, str]
) -> None:
    _settled(
        sandbox,
        gitops,
        {
            "default": {"delay": 0.05},
            "flux": {"version": version},
            "rules": [
                {"env": "qa", "outcome": "failing"},
                {"env": "prod", "outcome": "dependency-not-ready"},
            ],
        },
    )
    sha = _deploy(sandbox, gitops, "dev", "7.0.0")
    time.sleep(0.4)
    found = _flux(sandbox, gitops, sha)
    assert {name: s.state for name, s in found.items()} == posted
    if "apps-prod" in found:
        assert found["apps-prod"].description == "dependency not ready"  # a green status that is not health


def test_version_gaps_are_modelled_on_the_release_numbers() -> None:
    assert posts(Flux(version="1.0.0"), "info", "DependencyNotReady")
    assert not posts(Flux(version="1.8.0"), "info", "ReconciliationSucceeded")
    assert posts(Flux(version="v1.8.1"), "info", "ReconciliationSucceeded")
    assert not posts(Flux(version="1.8.3"), "error", "HealthCheckFailed")
    assert posts(Flux(version="1.9"), "error", "BuildFailed")
    assert not posts(Flux(version="1.9.2"), "info", "DependencyNotReady")


# -- several clusters, Azure DevOps ---------------------------------------------------------------------


def test_each_cluster_posts_with_its_own_provider_uid(sandbox: Sandbox, gitops: Repository) -> None:
    _settled(
        sandbox,
        gitops,
        {
            "default": {"delay": 0.05},
            "flux": {"clusters": ["east", "west"]},
            "rules": [{"cluster": "west", "env": "dev", "delay": 0.5}],
        },
    )
    sha = _deploy(sandbox, gitops, "dev", "8.0.0")
    east = sandbox.flux_context(gitops, "apps-dev")
    west = sandbox.flux_context(gitops, "apps-dev", cluster=1)
    assert east != west and re.fullmatch(r"kustomization/apps-dev/[0-9a-f]{8}", west)
    sandbox.wait_for(lambda: _history(sandbox, gitops, sha, east))
    assert not _history(sandbox, gitops, sha, west)  # west is slower
    sandbox.wait_for(lambda: _history(sandbox, gitops, sha, west))


def test_a_commit_status_template_names_the_cluster(sandbox: Sandbox, gitops: Repository) -> None:
    flux = {"clusters": ["dev-01", "dev-02"], "commit_status": "{kind}/{name}/{cluster}"}
    _settled(sandbox, gitops, {"default": {"delay": 0.05}, "flux": flux})
    sha = _deploy(sandbox, gitops, "dev", "9.0.0")
    contexts = {f"Kustomization/apps-dev/{cluster}" for cluster in ("dev-01", "dev-02")}
    sandbox.wait_for(lambda: all(_history(sandbox, gitops, sha, c) for c in contexts))
    assert sandbox.flux_context(gitops, "apps-dev", cluster=1) == "Kustomization/apps-dev/dev-02"


def test_azure_devops_states_and_genre(sandbox: Sandbox) -> None:
    repo = sandbox.forge.repo("azure", "acme", "gitops", "gitops")
    sandbox.set_scenario({"default": {"delay": 0.05}, "rules": [{"env": "prod", "outcome": "failing"}]})
    sha = _deploy(sandbox, repo, "prod", "3.0.0")
    statuses = _wait_all(sandbox, repo, sha, {"apps-dev", "apps-prod"})
    assert (statuses["apps-dev"].state, statuses["apps-dev"].genre) == ("succeeded", "fluxcd")
    assert (statuses["apps-prod"].state, statuses["apps-prod"].description) == (
        "error",
        "health check failed",
    )


def test_an_alert_summary_makes_the_azure_devops_genre_fluxcd_colon_summary(sandbox: Sandbox) -> None:
    # notification-controller azure_devops.go `commitStatusGenre`.
    repo = sandbox.forge.repo("azure", "acme", "gitops", "gitops")
    _settled(sandbox, repo, {"default": {"delay": 0.05}, "flux": {"summary": "prod west"}})
    sha = _deploy(sandbox, repo, "dev", "3.1.0")
    assert _wait_all(sandbox, repo, sha, {"apps-dev"})["apps-dev"].genre == "fluxcd:prod west"


# -- the scenario file ----------------------------------------------------------------------------------


def test_scenario_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="outcome"):
        parse_scenario({"rules": [{"env": "qa", "outcome": "flaky"}]})
    with pytest.raises(ScenarioError, match="delai"):
        parse_scenario({"default": {"delai": 1}})
    with pytest.raises(ScenarioError, match=r"rules\.0\.outcome: a list needs an `interval`"):
        parse_scenario({"rules": [{"env": "qa", "outcome": ["failing", "healthy"]}]})
    with pytest.raises(ScenarioError, match=r"not a notification-controller version .* 1\.8\.x"):
        parse_scenario({"flux": {"version": "2.8.0"}})
    with pytest.raises(ScenarioError, match=r"use only \{kind\}, \{name\}, \{uid\}, \{cluster\}"):
        parse_scenario({"flux": {"commit_status": "{kind}/{namespace}"}})
    path = tmp_path / "scenario.yaml"
    path.write_text("rules:\n  - env: qa\n    outcome: failing\n")
    assert load_scenario(path).decide("acme/gitops", "apps", "qa", [("podinfo", "1")])[0] == "failing"


def test_a_scenario_in_the_earlier_format_keeps_its_meaning() -> None:
    earlier = parse_scenario(
        {
            "default": {"outcome": "healthy", "delay": 0.2},
            "repos": ["acme/*"],
            "rules": [{"env": "qa", "outcome": "failing"}],
        }
    )
    assert earlier.decide("acme/gitops", "apps", "qa", []) == ("failing", 0.2)
    plan = earlier.plan("acme/gitops", "apps", "qa", [], "cluster-1", 0)
    assert (plan.duration, plan.interval) == (0.2, None)  # no interval: fails after `delay`, as before
    assert earlier.flux == Flux() and earlier.flux.poll == 0
