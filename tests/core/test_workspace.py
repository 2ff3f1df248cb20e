from __future__ import annotations

from pathlib import Path

import pytest

from promoter.bump import bump_edit
from promoter.errors import InvalidInputError, ManifestError, WorkspaceError
from promoter.workspace import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    Author,
    Edit,
    Snapshot,
    Workspace,
    split_credentials,
)
from tests.helpers import run_git


def bump(tag: str, env: str = "dev", app: str = "podinfo") -> Edit:
    return bump_edit("apps", app, env, tag)


def remote_log(url: str, ref: str) -> list[str]:
    return run_git(Path(url.removeprefix("file://")), "log", "--format=%H %an <%ae> %s", ref).splitlines()


def remote_file(url: str, ref: str, path: str) -> str:
    return run_git(Path(url.removeprefix("file://")), "show", f"{ref}:{path}")


def test_publish_commits_only_the_changed_manifest_on_a_branch_from_main(remote: str, tmp_path: Path) -> None:
    workspace = Workspace(remote, tmp_path / "cache", author=Author("Release Bot", "bot@example.com"))
    result = workspace.publish(
        "promote/apps-podinfo", bump("a8b91c33"), "Promote apps/podinfo version a8b91c33"
    )
    assert result.pushed and result.rebases == 0 and result.changed == ["apps/dev/podinfo.yaml"]
    log = remote_log(remote, "promote/apps-podinfo")
    assert log[0] == f"{result.sha} Release Bot <bot@example.com> Promote apps/podinfo version a8b91c33"
    assert len(log) == 2 and log[1].split()[0] == result.base_sha
    files = run_git(
        Path(remote.removeprefix("file://")), "diff", "--name-only", "main", "promote/apps-podinfo"
    )
    assert files == "apps/dev/podinfo.yaml"
    assert "ghcr.io/acme/podinfo:a8b91c33" in remote_file(
        remote, "promote/apps-podinfo", "apps/dev/podinfo.yaml"
    )


def test_rerun_of_the_same_bump_makes_no_second_commit(remote: str, tmp_path: Path) -> None:
    first = Workspace(remote, tmp_path / "cache").publish("promote/apps-podinfo", bump("v2"), "m")
    again = Workspace(remote, tmp_path / "cache").publish("promote/apps-podinfo", bump("v2"), "m")
    assert not again.pushed and again.sha == first.sha
    assert len(remote_log(remote, "promote/apps-podinfo")) == 2


def test_nothing_changed_means_no_commit_and_no_branch(remote: str, tmp_path: Path) -> None:
    result = Workspace(remote, tmp_path / "cache").publish("promote/apps-podinfo", bump("6.5.0"), "m")
    assert not result.pushed and result.changed == []
    refs = run_git(Path(remote.removeprefix("file://")), "for-each-ref", "--format=%(refname)")
    assert refs == "refs/heads/main"


def test_cached_clone_is_fetched_not_recloned(remote: str, tmp_path: Path) -> None:
    workspace = Workspace(remote, tmp_path / "cache")
    workspace.fetch()
    sentinel = workspace.path / "sentinel"
    sentinel.write_text("kept")
    other = Workspace(remote, tmp_path / "cache")
    assert other.path == workspace.path
    other.publish("promote/apps-podinfo", bump("v3"), "m")
    assert sentinel.read_text() == "kept"


def test_newer_release_resets_the_branch_to_main(remote: str, tmp_path: Path) -> None:
    workspace = Workspace(remote, tmp_path / "cache")
    workspace.publish("promote/apps-podinfo", bump("old", env="dev"), "old")
    newer = workspace.publish("promote/apps-podinfo", bump("new", env="dev"), "new")
    log = remote_log(remote, "promote/apps-podinfo")
    assert len(log) == 2 and log[0].startswith(newer.sha)


def test_branch_moved_underneath_is_rebuilt_on_the_new_base(remote: str, tmp_path: Path) -> None:
    intruder = Workspace(remote, tmp_path / "intruder-cache")
    calls = 0

    def racing_edit(snapshot: Snapshot) -> dict[str, bytes]:
        nonlocal calls
        calls += 1
        if calls == 1:  # another promotion pushes first, between our fetch and our push
            intruder.publish("main", bump("other", app="frontend"), "frontend to other")
            intruder.publish("promote/apps-podinfo", bump("theirs"), "theirs")
        return dict(bump("ours")(snapshot))

    result = Workspace(remote, tmp_path / "cache").publish("promote/apps-podinfo", racing_edit, "ours")
    assert result.rebases == 1 and calls == 2
    log = remote_log(remote, "promote/apps-podinfo")
    assert log[0].startswith(result.sha) and log[1].endswith("frontend to other")
    assert "podinfo:ours" in remote_file(remote, "promote/apps-podinfo", "apps/dev/podinfo.yaml")
    assert "frontend:other" in remote_file(remote, "promote/apps-podinfo", "apps/dev/frontend.yaml")


def test_pushes_to_main_never_lose_each_others_commits(remote: str, tmp_path: Path) -> None:
    intruder = Workspace(remote, tmp_path / "intruder-cache")
    calls = 0

    def racing_edit(snapshot: Snapshot) -> dict[str, bytes]:
        nonlocal calls
        calls += 1
        if calls == 1:
            intruder.publish("main", bump("x1", app="frontend"), "frontend x1")
        return dict(bump("p1")(snapshot))

    result = Workspace(remote, tmp_path / "cache").publish("main", racing_edit, "podinfo p1")
    assert result.rebases == 1
    subjects = [line.split(" ", 1)[1] for line in remote_log(remote, "main")]
    assert [s.rsplit("> ", 1)[1] for s in subjects] == ["podinfo p1", "frontend x1", "seed"]


def test_a_publisher_that_keeps_losing_the_race_backs_off_and_still_lands(
    remote: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20 publishers of main at once, retrying at once, needed up to 19 rebases and some gave up after 10.
    waits: list[float] = []
    monkeypatch.setattr("promoter.workspace.time.sleep", waits.append)
    intruder = Workspace(remote, tmp_path / "intruder-cache")
    calls = 0

    def losing_edit(snapshot: Snapshot) -> dict[str, bytes]:
        nonlocal calls
        calls += 1
        if calls <= 12:  # someone else lands first, twelve times in a row
            intruder.publish("main", bump(f"x{calls}", app="frontend"), f"frontend x{calls}")
        return dict(bump("p1")(snapshot))

    result = Workspace(remote, tmp_path / "cache").publish("main", losing_edit, "podinfo p1")
    assert result.pushed and result.rebases == 12
    assert len(waits) == 12 and len(set(waits)) > 1  # a wait after each lost race, jittered
    assert all(0 <= w <= min(BACKOFF_MAX, BACKOFF_FIRST * 2**n) for n, w in enumerate(waits))
    assert len(remote_log(remote, "main")) == 14 and remote_log(remote, "main")[0].endswith("podinfo p1")


def test_git_5xx_and_dropped_connections_are_tried_again_but_not_a_missing_repository(
    remote: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without this, one git hiccup cost a whole task attempt: under 5% 503 + 5% drops, releases failed.
    monkeypatch.setattr("promoter.workspace.time.sleep", lambda _: None)
    real_run = Workspace.run
    failures: dict[str, list[str]] = {"fetch": [], "push": []}

    def flaky(self: Workspace, *args: str) -> str:
        if failures.get(args[0]):
            raise WorkspaceError(f"git {args[0]} failed for {self.remote_url}: {failures[args[0]].pop(0)}")
        return real_run(self, *args)

    monkeypatch.setattr(Workspace, "run", flaky)
    workspace = Workspace(remote, tmp_path / "cache")
    failures["fetch"] = ["RPC failed; HTTP 503 curl 22 The requested URL returned error: 503"] * 2
    failures["fetch"] += ["error: RPC failed; curl 18 transfer closed with 63 bytes remaining to read"]
    failures["push"] = ["send-pack: unexpected disconnect while reading sideband packet"]
    result = workspace.publish("promote/apps-podinfo", bump("v9"), "m")
    assert result.pushed and result.rebases == 0 and failures == {"fetch": [], "push": []}
    assert remote_log(remote, "promote/apps-podinfo")[0].startswith(result.sha)
    failures["fetch"] = ["fatal: repository 'x' not found; The requested URL returned error: 404"] * 2
    with pytest.raises(WorkspaceError, match="404"):
        workspace.fetch()
    assert len(failures["fetch"]) == 1  # tried once only


def test_failure_before_push_leaves_the_remote_untouched(remote: str, tmp_path: Path) -> None:
    workspace = Workspace(remote, tmp_path / "cache")

    def broken(snapshot: Snapshot) -> dict[str, bytes]:
        raise ManifestError("boom")

    with pytest.raises(ManifestError):
        workspace.publish("promote/apps-podinfo", broken, "m")
    with pytest.raises(ManifestError, match="no setter marker"):
        workspace.publish("promote/apps-podinfo", bump("v4", app="nothere"), "m")
    assert (
        run_git(Path(remote.removeprefix("file://")), "for-each-ref", "--format=%(refname)")
        == "refs/heads/main"
    )
    result = workspace.publish("promote/apps-podinfo", bump("v4"), "m")
    assert result.changed == ["apps/dev/podinfo.yaml"]


def test_files_keep_their_mode_and_other_files_their_blobs(remote: str, tmp_path: Path) -> None:
    workspace = Workspace(remote, tmp_path / "cache")
    result = workspace.publish("promote/apps-podinfo", bump("v7", env="prod"), "m")
    bare = Path(remote.removeprefix("file://"))
    changed = run_git(bare, "diff", "--raw", "main", result.sha).splitlines()
    assert (
        len(changed) == 1
        and changed[0].startswith(":100644 100644")
        and changed[0].endswith("apps/prod/podinfo.yaml")
    )


def test_edits_outside_the_tree_are_refused(remote: str, tmp_path: Path) -> None:
    workspace = Workspace(remote, tmp_path / "cache")
    for path in ["../escape", "apps/../../x", ".git/config", "/abs", "apps//x"]:
        with pytest.raises(InvalidInputError, match="not a plain relative path"):
            workspace.publish("promote/x", lambda _s, p=path: {p: b"x"}, "m")  # type: ignore[misc]


def test_credentials_never_reach_the_url_or_git_config(remote: str, tmp_path: Path) -> None:
    assert split_credentials("https://x-access-token:s3cr3t@example.com/a/b.git") == (
        "https://example.com/a/b.git",
        "s3cr3t",
    )
    workspace = Workspace(remote, tmp_path / "cache", token="tok-SECRET-123")
    workspace.publish("promote/apps-podinfo", bump("v5"), "m")
    config = (workspace.path / "config").read_text()
    assert "tok-SECRET-123" not in config and "extraHeader" not in config


def test_unreachable_remote_is_a_clear_error_without_the_token(tmp_path: Path) -> None:
    workspace = Workspace(f"file://{tmp_path}/missing.git", tmp_path / "cache", token="tok-SECRET-123")
    with pytest.raises(WorkspaceError, match=r"git fetch failed .* check the URL") as caught:
        workspace.fetch()
    assert "tok-SECRET-123" not in str(caught.value)


def test_bad_branch_names_are_refused(remote: str, tmp_path: Path) -> None:
    for name in ["../x", "-rf", "a..b", "a b", "x.lock"]:
        with pytest.raises(InvalidInputError):
            Workspace(remote, tmp_path / "cache").publish(name, bump("v6"), "m")


def test_diff_shows_what_a_branch_changes_below_a_folder_and_refuses_what_is_not_a_commit(
    remote: str, tmp_path: Path
) -> None:
    workspace = Workspace(remote, tmp_path / "cache")
    result = workspace.publish("promote/apps-podinfo", bump("a8b91c33", "qa"), "Promote")
    diff = workspace.diff(result.base_sha, result.sha, "apps/qa")
    assert (
        "apps/qa/podinfo.yaml | 2 +-" in diff and "+          image: ghcr.io/acme/podinfo:a8b91c33 #" in diff
    )
    assert workspace.diff(result.base_sha, result.sha, "apps/dev") == ""
    with pytest.raises(InvalidInputError, match="'--output=/tmp/x' is not a commit id"):
        workspace.diff("--output=/tmp/x", result.sha, "apps/qa")
