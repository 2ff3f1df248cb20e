"""Microsoft's own Python client (`azure-devops` on PyPI) drives the Azure DevOps personality end to end.

As PyGithub does for the GitHub personality (test_github.py): a client nobody here wrote discovers the
routes the way it does against dev.azure.com (`GET _apis/ResourceAreas`, then `OPTIONS _apis`, building
each URL from the returned route templates and negotiating the api-version), then works with
repositories, pull requests (create, search, update, complete and wait for the asynchronous
completion), commit statuses and refs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.devops import _file_cache
from azure.devops.client import Client
from azure.devops.connection import Connection
from azure.devops.exceptions import AzureDevOpsServiceError
from azure.devops.v7_1.git.models import (
    GitCommitRef,
    GitPullRequest,
    GitPullRequestCompletionOptions,
    GitPullRequestSearchCriteria,
    GitStatus,
    GitStatusContext,
)
from msrest.authentication import BasicAuthentication

from sandbox.forge import Repository
from sandbox.testing import Sandbox, run_sandbox

PROJECT = "gitops"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with run_sandbox(tmp_path / "sandbox", seed_demo=True, azure_merge_delay=0.2) as running:
        yield running
        problems = running.violations()
        assert not problems, f"the sandbox answered outside the API descriptions: {problems}"


@pytest.fixture
def git_client(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The client's GitClient for organisation `acme`, its on-disk caches kept inside tmp_path."""
    for name, cache in (("options", _file_cache.OPTIONS_CACHE), ("resources", _file_cache.RESOURCE_CACHE)):
        monkeypatch.setattr(cache, "file_name", str(tmp_path / f"{name}.json"))
        monkeypatch.setattr(cache, "data", {})
        monkeypatch.setattr(cache, "initial_load_occurred", True)
    monkeypatch.setattr(Client, "_locations_cache", {})
    connection = Connection(base_url=f"{sandbox.url}/acme", creds=BasicAuthentication("", sandbox.token))
    return connection.clients_v7_1.get_git_client()


@pytest.fixture
def repo(sandbox: Sandbox) -> Repository:
    found: Repository = sandbox.forge.repo("azure", "acme", "gitops", "gitops")
    return found


def test_discovery_goes_through_resource_areas_and_options(sandbox: Sandbox, git_client: Any) -> None:
    found = git_client.get_repository("gitops", project=PROJECT)
    assert found.name == "gitops" and found.default_branch == "refs/heads/main"
    routes = {row["route"] for row in sandbox.stats()["routes"]}
    assert "GET /{organization}/_apis/resourceAreas" in routes
    assert "OPTIONS /{organization}/_apis" in routes


def test_a_pull_request_from_create_to_asynchronous_completion(
    sandbox: Sandbox, git_client: Any, repo: Repository
) -> None:
    head = sandbox.forge.commit_files(repo, "promote/apps-podinfo", {"apps/dev/podinfo.yaml": b"x\n"}, "bump")
    created = git_client.create_pull_request(
        GitPullRequest(
            source_ref_name="refs/heads/promote/apps-podinfo",
            target_ref_name="refs/heads/main",
            title="Promote podinfo",
            description="from the client",
        ),
        repository_id=repo.uuid,
        project=PROJECT,
    )
    assert created.status == "active" and created.merge_status == "queued"
    found = git_client.get_pull_requests(
        repo.uuid,
        GitPullRequestSearchCriteria(source_ref_name="refs/heads/promote/apps-podinfo", status="active"),
        project=PROJECT,
    )
    assert [pr.pull_request_id for pr in found] == [created.pull_request_id]
    updated = git_client.update_pull_request(
        GitPullRequest(title="Promote podinfo 6.5.1"), repo.uuid, created.pull_request_id, project=PROJECT
    )
    assert updated.title == "Promote podinfo 6.5.1"

    status = git_client.create_commit_status(
        GitStatus(
            state="succeeded", description="gate", context=GitStatusContext(name="promoter", genre="promoter")
        ),
        head,
        repo.uuid,
        project=PROJECT,
    )
    assert status.state == "succeeded" and status.context.genre == "promoter"
    assert [s.context.name for s in git_client.get_statuses(head, repo.uuid, project=PROJECT)] == ["promoter"]

    completing = git_client.update_pull_request(
        GitPullRequest(
            status="completed",
            last_merge_source_commit=GitCommitRef(commit_id=head),
            completion_options=GitPullRequestCompletionOptions(merge_strategy="squash"),
        ),
        repo.uuid,
        created.pull_request_id,
        project=PROJECT,
    )
    assert (completing.status, completing.merge_status) == ("active", "queued")
    assert completing.completion_queue_time is not None
    done = _wait_completed(git_client, created.pull_request_id)  # organisation level: no project, no repo
    assert done.last_merge_commit.commit_id == repo.branches["main"]
    assert done.closed_by.display_name == "promoter-bot"


def _wait_completed(git_client: Any, number: int, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        pr = git_client.get_pull_request_by_id(number)
        if pr.status == "completed":
            return pr
        assert time.monotonic() < deadline, f"still {pr.status}/{pr.merge_status}"
        time.sleep(0.05)


def test_refs_and_errors_come_back_as_the_client_expects(
    git_client: Any, repo: Repository, sandbox: Sandbox
) -> None:
    sandbox.forge.commit_files(repo, "feature/x", {"x.txt": b"x\n"}, "x")
    refs = git_client.get_refs(repo.uuid, project=PROJECT, filter="heads/", filter_contains="feature")
    assert [r.name for r in refs] == ["refs/heads/feature/x"]
    with pytest.raises(AzureDevOpsServiceError, match="TF401180"):
        git_client.get_pull_request(repo.uuid, 999, project=PROJECT)
