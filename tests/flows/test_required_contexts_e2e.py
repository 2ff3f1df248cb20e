"""Required contexts end to end, on both forge personalities (one stack each): qa `require`s `e2e/smoke`,
which a CI system posts on qa's merge commit with its own token.

- Release 1: `e2e/smoke` fails; the run ends Blocked with its description and the prod PR's check is red.
  Release 2 of the same app: `e2e/smoke` succeeds; the prod PR's check is green and the run waits at the
  gate. Windows are 1 s, so the run suspends while it waits for the context, and the status (GitHub's
  `status` webhook, Azure DevOps' wait watcher) resumes it.
- Another app whose `e2e/smoke` never comes: Blocked with "no report from e2e/smoke" at the status timeout.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from promoter.providers import GitProvider, parse_remote, provider_for
from sandbox.forge import PullRequest
from sandbox.prefect_server import PrefectServer
from sandbox.sample import DEPLOYMENT, config_text
from sandbox.stack import FINAL, Stack, promoter_stack
from tasks.contracts import Waits, waits_of

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
GATED, SILENT = "smoke-gated", "smoke-silent"  # apps of their own: events are per app, the server shared
TIMEOUT = 10  # seconds: ample for the test to post, short for the silent app


@pytest.fixture(scope="module", params=["github", "azure"])
def stack(
    request: pytest.FixtureRequest, prefect_api: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    kind = str(request.param)
    with promoter_stack(
        tmp_path_factory.mktemp(f"required-{kind}"),
        kind=kind,
        scenario={"default": {"delay": 0.2}},
        prefect=prefect_api,
        poll_interval=0.2,
        watch_seconds=1.0,
        settings={"PROMOTER_WAIT_WINDOW_SECONDS": "1"},
    ) as running:
        config = (
            config_text()
            .replace("status_timeout_minutes: 5", f"status_timeout_minutes: {TIMEOUT}s")
            .replace(
                "  - name: qa\n    auto: true\n", "  - name: qa\n    auto: true\n    require: [e2e/smoke]\n"
            )
        )
        files = {"gitops-promotion.yaml": config}
        for env in ("dev", "qa", "prod"):
            for app in (GATED, SILENT):
                files[f"apps/{env}/{app}.yaml"] = DEPLOYMENT.format(
                    group="apps", app=app, registry="ghcr.io/acme", tag="1.0"
                )
        running.sandbox.forge.commit_files(
            running.repo, "main", {k: v.encode() for k, v in files.items()}, "qa requires e2e/smoke"
        )
        yield running
        assert running.sandbox.violations() == []


def until(what: str, found: Callable[[], Any], timeout: float = 240.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def the_run(
    stack: Stack, tag: str, states: set[str], also: Callable[[dict[str, Any]], bool] = lambda r: True
) -> dict[str, Any]:
    run: dict[str, Any] = stack.wait_for_run(
        lambda r: r["name"].endswith(f":{tag}") and r["state_type"] in states and also(r), timeout=300
    )
    return run


def at_gate(run: dict[str, Any]) -> bool:
    """Suspended at the prod gate (tagged with its PR), not in a merge or Flux wait."""
    return any(tag.startswith("pr:") for tag in run["tags"])


def merged(stack: Stack, app: str, tag: str, env: str) -> str:
    """The merge commit of the release's PR for `env`, once the forge merged it."""
    title = f"Promote apps/{app} version {tag} to environment {env}"
    sha: str = until(
        f"{tag} merged in {env}",
        lambda: next(
            (p.merge_commit_sha for p in stack.repo.pulls.values() if p.title == title and p.merged), None
        ),
    )
    return sha


def prod_pr(stack: Stack, app: str) -> PullRequest:
    mine = [p for p in stack.repo.pulls.values() if f"apps/{app} " in p.title and p.title.endswith(" prod")]
    return max(mine, key=lambda p: p.number)


def check_on(stack: Stack, pr: PullRequest) -> tuple[str, str]:
    found = [s for s in stack.sandbox.forge.statuses(stack.repo, pr.head_sha) if s.context == "promoter"]
    newest = max(found, key=lambda s: s.id)
    return {"succeeded": "success", "failed": "failure"}.get(
        newest.state, newest.state
    ), newest.description or ""


def ci(stack: Stack) -> GitProvider:
    """A CI system posting commit statuses with its own (a person's) token."""
    url = stack.sandbox.clone_url(stack.repo)
    return provider_for(
        parse_remote(url, "github" if stack.repo.kind == "github" else None), stack.sandbox.human_token
    )


def log_lines(stack: Stack, run_id: str) -> list[str]:
    query = {"logs": {"flow_run_id": {"any_": [run_id]}}}
    response = httpx.post(f"{stack.prefect.api_url}/logs/filter", json=query, timeout=30)
    response.raise_for_status()
    return [line["message"] for line in response.json()]


def test_a_failing_required_context_blocks_and_a_passing_one_opens_the_gate(stack: Stack) -> None:
    kind = stack.repo.kind
    first, second = f"fail-{kind}", f"pass-{kind}"
    assert stack.push(f"ghcr.io/acme/{GATED}", first).status_code == 202
    qa = merged(stack, GATED, first, "qa")
    ci(stack).set_commit_status(qa, "e2e/smoke", "failure", "3 tests failed")
    blocked = the_run(stack, first, FINAL)
    reason = f"apps-qa on {qa[:8]}: e2e/smoke failed: 3 tests failed"
    assert (blocked["state_type"], blocked["state_name"], blocked["state"]["message"]) == (
        "FAILED",
        "Blocked",
        reason,
    )
    prod = prod_pr(stack, GATED)
    assert not prod.merged and check_on(stack, prod) == ("failure", reason)
    lines = log_lines(stack, blocked["id"])
    assert any(line.endswith(f"on {qa[:8]} and e2e/smoke to succeed there") for line in lines), lines
    failed = until(  # events are stored in batches; the other personality's run is on the same app
        "the failed event",
        lambda: [
            e["payload"]
            for e in stack.events(since=blocked["created"], resource=f"promoter.app.apps.{GATED}")
            if e["event"] == "promoter.environment.failed" and e["payload"]["tag"] == first
        ],
        timeout=30,
    )
    assert [(p["env"], p["description"], p.get("required")) for p in failed] == [
        ("qa", "e2e/smoke failed: 3 tests failed", ["e2e/smoke"])
    ]

    assert stack.push(f"ghcr.io/acme/{GATED}", second).status_code == 202
    qa = merged(stack, GATED, second, "qa")
    # Past its 1 s window the run suspends in qa's wait (Flux is healthy, e2e/smoke silent): the status wakes it.
    the_run(stack, second, {"PAUSED"}, lambda r: (waits_of(r["tags"]) or Waits()).commit == qa)
    ci(stack).set_commit_status(qa, "e2e/smoke", "success", "5 passed")
    waiting = the_run(stack, second, {"PAUSED", *FINAL}, lambda r: r["state_type"] in FINAL or at_gate(r))
    assert waiting["state_type"] == "PAUSED", waiting["state"]
    prod = prod_pr(stack, GATED)
    state, description = check_on(stack, prod)
    assert state == "success" and re.fullmatch(
        r"apps-qa healthy on [0-9a-f]{8}, e2e/smoke succeeded", description
    )
    lines = log_lines(stack, waiting["id"])
    assert any("still waiting for e2e/smoke to succeed on" in line for line in lines), lines  # it suspended


def test_a_required_context_that_never_reports_blocks_with_no_report(stack: Stack) -> None:
    tag = f"silent-{stack.repo.kind}"
    assert stack.push(f"ghcr.io/acme/{SILENT}", tag).status_code == 202
    run = the_run(stack, tag, FINAL)
    message = run["state"]["message"]
    assert (run["state_type"], run["state_name"]) == ("FAILED", "Blocked")
    assert message.startswith(f"no report from e2e/smoke for apps-qa within {TIMEOUT} s: Flux healthy on "), (
        message
    )
    prod = prod_pr(stack, SILENT)
    assert check_on(stack, prod)[0] == "failure" and check_on(stack, prod)[1].startswith(
        "no report from e2e/smoke"
    )
