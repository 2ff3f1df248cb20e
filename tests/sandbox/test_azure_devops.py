"""The Azure DevOps personality, driven with plain httpx as a PAT-holding client would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from promoter.sandbox.forge import Repository
from promoter.sandbox.testing import Sandbox
from tests.sandbox.conftest import git

VERSION = {"api-version": "7.1"}


@pytest.fixture
def ado(sandbox: Sandbox) -> Iterator[httpx.Client]:
    base = sandbox.azure_api("acme", "gitops") + "/repositories/gitops"
    with httpx.Client(base_url=base, auth=("", sandbox.token), params=VERSION, timeout=30) as client:
        yield client


@pytest.fixture
def repo(sandbox: Sandbox) -> Repository:
    found: Repository = sandbox.forge.repo("azure", "acme", "gitops", "gitops")
    return found


def _branch(sandbox: Sandbox, repo: Repository, branch: str, text: str = "bumped\n") -> str:
    sha: str = sandbox.forge.commit_files(repo, branch, {"apps/dev/podinfo.yaml": text.encode()}, "bump")
    return sha


def _create(ado: httpx.Client, branch: str = "promote/apps-podinfo") -> dict[str, Any]:
    response = ado.post(
        "/pullrequests",
        json={
            "sourceRefName": f"refs/heads/{branch}",
            "targetRefName": "refs/heads/main",
            "title": "Promote",
            "description": "d",
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _status(
    ado: httpx.Client, sha: str, state: str, name: str = "promoter", genre: str = "promoter"
) -> httpx.Response:
    return ado.post(
        f"/commits/{sha}/statuses",
        params={"api-version": "7.1-preview.1"},
        json={"state": state, "description": "gate", "context": {"name": name, "genre": genre}},
    )


def test_api_version_is_required(sandbox: Sandbox, ado: httpx.Client) -> None:
    response = httpx.get(
        sandbox.azure_api("acme", "gitops") + "/repositories/gitops/pullrequests", auth=("", sandbox.token)
    )
    assert response.status_code == 400
    assert response.json()["typeKey"] == "VssVersionNotSpecifiedException"
    assert ado.get("/pullrequests").status_code == 200


def test_unknown_pat_is_401_and_unknown_repo_404(sandbox: Sandbox) -> None:
    base = sandbox.azure_api("acme", "gitops")
    assert httpx.get(f"{base}/repositories/gitops", params=VERSION, auth=("", "nope")).status_code == 401
    missing = httpx.get(f"{base}/repositories/nope", params=VERSION, auth=("", sandbox.token))
    assert missing.status_code == 404 and missing.json()["message"].startswith("TF401019")


def test_pull_request_search_and_duplicate(sandbox: Sandbox, ado: httpx.Client, repo: Repository) -> None:
    _branch(sandbox, repo, "promote/apps-podinfo")
    created = _create(ado)
    assert created["status"] == "active" and created["createdBy"]["displayName"] == "promoter-bot"
    found = ado.get(
        "/pullrequests",
        params={
            **VERSION,
            "searchCriteria.sourceRefName": "refs/heads/promote/apps-podinfo",
            "searchCriteria.status": "active",
        },
    ).json()
    assert found["count"] == 1 and found["value"][0]["pullRequestId"] == created["pullRequestId"]
    duplicate = ado.post(
        "/pullrequests",
        json={
            "sourceRefName": "refs/heads/promote/apps-podinfo",
            "targetRefName": "refs/heads/main",
            "title": "again",
        },
    )
    assert duplicate.status_code == 409 and duplicate.json()["message"].startswith("TF401179")


def test_completion_is_refused_until_the_required_status_succeeds(
    sandbox: Sandbox, ado: httpx.Client, repo: Repository
) -> None:
    sha = _branch(sandbox, repo, "promote/apps-podinfo")
    number = _create(ado)["pullRequestId"]
    complete = {"status": "completed", "lastMergeSourceCommit": {"commitId": sha}}
    refused = ado.patch(f"/pullrequests/{number}", json=complete)
    assert refused.status_code == 409 and "promoter" in refused.json()["message"]
    assert _status(ado, sha, "failed").status_code == 201
    assert ado.patch(f"/pullrequests/{number}", json=complete).status_code == 409
    assert _status(ado, sha, "succeeded").status_code == 201
    done = ado.patch(f"/pullrequests/{number}", json=complete)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "completed" and body["closedBy"]["displayName"] == "promoter-bot"
    assert body["lastMergeCommit"]["commitId"] == repo.branches["main"]
    assert sandbox.forge.commit(repo, repo.branches["main"]).message.startswith(
        f"Merged PR {number}: Promote"
    )


def test_stale_source_commit_is_refused(sandbox: Sandbox, ado: httpx.Client, repo: Repository) -> None:
    sha = _branch(sandbox, repo, "promote/apps-podinfo")
    number = _create(ado)["pullRequestId"]
    _status(ado, sha, "succeeded")
    stale = ado.patch(
        f"/pullrequests/{number}",
        json={"status": "completed", "lastMergeSourceCommit": {"commitId": "1" * 40}},
    )
    assert stale.status_code == 409


def test_auto_complete_merges_when_status_succeeds(
    sandbox: Sandbox, ado: httpx.Client, repo: Repository
) -> None:
    sha = _branch(sandbox, repo, "promote/apps-podinfo")
    created = _create(ado)
    me = created["createdBy"]["id"]
    update = {
        "autoCompleteSetBy": {"id": me},
        "completionOptions": {"mergeStrategy": "squash", "deleteSourceBranch": True},
    }
    patched = ado.patch(f"/pullrequests/{created['pullRequestId']}", json=update).json()
    assert patched["autoCompleteSetBy"]["id"] == me
    assert patched["completionOptions"]["mergeStrategy"] == "squash"
    _status(ado, sha, "succeeded")
    sandbox.wait_for(
        lambda: ado.get(f"/pullrequests/{created['pullRequestId']}").json()["status"] == "completed"
    )
    # deleteSourceBranch: the forge deletes the branch just after it marks the PR completed.
    sandbox.wait_for(lambda: "promote/apps-podinfo" not in repo.branches)
    merge = repo.branches["main"]
    query = ado.post(
        "/pullrequestquery", json={"queries": [{"type": "lastMergeCommit", "items": [merge]}]}
    ).json()
    assert [pr["pullRequestId"] for pr in query["results"][0][merge]] == [created["pullRequestId"]]


def test_statuses_refs_and_diffs(sandbox: Sandbox, ado: httpx.Client, repo: Repository) -> None:
    sha = _branch(sandbox, repo, "feature")
    assert _status(ado, sha, "pending", "flux", "fluxcd").status_code == 201
    assert _status(ado, sha, "succeeded", "flux", "fluxcd").status_code == 201
    assert _status(ado, sha, "failed-ish").status_code == 400
    listed = ado.get(f"/commits/{sha}/statuses", params={"api-version": "7.1-preview.1"}).json()
    assert [s["state"] for s in listed["value"]] == ["succeeded", "pending"]
    assert listed["value"][0]["context"] == {"name": "flux", "genre": "fluxcd"}
    latest = ado.get(
        f"/commits/{sha}/statuses", params={"api-version": "7.1-preview.1", "latestOnly": "true"}
    ).json()
    assert latest["count"] == 1
    refs = ado.get("/refs", params={**VERSION, "filter": "heads/feature"}).json()
    assert refs["value"] == [{**refs["value"][0], "name": "refs/heads/feature", "objectId": sha}]
    diff = ado.get(
        "/diffs/commits",
        params={**VERSION, "baseVersion": "main", "targetVersion": sha, "targetVersionType": "commit"},
    ).json()
    assert (diff["aheadCount"], diff["behindCount"], diff["commonCommit"]) == (1, 0, repo.branches["main"])


def test_pushes_over_the_azure_git_url_reach_the_pull_request(
    sandbox: Sandbox, ado: httpx.Client, repo: Repository, tmp_path: Path
) -> None:
    _branch(sandbox, repo, "promote/apps-podinfo")
    number = _create(ado)["pullRequestId"]
    work = tmp_path / "ado"
    git(sandbox, tmp_path, "clone", "-q", "-b", "promote/apps-podinfo", sandbox.clone_url(repo), str(work))
    (work / "extra.txt").write_text("x\n")
    git(sandbox, work, "add", "extra.txt")
    git(sandbox, work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "more")
    git(sandbox, work, "push", "-q", "origin", "HEAD")
    head = git(sandbox, work, "rev-parse", "HEAD").stdout.strip()
    assert ado.get(f"/pullrequests/{number}").json()["lastMergeSourceCommit"]["commitId"] == head


def test_abandon_and_malformed_body(sandbox: Sandbox, ado: httpx.Client, repo: Repository) -> None:
    _branch(sandbox, repo, "promote/apps-podinfo")
    number = _create(ado)["pullRequestId"]
    assert ado.patch(f"/pullrequests/{number}", json={"status": "abandoned"}).json()["status"] == "abandoned"
    malformed = ado.patch(
        f"/pullrequests/{number}", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400 and "typeKey" in malformed.json()
    assert ado.get("/pullrequests/999").status_code == 404
