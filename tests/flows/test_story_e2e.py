"""The whole story end to end: webhook -> event -> automation -> flow -> suspend -> approve -> completed.

One stack for the module (a real Prefect server for the session, the sandbox forge with its Flux emulator,
`promoter serve` and `promoter webhook` as processes); each test releases its own app in `acme/gitops`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect import get_client

from promoter.providers import parse_remote, provider_for
from sandbox.forge import Repository
from sandbox.prefect_server import PrefectServer
from sandbox.sample import DEPLOYMENT, config_text
from sandbox.stack import FINAL, Stack, promoter_stack
from tests.prometheus import scrape, value

IMAGE = "ghcr.io/acme/{app}"
APPS = ["podinfo", "search", "cart", "ledger", "orders", "billing"]
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def stack(prefect_api: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    scenario = {
        "default": {"delay": 0.2},
        "rules": [{"env": "qa", "app": "podinfo", "tag": "a8b91c33", "outcome": "failing"}],
    }
    root = tmp_path_factory.mktemp("stack")
    with promoter_stack(
        root, scenario=scenario, prefect=prefect_api, poll_interval=0.2, sweep_seconds=10
    ) as running:
        files = {
            "gitops-promotion.yaml": config_text().replace(
                "status_timeout_minutes: 5", "status_timeout_minutes: 8s"
            )
        }
        for app in APPS[1:]:
            for env in ("dev", "qa", "prod"):
                files[f"apps/{env}/{app}.yaml"] = DEPLOYMENT.format(
                    group="apps", app=app, registry="ghcr.io/acme", tag="1.0"
                )
        running.sandbox.forge.commit_files(
            running.repo, "main", {k: v.encode() for k, v in files.items()}, "More apps"
        )
        yield running
        assert running.sandbox.violations() == []


def promoter(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promoter.cli", *args],
        env=stack.environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def wait(stack: Stack, tag: str, states: set[str], timeout: float = 400.0) -> dict[str, Any]:
    """The run of release `tag` once it is in one of `states` (found by name: tags come after resolution)."""
    return stack.wait_for_run(
        lambda r: r["name"].endswith(f":{tag}") and r["state_type"] in states, timeout=timeout
    )


def state(run: dict[str, Any]) -> tuple[str, str, str]:
    return run["state_type"], run["state_name"], (run.get("state") or {}).get("message") or ""


def pulls(repo: Repository, app: str) -> list[Any]:
    return [pr for _, pr in sorted(repo.pulls.items()) if f"apps/{app} " in pr.title]


def check(stack: Stack, sha: str) -> Any:
    found = [s for s in stack.sandbox.forge.statuses(stack.repo, sha) if s.context == "promoter"]
    return found[0] if found else None


def events_for(stack: Stack, app: str, *expected: str) -> list[str]:
    """The names of the app's events, waiting (events are stored in batches) until `expected` are there."""
    deadline = time.monotonic() + 30
    while True:
        names = [e["event"] for e in stack.events(resource=f"promoter.app.apps.{app}")]
        if set(expected) <= set(names) or time.monotonic() > deadline:
            return names
        time.sleep(0.5)


def artifact(stack: Stack, run_id: str, prefix: str) -> str:
    """The data of the run's artifact whose key starts with `prefix` ("" when there is none)."""
    query = {"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    response = httpx.post(f"{stack.prefect.api_url}/artifacts/filter", json=query, timeout=30)
    found = [str(a["data"]) for a in response.json() if (a["key"] or "").startswith(prefix)]
    return found[0] if found else ""


def board_versions(stack: Stack, key: str, run_id: str | None = None) -> list[Any]:
    """Every version of the board artifact `key` (by the run `run_id`), oldest first (the Artifacts page
    keeps them all)."""
    query: dict[str, Any] = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC"}
    if run_id:
        query["artifacts"]["flow_run_id"] = {"any_": [run_id]}
    response = httpx.post(f"{stack.prefect.api_url}/artifacts/filter", json=query, timeout=30)
    response.raise_for_status()
    return [artifact["data"] for artifact in reversed(response.json())]


def row(table: Any, env: str) -> dict[str, str]:
    rows = json.loads(table) if isinstance(table, str) else table
    return next(r for r in rows if r.get("environment", r.get("app")) == env)


def board_cli(stack: Stack, tmp_path: Path, *args: str) -> Any:
    """`promoter board --json` from a plain checkout of the GitOps repository: git and the forge only."""
    checkout = tmp_path / "checkout"
    if not checkout.exists():
        subprocess.run(
            ["git", "clone", "-q", stack.sandbox.clone_url(stack.repo), str(checkout)],
            env={**os.environ, **stack.sandbox.git_env()},
            check=True,
        )
    printed = promoter(stack, "board", "--sourcedir", str(checkout), "--json", *args)
    assert printed.returncode == 0, printed.stderr
    return json.loads(printed.stdout)


def trailers(stack: Stack, sha: str) -> dict[str, str]:
    """The merge commit's trailers, read with plain git from the forge's bare repository."""
    bare = str(stack.sandbox.forge.git(stack.repo).path)
    message = subprocess.run(
        ["git", "-C", bare, "log", "-1", "--format=%B", sha], capture_output=True, text=True, check=True
    ).stdout
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split(": ", 1) for line in parsed.splitlines())


def test_story_blocked_then_superseded_then_approved_from_the_cli(stack: Stack, tmp_path: Path) -> None:
    image = IMAGE.format(app="podinfo")
    stack.sandbox.wait_for(
        lambda: value(scrape(stack.webhook_url), "promoter_event_stream_connected") == 1, timeout=60
    )
    before = scrape(stack.webhook_url)
    assert stack.push(image, "a8b91c33").status_code == 202
    blocked = wait(stack, "a8b91c33", FINAL)
    assert blocked["name"] == "apps/podinfo:a8b91c33"
    kind, name, message = state(blocked)
    assert (kind, name) == ("FAILED", "Blocked")
    assert re.fullmatch(r"apps-qa failed on [0-9a-f]{8}: health check failed", message), message
    assert {"promoter", "app:apps/podinfo", "tag:a8b91c33"} <= set(blocked["tags"])

    dev, qa, prod = pulls(stack.repo, "podinfo")
    assert dev.merged and qa.merged and not prod.merged
    assert "Pushed-by" not in trailers(stack, dev.merge_commit_sha)  # its delivery named nobody
    assert prod.title.endswith("to environment prod") and prod.head_ref == "promote/apps-podinfo"
    red = check(stack, prod.head_sha)
    assert red.state == "failure" and "health check failed" in red.description
    person = provider_for(
        parse_remote(stack.sandbox.clone_url(stack.repo), "github"), stack.sandbox.human_token
    )
    with pytest.raises(Exception, match="refused to merge"):
        person.merge(person.get_pull_request(prod.number), "merge")
    assert artifact(stack, blocked["id"], "release-apps-podinfo-")
    assert message in artifact(stack, blocked["id"], "timeline-apps-podinfo-")
    # The board: a version per stage; the last says a8b91c33 runs in qa, failed, and waits blocked at prod.
    versions = board_versions(stack, "promoter-apps-podinfo", run_id=blocked["id"])
    assert len(versions) >= 4, versions  # dev PR, dev merged, qa PR, qa merged, prod PR
    assert row(versions[0], "dev")["in flight"].startswith("a8b91c33 (PR #")
    last = versions[-1]
    assert (row(last, "dev")["tag"], row(last, "qa")["tag"], row(last, "prod")["tag"]) == (
        "a8b91c33",
        "a8b91c33",
        "6.5.0",
    )
    assert row(last, "dev")["Flux"] == "healthy"
    assert row(last, "qa")["Flux"] == "failed (health check failed)"
    assert row(last, "prod")["in flight"] == (f"a8b91c33 (PR #{prod.number}): blocked: {red.description}")
    assert row(last, "qa")["PR"] == f"#{qa.number}"
    overview = board_versions(stack, "promoter-board", run_id=blocked["id"])[-1]
    assert row(overview, "apps/podinfo")["qa"] == "a8b91c33 (failed)"
    assert row(overview, "apps/search")["prod"] == "1.0"

    assert stack.push(image, "cc2b7e0a", pushed_by="dev@acme").status_code == 202
    waiting = wait(stack, "cc2b7e0a", {"PAUSED", *FINAL})
    assert waiting["state_type"] == "PAUSED", state(waiting)
    reset = stack.repo.pulls[prod.number]
    assert reset.merged and "cc2b7e0a to environment dev" in reset.title  # the blocked PR, reset to dev
    prod_now = pulls(stack.repo, "podinfo")[-1]
    assert (
        prod_now.title.endswith("cc2b7e0a to environment prod")
        and check(stack, prod_now.head_sha).state == "success"
    )

    approved = promoter(
        stack, "approve", "--app", "apps/podinfo", "--approver", "ops@acme", "--comment", "ship it"
    )
    assert approved.returncode == 0, approved.stderr
    assert "approved apps/podinfo:cc2b7e0a as ops@acme" in approved.stdout
    done = wait(stack, "cc2b7e0a", FINAL)
    assert state(done)[0] == "COMPLETED", state(done)
    assert stack.repo.pulls[prod_now.number].merged
    merges = [pr for pr in pulls(stack.repo, "podinfo") if "cc2b7e0a to environment" in pr.title]
    assert [pr.title.rsplit(" ", 1)[-1] for pr in merges] == ["dev", "qa", "prod"]
    for pr in merges:  # each environment's merge commit on main carries the record
        found = trailers(stack, pr.merge_commit_sha)
        assert re.fullmatch(rf"{image}:cc2b7e0a(@sha256:[0-9a-f]{{64}})?", found["Release"]), found
        assert found["Promoted-by"] == f"promoter (flow run {done['id']})"
        assert found["Flow-Run"].endswith(f"/runs/flow-run/{done['id']}")
        assert found.get("Approved-by") == ("ops@acme (declared)" if pr is merges[-1] else None)
        assert found["Pushed-by"] == "dev@acme"  # from the delivery, through the event and the run
    versions = board_versions(stack, "promoter-apps-podinfo", run_id=done["id"])
    # dev, qa, prod: PR opened, then merged; and the end. Once each, though the run was resumed at the gate.
    assert len(versions) == 7, [row(v, "prod")["in flight"] for v in versions]
    last = versions[-1]
    assert [row(last, env)["tag"] for env in ("dev", "qa", "prod")] == ["cc2b7e0a"] * 3
    assert row(last, "prod")["approver"] == "ops@acme" and row(last, "prod")["Flux"] == "healthy"
    assert row(last, "prod")["PR"] == f"#{prod_now.number}" and row(last, "prod")["in flight"] == ""
    (terminal,) = board_cli(stack, tmp_path, "--app", "apps/podinfo")
    placed = {p["env"]: p for p in terminal["environments"]}
    assert placed["prod"]["tag"] == "cc2b7e0a" and placed["prod"]["approver"] == "ops@acme"
    assert placed["prod"]["pr"] == prod_now.number and placed["prod"]["flux"] == "healthy"
    assert placed["prod"]["commit"] == stack.repo.pulls[prod_now.number].merge_commit_sha
    assert terminal["in_flight"] == []
    # /metrics, parsed as Prometheus parses it, moved with the story (events arrive asynchronously).
    moved = {
        ("promoter_webhook_deliveries_total", (("sender", "generic"), ("outcome", "accepted"))): 2,
        ("promoter_releases_total", (("event", "started"),)): 2,
        ("promoter_releases_total", (("event", "blocked"),)): 1,
        ("promoter_releases_total", (("event", "promoted"),)): 1,
        ("promoter_approval_wait_seconds_count", (("decision", "granted"),)): 1,
        ("promoter_stage_seconds_count", (("stage", "merge"),)): 5,
        ("promoter_stage_seconds_count", (("stage", "flux"),)): 5,
    }

    def grown() -> dict[Any, float]:
        after = scrape(stack.webhook_url)
        delta = {
            key: value(after, key[0], **dict(key[1])) - value(before, key[0], **dict(key[1])) for key in moved
        }
        total = "promoter_forge_requests_total"
        return delta | {total: value(after, total) - value(before, total)}

    def enough() -> bool:
        delta = grown()
        return delta["promoter_forge_requests_total"] > 0 and all(delta[key] >= n for key, n in moved.items())

    try:
        stack.sandbox.wait_for(enough, timeout=30)
    except Exception as error:  # say what did not move
        raise AssertionError(f"/metrics did not move as the story did: {grown()}") from error
    record = artifact(stack, done["id"], "approval-apps-podinfo-prod-")
    assert "ops@acme" in record and "ship it" in record and "cc2b7e0a" in record
    wanted = [
        "promoter.release.started",
        "promoter.environment.merged",
        "promoter.environment.healthy",
        "promoter.environment.failed",
        "promoter.release.blocked",
        "promoter.approval.requested",
        "promoter.approval.granted",
        "promoter.release.promoted",
    ]
    assert set(wanted) <= set(events_for(stack, "podinfo", *wanted))


def test_a_newer_release_supersedes_a_run_waiting_at_the_gate_and_rejection_leaves_its_pr_open(
    stack: Stack,
) -> None:
    stack.push(IMAGE.format(app="orders"), "o1")
    older = wait(stack, "o1", {"PAUSED"})
    prod = pulls(stack.repo, "orders")[-1]
    stack.push(IMAGE.format(app="orders"), "o2")
    cancelled = wait(stack, "o1", {"CANCELLED"})
    assert cancelled["id"] == older["id"] and state(cancelled)[2] == "superseded by apps/orders:o2"
    wait(stack, "o2", {"PAUSED"})
    assert stack.repo.pulls[prod.number].merged  # the same PR, reset to dev and merged there
    assert "promoter.release.superseded" in events_for(stack, "orders", "promoter.release.superseded")
    rejected = promoter(stack, "approve", "--app", "apps/orders", "--reject", "--comment", "not today")
    assert rejected.returncode == 0, rejected.stderr
    assert state(wait(stack, "o2", FINAL))[:2] == ("CANCELLED", "Rejected")
    assert pulls(stack.repo, "orders")[-1].state == "open"
    assert "promoter.approval.rejected" in events_for(stack, "orders", "promoter.approval.rejected")


def test_a_person_merging_the_prod_pr_in_the_forge_approves_it(stack: Stack) -> None:
    stack.push(IMAGE.format(app="search"), "2.1.0")  # a semver tag: dots in keys and names
    wait(stack, "2.1.0", {"PAUSED"})
    prod = pulls(stack.repo, "search")[-1]
    person = provider_for(
        parse_remote(stack.sandbox.clone_url(stack.repo), "github"), stack.sandbox.human_token
    )
    person.merge(person.get_pull_request(prod.number), "merge")
    run = wait(stack, "2.1.0", FINAL)
    assert state(run)[0] == "COMPLETED", state(run)
    assert "alice" in artifact(stack, run["id"], "approval-apps-search-prod-")


def test_an_approval_that_times_out_ends_the_run_named_and_leaves_the_pr_open(stack: Stack) -> None:
    api = stack.prefect.api_url
    parameters = {"image": IMAGE.format(app="billing"), "tag": "b1", "approval_timeout_hours": 0.003}
    with get_client(sync_client=True) as client:  # Prefect's client retries the server's 503s
        client.create_flow_run_from_deployment(
            client.read_deployment_by_name("promote-release/promote-release").id,
            parameters=parameters,
            tags=["promoter"],
        )
    waiting = wait(stack, "b1", {"PAUSED"})  # at the prod gate, with a 10 s deadline
    run = wait(stack, "b1", FINAL)  # the sweeper, every 10 s, ends it
    assert run["id"] == waiting["id"]
    kind, name, message = state(run)
    assert (kind, name) == ("FAILED", "ApprovalTimedOut"), state(run)
    prod = pulls(stack.repo, "billing")[-1]
    assert prod.title.endswith(" prod") and prod.state == "open"
    assert message.startswith("no approval of apps/billing:b1 for prod before the approval timeout at ")
    assert f"PR #{prod.number} stays open" in message
    assert "promoter.approval.timed-out" in events_for(stack, "billing", "promoter.approval.timed-out")
    logs = httpx.post(
        f"{api}/logs/filter", json={"logs": {"flow_run_id": {"any_": [run["id"]]}}}, timeout=30
    ).json()
    assert message in [line["message"] for line in logs]  # the run's Logs tab says why


def test_flux_that_never_reports_blocks_with_no_report(stack: Stack) -> None:
    stack.sandbox.set_scenario(
        {
            "default": {"delay": 0.2},
            "rules": [
                {"env": "qa", "app": "podinfo", "tag": "a8b91c33", "outcome": "failing"},
                {"env": "qa", "app": "cart", "outcome": "never"},
            ],
        }
    )
    stack.push(IMAGE.format(app="cart"), "c1")
    run = wait(stack, "c1", FINAL)
    kind, name, message = state(run)
    assert (kind, name) == ("FAILED", "Blocked")
    assert message.startswith("no report from Flux for apps-qa within 8 s: "), message
    assert "v1.8.1-v1.8.4 drop failures" in message  # why Flux may have said nothing
    red = check(stack, pulls(stack.repo, "cart")[-1].head_sha)
    assert red.state == "failure" and red.description.startswith("no report from Flux for apps-qa")


def test_a_crash_in_the_middle_of_a_stage_then_a_retry_converges(stack: Stack) -> None:
    stack.sandbox.set_scenario(
        {"default": {"delay": 0.2}, "rules": [{"env": "qa", "app": "ledger", "delay": 6}]}
    )
    stack.push(IMAGE.format(app="ledger"), "l1")
    waiting = wait(stack, "l1", {"RUNNING"})
    deadline = time.monotonic() + 300
    while not any(pr.merged and "to environment qa" in pr.title for pr in pulls(stack.repo, "ledger")):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    killed = kill_flow_run_process(stack, waiting["id"])  # while it waits for Flux on qa
    assert killed
    crashed = wait(stack, "l1", {"CRASHED", "FAILED"})
    response = httpx.post(
        f"{stack.prefect.api_url}/flow_runs/{crashed['id']}/set_state",
        json={"state": {"type": "SCHEDULED", "name": "AwaitingRetry"}, "force": True},
        timeout=30,
    )
    assert response.status_code in (200, 201)
    run = wait(stack, "l1", {"PAUSED"})
    assert run["id"] == crashed["id"]
    envs = [pr.title.rsplit(" ", 1)[1] for pr in pulls(stack.repo, "ledger")]
    assert envs == ["dev", "qa", "prod"]  # exactly one PR per environment
    bare = stack.sandbox.forge.git(stack.repo)
    log = bare.out("log", "--format=%s", "main")
    assert log.count("Promote apps/ledger version l1 to environment") == 2  # dev and qa, once each
    assert [b for b in bare.branches() if "ledger" in b] == ["promote/apps-ledger"]
    promoter(stack, "approve", "--app", "apps/ledger")
    assert state(wait(stack, "l1", FINAL))[0] == "COMPLETED"


def kill_flow_run_process(stack: Stack, run_id: str) -> bool:
    """SIGKILL the process executing a flow run (`promoter serve` logs each run's pid as it starts it)."""
    pids = stack.flow_run_pids(run_id)
    if not pids:
        return False
    try:
        os.kill(pids[-1], signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def test_per_env_an_older_release_keeps_its_place_at_the_gate_until_the_newer_one_arrives(
    stack: Stack,
) -> None:
    from prefect.deployments import run_deployment

    files = {
        "gitops-promotion.yaml": config_text(prflow="per-env").replace(
            "status_timeout_minutes: 5", "status_timeout_minutes: 8s"
        )
    }
    for env in ("dev", "qa", "prod"):
        files[f"apps/{env}/podinfo.yaml"] = DEPLOYMENT.format(
            group="apps", app="podinfo", registry="ghcr.io/acme", tag="1.0"
        )
    repo = stack.sandbox.create_repo("acme/perenv", files=files, protect={"main": ["promoter"]})
    stack.sandbox.set_scenario(
        {"default": {"delay": 0.2}, "rules": [{"repo": "acme/perenv", "env": "qa", "tag": "p2", "delay": 5}]}
    )
    parameters = {
        "image": "ghcr.io/acme/podinfo",
        "gitops_url": stack.sandbox.clone_url(repo),
        "provider": "github",
    }

    run_deployment("promote-release/promote-release", parameters={**parameters, "tag": "p1"}, timeout=0)
    older = wait(stack, "p1", {"PAUSED"})
    run_deployment("promote-release/promote-release", parameters={**parameters, "tag": "p2"}, timeout=0)
    deadline = time.monotonic() + 300
    while not any(pr.merged and "p2 to environment qa" in pr.title for pr in repo.pulls.values()):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    still = next(r for r in stack.runs() if r["id"] == older["id"])
    assert still["state_type"] == "PAUSED"  # p2 is past dev and qa; p1 still holds the prod gate

    newer = wait(stack, "p2", {"PAUSED"})
    gone = next(r for r in stack.runs() if r["id"] == older["id"])
    assert state(gone)[0] == "CANCELLED" and "superseded by apps/podinfo:p2" in state(gone)[2]
    branches = [pr.head_ref for pr in repo.pulls.values()]
    assert {"promote/dev/apps-podinfo", "promote/qa/apps-podinfo", "promote/prod/apps-podinfo"} == set(
        branches
    )
    promoter(stack, "approve", "--app", "apps/podinfo", "--tag", "p2")
    assert state(wait(stack, "p2", FINAL))[0] == "COMPLETED"
    assert newer["name"] == "apps/podinfo:p2"


def test_a_pr_a_person_closes_ends_the_run_naming_it_without_retries(stack: Stack) -> None:
    from prefect.deployments import run_deployment

    files = {"gitops-promotion.yaml": config_text()}
    for env in ("dev", "qa", "prod"):
        files[f"apps/{env}/podinfo.yaml"] = DEPLOYMENT.format(
            group="apps", app="podinfo", registry="ghcr.io/acme", tag="1.0"
        )
    # A second required check that never reports: the forge holds dev's PR open, auto-merge or not.
    repo = stack.sandbox.create_repo("acme/closing", files=files, protect={"main": ["promoter", "ci"]})
    parameters = {"image": "ghcr.io/acme/podinfo", "tag": "closed1", "provider": "github"}
    run_deployment(
        "promote-release/promote-release",
        parameters={**parameters, "gitops_url": stack.sandbox.clone_url(repo)},
        timeout=0,
    )
    deadline = time.monotonic() + 120
    while not (
        repo.pulls
        and any(s.context == "promoter" for s in stack.sandbox.forge.statuses(repo, repo.pulls[1].head_sha))
    ):
        assert time.monotonic() < deadline, "dev's PR and its check never came"
        time.sleep(0.2)
    stack.sandbox.forge.update_pull(repo, 1, "alice", state="closed")

    run = wait(stack, "closed1", FINAL, timeout=120)
    assert state(run) == ("CANCELLED", "Closed", "PR #1 for dev was closed without merging")
    assert list(repo.pulls) == [1]  # no second PR, nothing merged
    runs = httpx.post(
        f"{stack.prefect.api_url}/task_runs/filter",
        json={"flow_runs": {"id": {"any_": [run["id"]]}}, "task_runs": {"name": {"like_": "wait merge"}}},
        timeout=30,
    ).json()
    assert [(r["state_type"], r["run_count"]) for r in runs] == [("COMPLETED", 1)]
