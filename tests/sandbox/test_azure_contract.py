"""Microsoft's own request/response examples, replayed against the Azure DevOps personality.

Each example of `../shared/specs/azure-devops/httpExamples` for a call the promoter makes (pull requests,
pull request statuses, commit statuses, refs) is sent as Microsoft wrote it, at the organisation-level
URL its `parameters` describe (no project unless it names one), with its body and query, and every field
of Microsoft's answer must be in the sandbox's answer with the same JSON type, recursively (a list's first
item against each item), with the same status code. Read at run time, never copied into the project;
without the examples the test skips, except with CI=true, where it fails as the other spec checks do.

Substitutions, so the request means the same thing here: the organisation, project and repository are
created under the example's own names (`fabrikam`, `2016_10_31`); path ids (`repositoryId`,
`pullRequestId`, `commitId`) are the sandbox's; identities in bodies (`reviewers[].id`,
`autoCompleteSetBy.id`) are the sandbox's users.

Deliberately excluded (EXCLUDED below says why for each): calls the promoter does not make and the
sandbox does not serve (pull request status get/delete/JSON-patch, refs update and lock).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.forge import Account, PullRequest, Repository
from sandbox.specs import discover
from sandbox.testing import Sandbox, run_sandbox

KINDS = ("pullRequests", "pullRequestStatuses", "statuses", "refs")
EXCLUDED = {
    "DELETE_git_pullRequestStatuses_status.json": "the promoter never deletes pull request statuses",
    "GET_git_pullRequestStatuses_status.json": "the promoter never reads one pull request status by id",
    "PATCH_git_pullRequestStatuses_statuses.json": "JSON-patch removal of pull request statuses is unused",
    "PATCH__git_repositories__repositoryId__refs.json": "locking a branch: the promoter pushes with git",
    "POST__git_repositories__repositoryId__refs.json": "ref updates: the promoter pushes with git",
}
ORG, PROJECT, NAME = "fabrikam", "2016_10_31", "2016_10_31"
# Fields of an example answer that the sandbox leaves out on purpose, by path (`[]` for any item).
EXCLUDED_FIELDS = {
    "$.value[].reviewers[].isContainer": "only group reviewers (a team) carry it; the sandbox has no groups",
}


def _folder() -> Path | None:
    specs = discover()
    folder = specs / "azure-devops" / "httpExamples" if specs else None
    return folder if folder is not None and folder.is_dir() else None


def _examples() -> list[Any]:
    folder = _folder()
    if folder is None:
        reason = "Microsoft's httpExamples not found (../shared/specs/azure-devops/httpExamples)"
        if os.environ.get("CI") == "true":
            return [pytest.param(None, id="missing")]  # the test then fails, saying why
        return [pytest.param(None, id="missing", marks=pytest.mark.skip(reason=reason))]
    found = []
    for kind in KINDS:
        for path in sorted((folder / kind).glob("*.json")):
            marks = [pytest.mark.skip(reason=EXCLUDED[path.name])] if path.name in EXCLUDED else []
            found.append(pytest.param(path, id=f"{kind}/{path.stem}", marks=marks))
    return found


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with run_sandbox(tmp_path_factory.mktemp("contract"), azure_merge_delay=0.05) as running:
        yield running
        problems = running.violations()
        assert not problems, f"the sandbox answered outside the API descriptions: {problems}"


def _shape(expected: Any, actual: Any, where: str) -> list[str]:
    """Every field of `expected` in `actual` with the same JSON type; the problems found, by path.

    Paths name list items `[]`, so EXCLUDED_FIELDS can name a field in every item of a list.
    """
    kinds = {bool: "boolean", int: "number", float: "number", str: "string", type(None): "null"}
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {type(actual).__name__}"]
        problems = []
        for key, value in expected.items():
            if f"{where}.{key}" in EXCLUDED_FIELDS:
                continue
            if key not in actual:
                problems.append(f"{where}.{key}: missing")
            else:
                problems += _shape(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, got {type(actual).__name__}"]
        if expected and not actual:
            return [f"{where}: expected items, got an empty list"]
        return [p for item in actual if expected for p in _shape(expected[0], item, f"{where}[]")]
    if kinds.get(type(expected)) != kinds.get(type(actual)):
        return [
            f"{where}: expected {kinds.get(type(expected))}, got {kinds.get(type(actual))} ({actual!r:.60})"
        ]
    return []


class Stage:
    """The repository and objects an example talks about, made in the sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        forge = sandbox.forge
        self.repo: Repository = forge.create_repo("azure", ORG, NAME, PROJECT, exist_ok=True)
        if "main" not in self.repo.branches:
            forge.commit_files(self.repo, "main", {"README.md": b"seed\n"}, "Seed")
            forge.commit_files(self.repo, "new_feature", {"feature.md": b"base\n"}, "Feature base")
            forge.commit_files(self.repo, "master", {"master.md": b"m\n"}, "Master")
            forge.commit_files(self.repo, "auto_target", {"auto.md": b"a\n"}, "Auto target")
            for branch in ("feature/calcApp", "feature/replacer"):
                forge.commit_files(self.repo, branch, {f"{branch}.md": b"x\n"}, branch)
            forge.git(self.repo).git("tag", "v0.1", self.repo.branches["feature/replacer"])

    def pull(self, branch: str, target: str = "new_feature") -> PullRequest:
        """The open (or merged) pull request from `branch` into `target`, made on first use."""
        forge, repo = self.sandbox.forge, self.repo
        existing = [p for p in repo.pulls.values() if p.head_ref == branch and p.base_ref == target]
        if existing:
            return existing[-1]
        forge.commit_files(repo, branch, {f"{branch}.md": b"work\n"}, "work")
        pr: PullRequest = forge.create_pull(
            repo, "promoter-bot", branch, target, "A new feature", "Adding a new feature"
        )
        # Microsoft's examples show a reviewer with a vote: give each pull request one.
        self.sandbox.app.azure._extra(repo, pr.number).reviewers = {"alice": (10, False)}
        return pr

    def completed(self, branch: str) -> None:
        """A pull request completed through the API, as the service's completed ones were."""
        pr = self.pull(branch)
        if pr.merged:
            return
        self.settle(pr)
        url = f"/{ORG}/_apis/git/repositories/{self.repo.uuid}/pullRequests/{pr.number}"
        self.api("PATCH", url, {"status": "completed", "lastMergeSourceCommit": {"commitId": pr.head_sha}})
        self.sandbox.wait_for(lambda: pr.merged)

    def api(self, method: str, path: str, body: Any) -> None:
        response = httpx.request(
            method,
            self.sandbox.url + path,
            params={"api-version": "7.1"},
            json=body,
            auth=("", self.sandbox.token),
        )
        assert response.status_code < 300, response.text

    def settle(self, pr: PullRequest) -> None:
        merges = self.sandbox.app.azure.merges
        self.sandbox.wait_for(lambda: merges.merge_status(self.repo, pr) != "queued")


def _request(
    stage: Stage, kind: str, name: str, parameters: dict[str, Any]
) -> tuple[str, str, dict[str, str], Any]:
    """(method, path, query, body) of an example, with the sandbox's ids in place of Microsoft's."""
    method = name.partition("_")[0]
    repo = stage.repo
    api = f"/{ORG}/{PROJECT}/_apis/git" if "project" in parameters else f"/{ORG}/_apis/git"
    body = json.loads(json.dumps(parameters.get("body"))) if "body" in parameters else None
    query = {
        k: str(v)
        for k, v in parameters.items()
        if k not in ("body", "organization", "project") and "Id" not in k
    }
    query.setdefault("api-version", "7.1")
    if isinstance(body, dict):
        for reviewer in body.get("reviewers", []):
            reviewer["id"] = Account("alice").uuid
        if "autoCompleteSetBy" in body:
            body["autoCompleteSetBy"]["id"] = Account("promoter-bot").uuid
    base = f"{api}/repositories/{repo.uuid}"
    if kind == "pullRequestStatuses":
        pr = stage.pull("npaulk/statuses")
        if method == "GET" and not stage.sandbox.app.azure._extra(repo, pr.number).statuses:
            status = {
                "state": "succeeded",
                "description": "ok",
                "context": {"name": "s", "genre": "g"},
                "targetUrl": "https://ci",
            }
            stage.api("POST", f"{base}/pullRequests/{pr.number}/statuses", status)
        return method, f"{base}/pullRequests/{pr.number}/statuses", query, body
    if kind == "statuses":
        sha = repo.branches["main"]
        if method == "GET":
            stage.sandbox.forge.add_status(
                repo,
                sha,
                "promoter-bot",
                "succeeded",
                "Build123",
                "ok",
                "https://ci",
                "continuous-integration",
            )
        return method, f"{base}/commits/{sha}/statuses", query, body
    if kind == "refs":
        stage.sandbox.forge.add_status(
            repo,
            repo.branches["feature/replacer"],
            "promoter-bot",
            "succeeded",
            "ci",
            "ok",
            "https://ci",
            "build",
        )
        return method, f"{base}/refs", query, body
    if "repositories" not in name:  # the project-wide list
        stage.settle(stage.pull("npaulk/my_work"))
        return method, f"{api}/pullrequests", query, body
    if "status-completed" in name:
        stage.completed("npaulk/done")
    elif "targetRefName" in name:
        stage.settle(stage.pull("npaulk/for_master", "master"))
    elif method == "POST":
        return method, f"{base}/pullRequests", query, _fresh_branch(stage, body)
    # Auto-complete merges its pull request soon after: it gets its own, into a target of its own, so
    # that no other pull request's merge is recomputed (queued again) while a later example reads it.
    auto = "autoComplete" in name
    pr = stage.pull("npaulk/known_issues", "auto_target") if auto else stage.pull("npaulk/my_work")
    stage.settle(pr)
    if "pullRequestId" in name or "autoCompletePullRequestId" in name:
        return method, f"{base}/pullRequests/{pr.number}", query, body
    return method, f"{base}/pullRequests", query, body


def _fresh_branch(stage: Stage, body: Any) -> dict[str, Any]:
    """A create needs a source branch with no active pull request: give the example one of its own."""
    number = len(stage.repo.pulls) + 1
    branch = f"npaulk/new_{number}"
    stage.sandbox.forge.commit_files(stage.repo, branch, {f"{branch}.md": b"new\n"}, "new")
    return {**body, "sourceRefName": f"refs/heads/{branch}"}


@pytest.mark.parametrize("example", _examples())
def test_microsofts_example_is_answered_with_every_field_and_type(
    sandbox: Sandbox, example: Path | None
) -> None:
    assert example is not None, "Microsoft's httpExamples are required when CI=true"
    data = json.loads(example.read_text(encoding="utf-8-sig"))
    stage = Stage(sandbox)
    method, path, query, body = _request(stage, example.parent.name, example.stem, data["parameters"])
    response = httpx.request(
        method, sandbox.url + path, params=query, json=body, auth=("", sandbox.token), timeout=30
    )
    status, expected = next(iter(data["responses"].items()))
    assert response.status_code == int(status), response.text
    if expected.get("body") is not None:
        problems = _shape(expected["body"], response.json(), "$")
        assert not problems, "\n".join(problems)
