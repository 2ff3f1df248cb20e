"""People approving in the forge, as they do: over its API with their own tokens (PyGithub for GitHub, the
reviewer calls Microsoft documents for Azure DevOps)."""

from __future__ import annotations

import github
import httpx

from sandbox.azure_json import group_id
from sandbox.forge import Account, Repository
from sandbox.testing import Sandbox


def azure_reviewer(
    sandbox: Sandbox, repo: Repository, token: str, pr: int, reviewer: str, body: dict[str, object]
) -> httpx.Response:
    """`PUT .../pullRequests/{id}/reviewers/{reviewerId}`: add a reviewer, or cast one's own vote."""
    base = sandbox.azure_api(repo.owner, str(repo.project))
    return httpx.put(
        f"{base}/repositories/{repo.name}/pullRequests/{pr}/reviewers/{reviewer}",
        params={"api-version": "7.1"},
        json=body,
        auth=("", token),
        timeout=10,
    )


def approve(sandbox: Sandbox, repo: Repository, token: str, pr: int, event: str = "APPROVE") -> None:
    """`token`'s owner approves PR `pr` (or, with REQUEST_CHANGES, rejects it) in the forge."""
    if repo.kind == "github":
        client = github.Github(base_url=sandbox.github_api, auth=github.Auth.Token(token))
        pull = client.get_repo(f"{repo.owner}/{repo.name}").get_pull(pr)
        pull.create_review(event=event, body="" if event == "APPROVE" else "not yet")
        return
    login = sandbox.forge.tokens[token]
    vote = 10 if event == "APPROVE" else -10
    azure_reviewer(sandbox, repo, token, pr, Account(login).uuid, {"vote": vote}).raise_for_status()


def add_group_reviewer(sandbox: Sandbox, repo: Repository, pr: int, group: str) -> None:
    """On Azure DevOps a group vouches for its members only as a reviewer of the PR (as a required-reviewer
    branch policy adds it); GitHub asks the team-membership API instead."""
    if repo.kind == "azure":
        body: dict[str, object] = {"vote": 0, "isRequired": True}
        azure_reviewer(sandbox, repo, sandbox.token, pr, group_id(group), body).raise_for_status()


def login_of(kind: str, name: str) -> str:
    """How the forge names a person in reviews: the GitHub login, the Azure DevOps unique name."""
    return name if kind == "github" else f"{name}@sandbox.local"
