"""The `wait:` tags a suspended run carries, and how the wait watcher and the webhook receiver read them."""

from __future__ import annotations

from tasks.contracts import commit_wait_tag, flux_wait_tag, merge_wait_tag, run_tags, waits_of


def test_a_flux_wait_reads_back_as_group_env_and_commit() -> None:
    tags = run_tags(
        ["team:x"], "apps", "podinfo", "1.2", "qa", None, [flux_wait_tag("apps-QA"), commit_wait_tag("ABC")]
    )
    assert "wait:flux:apps-qa" in tags and "team:x" in tags
    waits = waits_of(tags)
    assert waits is not None
    assert (waits.group, waits.env, waits.commit, waits.pr) == ("apps", "qa", "abc", None)


def test_a_merge_wait_reads_back_as_its_pr() -> None:
    waits = waits_of(run_tags([], "apps", "podinfo", "1.2", "dev", None, [merge_wait_tag(7)]))
    assert waits is not None and waits.pr == 7


def test_relabelling_without_waits_clears_them_and_the_gate_is_no_wait() -> None:
    waiting = run_tags([], "apps", "podinfo", "1.2", "dev", None, [merge_wait_tag(7)])
    resumed = run_tags(waiting, "apps", "podinfo", "1.2", "dev", None)
    assert not any(tag.startswith("wait:") for tag in resumed)
    assert waits_of(resumed) is None
    assert waits_of(run_tags([], "apps", "podinfo", "1.2", "prod", 9)) is None  # the approval gate
