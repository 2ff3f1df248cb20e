"""Fault injection, statistics, and validation against the official API descriptions."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from sandbox import azure_rest, github_rest
from sandbox.faults import FaultConfigError, Faults, parse_plan
from sandbox.forge import Forge
from sandbox.routing import Router
from sandbox.specs import Specs, discover
from sandbox.testing import Sandbox, run_sandbox


def _get(sandbox: Sandbox, path: str = "/repos/acme/gitops") -> httpx.Response:
    return httpx.get(f"{sandbox.github_api}{path}", headers={"Authorization": f"token {sandbox.token}"})


def test_injected_errors_rate_limits_and_secondary_limits(sandbox: Sandbox) -> None:
    sandbox.set_faults({"rules": [{"route": "*/repos/acme/gitops", "kind": "error", "status": 503}]})
    assert _get(sandbox).status_code == 503
    sandbox.set_faults({"rules": [{"route": "GET */pulls", "kind": "rate_limit", "retry_after": 0}]})
    limited = _get(sandbox, "/repos/acme/gitops/pulls")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "0")
    assert _get(sandbox).status_code == 200  # other routes untouched
    sandbox.set_faults({"rules": [{"kind": "secondary", "retry_after": 1}]})
    secondary = _get(sandbox)
    assert secondary.status_code == 403 and "secondary rate limit" in secondary.json()["message"]
    assert secondary.headers["retry-after"] == "1"
    sandbox.clear_faults()
    assert _get(sandbox).status_code == 200
    assert sandbox.stats()["total"]["faults"] == 3


def test_dropped_connection_and_latency(sandbox: Sandbox) -> None:
    sandbox.set_faults({"rules": [{"kind": "drop"}]})
    with pytest.raises(httpx.RemoteProtocolError):
        _get(sandbox)
    sandbox.set_faults({"rules": [{"kind": "latency", "latency": 0.2}]})
    assert _get(sandbox).elapsed.total_seconds() >= 0.2


def test_faults_switch_at_run_time_through_the_control_endpoint(sandbox: Sandbox) -> None:
    plan = {"seed": 7, "rules": [{"route": "*/repos/acme/gitops", "kind": "error", "rate": 0.5}]}
    assert httpx.put(f"{sandbox.url}/_sandbox/faults", json=plan).status_code == 200
    first = [_get(sandbox).status_code for _ in range(12)]
    httpx.put(f"{sandbox.url}/_sandbox/faults", json=plan)  # same seed: same sequence
    assert [_get(sandbox).status_code for _ in range(12)] == first
    assert {200, 502} == set(first)
    bad = httpx.put(f"{sandbox.url}/_sandbox/faults", json={"rules": [{"kind": "explode"}]})
    assert bad.status_code == 400
    assert httpx.delete(f"{sandbox.url}/_sandbox/faults").json()["rules"] == []


def test_fault_plan_is_validated() -> None:
    with pytest.raises(FaultConfigError, match="rate"):
        parse_plan({"rules": [{"kind": "error", "rate": 2}]})
    faults = Faults(parse_plan({"rules": [{"route": "*/pulls", "method": "POST", "kind": "error"}]}))
    assert faults.pick("GET", "/api/v3/repos/a/b/pulls", "")[1] is None
    assert faults.pick("POST", "/api/v3/repos/a/b/pulls", "")[1] is not None


def test_stats_are_per_route_template_and_user(sandbox: Sandbox) -> None:
    _get(sandbox)
    httpx.get(
        f"{sandbox.github_api}/repos/acme/gitops", headers={"Authorization": f"token {sandbox.human_token}"}
    )
    stats = httpx.get(f"{sandbox.url}/_sandbox/stats").json()
    rows = {(r["route"], r["user"]): r["counted"] for r in stats["routes"]}
    assert rows[("GET /api/v3/repos/{owner}/{repo}", "promoter-bot")] == 1
    assert rows[("GET /api/v3/repos/{owner}/{repo}", "alice")] == 1
    assert sandbox.token not in str(stats) and sandbox.human_token not in str(stats)


def test_spec_validation_is_on_whenever_specs_are_found(sandbox: Sandbox) -> None:
    """CI has ../shared/specs: there, validation silently off must fail the suite."""
    if os.environ.get("CI") == "true":
        assert sandbox.app.specs.enabled, "CI runs without API validation: ../shared/specs was not found"
        assert sandbox.app.specs.github is not None and sandbox.app.specs.azure is not None
    assert sandbox.app.specs.enabled == (discover() is not None)
    assert httpx.get(f"{sandbox.url}/_sandbox/health").json()["specs"] == sandbox.app.specs.enabled


needs_specs = pytest.mark.skipif(discover() is None, reason="no API descriptions found (../shared/specs)")


@needs_specs
def test_request_breaking_the_description_gets_githubs_422(sandbox: Sandbox) -> None:
    response = httpx.patch(
        f"{sandbox.github_api}/repos/acme/gitops/pulls/1",
        json={"maintainer_can_modify": "yes"},
        headers={"Authorization": f"token {sandbox.token}"},
    )
    assert response.status_code == 422
    assert response.json()["documentation_url"]


@needs_specs
def test_response_breaking_the_description_is_recorded(tmp_path: Path) -> None:
    router = Router()
    forge = Forge(tmp_path)
    github_rest.GitHub(forge).register(router)
    azure_rest.AzureDevOps(forge).register(router)
    specs = Specs.load(discover(), router.routes)
    status_route = next(
        r for r in router.routes if r.name == "GET /api/v3/repos/{owner}/{repo}/commits/{ref:path}/statuses"
    )
    specs.github_response(status_route, "/repos/a/b/commits/main/statuses", 200, b'[{"id": 1}]')
    pr_route = next(
        r
        for r in router.routes
        if r.personality == "azure" and r.method == "GET" and r.template.endswith("{pullRequestId}")
    )
    specs.azure_response(pr_route, 200, {"status": "merged", "pullRequestId": "seven"})
    assert [v.route for v in specs.violations] == [status_route.name, pr_route.name]
    assert "required property" in specs.violations[0].detail
    assert "merged" in specs.violations[1].detail


def test_graphql_works_without_specs(tmp_path: Path) -> None:
    with run_sandbox(tmp_path, seed_demo=True, specs=None) as sandbox:
        assert not sandbox.app.specs.enabled
        response = httpx.post(
            sandbox.graphql_url,
            json={
                "query": '{ repository(owner: "acme", name: "gitops") { nameWithOwner } viewer { login } }'
            },
            headers={"Authorization": f"token {sandbox.token}"},
        )
        assert response.json()["data"] == {
            "repository": {"nameWithOwner": "acme/gitops"},
            "viewer": {"login": "promoter-bot"},
        }
