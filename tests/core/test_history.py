"""Deployments read from main's first-parent history of a scripted GitOps repository (real git, fixed dates)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from promoter.history import Deployment, Running, deployments, pr_number, running
from promoter.workspace import Workspace
from tests.scripted_history import SEEDED, T0, ScriptedHistory, at

ENVS = ("dev", "qa", "prod")


@pytest.fixture
def history(tmp_path: Path) -> ScriptedHistory:
    h = ScriptedHistory(tmp_path / "gitops", at(T0, days=-1))
    h.merge(
        "dev",
        "podinfo",
        "1.0.0",
        pr=1,
        bumped=at(T0, 0),
        merged=at(T0, 2),
        trailers=("Release: apps/podinfo:1.0.0", "Promoted-by: promoter"),
    )
    h.other("README.md", at(T0, 3))  # outside every environment: no deployment, not even looked at
    h.merge("qa", "podinfo", "1.0.0", pr=2, bumped=at(T0, 10), merged=at(T0, 15))
    h.edit("apps/qa/podinfo.yaml", "replicas: 1", "replicas: 3", at(T0, 20))  # same tag: not a deployment
    h.squash("prod", "podinfo", "1.0.0", pr=3, bumped=at(T0, 30), merged=at(T0, 90))
    h.merge(
        "prod",
        "frontend",
        "2.0.0",
        pr=4,
        bumped=at(T0, 100),
        merged=at(T0, 130),
        trailers=("Release: apps/frontend:2.0.0", "Approved-by: alice (verified)"),
    )
    return h


def read(
    history: ScriptedHistory, tmp_path: Path, *, app: str | None = None, since: datetime | None = None
) -> list[Deployment]:
    workspace = Workspace(history.root.as_uri(), tmp_path / "cache")
    return deployments(workspace, workspace.fetch(), "apps", ENVS, app=app, since=since)


def test_each_merge_and_squash_that_changed_a_tag_is_one_deployment(
    history: ScriptedHistory, tmp_path: Path
) -> None:
    found = read(history, tmp_path, since=T0)
    assert [(d.app, d.env, d.tag, d.pr) for d in found] == [
        ("podinfo", "dev", "1.0.0", 1),
        ("podinfo", "qa", "1.0.0", 2),
        ("podinfo", "prod", "1.0.0", 3),
        ("frontend", "prod", "2.0.0", 4),
    ]
    dev, qa, prod, frontend = found
    assert (dev.started_at, dev.deployed_at, dev.lead_seconds) == (at(T0, 0), at(T0, 2), 120.0)
    assert (qa.started_at, qa.deployed_at) == (at(T0, 10), at(T0, 15))
    # The squash keeps the bump's author date; main got it at its committer date.
    assert (prod.started_at, prod.deployed_at, prod.lead_seconds) == (at(T0, 30), at(T0, 90), 3600.0)
    assert (frontend.started_at, frontend.deployed_at) == (at(T0, 100), at(T0, 130))
    assert all(d.group == "apps" and d.digest is None for d in found)
    assert dev.commit == history.git("rev-list", "--max-count=1", "--grep=#1 from", "main")


def test_trailers_and_the_approver_are_read_from_the_merge_commit(
    history: ScriptedHistory, tmp_path: Path
) -> None:
    dev, qa, _, frontend = read(history, tmp_path, since=T0)
    assert dict(dev.trailers) == {"Release": "apps/podinfo:1.0.0", "Promoted-by": "promoter"}
    assert dev.approved_by is None and dict(qa.trailers) == {}
    assert frontend.approved_by == "alice"  # "(verified)" is how it was checked, not a name
    assert frontend.trailers["Approved-by"] == "alice (verified)"


def test_an_edit_that_keeps_the_tag_is_not_a_deployment(history: ScriptedHistory, tmp_path: Path) -> None:
    edit = history.git("rev-list", "--max-count=1", "--grep=^Edit ", "main")
    assert edit not in {d.commit for d in read(history, tmp_path, since=T0)}


def test_the_seed_deploys_every_app_everywhere_and_since_leaves_it_out(
    history: ScriptedHistory, tmp_path: Path
) -> None:
    everything = read(history, tmp_path)
    seeded = [d for d in everything if d.commit == history.seed]
    assert sorted((d.app, d.env) for d in seeded) == sorted(
        (app, env) for app in ("frontend", "podinfo") for env in ENVS
    )
    assert {d.tag for d in seeded} == {SEEDED} and all(d.pr is None for d in seeded)
    assert len(everything) == len(seeded) + 4
    assert [d.deployed_at for d in everything] == sorted(d.deployed_at for d in everything)  # oldest first


def test_one_app_only(history: ScriptedHistory, tmp_path: Path) -> None:
    found = read(history, tmp_path, since=T0, app="frontend")
    assert [(d.app, d.env, d.tag) for d in found] == [("frontend", "prod", "2.0.0")]


def test_since_counts_from_the_committer_date(history: ScriptedHistory, tmp_path: Path) -> None:
    # The squash was authored at T0+30m and committed at T0+90m: main got it at T0+90m.
    found = read(history, tmp_path, since=at(T0, 60))
    assert [(d.app, d.env) for d in found] == [("podinfo", "prod"), ("frontend", "prod")]


def test_a_digest_pinned_in_the_image_is_read_and_a_new_digest_alone_is_a_deployment(tmp_path: Path) -> None:
    history = ScriptedHistory(tmp_path / "gitops", T0, apps={"apps": ["podinfo"]})
    first, second = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    path = "apps/dev/podinfo.yaml"
    history.edit(path, f"podinfo:{SEEDED}", f"podinfo:{SEEDED}@{first}", at(T0, 10))
    history.edit(path, first, second, at(T0, 20))
    found = read(history, tmp_path, since=at(T0, 5))
    assert [(d.env, d.tag, d.digest, d.pr) for d in found] == [
        ("dev", SEEDED, first, None),
        ("dev", SEEDED, second, None),
    ]


def test_running_is_what_mains_markers_pin(history: ScriptedHistory, tmp_path: Path) -> None:
    workspace = Workspace(history.root.as_uri(), tmp_path / "cache")
    workspace.fetch()
    assert running(workspace.snapshot(), "apps", "prod") == {
        "frontend": Running(tag="2.0.0"),
        "podinfo": Running(tag="1.0.0"),
    }
    assert running(workspace.snapshot(), "apps", "qa")["frontend"] == Running(tag=SEEDED)
    assert running(workspace.snapshot(), "apps", "staging") == {}


@pytest.mark.parametrize(
    ("subject", "number"),
    [
        ("Merge pull request #12 from acme/promote/apps-podinfo", 12),
        ("Promote apps/podinfo version 1.0.0 to environment prod (#7)", 7),
        ("Merged PR 31: Promote apps/podinfo version 1.0.0 to environment qa", 31),
        ("Merge pull request 5 from promote/apps-podinfo into main", 5),
        ("Bump podinfo by hand", None),
        ("Fix #3 in the README", None),
    ],
)
def test_pr_number_by_each_forges_merge_message(subject: str, number: int | None) -> None:
    assert pr_number(subject) == number
