"""`AzureDevOpsProvider.merge` against the answers the real service gives, replayed without a network.

The pull request bodies start from Microsoft's own example (`httpExamples/pullRequests/GET_..._pullRequestId_.json`
in ../shared/specs, when present) and change only what the service changes while it completes one:
`PATCH status: completed` answers `active` + `mergeStatus: queued` + `completionQueueTime`, and the PR turns
`completed` seconds later (berenddeboer/ready-for-agent#1209, loncadev/baron#217), or stays active with
`conflicts`, `rejectedByPolicy` or `failure` (`PullRequestAsyncStatus` in git-7.1.json).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from promoter.errors import ProviderError
from promoter.providers.azure_devops import AzureDevOpsProvider
from sandbox.specs import discover

EXAMPLE = "azure-devops/httpExamples/pullRequests/GET__git_repositories__repositoryId__pullRequests__pullRequestId_.json"
HEAD = "b60280bc6e62e2f880f1b63c1e24987664d3bda3"
MERGE = "39f52d24533cc712fc845ed9fd1b6c06b3942588"
ME = "d6245f20-2af8-44f4-9451-8107cb2767db"


def example() -> dict[str, Any]:
    """Microsoft's example pull request, else the few fields the provider reads, with the same values."""
    specs = discover()
    if specs is not None and (specs / EXAMPLE).is_file():
        body: dict[str, Any] = json.loads((specs / EXAMPLE).read_text(encoding="utf-8-sig"))["responses"][
            "200"
        ]["body"]
        return body
    return {
        "pullRequestId": 22,
        "status": "active",
        "title": "A new feature",
        "sourceRefName": "refs/heads/npaulk/my_work",
        "targetRefName": "refs/heads/new_feature",
        "mergeStatus": "succeeded",
        "lastMergeSourceCommit": {"commitId": HEAD},
        "lastMergeCommit": {"commitId": MERGE},
    }


def state(status: str, merge_status: str, queued: bool = True, **extra: Any) -> dict[str, Any]:
    body = copy.deepcopy(example())
    body.update(status=status, mergeStatus=merge_status, **extra)
    if queued:
        body["completionQueueTime"] = "2016-11-01T16:30:40.123Z"
    if status == "completed":
        body["closedBy"] = (
            copy.deepcopy(body["createdBy"]) if "createdBy" in body else {"uniqueName": "npaulk"}
        )
        body["closedDate"] = "2016-11-01T16:30:41.4Z"
    return body


class Service:
    """Answers GETs from a script (the last answer repeats) and records what was sent."""

    def __init__(self, gets: list[dict[str, Any]], patch: tuple[int, dict[str, Any]] | None = None) -> None:
        self.gets = gets
        self.patch = patch or (200, state("active", "queued"))
        self.sent: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.sent.append((request.method, request.url.path, body))
        if request.method == "PATCH":
            return httpx.Response(self.patch[0], json=self.patch[1])
        if request.url.path.endswith("/connectionData"):
            return httpx.Response(200, json={"authenticatedUser": {"id": ME}})
        answer = self.gets[0] if len(self.gets) == 1 else self.gets.pop(0)
        return httpx.Response(200, json=answer)


@pytest.fixture
def provider() -> Iterator[Callable[[Service], AzureDevOpsProvider]]:
    made: list[AzureDevOpsProvider] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def make(service: Service) -> AzureDevOpsProvider:
        made.append(
            AzureDevOpsProvider(
                "https://dev.azure.com/fabrikam",
                "2016_10_31",
                "2016_10_31",
                "pat",
                transport=httpx.MockTransport(service),
                sleep=sleep,
                clock=lambda: now[0],
                completion_timeout=30,
            )
        )
        return made[-1]

    yield make
    for each in made:
        each.close()


def test_a_completion_answered_active_and_queued_is_awaited_until_completed(
    provider: Callable[[Service], AzureDevOpsProvider],
) -> None:
    service = Service(
        [
            state("active", "succeeded", queued=False),
            state("active", "queued"),
            state("active", "queued"),
            state("completed", "succeeded"),
        ]
    )
    ado = provider(service)
    merged = ado.merge(ado._pull(example()), "merge")
    assert merged.state == "merged" and merged.merge_commit_sha == MERGE
    patches = [body for method, _, body in service.sent if method == "PATCH"]
    assert patches == [
        {
            "status": "completed",
            "lastMergeSourceCommit": {"commitId": HEAD},
            "completionOptions": {"mergeStrategy": "noFastForward", "deleteSourceBranch": False},
        }
    ]


def test_a_completion_already_queued_is_not_asked_for_again(
    provider: Callable[[Service], AzureDevOpsProvider],
) -> None:
    service = Service([state("active", "queued"), state("completed", "succeeded")])
    ado = provider(service)
    assert ado.merge(ado._pull(example()), "squash").state == "merged"
    assert [m for m, _, _ in service.sent].count("PATCH") == 0


@pytest.mark.parametrize(
    ("merge_status", "advice"),
    [
        ("conflicts", "conflicts with new_feature: merge new_feature into npaulk/my_work"),
        ("rejectedByPolicy", "a branch policy on new_feature is not met"),
        ("failure", "the merge failed on the service (object too large)"),
    ],
)
def test_each_refusal_says_what_it_is_and_what_to_do(
    provider: Callable[[Service], AzureDevOpsProvider], merge_status: str, advice: str
) -> None:
    refused = state("active", merge_status, mergeFailureMessage="object too large")
    ado = provider(Service([state("active", "succeeded", queued=False), state("active", "queued"), refused]))
    with pytest.raises(ProviderError, match=f"refused to complete PR 22 \\({merge_status}\\)") as error:
        ado.merge(ado._pull(example()), "merge")
    assert advice in str(error.value) and "pat" not in str(error.value).split()


def test_a_completion_that_never_finishes_fails_at_the_deadline(
    provider: Callable[[Service], AzureDevOpsProvider],
) -> None:
    ado = provider(Service([state("active", "succeeded", queued=False), state("active", "queued")]))
    with pytest.raises(
        ProviderError, match=r"still not completed 30 s after .*mergeStatus queued.*promote again"
    ):
        ado.merge(ado._pull(example()), "merge")


def test_a_pull_request_abandoned_while_completing_is_an_error(
    provider: Callable[[Service], AzureDevOpsProvider],
) -> None:
    ado = provider(Service([state("active", "succeeded", queued=False), state("abandoned", "succeeded")]))
    with pytest.raises(ProviderError, match="abandoned while it was being completed"):
        ado.merge(ado._pull(example()), "merge")


def test_a_refused_patch_is_reported_with_the_services_message(
    provider: Callable[[Service], AzureDevOpsProvider],
) -> None:
    message = "Invalid argument value.\r\nParameter name: You must specify a valid LastMergeSourceCommit to perform this operation."
    service = Service([state("active", "succeeded", queued=False)], patch=(400, {"message": message}))
    ado = provider(service)
    with pytest.raises(
        ProviderError, match=r"refused to complete PR 22: Invalid argument value\. Parameter name"
    ):
        ado.merge(ado._pull(example()), "merge")


def test_auto_complete_is_set_in_the_name_of_the_token_owner(
    provider: Callable[[Service], AzureDevOpsProvider],
) -> None:
    service = Service([state("active", "succeeded", queued=False)])
    ado = provider(service)
    ado.set_auto_merge(ado._pull(example()), True, "squash")
    patch = next(body for method, _, body in service.sent if method == "PATCH")
    assert patch["autoCompleteSetBy"] == {"id": ME}
    assert patch["completionOptions"]["mergeStrategy"] == "squash"
