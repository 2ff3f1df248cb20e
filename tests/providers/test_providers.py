"""Both providers against the sandbox over real HTTP: every behaviour on GitHub and on Azure DevOps.

State is read back from the forge itself (`forge.repo.pulls`, `.statuses`) rather than from the provider,
so a provider that misreads its own answers cannot pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from promoter.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderNotFoundError,
    ProviderRateLimitError,
)
from promoter.providers import GitProvider
from tests.providers.conftest import Forge, quick_sleep

Make = Callable[..., GitProvider]
CREATE_ROUTE = {"github": "create pull", "azure": "create pullrequest"}
FORGE_STATE = {
    "github": {"pending": "pending", "success": "success", "failure": "failure", "error": "error"},
    "azure": {"pending": "pending", "success": "succeeded", "failure": "failed", "error": "error"},
}


def open_pulls_from(forge: Forge, branch: str) -> list[Any]:
    return [pr for pr in forge.repo.pulls.values() if pr.head_ref == branch and pr.state == "open"]


def totals(forge: Forge) -> dict[str, int]:
    total: dict[str, int] = forge.sandbox.stats()["total"]
    return total


def writes(provider: GitProvider) -> list[str]:
    return [route for route in provider.stats.by_route if route.startswith(("create", "update"))]


class RaceFirstCreate(httpx.HTTPTransport):
    """A real transport that lets a rival open the same PR just before our first create reaches the forge."""

    def __init__(self, rival: Callable[[], object]) -> None:
        super().__init__()
        self.rival = rival
        self.raced = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        creating = request.method == "POST" and request.url.path.endswith(("/pulls", "/pullrequests"))
        if creating and not self.raced:
            self.raced = True
            self.rival()
        return super().handle_request(request)


# -- pull requests ----------------------------------------------------------------------------------


def test_upsert_creates_once_then_updates_title_and_body_in_place(
    forge: Forge, provider: GitProvider
) -> None:
    branch, head = forge.push_branch()

    created = provider.upsert_pull_request(branch, "main", "Promote one", "first body")
    unchanged = provider.upsert_pull_request(branch, "main", "Promote one", "first body")
    assert unchanged.number == created.number
    assert writes(provider) == [CREATE_ROUTE[forge.kind]]  # the second call only read

    updated = provider.upsert_pull_request(branch, "main", "Promote two", "second body")
    assert (updated.number, updated.title, updated.body) == (created.number, "Promote two", "second body")
    assert (updated.head_branch, updated.base_branch, updated.head_sha) == (branch, "main", head)
    [pull] = open_pulls_from(forge, branch)
    assert (pull.number, pull.title, pull.body) == (created.number, "Promote two", "second body")
    found = provider.find_pull_request(branch, "main")
    assert found is not None and (found.number, found.title) == (created.number, "Promote two")


def test_a_create_that_loses_a_race_adopts_the_rival_pull_request(forge: Forge, make_provider: Make) -> None:
    branch, _ = forge.push_branch()
    rival = make_provider(forge.sandbox.human_token)
    transport = RaceFirstCreate(lambda: rival.upsert_pull_request(branch, "main", "Rival", "rival body"))
    ours = make_provider(transport=transport)

    pr = ours.upsert_pull_request(branch, "main", "Ours", "our body")

    assert transport.raced
    [pull] = open_pulls_from(forge, branch)
    assert pull.created_by == "alice"  # the rival's PR, adopted rather than duplicated
    assert (pr.number, pr.title, pr.body) == (pull.number, "Ours", "our body")
    assert (pull.title, pull.body) == ("Ours", "our body")


def test_find_pull_request_is_none_for_a_branch_without_one(forge: Forge, provider: GitProvider) -> None:
    branch, _ = forge.push_branch()
    assert provider.find_pull_request(branch, "main") is None
    assert provider.find_pull_request(branch, "main", state="all") is None


def test_auto_merge_is_enabled_then_disabled_on_the_forge(forge: Forge, provider: GitProvider) -> None:
    branch, _ = forge.push_branch()
    pr = provider.upsert_pull_request(branch, "main", "Auto", "body")  # `promoter` missing: not mergeable yet

    provider.set_auto_merge(pr, True, "squash")
    auto = forge.repo.pulls[pr.number].auto_merge
    assert auto is not None and auto.enabled_by == "promoter-bot" and auto.method == "squash"
    enabled = provider.get_pull_request(pr.number)
    assert enabled.auto_merge and enabled.state == "open"

    provider.set_auto_merge(enabled, False, "squash")
    assert forge.repo.pulls[pr.number].auto_merge is None
    assert provider.get_pull_request(pr.number).auto_merge is False
    assert forge.repo.pulls[pr.number].state == "open"


def test_merge_twice_merges_once_and_returns_the_merged_pull_request(
    forge: Forge, provider: GitProvider
) -> None:
    branch, head = forge.push_branch()
    pr = provider.upsert_pull_request(branch, "main", "Merge me", "body")
    provider.set_commit_status(head, "promoter", "success", "checked")

    merged = provider.merge(pr, "merge")
    main_after_first = forge.main_sha()
    merge_routes = {"merge pull", "complete pullrequest"} & set(provider.stats.by_route)
    sent = [provider.stats.by_route[route] for route in merge_routes]
    again = provider.merge(pr, "merge")

    pull = forge.repo.pulls[pr.number]
    assert pull.merged and pull.merge_commit_sha == main_after_first
    assert merged.state == again.state == "merged"
    assert merged.merge_commit_sha == again.merge_commit_sha == main_after_first
    assert forge.main_sha() == main_after_first  # the second call changed nothing
    # The first may need more than one request (GitHub answers 405 while it computes mergeability);
    # the second sends none.
    assert [provider.stats.by_route[route] for route in merge_routes] == sent


def test_merge_without_the_required_promoter_check_is_refused_clearly(
    forge: Forge, provider: GitProvider
) -> None:
    branch, _ = forge.push_branch()
    pr = provider.upsert_pull_request(branch, "main", "Not yet", "body")
    main_before = forge.main_sha()

    with pytest.raises(ProviderError) as refused:
        provider.merge(pr, "merge")

    assert type(refused.value) is ProviderError
    message = str(refused.value)
    assert "refused" in message and str(pr.number) in message
    # GitHub names the missing check; Azure DevOps only says its policies rejected the completion.
    assert ('"promoter"' if forge.kind == "github" else "(rejectedByPolicy)") in message
    assert forge.repo.pulls[pr.number].state == "open"
    assert forge.main_sha() == main_before


def test_merged_pull_request_is_found_by_its_merge_commit_only(forge: Forge, provider: GitProvider) -> None:
    branch, head = forge.push_branch()
    pr = provider.upsert_pull_request(branch, "main", "Find me", "body")
    provider.set_commit_status(head, "promoter", "success", "checked")
    merge_sha = provider.merge(pr, "merge").merge_commit_sha
    assert merge_sha is not None

    found = provider.merged_pull_request_for(merge_sha)
    assert found is not None
    assert (found.number, found.state, found.merge_commit_sha) == (pr.number, "merged", merge_sha)
    assert provider.merged_pull_request_for(head) is None  # the PR's own commit, not its merge
    seed = forge.git("rev-list", "--max-parents=0", "origin/main")  # a plain commit on main
    assert provider.merged_pull_request_for(seed) is None


# -- statuses and ancestry --------------------------------------------------------------------------


@pytest.mark.timeout(30)  # a pager that ignores the page size would loop for ever
def test_commit_statuses_reads_every_page_newest_first(forge: Forge, provider: GitProvider) -> None:
    _, sha = forge.push_branch()
    for number in range(130):
        provider.set_commit_status(sha, f"check-{number % 4}", "success", f"status {number}")
    assert len(forge.repo.statuses[sha]) == 130

    statuses = provider.commit_statuses(sha)

    assert [status.description for status in statuses] == [f"status {n}" for n in reversed(range(130))]
    assert provider.stats.by_route["list statuses"] == 2  # two pages of at most 100


@pytest.mark.parametrize("state", ["pending", "success", "failure", "error"])
def test_set_commit_status_round_trips(forge: Forge, provider: GitProvider, state: Any) -> None:
    _, sha = forge.push_branch()

    provider.set_commit_status(sha, "promoter", state, f"now {state}", "http://ci.example/run/1")

    [stored] = forge.repo.statuses[sha]
    assert (stored.context, stored.state, stored.creator) == (
        "promoter",
        FORGE_STATE[forge.kind][state],
        "promoter-bot",
    )
    [read] = provider.commit_statuses(sha)
    assert (read.context, read.state, read.genre) == ("promoter", FORGE_STATE[forge.kind][state], None)
    assert (read.description, read.target_url) == (f"now {state}", "http://ci.example/run/1")
    assert read.created_at


def test_is_ancestor_for_descendants_ancestors_identical_and_diverged_commits(
    forge: Forge, provider: GitProvider
) -> None:
    _, first = forge.push_branch()
    base = forge.git("rev-parse", f"{first}^")
    _, second = forge.push_branch(base=base)

    assert provider.is_ancestor(base, first) is True
    assert provider.is_ancestor(first, base) is False
    assert provider.is_ancestor(first, first) is True
    assert provider.is_ancestor(first, second) is False
    assert provider.is_ancestor(second, first) is False


@pytest.mark.parametrize("forge", ["github"], indirect=True)
def test_polling_unchanged_statuses_is_a_free_conditional_request(
    forge: Forge, provider: GitProvider
) -> None:
    _, sha = forge.push_branch()
    provider.set_commit_status(sha, "promoter", "pending", "waiting")
    before = totals(forge)

    first = provider.commit_statuses(sha)
    second = provider.commit_statuses(sha)

    after = totals(forge)
    assert first == second and len(first) == 1
    assert after["counted"] - before["counted"] == 1
    assert after["conditional"] - before["conditional"] == 1
    assert provider.stats.not_modified == 1
    assert provider.budget.limit == 5000
    assert provider.budget.remaining is not None and 0 < provider.budget.remaining < 5000
    assert provider.budget.reset is not None and provider.budget.reset > time.time()

    provider.set_commit_status(sha, "promoter", "success", "done")
    assert [status.state for status in provider.commit_statuses(sha)] == ["success", "pending"]
    assert provider.stats.not_modified == 1  # a changed list is read again, not served from memory


# -- a misbehaving forge ----------------------------------------------------------------------------


def test_a_promotion_sequence_survives_errors_rate_limits_and_dropped_connections(
    forge: Forge, make_provider: Make
) -> None:
    branch, head = forge.push_branch()
    base = forge.git("rev-parse", f"{head}^")
    before = totals(forge)
    forge.sandbox.set_faults(
        {
            "seed": 11,
            "rules": [
                {"route": "*", "kind": "error", "rate": 0.15, "status": 502},
                {"route": "*", "kind": "error", "rate": 0.05, "status": 503},
                {"route": "*", "kind": "rate_limit", "rate": 0.05, "retry_after": 0},
                {"route": "*", "kind": "secondary", "rate": 0.05, "retry_after": 0},
                {"route": "*", "kind": "drop", "rate": 0.05},
            ],
        }
    )
    provider = make_provider(attempts=12, sleep=quick_sleep)

    pr = provider.upsert_pull_request(branch, "main", "Under fire", "first")
    pr = provider.upsert_pull_request(branch, "main", "Under fire", "second")
    provider.set_commit_status(head, "promoter", "success", "checked")
    assert [status.context for status in provider.commit_statuses(head)] == ["promoter"]
    assert provider.is_ancestor(base, head)
    merged = provider.merge(pr, "merge")
    assert merged.merge_commit_sha is not None
    found = provider.merged_pull_request_for(merged.merge_commit_sha)

    forge.sandbox.clear_faults()
    assert found is not None and found.number == pr.number
    assert forge.repo.pulls[pr.number].body == "second"
    assert forge.repo.pulls[pr.number].merge_commit_sha == merged.merge_commit_sha
    assert len(open_pulls_from(forge, branch)) == 0
    assert provider.stats.retries > 0
    assert totals(forge)["faults"] - before["faults"] == provider.stats.retries


@pytest.mark.parametrize("kind", ["rate_limit", "secondary"])
def test_a_rate_limit_longer_than_max_wait_fails_at_once(
    forge: Forge, make_provider: Make, kind: str
) -> None:
    forge.sandbox.set_faults({"rules": [{"kind": kind, "retry_after": 30}]})
    provider = make_provider(max_wait=0.5)

    started = time.monotonic()
    with pytest.raises(ProviderRateLimitError) as limited:
        provider.find_pull_request("main", "main")

    assert time.monotonic() - started < 2
    assert provider.stats.requests == 1 and provider.stats.retries == 0
    assert "30 s" in str(limited.value) and "try again later" in str(limited.value)


def test_a_wrong_token_fails_at_once_without_showing_the_token(forge: Forge, make_provider: Make) -> None:
    secret = "ghp_NotTheRightToken1234567890abcdef"
    provider = make_provider(secret)

    with pytest.raises(ProviderAuthError) as refused:
        provider.find_pull_request("main", "main")

    message = str(refused.value)
    assert "401" in message and "token" in message
    assert secret not in message and secret not in repr(refused.value)
    assert provider.stats.requests == 1


def test_an_unknown_repository_says_to_check_the_url_and_token(forge: Forge, make_provider: Make) -> None:
    url = (
        f"{forge.sandbox.url}/acme/no-such-repo.git"
        if forge.kind == "github"
        else f"{forge.sandbox.url}/acme/gitops/_git/no-such-repo"
    )
    provider = make_provider(url=url)

    with pytest.raises(ProviderNotFoundError) as missing:
        provider.find_pull_request("main", "main")

    message = str(missing.value)
    assert "no-such-repo" in message
    assert "check the remote URL" in message and "token" in message
    assert provider.stats.requests == 1
