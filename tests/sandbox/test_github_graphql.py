"""GraphQL auto-merge: the forge merges by itself once the required checks turn green."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import github
import httpx

from sandbox.forge import Repository
from sandbox.testing import Sandbox
from tests.sandbox.conftest import push_branch, settled

ENABLE = """
mutation($id: ID!) {
  enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: SQUASH}) {
    pullRequest { number autoMergeRequest { mergeMethod enabledBy { login } } }
  }
}"""
DISABLE = "mutation($id: ID!) { disablePullRequestAutoMerge(input: {pullRequestId: $id}) { pullRequest { number } } }"


def _graphql(sandbox: Sandbox, query: str, **variables: Any) -> dict[str, Any]:
    response = httpx.post(
        sandbox.graphql_url,
        json={"query": query, "variables": variables},
        headers={"Authorization": f"bearer {sandbox.token}"},
        timeout=30,
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _status(sandbox: Sandbox, sha: str, state: str) -> None:
    httpx.post(
        f"{sandbox.github_api}/repos/acme/gitops/statuses/{sha}",
        json={"state": state, "context": "promoter"},
        headers={"Authorization": f"token {sandbox.token}"},
    ).raise_for_status()


def _pr(sandbox: Sandbox, gh: github.Github, clone: Path, wait: bool = True) -> Any:
    """A new PR, once GitHub has computed its mergeability unless not `wait`."""
    push_branch(sandbox, clone, "promote/apps-podinfo", "apps/dev/podinfo.yaml", "bumped\n")
    pr = gh.get_repo("acme/gitops").create_pull(
        title="bump", body="", head="promote/apps-podinfo", base="main"
    )
    return settled(sandbox, gh, pr.number) if wait else pr


def test_auto_merge_happens_when_check_turns_green(
    sandbox: Sandbox, gh: github.Github, clone: Path, gitops: Repository
) -> None:
    pr = _pr(sandbox, gh, clone)
    result = _graphql(sandbox, ENABLE, id=pr.raw_data["node_id"])
    assert "errors" not in result, result
    request = result["data"]["enablePullRequestAutoMerge"]["pullRequest"]["autoMergeRequest"]
    assert request == {"mergeMethod": "SQUASH", "enabledBy": {"login": "promoter-bot"}}
    assert gh.get_repo("acme/gitops").get_pull(pr.number).raw_data["auto_merge"]["merge_method"] == "squash"

    _status(sandbox, pr.head.sha, "pending")
    _status(sandbox, pr.head.sha, "success")
    merged = sandbox.wait_for(lambda: gh.get_repo("acme/gitops").get_pull(pr.number).merged)
    assert merged
    main = sandbox.forge.commit(gitops, gitops.branches["main"])
    assert len(main.parents) == 1  # squash
    assert main.message.startswith("bump (#1)")


def test_enabling_auto_merge_on_a_clean_pull_request_is_refused(
    sandbox: Sandbox, gh: github.Github, clone: Path
) -> None:
    pr = _pr(sandbox, gh, clone)
    _status(sandbox, pr.head.sha, "success")
    result = _graphql(sandbox, ENABLE, id=pr.raw_data["node_id"])
    assert result["errors"][0]["message"] == "Pull request Pull request is in clean status"
    assert result["errors"][0]["type"] == "UNPROCESSABLE"


def test_disabled_auto_merge_does_not_merge(sandbox: Sandbox, gh: github.Github, clone: Path) -> None:
    pr = _pr(sandbox, gh, clone)
    _graphql(sandbox, ENABLE, id=pr.raw_data["node_id"])
    assert "errors" not in _graphql(sandbox, DISABLE, id=pr.raw_data["node_id"])
    _status(sandbox, pr.head.sha, "success")
    assert sandbox.forge.pull(sandbox.forge.repo("github", "acme", "gitops"), pr.number).auto_merge is None
    assert not gh.get_repo("acme/gitops").get_pull(pr.number).merged


def test_unknown_node_and_bad_query(sandbox: Sandbox) -> None:
    missing = _graphql(sandbox, ENABLE, id="PR_nope")
    assert "Could not resolve to a node" in missing["errors"][0]["message"]
    invalid = _graphql(sandbox, "{ nosuchfield }")
    assert invalid["errors"] and invalid.get("data") is None


def test_read_pull_request_by_number(sandbox: Sandbox, gh: github.Github, clone: Path) -> None:
    pr = _pr(sandbox, gh, clone)
    query = """query($n: Int!) { repository(owner: "acme", name: "gitops") {
      pullRequest(number: $n) { number state headRefName mergeable mergeStateStatus } } }"""
    data = _graphql(sandbox, query, n=pr.number)["data"]["repository"]["pullRequest"]
    assert data == {
        "number": pr.number,
        "state": "OPEN",
        "headRefName": "promote/apps-podinfo",
        "mergeable": "MERGEABLE",
        "mergeStateStatus": "BLOCKED",
    }


def test_auto_merge_cannot_be_enabled_while_mergeability_is_computed(
    sandbox: Sandbox, gh: github.Github, clone: Path
) -> None:
    sandbox.set_mergeability_delay(3.0)
    pr = _pr(sandbox, gh, clone, wait=False)
    query = """query($n: Int!) { repository(owner: "acme", name: "gitops") {
      pullRequest(number: $n) { mergeable mergeStateStatus } } }"""
    state = _graphql(sandbox, query, n=pr.number)["data"]["repository"]["pullRequest"]
    assert state == {"mergeable": "UNKNOWN", "mergeStateStatus": "UNKNOWN"}
    refused = _graphql(sandbox, ENABLE, id=pr.raw_data["node_id"])
    assert refused["errors"][0]["message"] == "Pull request Pull request is in unstable status"
    settled(sandbox, gh, pr.number)
    assert "errors" not in _graphql(sandbox, ENABLE, id=pr.raw_data["node_id"])
