"""The GitHub provider against the ways GitHub is less kind than its examples (see docs/sandbox.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from promoter.errors import ProviderError
from promoter.providers.github import API_VERSION, GitHubProvider
from sandbox import github_rest as personality
from sandbox.testing import Sandbox
from tests.providers.conftest import Forge


@pytest.fixture
def gh_forge(sandbox: Sandbox, checkouts: dict[str, Path]) -> Forge:
    return Forge(sandbox, "github", sandbox.forge.repo("github", "acme", "gitops"), checkouts["github"])


@pytest.fixture
def slow_mergeability(sandbox: Sandbox) -> Iterator[None]:
    """GitHub's background mergeability job, long enough that a client cannot race past it."""
    sandbox.set_mergeability_delay(1.0)
    yield
    sandbox.set_mergeability_delay(0.2)


def _provider(gh_forge: Forge, **client: Any) -> GitHubProvider:
    made = gh_forge.provider(**client)
    assert isinstance(made, GitHubProvider)
    return made


def test_find_pull_request_never_relies_on_a_bare_head(gh_forge: Forge) -> None:
    provider = _provider(gh_forge)
    older, _ = gh_forge.push_branch("older")
    newer, _ = gh_forge.push_branch("newer")
    first = provider.upsert_pull_request(older, "main", "Older", "body")
    second = provider.upsert_pull_request(newer, "main", "Newer", "body")
    bare = httpx.get(
        f"{gh_forge.sandbox.github_api}/repos/acme/gitops/pulls",
        params={"head": older, "state": "open"},
        headers={"Authorization": f"token {gh_forge.sandbox.token}"},
    ).json()
    assert bare[0]["number"] == second.number  # GitHub ignores a head without `owner:`
    found = provider.find_pull_request(older, "main")
    assert found is not None and found.number == first.number
    provider.close()


@pytest.mark.usefixtures("slow_mergeability")
def test_merge_right_after_opening_waits_until_github_knows(gh_forge: Forge) -> None:
    provider = _provider(gh_forge)
    branch, head = gh_forge.push_branch()
    pr = provider.upsert_pull_request(branch, "main", "Merge at once", "body")
    provider.set_commit_status(head, "promoter", "success", "checked")
    merged = provider.merge(pr, "merge")
    assert merged.state == "merged" and merged.merge_commit_sha == gh_forge.main_sha()
    assert provider.stats.by_route["merge pull"] >= 2  # GitHub said 405 "Base branch was modified" first
    provider.close()


@pytest.mark.usefixtures("slow_mergeability")
def test_auto_merge_right_after_opening_waits_until_github_knows(gh_forge: Forge) -> None:
    provider = _provider(gh_forge)
    branch, _ = gh_forge.push_branch()
    pr = provider.upsert_pull_request(branch, "main", "Auto at once", "body")
    provider.set_auto_merge(pr, True, "merge")
    assert gh_forge.repo.pulls[pr.number].auto_merge is not None
    assert provider.stats.by_route["graphql auto-merge"] >= 2  # "... is in unstable status" first
    provider.close()


def test_failing_check_is_not_waited_for(gh_forge: Forge) -> None:
    provider = _provider(gh_forge)
    branch, head = gh_forge.push_branch()
    pr = provider.upsert_pull_request(branch, "main", "Red", "body")
    provider.set_commit_status(head, "promoter", "failure", "red")
    with pytest.raises(ProviderError, match='Required status check "promoter" is failing'):
        provider.merge(pr, "merge")
    provider.close()


def test_the_pinned_api_version_keeps_merge_commit_sha(gh_forge: Forge) -> None:
    """2026-03-10 drops `merge_commit_sha` (`remove_pull_request_merge_commit_sha`): the PR a merge
    commit came from can no longer be told from the PRs that merely contain it."""
    assert API_VERSION in personality.SUPPORTED_VERSIONS
    provider = _provider(gh_forge)
    branch, head = gh_forge.push_branch()
    pr = provider.upsert_pull_request(branch, "main", "Pinned", "body")
    provider.set_commit_status(head, "promoter", "success", "checked")
    merge_sha = provider.merge(pr, "merge").merge_commit_sha
    assert merge_sha is not None
    found = provider.merged_pull_request_for(merge_sha)
    assert found is not None and found.number == pr.number
    newer = _provider(gh_forge)
    newer.client._client.headers["X-GitHub-Api-Version"] = "2026-03-10"
    assert newer.merged_pull_request_for(merge_sha) is None
    provider.close()
    newer.close()


def test_secondary_limit_without_retry_after_waits_a_minute(gh_forge: Forge) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        gh_forge.sandbox.clear_faults()

    provider = _provider(gh_forge, sleep=sleep)
    gh_forge.sandbox.set_faults(
        {"rules": [{"route": "GET */pulls/*", "kind": "secondary", "retry_after": None}]}
    )
    branch, _ = gh_forge.push_branch()
    pr = provider.upsert_pull_request(branch, "main", "Limited", "body")
    assert provider.get_pull_request(pr.number).number == pr.number
    assert waits == [60.0]
    provider.close()


def test_refusals_say_what_github_objected_to(gh_forge: Forge) -> None:
    provider = _provider(gh_forge)
    with pytest.raises(ProviderError, match="Validation Failed: head invalid"):
        provider.upsert_pull_request("no-such-branch", "main", "Nothing", "body")
    provider.close()
