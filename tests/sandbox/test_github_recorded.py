"""The sandbox answers each call the promoter makes with every field of a real GitHub response.

The recordings in `recorded/` are trimmed real answers of api.github.com (each names its source). For the
same call, the sandbox's answer must have every member the recording has, recursively, with the same
JSON type. A null in the recording says nothing about the member's type, so anything goes there; lists
are compared by their first items. The deliberate exceptions, members the sandbox may leave null (or
empty), are listed in `MAY_BE_NULL` with why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import github
import httpx
import pytest

from sandbox.forge import Repository
from sandbox.testing import Sandbox
from tests.sandbox.conftest import push_branch, settled

RECORDED = Path(__file__).parent / "recorded"
BRANCH = "promote/apps-podinfo"

MAY_BE_NULL = {
    "assignee": "the sandbox never assigns pull requests (the promoter does not either)",
    "mergeable": "null once a pull request is closed, as GitHub often answers (octokit/octokit.js "
    "discussion #2199); this old recording kept the last value GitHub computed",
    "rebaseable": "as `mergeable`",
    "base.repo.description": "nullable in `repository`; the demo repository has none",
    "base.repo.homepage": "as `description`",
    "base.repo.language": "as `description`: GitHub detects none in a repository of YAML files either",
    "commits[].author": "null when a commit's e-mail belongs to no account (the sandbox sends the "
    "description's `empty-object` instead); the sandbox's clients commit as people it does not know",
    "commits[].committer": "as `author`",
    "base_commit.author": "as `commits[].author`",
    "base_commit.committer": "as `commits[].author`",
    "merge_base_commit.author": "as `commits[].author`",
    "merge_base_commit.committer": "as `commits[].author`",
}


def _type(value: Any) -> str:
    return {
        bool: "boolean",
        int: "number",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), "null")


def shape_problems(recorded: Any, ours: Any, path: str = "") -> list[str]:
    """Where `ours` lacks a member of `recorded` or holds another JSON type; [] when it has them all."""
    if recorded is None:
        return []
    if ours in (None, {}) and path in MAY_BE_NULL:
        return []
    if _type(recorded) != _type(ours):
        return [f"{path or '(root)'}: recorded {_type(recorded)}, sandbox {_type(ours)}"]
    if isinstance(recorded, dict):
        problems = []
        for key, value in recorded.items():
            where = f"{path}.{key}" if path else key
            if key not in ours:
                problems.append(f"{where}: missing")
            else:
                problems += shape_problems(value, ours[key], where)
        return problems
    if isinstance(recorded, list) and recorded and ours:
        return shape_problems(recorded[0], ours[0], f"{path}[]")
    return []


def _recorded(name: str) -> Any:
    data = json.loads((RECORDED / f"{name}.json").read_text())
    assert {"repository", "path"} <= set(data["source"]), f"{name}: the recording must name its source"
    return data["response"]


def _headers(sandbox: Sandbox) -> dict[str, str]:
    return {"Authorization": f"token {sandbox.token}", "X-GitHub-Api-Version": "2022-11-28"}


@pytest.fixture
def answers(sandbox: Sandbox, gh: github.Github, clone: Path, gitops: Repository) -> dict[str, Any]:
    """The sandbox's answers to the recorded calls, on a merged pull request of the demo repository."""
    api = f"{sandbox.github_api}/repos/acme/gitops"
    sha = push_branch(sandbox, clone, BRANCH, "apps/dev/podinfo.yaml", "bumped\n")
    created = gh.get_repo("acme/gitops").create_pull(title="Promote", body="body", head=BRANCH, base="main")
    settled(sandbox, gh, created.number)
    got: dict[str, Any] = {}
    posted = httpx.post(
        f"{api}/statuses/{sha}",
        json={
            "state": "success",
            "context": "promoter",
            "description": "ok",
            "target_url": "https://example.com",
        },
        headers=_headers(sandbox),
    )
    got["create_status"] = posted.json()
    got["list_statuses"] = httpx.get(f"{api}/commits/{sha}/statuses", headers=_headers(sandbox)).json()
    got["combined_status"] = httpx.get(f"{api}/commits/{sha}/status", headers=_headers(sandbox)).json()
    got["compare"] = httpx.get(f"{api}/compare/main...{BRANCH}", headers=_headers(sandbox)).json()
    merged = httpx.put(f"{api}/pulls/{created.number}/merge", json={"sha": sha}, headers=_headers(sandbox))
    got["merge"] = merged.json()
    got["get_pull"] = httpx.get(f"{api}/pulls/{created.number}", headers=_headers(sandbox)).json()
    merge_sha = got["merge"]["sha"]
    got["commit_pulls"] = httpx.get(f"{api}/commits/{merge_sha}/pulls", headers=_headers(sandbox)).json()
    got["validation_failed"] = httpx.post(
        f"{sandbox.github_api}/orgs/acme/repos", json={"name": "gitops"}, headers=_headers(sandbox)
    ).json()
    return got


@pytest.mark.parametrize(
    "name",
    [
        "get_pull",
        "commit_pulls",
        "merge",
        "create_status",
        "list_statuses",
        "combined_status",
        "compare",
        "validation_failed",
    ],
)
def test_sandbox_answers_with_every_recorded_field(answers: dict[str, Any], name: str) -> None:
    problems = shape_problems(_recorded(name), answers[name])
    assert not problems, "\n".join(problems)


def test_the_comparison_finds_what_is_missing() -> None:
    recorded = {"a": 1, "b": {"c": "x"}, "d": [{"e": True}], "f": None}
    assert shape_problems(recorded, {"a": 1, "b": {"c": "y"}, "d": [{"e": False}], "f": 3}) == []
    assert shape_problems(recorded, {"a": "1", "b": {}, "d": [{"e": 1}]}) == [
        "a: recorded number, sandbox string",
        "b.c: missing",
        "d[].e: recorded boolean, sandbox number",
        "f: missing",
    ]
