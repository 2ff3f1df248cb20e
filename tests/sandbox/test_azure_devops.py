"""The Azure DevOps personality, driven with plain httpx as a PAT-holding client would.

Each test checks one behaviour of the real service (docs/sandbox.md lists them with their sources):
asynchronous merges and completions, case-insensitive routes, organisation-level routes, lenient enums,
the api-version rules, the rebase strategies, tags and ref filters.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.forge import Repository
from sandbox.testing import Sandbox, run_sandbox
from tests.sandbox.conftest import git

VERSION = {"api-version": "7.1"}
DELAY = 0.05


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """The demo sandbox with Azure DevOps merges taking DELAY seconds (the service takes about one)."""
    with run_sandbox(tmp_path / "sandbox", seed_demo=True, azure_merge_delay=DELAY) as running:
        yield running
        problems = running.violations()
        assert not problems, f"the sandbox answered outside the API descriptions: {problems}"


@pytest.fixture
def ado(sandbox: Sandbox) -> Iterator[httpx.Client]:
    base = sandbox.azure_api("acme", "gitops") + "/repositories/gitops"
    with httpx.Client(base_url=base, auth=("", sandbox.token), params=VERSION, timeout=30) as client:
        yield client


@pytest.fixture
def repo(sandbox: Sandbox) -> Repository:
    found: Repository = sandbox.forge.repo("azure", "acme", "gitops", "gitops")
    return found


def _branch(
    sandbox: Sandbox,
    repo: Repository,
    branch: str,
    text: str = "bumped\n",
    path: str = "apps/dev/podinfo.yaml",
) -> str:
    sha: str = sandbox.forge.commit_files(repo, branch, {path: text.encode()}, "bump")
    return sha


def _create(ado: httpx.Client, branch: str = "promote/apps-podinfo", **extra: Any) -> dict[str, Any]:
    response = ado.post(
        "/pullrequests",
        json={
            "sourceRefName": f"refs/heads/{branch}",
            "targetRefName": "refs/heads/main",
            "title": "Promote",
            "description": "d",
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _status(
    ado: httpx.Client, sha: str, state: Any, name: str = "promoter", genre: str = "promoter"
) -> httpx.Response:
    return ado.post(
        f"/commits/{sha}/statuses",
        params={"api-version": "7.1-preview.1"},
        json={"state": state, "description": "gate", "context": {"name": name, "genre": genre}},
    )


def _settled(sandbox: Sandbox, ado: httpx.Client, number: int) -> dict[str, Any]:
    """The pull request once its merge or completion is no longer `queued`."""
    body: dict[str, Any] = sandbox.wait_for(
        lambda: (pr := ado.get(f"/pullrequests/{number}").json())["mergeStatus"] != "queued" and pr
    )
    return body


def _complete(ado: httpx.Client, number: int, sha: str, **options: Any) -> httpx.Response:
    body: dict[str, Any] = {"status": "completed", "lastMergeSourceCommit": {"commitId": sha}}
    if options:
        body["completionOptions"] = options
    return ado.patch(f"/pullrequests/{number}", json=body)


# -- api-version, authentication ------------------------------------------------------------------------


def test_api_version_is_required_and_checked(sandbox: Sandbox, ado: httpx.Client) -> None:
    url = sandbox.azure_api("acme", "gitops") + "/repositories/gitops/pullrequests"
    missing = httpx.get(url, auth=("", sandbox.token))
    assert missing.status_code == 400 and missing.json()["typeKey"] == "VssVersionNotSpecifiedException"
    too_new = httpx.get(url, params={"api-version": "8.0"}, auth=("", sandbox.token))
    assert too_new.status_code == 400 and too_new.json()["typeKey"] == "VssVersionOutOfRangeException"
    assert "latest REST API version this server supports is 7.2" in too_new.json()["message"]
    unreleased = httpx.get(url, params={"api-version": "7.2"}, auth=("", sandbox.token))
    assert unreleased.json()["typeKey"] == "VssInvalidPreviewVersionException"
    header = httpx.get(
        url, headers={"Accept": "application/json;api-version=7.2-preview.1"}, auth=("", sandbox.token)
    )
    assert header.status_code == 200
    assert ado.get("/pullrequests").status_code == 200


def test_connection_data_is_preview_only_and_names_the_token_owner(sandbox: Sandbox) -> None:
    url = f"{sandbox.url}/acme/_apis/connectionData"
    assert httpx.get(url, params=VERSION, auth=("", sandbox.token)).status_code == 400
    me = httpx.get(url, params={"api-version": "7.1-preview.1"}, auth=("", sandbox.human_token)).json()
    assert me["authenticatedUser"]["providerDisplayName"] == "alice"


def test_unknown_pat_is_401_and_unknown_repo_404(sandbox: Sandbox) -> None:
    base = sandbox.azure_api("acme", "gitops")
    assert httpx.get(f"{base}/repositories/gitops", params=VERSION, auth=("", "nope")).status_code == 401
    missing = httpx.get(f"{base}/repositories/nope", params=VERSION, auth=("", sandbox.token))
    assert missing.status_code == 404 and missing.json()["message"].startswith("TF401019")


# -- routes ---------------------------------------------------------------------------------------------


def test_route_words_and_names_are_case_insensitive(sandbox: Sandbox, repo: Repository) -> None:
    _branch(sandbox, repo, "feature")
    auth = ("", sandbox.token)
    for path in (
        "/acme/gitops/_apis/git/repositories/gitops/pullRequests",
        "/ACME/GitOps/_APIS/Git/Repositories/GITOPS/PULLREQUESTS",
        "/acme/gitops/_apis/git/repositories/gitops/pullrequests",
    ):
        response = httpx.get(sandbox.url + path, params=VERSION, auth=auth)
        assert response.status_code == 200, path
    refs = httpx.get(
        f"{sandbox.url}/acme/gitops/_apis/git/repositories/gitops/Refs", params=VERSION, auth=auth
    )
    assert "refs/heads/feature" in [r["name"] for r in refs.json()["value"]]


def test_organisation_level_routes_take_the_repository_guid(
    sandbox: Sandbox, ado: httpx.Client, repo: Repository
) -> None:
    _branch(sandbox, repo, "promote/apps-podinfo")
    number = _create(ado)["pullRequestId"]
    org = f"{sandbox.url}/acme/_apis/git"
    auth = ("", sandbox.token)
    pr = httpx.get(f"{org}/repositories/{repo.uuid}/pullRequests/{number}", params=VERSION, auth=auth)
    assert pr.status_code == 200 and pr.json()["pullRequestId"] == number
    assert pr.json()["url"] == f"{org}/repositories/{repo.uuid}/pullRequests/{number}"
    by_id = httpx.get(f"{org}/pullRequests/{number}", params=VERSION, auth=auth)
    assert by_id.json()["repository"]["id"] == repo.uuid
    by_name = httpx.get(f"{org}/repositories/gitops/pullRequests", params=VERSION, auth=auth)
    assert by_name.status_code == 404  # without a project, only the GUID names the repository
    by_project_id = httpx.get(
        f"{sandbox.url}/acme/{repo.project_uuid}/_apis/git/repositories/gitops", params=VERSION, auth=auth
    )
    assert by_project_id.json()["id"] == repo.uuid


# -- pull requests: shapes and leniency -----------------------------------------------------------------


def test_pull_request_search_and_duplicate(sandbox: Sandbox, ado: httpx.Client, repo: Repository) -> None:
    _branch(sandbox, repo, "promote/apps-podinfo")
    created = _create(ado)
    assert created["status"] == "active" and created["createdBy"]["displayName"] == "promoter-bot"
    found = ado.get(
        "/pullrequests",
        params={
            **VERSION,
            "searchCriteria.sourceRefName": "refs/heads/promote/apps-podinfo",
            "searchCriteria.status": "Active",  # enums bind case-insensitively
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


def test_a_new_pull_request_is_queued_until_its_merge_is_computed(
    sandbox: Sandbox, ado: httpx.Client, repo: Repository
) -> None:
    sandbox.app.azure.merges.delay = 0.5
    head = _branch(sandbox, repo, "promote/apps-podinfo")
    created = _create(ado)
    assert created["mergeStatus"] == "queued" and "lastMergeCommit" not in created
    settled = _settled(sandbox, ado, created["pullRequestId"])
    assert settled["mergeStatus"] == "succeeded"
    merge = sandbox.forge.commit(repo, settled["lastMergeCommit"]["commitId"])
    assert merge.parents == (repo.branches["main"], head)  # a real merge, as refs/pull/N/merge holds
    assert repo.branches["main"] != settled["lastMergeCommit"]["commitId"]  # computed, not pushed


def test_links_reviewers_and_draft_are_echoed(sandbox: Sandbox, ado: httpx.Client, repo: Repository) -> None:
    _branch(sandbox, repo, "promote/apps-podinfo")
    alice = httpx.get(
        f"{sandbox.url}/acme/_apis/connectionData",
        params={"api-version": "7.1-preview.1"},
        auth=("", sandbox.human_token),
    ).json()["authenticatedUser"]["id"]
    created = _create(ado, reviewers=[{"id": alice}], isDraft=True)
    assert [(r["id"], r["vote"]) for r in created["reviewers"]] == [(alice, 0)]
    assert created["isDraft"] is True
    assert created["_links"]["self"]["href"] == created["url"]
    assert created["_links"]["repository"]["href"] == created["repository"]["url"]
    assert set(created["repository"]["_links"]) >= {"self", "project", "web"}
    unknown = ado.post(
        "/pullrequests",
        json={
            "sourceRefName": "refs/heads/main",
            "targetRefName": "refs/heads/promote/apps-podinfo",
            "title": "x",
            "reviewers": [{"id": "00000000-0000-0000-0000-000000000001"}],
        },
    )
    assert unknown.status_code == 400
    draft = _complete(ado, created["pullRequestId"], created["lastMergeSourceCommit"]["commitId"])
    assert draft.status_code == 409 and "draft" in draft.json()["message"]


def test_enums_are_read_in_any_case_or_as_numbers_and_written_camel_case(
    sandbox: Sandbox, ado: httpx.Client, repo: Repository
) -> None:
    sha = _branch(sandbox, repo, "feature")
    assert _status(ado, sha, "Succeeded").json()["state"] == "succeeded"
    assert _status(ado, sha, 3).json()["state"] == "failed"  # GitStatusState.failed = 3
    assert _status(ado, sha, "failed-ish").status_code == 400
    _branch(sandbox, repo, "promote/apps-podinfo")
    number = _create(ado)["pullRequestId"]
    abandoned = ado.patch(f"/pullrequests/{number}", json={"status": 2})  # PullRequestStatus.abandoned
    assert abandoned.json()["status"] == "abandoned"
    active = ado.patch(f"/pullrequests/{number}", json={"status": "ACTIVE"})
    assert active.json()["status"] == "active"
    options = ado.patch(
        f"/pullrequests/{number}",
        json={
            "completionOptions": {
                "deleteSourceBranch": "true",
                "squashMerge": "false",
                "mergeStrategy": "Squash",
            }
        },
    )
    assert options.json()["completionOptions"] == {"deleteSourceBranch": True, "mergeStrategy": "squash"}


# -- completion -----------------------------------------------------------------------------------------


def test_completion_is_queued_then_rejected_by_policy_until_the_required_status_succeeds(
    sandbox: Sandbox, ado: httpx.Client, repo: Repository
) -> None:
    sha = _branch(sandbox, repo, "promote/apps-podinfo")
    number = _create(ado)["pullRequestId"]
    queued = _complete(ado, number, sha)
    assert queued.status_code == 200, queued.text
    body = queued.json()
    assert (body["status"], body["mergeStatus"]) == ("active", "queued") and body["completionQueueTime"]
    refused = _settled(sandbox, ado, number)
    assert (refused["status"], refused["mergeStatus"]) == ("active", "rejectedByPolicy")
    assert _status(ado, sha, "failed").status_code == 201
    _complete(ado, number, sha)
    assert _settled(sandbox, ado, number)["mergeStatus"] == "rejectedByPolicy"
    assert _status(ado, sha, "succeeded").status_code == 201
    again = _complete(ado, number, sha).json()
    assert (again["status"], again["mergeStatus"]) == ("active", "queued")
    done = sandbox.wait_for(
        lambda: (pr := ado.get(f"/pullrequests/{number}").json())["status"] == "completed" and pr
    )
    assert done["closedBy"]["displayName"] == "promoter-bot" and done["mergeStatus"] == "succeeded"
    assert done["lastMergeCommit"]["commitId"] == repo.branches["main"]
    assert sandbox.forge.commit(repo, repo.branches["main"]).message.startswith(
        f"Merged PR {number}: Promote"
    )


def test_completion_needs_the_current_source_commit(
    sandbox: Sandbox, ado: httpx.Client, repo: Repository
) -> None:
    sha = _branch(sandbox, repo, "promote/apps-podinfo")
    number = _create(ado)["pullRequestId"]
    _status(ado, sha, "succeeded")
    missing = ado.patch(f"/pullrequests/{number}", json={"status": "completed"})
    assert missing.status_code == 400 and "LastMergeSourceCommit" in missing.json()["message"]
    stale = _complete(ado, number, "1" * 40)
    assert stale.status_code == 409


def test_conflicting_pull_requests_report_conflicts(
    sandbox: Sandbox, ado: httpx.Client, repo: Repository
) -> None:
    first = _branch(sandbox, repo, "one", "one\n")
    second = _branch(sandbox, repo, "two", "two\n")
    one = _create(ado, "one")["pullRequestId"]
    two = _create(ado, "two")["pullRequestId"]
    for sha in (first, second):
        _status(ado, sha, "succeeded")
    _complete(ado, one, first)
    sandbox.wait_for(lambda: ado.get(f"/pullrequests/{one}").json()["status"] == "completed")
    assert _settled(sandbox, ado, two)["mergeStatus"] == "conflicts"
    assert "lastMergeCommit" not in ado.get(f"/pullrequests/{two}").json()
    _complete(ado, two, second)
    refused = _settled(sandbox, ado, two)
    assert (refused["status"], refused["mergeStatus"]) == ("active", "conflicts")


def test_auto_complete_is_asynchronous_too(sandbox: Sandbox, ado: httpx.Client, repo: Repository) -> None:
    sandbox.app.azure.merges.delay = 0.5
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
    queued = sandbox.wait_for(
        lambda: (
            (pr := ado.get(f"/pullrequests/{created['pullRequestId']}").json()).get("completionQueueTime")
            and pr
        )
    )
    assert queued["status"] == "active"
    sandbox.wait_for(
        lambda: ado.get(f"/pullrequests/{created['pullRequestId']}").json()["status"] == "completed"
    )
    sandbox.wait_for(lambda: "promote/apps-podinfo" not in repo.branches)
    merge = repo.branches["main"]
    assert len(sandbox.forge.commit(repo, merge).parents) == 1  # squash
    query = ado.post(
        "/pullrequestquery", json={"queries": [{"type": "lastMergeCommit", "items": [merge]}]}
    ).json()
    assert [pr["pullRequestId"] for pr in query["results"][0][merge]] == [created["pullRequestId"]]


@pytest.mark.parametrize("strategy", ["rebase", "rebaseMerge"])
def test_rebase_strategies_replay_the_source_onto_the_target(
    sandbox: Sandbox, ado: httpx.Client, repo: Repository, strategy: str
) -> None:
    head = _branch(sandbox, repo, "promote/apps-podinfo")
    number = _create(ado)["pullRequestId"]
    old_main = _branch(sandbox, repo, "main", "other\n", path="apps/qa/podinfo.yaml")  # the target moves on
    _status(ado, head, "succeeded")
    _complete(ado, number, head, mergeStrategy=strategy)
    sandbox.wait_for(lambda: ado.get(f"/pullrequests/{number}").json()["status"] == "completed")
    sandbox.wait_for(lambda: repo.branches["main"] != old_main)  # the forge's view of refs follows git
    main = sandbox.forge.commit(repo, repo.branches["main"])
    rebased = repo.branches["promote/apps-podinfo"]  # "the source branch is updated during the rebase"
    assert rebased != head
    replayed = sandbox.forge.commit(repo, rebased)
    assert replayed.parents == (old_main,) and replayed.author == sandbox.forge.commit(repo, head).author
    if strategy == "rebase":
        assert main.sha == rebased  # fast-forward
    else:
        assert main.parents == (old_main, rebased)


# -- statuses, refs, diffs ------------------------------------------------------------------------------


def test_statuses_refs_and_diffs(sandbox: Sandbox, ado: httpx.Client, repo: Repository) -> None:
    sha = _branch(sandbox, repo, "feature")
    assert _status(ado, sha, "pending", "flux", "fluxcd").status_code == 201
    created = _status(ado, sha, "succeeded", "flux", "fluxcd").json()
    assert created["_links"]["repository"]["href"].endswith(repo.uuid)
    listed = ado.get(f"/commits/{sha}/statuses", params={"api-version": "7.1-preview.1"}).json()
    assert [s["state"] for s in listed["value"]] == ["succeeded", "pending"]
    assert listed["value"][0]["context"] == {"name": "flux", "genre": "fluxcd"}
    latest = ado.get(f"/commits/{sha}/statuses", params={"api-version": "7.1", "latestOnly": "True"}).json()
    assert latest["count"] == 1
    page = ado.get(f"/commits/{sha}/statuses", params={**VERSION, "top": 1, "skip": 1}).json()
    assert [s["state"] for s in page["value"]] == ["pending"]
    refs = ado.get("/refs", params={**VERSION, "filter": "heads/feature"}).json()
    assert refs["value"] == [{**refs["value"][0], "name": "refs/heads/feature", "objectId": sha}]
    diff = ado.get(
        "/diffs/commits",
        params={**VERSION, "baseVersion": "main", "targetVersion": sha, "targetVersionType": "commit"},
    ).json()
    assert (diff["aheadCount"], diff["behindCount"], diff["commonCommit"]) == (1, 0, repo.branches["main"])


def test_tags_filter_contains_and_include_statuses(
    sandbox: Sandbox, ado: httpx.Client, repo: Repository
) -> None:
    sha = _branch(sandbox, repo, "feature/replacer")
    _branch(sandbox, repo, "feature/calc")
    bare = sandbox.forge.git(repo)
    bare.git("tag", "v0.1", sha)
    env = {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "tag", "-a", "-m", "release", "v0.2", sha], cwd=bare.path, env=env, check=True)
    tags = ado.get("/refs", params={**VERSION, "filter": "tags/"}).json()["value"]
    assert [(t["name"], t["objectId"] == sha) for t in tags] == [
        ("refs/tags/v0.1", True),
        ("refs/tags/v0.2", False),
    ]
    assert tags[1]["peeledObjectId"] == sha
    contains = ado.get("/refs", params={**VERSION, "filter": "heads/", "filterContains": "REPLACER"}).json()
    assert [r["name"] for r in contains["value"]] == ["refs/heads/feature/replacer"]
    _status(ado, sha, "succeeded", "ci", "build")
    with_statuses = ado.get(
        "/refs", params={**VERSION, "filter": "heads/feature/replacer", "includeStatuses": "True"}
    ).json()["value"]
    assert [s["context"]["name"] for s in with_statuses[0]["statuses"]] == ["ci"]
    assert "statuses" not in ado.get("/refs", params={**VERSION, "filter": "heads/"}).json()["value"][0]


def test_pull_request_statuses_are_kept_on_the_pull_request(
    sandbox: Sandbox, ado: httpx.Client, repo: Repository
) -> None:
    _branch(sandbox, repo, "promote/apps-podinfo")
    number = _create(ado)["pullRequestId"]
    posted = ado.post(
        f"/pullRequests/{number}/statuses",
        json={"state": "succeeded", "description": "ok", "context": {"name": "review", "genre": "bot"}},
    )
    assert posted.status_code == 200 and posted.json()["_links"]["self"]["href"].endswith(
        f"/{number}/statuses/{posted.json()['id']}"
    )
    listed = ado.get(f"/pullRequests/{number}/statuses").json()
    assert [s["context"]["name"] for s in listed["value"]] == ["review"]


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
