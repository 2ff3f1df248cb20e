"""The merge record on the real merge commit in the sandbox's git repository, for both personalities:
a merge we ask for, and an auto-merge the forge makes later."""

from __future__ import annotations

import subprocess
import time

import pytest

from promoter.providers import GitProvider
from promoter.providers.base import MergeMethod
from promoter.trailers import MergeRecord
from tests.providers.conftest import Forge

DIGEST = "sha256:" + "cd" * 32


def record() -> MergeRecord:
    return MergeRecord.of(
        "ghcr.io/acme/podinfo",
        "a8b91c33",
        DIGEST,
        flow_run_id="5e1f",
        flow_run_url="http://127.0.0.1:4200/runs/flow-run/5e1f",
        approved_by="alice",
        pushed_by="bob",
    )


def message_of(forge: Forge, sha: str) -> str:
    """The commit's message as git stores it, read with plain git from the forge's bare repository."""
    bare = forge.sandbox.forge.git(forge.repo).path
    return subprocess.run(
        ["git", "-C", str(bare), "log", "-1", "--format=%B", sha], capture_output=True, text=True, check=True
    ).stdout


def trailers_of(forge: Forge, sha: str) -> list[tuple[str, str]]:
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=message_of(forge, sha),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [(key, value) for key, _, value in (line.partition(": ") for line in parsed.splitlines())]


@pytest.mark.parametrize("method", ["merge", "squash"])
def test_a_merge_we_make_carries_the_record(forge: Forge, provider: GitProvider, method: MergeMethod) -> None:
    branch, head = forge.push_branch()
    pr = provider.upsert_pull_request(branch, "main", "promote prod", "body")
    provider.set_commit_status(head, "promoter", "success", "checked")

    merged = provider.merge(pr, method, record())

    assert merged.merge_commit_sha == forge.main_sha()
    message = message_of(forge, merged.merge_commit_sha)
    headline = (
        f"Merged PR {pr.number}: promote prod"
        if forge.kind == "azure"
        else f"Merge pull request #{pr.number} from acme/{branch}"
        if method == "merge"
        else f"promote prod (#{pr.number})"
    )
    assert message.splitlines()[0] == headline
    assert trailers_of(forge, merged.merge_commit_sha) == record().trailers()


def test_without_a_record_the_forge_default_message_stays(forge: Forge, provider: GitProvider) -> None:
    branch, head = forge.push_branch()
    pr = provider.upsert_pull_request(branch, "main", "by hand", "body")
    provider.set_commit_status(head, "promoter", "success", "checked")

    merged = provider.merge(pr, "merge")

    assert merged.merge_commit_sha is not None
    expected = (
        f"Merged PR {pr.number}: by hand\n"
        if forge.kind == "azure"
        else f"Merge pull request #{pr.number} from acme/{branch}\n\nby hand\n"
    )
    assert message_of(forge, merged.merge_commit_sha).rstrip("\n") + "\n" == expected
    assert trailers_of(forge, merged.merge_commit_sha) == []


@pytest.mark.timeout(60)
def test_an_auto_merge_carries_the_record_set_when_it_was_enabled(
    forge: Forge, provider: GitProvider
) -> None:
    branch, head = forge.push_branch()
    pr = provider.upsert_pull_request(branch, "main", "promote dev", "body")
    provider.set_auto_merge(pr, True, "merge", record())
    provider.set_commit_status(head, "promoter", "success", "checked")  # now the forge merges it

    deadline = time.monotonic() + 30
    merged = provider.get_pull_request(pr.number)
    while merged.state != "merged" and time.monotonic() < deadline:
        time.sleep(0.1)
        merged = provider.get_pull_request(pr.number)

    assert merged.state == "merged" and merged.merge_commit_sha is not None
    assert trailers_of(forge, merged.merge_commit_sha) == record().trailers()
