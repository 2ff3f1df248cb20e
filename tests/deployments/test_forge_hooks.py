"""Forge webhooks over HTTP: who may deliver, what a delivery means, and which waiting runs it wakes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
import warnings
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning

from deployments.forge_hooks import COMMIT_STATUS, PR_CLOSED, PR_REVIEWED, ForgeHookSettings, ForgeReceiver
from deployments.webhook import EmitError, RegistryEvent, StaticHeader
from promoter.errors import ConfigError
from tasks.contracts import Waits
from tasks.wait_watch import ForgeChange, WaitingRun, repo_key

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

SECRET = "forge-hook-secret-0123456789"
PASSWORD = "azure-hook-password-0123456789"
SHA = "0c9c2e41" * 5
GITOPS = {"gitops_url": "https://github.com/acme/gitops.git"}


class Recorder:
    def __init__(self, fail: Exception | None = None) -> None:
        self.events: list[RegistryEvent] = []
        self.changes: list[ForgeChange] = []
        self.fail = fail

    def emit(self, event: RegistryEvent) -> None:
        self.events.append(event)

    def resume(self, change: ForgeChange) -> list[uuid.UUID]:
        if self.fail:
            raise self.fail
        self.changes.append(change)
        return [uuid.uuid4()]


def client(settings: ForgeHookSettings, recorder: Recorder) -> TestClient:
    receiver = ForgeReceiver(settings, recorder.emit, recorder.resume)
    return TestClient(Starlette(routes=receiver.routes()))


def github_post(
    http: TestClient, event: str, payload: Any, secret: str = SECRET, delivery: str = "d-1"
) -> Any:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature,
        "Content-Type": "application/json",
    }
    return http.post("/forge/github", content=body, headers=headers)


def status(context: str = "kustomization/apps-dev/0c9c2e41", state: str = "success") -> dict[str, Any]:
    return {"sha": SHA, "context": context, "state": state, "repository": {"full_name": "Acme/GitOps"}}


def closed(number: int = 7, merged: bool = True) -> dict[str, Any]:
    return {
        "action": "closed",
        "number": number,
        "pull_request": {"merged": merged},
        "repository": {"full_name": "acme/gitops"},
    }


def azure_event(event: str, status: str, number: int = 12) -> dict[str, Any]:
    # The envelope and PR resource of the samples at
    # https://learn.microsoft.com/en-us/azure/devops/service-hooks/events#git.pullrequest.merged
    return {
        "id": "2ab4e3d3-b7a6-425e-92b1-5a9982c1269e",
        "eventType": event,
        "publisherId": "tfs",
        "resource": {
            "repository": {
                "id": "4bc14d40",
                "name": "Fabrikam",
                "project": {"id": "6ce954b1", "name": "Web"},
            },
            "pullRequestId": number,
            "status": status,
            "mergeStatus": "succeeded",
        },
        "resourceVersion": "1.0",
    }


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


GITHUB = ForgeHookSettings(github_secret=SecretStr(SECRET))
AZURE = ForgeHookSettings(azure_username="hooks", azure_password=SecretStr(PASSWORD))


def test_a_status_wakes_the_runs_of_its_kustomization_and_is_recorded_once_per_delivery() -> None:
    recorder = Recorder()
    answer = github_post(client(GITHUB, recorder), "status", status(), delivery="72d3162e")
    assert answer.status_code == 202 and answer.json()["resumed"] == 1
    assert recorder.changes == [
        ForgeChange(repo_key("github", "acme", "gitops"), context="kustomization/apps-dev/0c9c2e41")
    ]
    (event,) = recorder.events
    assert event.event == COMMIT_STATUS and event.payload["sha"] == SHA
    assert event.resource["prefect.resource.id"] == "forge.repo.github.acme.gitops"
    again = Recorder()
    github_post(client(GITHUB, again), "status", status(), delivery="72d3162e")
    assert again.events[0].id == event.id  # a redelivery keeps its event id: the server stores it once


def test_a_closed_pr_wakes_its_merge_wait_and_other_pr_actions_do_not() -> None:
    recorder = Recorder()
    http = client(GITHUB, recorder)
    assert github_post(http, "pull_request", closed(7)).status_code == 202
    assert recorder.changes == [ForgeChange(repo_key("github", "acme", "gitops"), pr=7)]
    assert recorder.events[0].event == PR_CLOSED and recorder.events[0].payload == {
        "number": 7,
        "merged": True,
    }
    opened = github_post(http, "pull_request", {**closed(8), "action": "opened"})
    assert opened.status_code == 202 and "only closed" in opened.json()["ignored"]
    pending = github_post(http, "status", status(state="pending"))
    assert "pending" in pending.json()["ignored"]
    assert github_post(http, "push", {}).json()["ignored"] == "push events end no wait"
    assert len(recorder.changes) == 1


def test_a_review_wakes_the_runs_at_its_prs_gate_and_an_edit_does_not() -> None:
    recorder = Recorder()
    http = client(GITHUB, recorder)
    # Only the fields read, from the pull_request_review$submitted example of @octokit/webhooks.
    review = {
        "action": "submitted",
        "pull_request": {"number": 5},
        "repository": {"full_name": "acme/gitops"},
    }
    assert github_post(http, "pull_request_review", review).status_code == 202
    assert recorder.changes == [ForgeChange(repo_key("github", "acme", "gitops"), pr=5, reviewed=True)]
    assert recorder.events[0].event == PR_REVIEWED and recorder.events[0].payload == {
        "number": 5,
        "action": "submitted",
    }
    edited = github_post(http, "pull_request_review", {**review, "action": "edited"})
    assert "only a submitted or dismissed review" in edited.json()["ignored"]
    broken = github_post(http, "pull_request_review", {**review, "pull_request": {}})
    assert broken.status_code == 400 and "pull_request.number" in broken.json()["error"]
    assert len(recorder.changes) == 1


def test_github_deliveries_must_be_signed_with_the_hook_secret() -> None:
    recorder = Recorder()
    http = client(GITHUB, recorder)
    assert github_post(http, "status", status(), secret="someone-elses-secret-000").status_code == 401
    unsigned = http.post("/forge/github", json=status(), headers={"X-GitHub-Event": "status"})
    assert unsigned.status_code == 401
    assert github_post(http, "ping", {"zen": "Design for failure."}).json() == {"pong": True}
    assert recorder.events == [] and recorder.changes == []
    disabled = client(AZURE, recorder)
    assert github_post(disabled, "status", status()).status_code == 404


def test_a_malformed_delivery_is_a_400_that_names_the_field() -> None:
    http = client(GITHUB, Recorder())
    answer = github_post(http, "status", {**status(), "sha": "not-a-sha"})
    assert answer.status_code == 400 and "sha" in answer.json()["error"]
    assert github_post(http, "pull_request", ["not", "an", "object"]).status_code == 400


def test_azure_devops_merged_and_completed_wake_the_merge_wait_with_basic_auth() -> None:
    recorder = Recorder()
    http = client(AZURE, recorder)
    good = {"Authorization": basic("hooks", PASSWORD)}
    merged = http.post("/forge/azure", json=azure_event("git.pullrequest.merged", "completed"), headers=good)
    assert merged.status_code == 202
    assert recorder.changes == [ForgeChange(repo_key("azdo", "web", "fabrikam"), pr=12)]
    active = http.post("/forge/azure", json=azure_event("git.pullrequest.updated", "active"), headers=good)
    assert "only a completed or abandoned PR" in active.json()["ignored"]
    abandoned = http.post(
        "/forge/azure", json=azure_event("git.pullrequest.updated", "abandoned", 13), headers=good
    )
    assert abandoned.status_code == 202 and recorder.changes[-1].pr == 13
    wrong = {"Authorization": basic("hooks", "not-the-password-000000")}
    assert (
        http.post(
            "/forge/azure", json=azure_event("git.pullrequest.merged", "completed"), headers=wrong
        ).status_code
        == 401
    )
    assert (
        http.post("/forge/azure", json=azure_event("git.pullrequest.merged", "completed")).status_code == 401
    )
    assert len(recorder.changes) == 2


def test_azure_devops_may_prove_itself_with_a_custom_header_instead() -> None:
    settings = ForgeHookSettings(azure_header=StaticHeader(name="X-Hook-Token", value=SecretStr(PASSWORD)))
    recorder = Recorder()
    http = client(settings, recorder)
    body = azure_event("git.pullrequest.merged", "completed")
    assert http.post("/forge/azure", json=body, headers={"X-Hook-Token": PASSWORD}).status_code == 202
    assert http.post("/forge/azure", json=body, headers={"X-Hook-Token": "nope"}).status_code == 401


def test_a_delivery_that_could_not_wake_its_runs_is_a_503_so_azure_devops_retries() -> None:
    down = Recorder(fail=RuntimeError("the Prefect server is down"))
    http = client(AZURE, down)
    body = azure_event("git.pullrequest.merged", "completed")
    answer = http.post("/forge/azure", json=body, headers={"Authorization": basic("hooks", PASSWORD)})
    assert answer.status_code == 503 and "retry" in answer.json()["error"]

    def unreachable(event: RegistryEvent) -> None:
        raise EmitError("could not reach the Prefect API")

    receiver = ForgeReceiver(GITHUB, unreachable, Recorder().resume)
    assert github_post(TestClient(Starlette(routes=receiver.routes())), "status", status()).status_code == 503


def test_settings_come_from_the_environment_and_refuse_half_or_short_credentials() -> None:
    env = {
        "PROMOTER_WEBHOOK_FORGE_GITHUB_SECRET": SECRET,
        "PROMOTER_WEBHOOK_FORGE_AZURE_HEADER": "X-T: " + PASSWORD,
    }
    settings = ForgeHookSettings.from_env(env)
    assert settings.github_secret is not None and settings.azure_header is not None
    assert len(settings.enabled()) == 2 and SECRET not in repr(settings)
    with pytest.raises(ConfigError, match="both"):
        ForgeHookSettings.from_env({"PROMOTER_WEBHOOK_FORGE_AZURE_USERNAME": "hooks"})
    with pytest.raises(ConfigError, match="at least"):
        ForgeHookSettings.from_env({"PROMOTER_WEBHOOK_FORGE_GITHUB_SECRET": "short"})
    assert ForgeHookSettings.from_env({}).enabled() == []


def waiting(waits: Waits, parameters: dict[str, Any] | None = None) -> WaitingRun:
    return WaitingRun(uuid.uuid4(), waits, GITOPS if parameters is None else parameters, None)


def test_a_change_concerns_only_the_runs_waiting_on_it_in_its_repository(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMOTER_GITOPS_URL", raising=False)
    here = repo_key("github", "acme", "gitops")
    dev = waiting(Waits(group="apps", env="dev", commit=SHA, kustomization="apps-dev"))
    merge = waiting(Waits(pr=7, group="apps", env="dev"))
    elsewhere = waiting(
        Waits(group="apps", env="dev", commit=SHA, kustomization="apps-dev"),
        {"gitops_url": "https://github.com/other/gitops.git"},
    )
    unknown = waiting(Waits(pr=7), {})  # its URL comes from a worker's environment: woken to look itself
    flux = ForgeChange(here, context="kustomization/apps-dev/0c9c2e41")
    assert [flux.concerns(r) for r in (dev, merge, elsewhere)] == [True, False, False]
    assert not ForgeChange(here, context="kustomization/apps-qa").concerns(dev)
    assert not ForgeChange(here, context="promoter").concerns(dev)  # our own check, not Flux
    assert ForgeChange(here, context="cluster-eu/apps").concerns(dev)  # a commitStatusExpr: cannot tell
    pr = ForgeChange(here, pr=7)
    assert [pr.concerns(r) for r in (dev, merge, unknown)] == [False, True, True]
    assert not ForgeChange(here, pr=8).concerns(merge)
