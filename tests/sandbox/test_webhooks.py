"""The sandbox's webhooks: subscribed through each forge's API, delivered later, shaped and retried as the
real services do (sandbox/webhooks.py cites the sources)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import github
import httpx
import jsonschema
import pytest

from sandbox.forge import Repository
from sandbox.specs import discover
from sandbox.testing import Sandbox, run_sandbox

SECRET = "sandbox-hook-secret-0123456789"
VERSION = {"api-version": "7.1"}


class Receiver:
    """A loopback HTTP endpoint that records each delivery and answers the next of `answers` (then 200)."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers = list(answers or [])
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(owner.answers.pop(0) if owner.answers else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, name: str) -> list[tuple[dict[str, str], Any]]:
        return [
            (headers, json.loads(body))
            for headers, body in self.requests
            if headers.get("x-github-event", json.loads(body).get("eventType")) == name
        ]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with run_sandbox(
        tmp_path / "sandbox", seed_demo=True, azure_merge_delay=0.05, webhook_delay_scale=0.01
    ) as s:
        yield s
        assert not s.violations(), s.violations()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def schema_for(definition: str) -> dict[str, Any]:
    specs = discover()
    path = specs / "github" / "webhooks-schema.json" if specs else None
    if path is None or not path.is_file():
        pytest.skip("../shared/specs/github/webhooks-schema.json is absent: payloads cannot be validated")
    document = json.loads(path.read_text())
    return {"$ref": f"#/definitions/{definition}", "definitions": document["definitions"]}


def assert_valid(payload: Any, definition: str) -> None:
    errors = sorted(
        jsonschema.Draft7Validator(schema_for(definition)).iter_errors(payload), key=lambda e: list(e.path)
    )
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message[:150]}" for e in errors[:8]]


def pygithub(sandbox: Sandbox) -> github.Github:
    return github.Github(base_url=sandbox.github_api, auth=github.Auth.Token(sandbox.token), retry=None)


def signed(headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("x-hub-signature-256", ""), expected)


def test_github_hooks_via_pygithub_ping_then_send_signed_status_and_closed_events(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    repo = pygithub(sandbox).get_repo("acme/gitops")
    hook = repo.create_hook(
        "web", {"url": receiver.url, "content_type": "json", "secret": SECRET}, ["status", "pull_request"]
    )
    assert [h.id for h in repo.get_hooks()] == [hook.id]
    ((headers, ping),) = sandbox.wait_for(lambda: receiver.events("ping"))
    assert ping["hook_id"] == hook.id and headers["x-github-hook-id"] == str(hook.id)
    assert_valid(ping, "ping$event")

    gitops: Repository = sandbox.forge.repo("github", "acme", "gitops")
    sha = sandbox.forge.commit_files(
        gitops, "promote/apps-podinfo", {"apps/dev/podinfo.yaml": b"x\n"}, "bump"
    )
    pr = repo.create_pull(title="Promote", body="b", head="promote/apps-podinfo", base="main")
    repo.get_commit(sha).create_status(
        "success", description="reconciliation succeeded", context="kustomization/apps-dev"
    )
    ((headers, status),) = sandbox.wait_for(lambda: receiver.events("status"))
    body = next(b for h, b in receiver.requests if h.get("x-github-event") == "status")
    receiver.requests.clear()
    assert signed(headers, body) and headers["user-agent"].startswith("GitHub-Hookshot/")
    assert (status["sha"], status["context"], status["state"]) == (sha, "kustomization/apps-dev", "success")
    assert "promote/apps-podinfo" in [b["name"] for b in status["branches"]]
    assert_valid(status, "status$event")

    sandbox.forge.add_status(gitops, sha, "promoter-bot", "success", "promoter")  # the required check
    sandbox.forge.merge(gitops, pr.number, "alice")
    ((_, closed),) = sandbox.wait_for(lambda: receiver.events("pull_request"))
    assert closed["action"] == "closed" and closed["number"] == pr.number
    assert closed["pull_request"]["merged"] is True
    assert_valid(closed, "pull_request$closed")
    hook.delete()
    assert list(repo.get_hooks()) == []


def test_a_submitted_review_is_sent_as_github_sends_it(sandbox: Sandbox, receiver: Receiver) -> None:
    repo = pygithub(sandbox).get_repo("acme/gitops")
    repo.create_hook(
        "web", {"url": receiver.url, "content_type": "json", "secret": SECRET}, ["pull_request_review"]
    )
    gitops: Repository = sandbox.forge.repo("github", "acme", "gitops")
    sandbox.forge.commit_files(gitops, "promote/apps-review", {"apps/dev/podinfo.yaml": b"r\n"}, "bump")
    pr = repo.create_pull(title="Promote", body="b", head="promote/apps-review", base="main")
    person = github.Github(base_url=sandbox.github_api, auth=github.Auth.Token(sandbox.human_token))
    person.get_repo("acme/gitops").get_pull(pr.number).create_review(event="APPROVE")

    ((headers, review),) = sandbox.wait_for(lambda: receiver.events("pull_request_review"))
    body = next(b for h, b in receiver.requests if h.get("x-github-event") == "pull_request_review")
    assert signed(headers, body)
    assert (review["action"], review["review"]["state"], review["sender"]["login"]) == (
        "submitted",
        "approved",
        "alice",
    )
    assert review["review"]["commit_id"] == pr.head.sha and review["pull_request"]["number"] == pr.number
    assert_valid(review, "pull_request_review$submitted")


def test_github_does_not_redeliver_a_failed_delivery(sandbox: Sandbox) -> None:
    failing = Receiver(answers=[200, 500, 503])  # the ping passes; the status delivery fails
    try:
        repo = pygithub(sandbox).get_repo("acme/gitops")
        repo.create_hook("web", {"url": failing.url, "content_type": "json"}, ["status"])
        gitops: Repository = sandbox.forge.repo("github", "acme", "gitops")
        sandbox.forge.add_status(
            gitops, gitops.branches["main"], "alice", "success", "kustomization/apps-dev"
        )
        deliveries = sandbox.wait_for(
            lambda: [d for d in httpx.get(f"{sandbox.url}/_sandbox/deliveries").json() if d["status"] == 500]
        )
        assert deliveries[0]["attempts"] == 1
        assert len(failing.events("status")) == 1
    finally:
        failing.close()


def test_a_hook_must_point_at_loopback(sandbox: Sandbox) -> None:
    answer = httpx.post(
        f"{sandbox.github_api}/repos/acme/gitops/hooks",
        headers={"Authorization": f"token {sandbox.token}"},
        json={
            "name": "web",
            "config": {"url": "https://example.com/hook", "content_type": "json"},
            "events": ["status"],
        },
    )
    assert answer.status_code == 422 and "loopback" in answer.text


def subscribe(sandbox: Sandbox, url: str, event: str, **inputs: str) -> httpx.Response:
    gitops: Repository = sandbox.forge.repo("azure", "acme", "gitops", "gitops")
    return httpx.post(
        f"{sandbox.url}/acme/_apis/hooks/subscriptions",
        params=VERSION,
        auth=("", sandbox.token),
        json={
            "publisherId": "tfs",
            "eventType": event,
            "resourceVersion": "1.0",
            "consumerId": "webHooks",
            "consumerActionId": "httpRequest",
            "publisherInputs": {"repository": gitops.uuid, "projectId": gitops.project_uuid},
            "consumerInputs": {"url": url, **inputs},
        },
    )


def complete_a_pr(sandbox: Sandbox, branch: str = "promote/apps-podinfo") -> int:
    """Open a PR and complete it through the REST API; Azure DevOps merges it asynchronously."""
    gitops: Repository = sandbox.forge.repo("azure", "acme", "gitops", "gitops")
    sha = sandbox.forge.commit_files(gitops, branch, {"apps/dev/podinfo.yaml": b"x\n"}, "bump")
    base = sandbox.azure_api("acme", "gitops") + "/repositories/gitops"
    with httpx.Client(base_url=base, auth=("", sandbox.token), params=VERSION) as ado:
        created = ado.post(
            "/pullrequests",
            json={
                "sourceRefName": f"refs/heads/{branch}",
                "targetRefName": "refs/heads/main",
                "title": "Promote",
            },
        ).json()
        number: int = created["pullRequestId"]
        check = {"state": "succeeded", "context": {"name": "promoter", "genre": "promoter"}}  # required
        ado.post(f"/commits/{sha}/statuses", params={"api-version": "7.1-preview.1"}, json=check)
        queued = ado.patch(
            f"/pullrequests/{number}",
            json={"status": "completed", "lastMergeSourceCommit": {"commitId": sha}},
        )
        assert queued.json()["status"] == "active"  # not merged yet: the merge completes later
    return number


def test_azure_devops_sends_merged_when_the_asynchronous_merge_completes(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    made = subscribe(
        sandbox,
        receiver.url,
        "git.pullrequest.merged",
        basicAuthUsername="hooks",
        basicAuthPassword=SECRET,
        httpHeaders="X-Hook-Token: abc",
    )
    assert made.status_code == 200 and made.json()["status"] == "enabled"
    assert SECRET not in made.text
    number = complete_a_pr(sandbox)
    ((headers, merged),) = sandbox.wait_for(lambda: receiver.events("git.pullrequest.merged"))
    assert (
        headers["authorization"]
        == "Basic " + __import__("base64").b64encode(f"hooks:{SECRET}".encode()).decode()
    )
    assert headers["x-hook-token"] == "abc"
    resource = merged["resource"]
    assert (resource["pullRequestId"], resource["status"], resource["mergeStatus"]) == (
        number,
        "completed",
        "succeeded",
    )
    assert merged["publisherId"] == "tfs" and resource["repository"]["project"]["name"] == "gitops"


def test_azure_devops_retries_transient_failures_and_a_410_disables_the_subscription(
    sandbox: Sandbox,
) -> None:
    flaky = Receiver(answers=[503, 502])
    gone = Receiver(answers=[410])
    try:
        subscribe(sandbox, flaky.url, "git.pullrequest.merged")
        subscription = subscribe(sandbox, gone.url, "git.pullrequest.merged").json()["id"]
        complete_a_pr(sandbox)
        sandbox.wait_for(lambda: len(flaky.requests) == 3 or None, timeout=10)
        assert len(gone.requests) == 1
        listed = httpx.get(
            f"{sandbox.url}/acme/_apis/hooks/subscriptions", params=VERSION, auth=("", sandbox.token)
        )
        status = {s["id"]: s["status"] for s in listed.json()["value"]}
        assert status[subscription] == "disabledBySystem"
        complete_a_pr(sandbox, "promote/apps-other")
        sandbox.wait_for(lambda: len(flaky.requests) == 4 or None)
        assert len(gone.requests) == 1  # disabled: nothing more is sent
    finally:
        flaky.close()
        gone.close()
