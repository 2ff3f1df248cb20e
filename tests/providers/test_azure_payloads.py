"""Azure DevOps answers with fields of the wrong type are read as missing, never crash the provider."""

from __future__ import annotations

from typing import Any

import pytest

from promoter.errors import ProviderError
from promoter.providers.azure_devops import AzureDevOpsProvider


@pytest.mark.parametrize(
    "field",
    [
        {"closedBy": "alice"},
        {"lastMergeCommit": ["x"]},
        {"autoCompleteSetBy": 7},
        {"lastMergeSourceCommit": None},
        {"closedBy": {"uniqueName": 12}},
        {"lastMergeCommit": {"commitId": {"a": 1}}},
    ],
)
def test_wrong_types_in_a_pull_request_are_read_as_missing(field: dict[str, Any]) -> None:
    provider = AzureDevOpsProvider("https://dev.azure.com/acme", "gitops", "gitops", "token")
    try:
        pr = provider._pull({"pullRequestId": 7, "status": "completed", **field})
    finally:
        provider.close()
    assert pr.number == 7 and pr.state == "merged"
    assert pr.merge_commit_sha is None or isinstance(pr.merge_commit_sha, str)
    assert pr.merged_by is None or isinstance(pr.merged_by, str)
    assert isinstance(pr.head_sha, str) and pr.auto_merge is False


def test_a_pull_request_without_an_id_is_a_clear_error() -> None:
    provider = AzureDevOpsProvider("https://dev.azure.com/acme", "gitops", "gitops", "token")
    with pytest.raises(ProviderError, match="without an id"):
        provider._pull({"pullRequestId": "7"})
    provider.close()
