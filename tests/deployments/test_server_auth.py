"""On a Prefect server with basic auth (`PREFECT_SERVER_API_AUTH_STRING`, Prefect's "How to secure a
self-hosted Prefect server"): with `PREFECT_API_AUTH_STRING` the whole stack works (the trigger's
run-deployment action, which failed with 401 under basic auth in Prefect 3.1, PrefectHQ/prefect#16810;
`promoter serve` and its runs; the webhook receiver; `promoter worker`; `promoter approve`), the UI asks for
the credential, and nothing without it reads or resumes a run. Each command refuses a missing or wrong
credential in one line, before it starts, and prints neither.

This module starts a Prefect server of its own: the session's server has no auth.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.prefect_server import PrefectServer, prefect_server
from sandbox.sample import config_text
from sandbox.stack import FINAL, Stack, promoter_stack

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
PASSWORD = secrets.token_hex(16)
CREDENTIAL = f"promoter:{PASSWORD}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    home = tmp_path_factory.mktemp("prefect-auth")
    with prefect_server(home, auth_string=CREDENTIAL, startup_timeout=300) as running:
        yield running


def promoter(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promoter.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def without(env: dict[str, str], credential: str | None) -> dict[str, str]:
    """`env` with another credential, or none."""
    changed = {k: v for k, v in env.items() if k != "PREFECT_API_AUTH_STRING"}
    return {**changed, "PREFECT_API_AUTH_STRING": credential} if credential else changed


def at_gate(run: dict[str, Any]) -> bool:
    return run["state_type"] == "PAUSED" and any(tag.startswith("pr:") for tag in run["tags"])


def no_credential_in(logs: Path) -> None:
    for log in logs.rglob("*.log"):
        assert PASSWORD not in log.read_text(errors="replace"), log


@pytest.mark.parametrize(
    "args",
    [["approve", "--app", "apps/podinfo"], ["serve"], ["webhook", "--port", "0"], ["worker", "--pool", "p"]],
    ids=["approve", "serve", "webhook", "worker"],
)
@pytest.mark.parametrize("credential", [None, "promoter:wrong-password"], ids=["none", "wrong"])
def test_a_command_without_the_credential_refuses_in_one_line(
    server: PrefectServer, tmp_path: Path, args: list[str], credential: str | None
) -> None:
    env = without({**os.environ, **server.environment}, credential)
    env["PROMOTER_WEBHOOK_GENERIC_SECRET"] = "s" * 32  # so that the webhook has a sender to serve
    env["PREFECT_HOME"] = str(tmp_path)
    done = promoter(env, *args)
    assert done.returncode == 2, done.stderr
    given = "the credential in PREFECT_API_AUTH_STRING" if credential else "a request without credentials"
    assert f"the Prefect API at {server.api_url} refused {given} (HTTP 401)" in done.stderr, done.stderr
    assert "PREFECT_SERVER_API_AUTH_STRING" in done.stderr
    assert "Traceback" not in done.stderr and "wrong-password" not in done.stderr + done.stdout


def test_with_the_credential_a_release_reaches_prod_and_nothing_without_it_resumes_it(
    server: PrefectServer, tmp_path: Path
) -> None:
    assert httpx.get(f"{server.api_url}/health", timeout=10).status_code == 200  # probes stay open
    ui = httpx.get(f"{server.ui_url}/ui-settings", timeout=10).json()
    assert ui["auth"] == "BASIC"  # the UI asks for `user:password` before it shows anything
    with promoter_stack(tmp_path, prefect=server, scenario={"default": {"delay": 0.5}}) as stack:
        assert stack.push("ghcr.io/acme/podinfo", "5e1c0a7f").status_code == 202
        run = stack.wait_for_run(at_gate, "tag:5e1c0a7f", timeout=300)
        anonymous, wrong = None, ("promoter", "wrong-password")
        for auth in (anonymous, wrong):
            resume = httpx.post(
                f"{server.api_url}/flow_runs/{run['id']}/resume",
                json={"run_input": {"approve": True, "approver": "mallory", "comment": ""}},
                auth=auth,
                timeout=10,
            )
            assert resume.status_code == 401, resume.text
            read = httpx.post(f"{server.api_url}/flow_runs/filter", json={}, auth=auth, timeout=10)
            assert read.status_code == 401
        assert stack.wait_for_run(lambda r: r["id"] == run["id"], "tag:5e1c0a7f")["state_type"] == "PAUSED"

        refused = promoter(without(stack.environment, None), "approve", "--app", "apps/podinfo")
        assert refused.returncode == 2 and "HTTP 401" in refused.stderr, refused.stderr
        approved = promoter(stack.environment, "approve", "--app", "apps/podinfo", "--approver", "alice")
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.strip() == "approved apps/podinfo:5e1c0a7f as alice"
        done = stack.wait_for_run(lambda r: r["id"] == run["id"] and r["state_type"] in FINAL, timeout=300)
        assert done["state_type"] == "COMPLETED", done["state"]
        assert [pr.merged for pr in pulls(stack)] == [True, True, True]
        no_credential_in(stack.logs)


def test_a_worker_runs_a_release_on_a_server_with_basic_auth(server: PrefectServer, tmp_path: Path) -> None:
    scenario = {"default": {"delay": 0.5}}
    with promoter_stack(tmp_path, prefect=server, scenario=scenario, workers=1) as stack:
        everything_auto = config_text((("dev", True), ("qa", True), ("prod", True)))
        stack.sandbox.forge.commit_files(
            stack.repo, "main", {"gitops-promotion.yaml": everything_auto.encode()}, "All auto"
        )
        assert stack.push("ghcr.io/acme/podinfo", "9d2f6b1e").status_code == 202
        done = stack.wait_for_run(lambda r: r["state_type"] in FINAL, "tag:9d2f6b1e", timeout=400)
        assert done["state_type"] == "COMPLETED", done["state"]
        assert done["work_pool_name"] == "promoter"  # a worker of the pool ran it, not a serve
        assert [pr.merged for pr in pulls(stack)] == [True, True, True]
        no_credential_in(stack.logs)


def pulls(stack: Stack) -> list[Any]:
    return [pr for _, pr in sorted(stack.repo.pulls.items()) if "apps/podinfo " in pr.title]
