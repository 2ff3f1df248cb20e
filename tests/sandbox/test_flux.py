"""The Flux emulator reports as notification-controller does, following the scenario."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from promoter.sandbox.forge import Repository, Status
from promoter.sandbox.scenario import ScenarioError, load_scenario, parse_scenario
from promoter.sandbox.seed import DEPLOYMENT
from promoter.sandbox.testing import Sandbox, run_sandbox


def _deploy(sandbox: Sandbox, repo: Repository, env: str, tag: str) -> str:
    files = {f"apps/{env}/podinfo.yaml": DEPLOYMENT.format(env=env, tag=tag).encode()}
    sha: str = sandbox.forge.commit_files(repo, "main", files, f"deploy {tag} to {env}")
    return sha


def _flux(sandbox: Sandbox, repo: Repository, sha: str) -> dict[str, Status]:
    return {s.context.split("/")[1]: s for s in sandbox.forge.statuses(repo, sha) if s.creator == "flux"}


def _wait_all(sandbox: Sandbox, repo: Repository, sha: str, names: set[str]) -> dict[str, Status]:
    def ready() -> dict[str, Status] | None:
        found = _flux(sandbox, repo, sha)
        return found if set(found) >= names else None

    return sandbox.wait_for(ready)


def test_healthy_by_default_with_flux_context_and_wording(sandbox: Sandbox, gitops: Repository) -> None:
    sha = _deploy(sandbox, gitops, "dev", "a8b91c33")
    statuses = _wait_all(sandbox, gitops, sha, {"apps-dev", "apps-qa", "apps-prod"})
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


def test_only_the_newest_of_several_commits_gets_a_status(sandbox: Sandbox, gitops: Repository) -> None:
    sandbox.set_scenario({"default": {"delay": 0.3}})
    older = _deploy(sandbox, gitops, "dev", "1.0.0")
    newer = _deploy(sandbox, gitops, "dev", "1.0.1")
    _wait_all(sandbox, gitops, newer, {"apps-dev", "apps-qa", "apps-prod"})
    time.sleep(0.1)
    assert _flux(sandbox, gitops, older) == {}


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
        _wait_all(sandbox, repo, head, {"apps-dev", "apps-qa", "apps-prod"})
    with run_sandbox(tmp_path, seed_demo=True, flux_delay=0.05) as again:
        repo = again.forge.repo("github", "acme", "gitops")
        assert repo.branches["main"] == head
        time.sleep(0.3)
        assert len([s for s in again.forge.statuses(repo, head) if s.creator == "flux"]) == 3


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


def test_scenario_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="outcome"):
        parse_scenario({"rules": [{"env": "qa", "outcome": "flaky"}]})
    with pytest.raises(ScenarioError, match="delai"):
        parse_scenario({"default": {"delai": 1}})
    path = tmp_path / "scenario.yaml"
    path.write_text("rules:\n  - env: qa\n    outcome: failing\n")
    assert load_scenario(path).decide("acme/gitops", "apps", "qa", [("podinfo", "1")])[0] == "failing"
