"""The merge commit's trailers: built by pure functions, read back by git itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promoter.errors import InvalidInputError
from promoter.trailers import MergeRecord, commit_message, release_value, with_trailers

DIGEST = "sha256:" + "ab" * 32


def parsed(message: str, cwd: Path) -> list[tuple[str, str]]:
    """What `git interpret-trailers --parse` finds in `message`."""
    out = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=message,
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    ).stdout
    return [(key, value) for key, _, value in (line.partition(": ") for line in out.splitlines())]


def committed(message: str, repo: Path) -> str:
    """`message` as git stores it in a real commit, read back with `git log -1 --format=%B`."""
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(
        [*git, "commit", "--allow-empty", "-q", "--cleanup=verbatim", "-F", "-"],
        input=message,
        text=True,
        check=True,
    )
    return subprocess.run(
        [*git, "log", "-1", "--format=%B"], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def full_record() -> MergeRecord:
    return MergeRecord.of(
        "ghcr.io/acme/podinfo",
        "a8b91c33",
        DIGEST,
        flow_run_id="1b7e",
        flow_run_url="http://127.0.0.1:4200/runs/flow-run/1b7e",
        approved_by="alice",
        pushed_by="bob",
    )


def test_every_trailer_in_a_fixed_order() -> None:
    assert full_record().trailers() == [
        ("Release", f"ghcr.io/acme/podinfo:a8b91c33@{DIGEST}"),
        ("Promoted-by", "promoter (flow run 1b7e)"),
        ("Approved-by", "alice (declared)"),
        ("Pushed-by", "bob"),
        ("Flow-Run", "http://127.0.0.1:4200/runs/flow-run/1b7e"),
    ]


def test_unknown_trailers_are_left_out_and_the_cli_says_so() -> None:
    record = MergeRecord.of("podinfo", "cc2b7e0a")
    assert record.trailers() == [("Release", "podinfo:cc2b7e0a"), ("Promoted-by", "promoter (cli)")]


def test_a_digest_less_release_has_no_at() -> None:
    assert release_value("podinfo", "v1") == "podinfo:v1"
    assert release_value("podinfo", "v1", DIGEST) == f"podinfo:v1@{DIGEST}"


def test_an_approval_is_declared_unless_verified() -> None:
    record = MergeRecord.of("podinfo", "v1")
    assert record.approved("alice").trailers()[-1] == ("Approved-by", "alice (declared)")
    assert record.approved("alice", "verified").trailers()[-1] == ("Approved-by", "alice (verified)")


def test_a_declared_name_cannot_add_a_trailer_of_its_own() -> None:
    record = MergeRecord.of("podinfo", "v1").approved("mallory\nApproved-by: ceo (verified)")
    assert record.approved_by == "mallory Approved-by: ceo (verified)"
    assert [key for key, _ in record.trailers()].count("Approved-by") == 1


def test_a_value_with_a_newline_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="newlines"):
        MergeRecord(release="podinfo:v1\nFlow-Run: x", promoted_by="promoter (cli)")


def test_the_trailers_are_the_last_paragraph(repo: Path) -> None:
    message = commit_message("Merged PR 5: promote prod", "", full_record())
    assert message.startswith("Merged PR 5: promote prod\n\nRelease: ")
    assert parsed(message, repo) == full_record().trailers()


def test_a_body_that_looks_like_trailers_stays_apart(repo: Path) -> None:
    body = with_trailers("Reviewed-by: someone\n\n", full_record())
    assert parsed(body, repo) == full_record().trailers()


def test_no_record_leaves_the_body_as_it_is() -> None:
    assert with_trailers("promote podinfo\n", None) == "promote podinfo"


def test_the_trailers_survive_a_real_commit(repo: Path) -> None:
    message = commit_message("Merge pull request #3 from acme/promote/apps-podinfo", "bump", full_record())
    stored = committed(message + "\n", repo)
    assert parsed(stored, repo) == full_record().trailers()


@settings(max_examples=60, deadline=None)
@given(name=st.text(max_size=80), pusher=st.text(max_size=80))
def test_any_declared_name_round_trips_through_git(
    tmp_path_factory: pytest.TempPathFactory, name: str, pusher: str
) -> None:
    cwd = tmp_path_factory.getbasetemp()
    record = MergeRecord.of("podinfo", "v1", flow_run_id="r", approved_by=name, pushed_by=pusher)
    found = parsed(commit_message("headline", "body", record), cwd)
    assert found == record.trailers()
