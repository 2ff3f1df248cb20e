"""Flux's verdict on each past deployment: read up to the next change of its environment, each commit's
statuses read once. A scripted history (real git) and a forge that answers statuses from memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

from promoter.config import parse_config
from promoter.delivery import key
from promoter.delivery_source import judge, measure, verdict_heads
from promoter.history import deployments
from promoter.promotion import Promotion, Target
from promoter.providers.base import CommitStatus, GitProvider
from promoter.workspace import Workspace
from sandbox.sample import config_text
from tests.scripted_history import T0, ScriptedHistory, at

OK, BAD = ("success", "reconciliation succeeded"), ("failure", "health check failed")


@dataclass
class Statuses:
    """The one forge call the metrics make, answered from memory and counted."""

    posted: dict[str, list[CommitStatus]] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def flux(self, sha: str, kustomization: str, said: tuple[str, str]) -> None:
        status = CommitStatus(
            f"kustomization/{kustomization}/0c9c2e41", said[0], said[1], "2024-05-06T10:00:00Z"
        )
        self.posted.setdefault(sha, []).insert(0, status)

    def commit_statuses(self, sha: str) -> list[CommitStatus]:
        self.reads.append(sha)
        return self.posted.get(sha, [])


@dataclass
class Story:
    history: ScriptedHistory
    forge: Statuses
    promotion: Promotion
    commits: dict[str, str]


@pytest.fixture
def story(tmp_path: Path) -> Iterator[Story]:
    """podinfo 1.0 fails qa; frontend 2.0 lands in qa and Flux reports qa healthy on a README commit after
    it; podinfo 1.1 reaches dev (Flux silent there) and heals qa."""
    history = ScriptedHistory(tmp_path / "gitops", at(T0, days=-1))
    forge = Statuses()
    commits = {
        "dev 1.0": history.merge("dev", "podinfo", "1.0", pr=1, bumped=at(T0, 0), merged=at(T0, 2)),
        "qa 1.0": history.merge("qa", "podinfo", "1.0", pr=2, bumped=at(T0, 10), merged=at(T0, 15)),
        "qa frontend": history.merge("qa", "frontend", "2.0", pr=3, bumped=at(T0, 20), merged=at(T0, 30)),
        "readme": history.other("README.md", at(T0, 31)),
        "dev 1.1": history.merge("dev", "podinfo", "1.1", pr=4, bumped=at(T0, 35), merged=at(T0, 40)),
        "qa 1.1": history.merge("qa", "podinfo", "1.1", pr=5, bumped=at(T0, 45), merged=at(T0, 50)),
    }
    forge.flux(commits["dev 1.0"], "apps-dev", OK)
    forge.flux(commits["qa 1.0"], "apps-qa", BAD)
    forge.flux(commits["readme"], "apps-qa", OK)
    forge.flux(commits["qa 1.1"], "apps-qa", OK)
    workspace = Workspace(history.root.as_uri(), tmp_path / "cache")
    target = Target(gitops_url="https://github.com/acme/gitops.git", cache_dir=str(tmp_path / "cache"))
    promotion = Promotion(parse_config(config_text()), workspace, cast(GitProvider, forge), target)
    yield Story(history, forge, promotion, commits)


def test_a_report_speaks_for_a_deployment_only_until_its_environment_changes_again(story: Story) -> None:
    head = story.promotion.workspace.fetch()
    found = deployments(story.promotion.workspace, head, "apps", ["dev", "qa", "prod"], since=T0)
    outcomes = judge(story.promotion, found, head)
    said = {(d.app, d.env, d.tag): outcomes[key(d)] for d in found}
    assert said == {
        ("podinfo", "dev", "1.0"): "healthy",
        # qa's green after frontend landed is frontend's: it does not heal podinfo 1.0's red.
        ("podinfo", "qa", "1.0"): "failed",
        ("frontend", "qa", "2.0"): "healthy",  # reported on the README commit after it
        ("podinfo", "dev", "1.1"): "no report",
        ("podinfo", "qa", "1.1"): "healthy",
    }


def test_the_verdict_head_is_the_commit_before_the_next_change_of_the_environment(story: Story) -> None:
    head = story.promotion.workspace.fetch()
    c = story.commits
    heads = verdict_heads(
        story.promotion.workspace, head, "apps", "qa", [c["qa 1.0"], c["qa frontend"], c["qa 1.1"]]
    )
    assert heads == {c["qa 1.0"]: c["qa 1.0"], c["qa frontend"]: c["dev 1.1"], c["qa 1.1"]: head}


def test_each_commits_statuses_are_read_once(story: Story) -> None:
    metrics = measure(story.promotion, T0, at(T0, days=1))
    assert len(story.forge.reads) == len(set(story.forge.reads))
    qa = metrics.environment("qa")
    assert (qa.deployments, qa.failures, qa.change_failure_rate) == (3, 1, 1 / 3)
    assert (qa.restore_p50, qa.restored, qa.unrestored) == (35 * 60, 1, 0)
    dev = metrics.environment("dev")
    assert (dev.deployments, dev.unreported, dev.lead_p50) == (2, 1, 120)


def test_measure_reads_one_app_when_asked(story: Story) -> None:
    metrics = measure(story.promotion, T0, at(T0, days=1), group="apps", app="frontend")
    assert metrics.apps == ("apps/frontend",)
    assert [m.deployments for m in metrics.environments] == [0, 1, 0]
