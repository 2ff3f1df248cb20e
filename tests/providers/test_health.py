"""Reading Flux's verdict from commit statuses (`promoter.health`), on plain values: no forge involved."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promoter.errors import InvalidInputError
from promoter.health import (
    NO_REPORT_HINT,
    Outcome,
    Reporters,
    StatusMatcher,
    Verdict,
    current_verdict,
    verdict_on,
    wait_for_verdict,
)
from promoter.providers import CommitStatus

FLUX = "kustomization/apps-dev/0c9c2e41"


def status(
    context: str = FLUX,
    state: str = "success",
    created_at: str = "2024-05-01T10:00:00Z",
    genre: str | None = None,
    description: str = "reconciliation succeeded",
) -> CommitStatus:
    return CommitStatus(
        context=context, state=state, description=description, created_at=created_at, genre=genre
    )


# -- which statuses are Flux's ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "context", ["kustomization/apps-dev", "kustomization/apps-dev/0c9c2e41", "kustomization/apps-dev/0"]
)
def test_both_flux_context_forms_match(context: str) -> None:
    assert StatusMatcher("apps-dev").matches(status(context))


@pytest.mark.parametrize(
    "context",
    [
        "kustomization/apps-qa/0c9c2e41",
        "kustomization/apps-dev-canary/0c9c2e41",
        "kustomization/apps/0c9c2e41",
        "kustomization/apps-dev/not-hex",
        "kustomization/apps-dev/0c9c2e41/extra",
        "kustomization/apps-dev/",
        "helmrelease/apps-dev/0c9c2e41",
        "ci/kustomization/apps-dev/0c9c2e41",
        "apps-dev",
        "promoter",
        "",
    ],
)
def test_other_kustomizations_and_other_contexts_do_not_match(context: str) -> None:
    assert not StatusMatcher("apps-dev").matches(status(context))


def test_contexts_match_whatever_their_case() -> None:
    assert StatusMatcher("apps-dev").matches(status("Kustomization/Apps-Dev/0C9C2E41"))
    # An environment may be spelled `Dev`; Flux lowercases the Kustomization name in the context.
    assert StatusMatcher("apps-Dev").matches(status(FLUX))
    assert not StatusMatcher("apps-Dev").matches(status("kustomization/apps-qa/0c9c2e41"))


def test_a_custom_commit_status_expr_pattern_is_honoured() -> None:
    matcher = StatusMatcher("apps-dev", r"Flux/(?P<name>[a-z0-9-]+)@cluster-\d+")
    assert matcher.matches(status("flux/apps-dev@cluster-1"))
    assert matcher.matches(status("FLUX/apps-dev@Cluster-12"))
    assert not matcher.matches(status("flux/apps-qa@cluster-1"))
    assert not matcher.matches(status(FLUX))  # the default form no longer applies


@pytest.mark.parametrize(
    ("pattern", "words"),
    [(r"kustomization/[^/]+", "(?P<name>"), (r"kustomization/(?P<name>[^/]+", "regular expression")],
)
def test_a_pattern_without_a_name_group_or_not_a_regex_is_refused(pattern: str, words: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        StatusMatcher("apps-dev", pattern)
    assert words in str(refused.value)


@pytest.mark.parametrize(
    ("genre", "counted"),
    [
        (None, True),
        ("", True),
        ("fluxcd", True),
        # notification-controller azure_devops.go `commitStatusGenre`: "fluxcd:" + the Alert's summary.
        ("fluxcd:production cluster", True),
        ("fluxcd:", True),
        ("fluxcdx", False),
        ("ci", False),
        ("promoter", False),
    ],
)
def test_only_the_fluxcd_genre_counts_on_azure_devops(genre: str | None, counted: bool) -> None:
    found = verdict_on([status(state="succeeded", genre=genre)], StatusMatcher("apps-dev"), "abc")
    assert (found is not None) is counted


# -- what they say ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "description", "outcome"),
    [
        ("success", "reconciliation succeeded", "healthy"),  # GitHub
        ("failure", "health check failed", "failed"),
        ("error", "build failed", "failed"),  # Azure DevOps
        ("succeeded", "reconciliation succeeded", "healthy"),
        ("failed", "prune failed", "failed"),
        ("SUCCEEDED", "Reconciliation Succeeded", "healthy"),
        ("pending", "reconciliation succeeded", "pending"),  # Flux never posts it; someone else did
        ("notSet", "reconciliation succeeded", "pending"),
    ],
)
def test_forge_states_map_to_outcomes(state: str, description: str, outcome: Outcome) -> None:
    found = verdict_on([status(state=state, description=description)], StatusMatcher("apps-dev"), "c0ffee")
    assert found == Verdict(outcome, "apps-dev", "c0ffee", description)


@pytest.mark.parametrize(
    "description",
    [
        # kustomize-controller emits DependencyNotReady at info severity, which every git notifier maps to
        # success (toGitHubState / toAzureDevOpsState): up to v1.7 it lands as a green status.
        "dependency not ready",
        # kustomize-controller#191: a health check failure first posted with the wrong severity.
        "health check failed",
        "info",  # kustomize-controller `event`: the severity stands in when Ready has no reason yet
        "",
        "said so",
    ],
)
def test_a_success_without_the_success_reason_keeps_waiting(description: str) -> None:
    for state in ("success", "succeeded"):
        found = verdict_on([status(state=state, description=description)], StatusMatcher("apps-dev"), "c0")
        assert found is not None and (found.outcome, found.description) == ("pending", description)


def test_no_flux_status_is_no_verdict() -> None:
    statuses = [status("promoter"), status("kustomization/apps-qa/0c9c2e41", "failure")]
    assert verdict_on(statuses, StatusMatcher("apps-dev"), "c0ffee") is None


@pytest.mark.parametrize("reverse", [False, True])
def test_the_newest_status_of_the_context_wins(reverse: bool) -> None:
    statuses = [
        status(state="failure", created_at="2024-05-01T10:00:00Z", description="health check failed"),
        status(state="success", created_at="2024-05-01T10:05:00Z", description="reconciliation succeeded"),
        status("kustomization/apps-qa/0c9c2e41", "failure", "2024-05-01T10:09:00Z"),
    ]
    found = verdict_on(statuses[::-1] if reverse else statuses, StatusMatcher("apps-dev"), "c0ffee")
    assert found is not None and (found.outcome, found.description) == ("healthy", "reconciliation succeeded")

    relapse = [
        *statuses,
        status(state="failure", created_at="2024-05-01T10:07:00Z", description="health check failed"),
    ]
    found = verdict_on(relapse, StatusMatcher("apps-dev"), "c0ffee")
    assert found is not None and (found.outcome, found.description) == ("failed", "health check failed")


def test_a_newer_commit_green_heals_an_older_commit_red() -> None:
    by_commit = {
        "new": [status(state="success", created_at="2024-05-01T11:00:00Z")],
        "old": [
            status(state="failure", created_at="2024-05-01T10:00:00Z", description="health check failed")
        ],
    }
    asked: list[str] = []

    def statuses_of(commit: str) -> Sequence[CommitStatus]:
        asked.append(commit)
        return by_commit.get(commit, [])

    healed = current_verdict(["new", "old"], statuses_of, StatusMatcher("apps-dev"))
    assert (healed.outcome, healed.commit) == ("healthy", "new")
    assert asked == ["new"]  # the newest reported commit decides; older ones are not read

    red = current_verdict(["unreported", "old"], statuses_of, StatusMatcher("apps-dev"))
    assert (red.outcome, red.commit, red.description) == ("failed", "old", "health check failed")

    silent = current_verdict(["unreported", "other"], statuses_of, StatusMatcher("apps-dev"))
    assert silent == Verdict("pending", "apps-dev")


def test_a_status_exactly_as_github_lists_it_for_an_old_flux_is_read() -> None:
    # kustomize-controller#191 (2020): GET /commits/{sha}/statuses as Flux left it, legacy context form.
    listed = {
        "state": "failure",
        "description": "health check failed",
        "target_url": None,
        "context": "kustomization/apps",
        "created_at": "2020-12-04T11:18:19Z",
    }
    posted = CommitStatus(
        context=listed["context"] or "",
        state=listed["state"] or "",
        description=listed["description"] or "",
        created_at=listed["created_at"] or "",
    )
    found = verdict_on([posted], StatusMatcher("apps"), "c0ffee")
    assert found == Verdict("failed", "apps", "c0ffee", "health check failed")


# -- several clusters: one Kustomization name, one Provider (context suffix) each ----------------------

EAST, WEST = "kustomization/apps-dev/0c9c2e41", "kustomization/apps-dev/7f3a9b12"
GREEN, RED = "reconciliation succeeded", "health check failed"


def at(context: str, state: str, minute: int, description: str = GREEN) -> CommitStatus:
    return status(context, state, f"2024-05-01T10:{minute:02d}:00Z", description=description)


def test_two_clusters_are_not_mixed_up_the_newest_word_of_each_counts() -> None:
    # West failed after east succeeded: the old reading took east's newer green as the answer.
    statuses = [at(EAST, "success", 5), at(WEST, "failure", 3, RED), at(WEST, "success", 1)]
    found = verdict_on(statuses, StatusMatcher("apps-dev"), "c0ffee")
    assert found == Verdict("failed", "apps-dev", "c0ffee", RED)  # a failure from any reporter fails


def test_an_environment_of_two_clusters_waits_for_both() -> None:
    matcher, two = StatusMatcher("apps-dev"), Reporters.of(2)
    one = verdict_on([at(EAST, "success", 1)], matcher, "c0ffee", two)
    assert one == Verdict("pending", "apps-dev", None, "1 of 2 reporters healthy, 1 heard from")
    waiting = verdict_on(
        [at(EAST, "success", 1), at(WEST, "success", 2, "dependency not ready")], matcher, "c0ffee", two
    )
    assert waiting is not None and waiting.outcome == "pending"
    assert waiting.description == "1 of 2 reporters healthy, 2 heard from (7f3a9b12: dependency not ready)"
    both = verdict_on([at(EAST, "success", 1), at(WEST, "success", 3)], matcher, "c0ffee", two)
    assert both == Verdict("healthy", "apps-dev", "c0ffee", f"{GREEN} (0c9c2e41, 7f3a9b12)")
    red = verdict_on([at(EAST, "success", 1), at(WEST, "failure", 3, RED)], matcher, "c0ffee", two)
    assert red == Verdict("failed", "apps-dev", "c0ffee", f"{RED} (7f3a9b12)")


def test_listed_reporters_match_cluster_parts_or_contexts_and_others_are_ignored() -> None:
    matcher = StatusMatcher("apps-dev")
    listed = Reporters.of(["0C9C2E41", WEST])
    stale = "kustomization/apps-dev/deadbeef"  # a Provider that was recreated: its old UID
    statuses = [at(EAST, "success", 1), at(stale, "failure", 2, RED)]
    assert verdict_on(statuses, matcher, "c0", listed) == Verdict(
        "pending", "apps-dev", None, "1 of 2 reporters healthy; waiting for kustomization/apps-dev/7f3a9b12"
    )
    found = verdict_on([*statuses, at(WEST, "success", 3)], matcher, "c0", listed)
    assert found is not None and found.outcome == "healthy"


def test_a_commit_status_expr_with_a_cluster_group_names_the_reporter() -> None:
    # Flux 2.6 docs: commitStatusExpr "kind/name/" + event.metadata.clusterName.
    matcher = StatusMatcher("apps-dev", r"kustomization/(?P<name>[^/]+)/(?P<cluster>[a-z0-9-]+)")
    statuses = [at("kustomization/apps-dev/dev-01", "success", 1)]
    expected = Reporters.of(["dev-01", "dev-02"])
    assert verdict_on(statuses, matcher, "c0", expected).outcome == "pending"  # type: ignore[union-attr]
    statuses.append(at("kustomization/apps-dev/dev-02", "success", 2))
    assert verdict_on(statuses, matcher, "c0", expected).outcome == "healthy"  # type: ignore[union-attr]


def test_each_cluster_may_answer_on_a_different_descendant() -> None:
    by_commit = {
        "newest": [at(EAST, "success", 9)],  # east already reconciled main's head
        "middle": [],
        "ours": [at(WEST, "success", 2), at(EAST, "failure", 1, RED)],  # west has not polled since
    }
    asked: list[str] = []

    def statuses_of(commit: str) -> Sequence[CommitStatus]:
        asked.append(commit)
        return by_commit[commit]

    found = current_verdict(
        ["newest", "middle", "ours"], statuses_of, StatusMatcher("apps-dev"), Reporters(2)
    )
    assert (found.outcome, found.commit) == ("healthy", "ours")  # the oldest commit both are known to run
    assert asked == ["newest", "middle", "ours"]

    asked.clear()
    alone = current_verdict(["newest", "middle", "ours"], statuses_of, StatusMatcher("apps-dev"))
    assert (alone.outcome, alone.commit) == ("healthy", "newest") and asked == ["newest"]


# -- waiting ----------------------------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def polls(*outcomes: Outcome) -> Callable[[], Verdict]:
    """Answers `outcomes` in turn, then keeps answering the last one."""
    answers = [
        Verdict(outcome, "apps-dev", None if outcome == "pending" else "c0ffee") for outcome in outcomes
    ]

    def poll() -> Verdict:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return poll


def test_pending_keeps_waiting_until_flux_reports() -> None:
    time = FakeTime()
    waited: list[tuple[str, float]] = []

    found = wait_for_verdict(
        polls("pending", "pending", "healthy"),
        60,
        on_wait=lambda verdict, left: waited.append((verdict.outcome, left)),
        clock=time.clock,
        sleep=time.sleep,
    )

    assert (found.outcome, found.commit) == ("healthy", "c0ffee")
    assert time.sleeps == [2.0, 3.0]
    assert waited == [("pending", 60.0), ("pending", 58.0)]


def test_a_failure_is_returned_at_once() -> None:
    time = FakeTime()
    found = wait_for_verdict(polls("failed"), 60, clock=time.clock, sleep=time.sleep)
    assert found.outcome == "failed" and time.sleeps == []


def test_silence_until_the_deadline_is_no_report_not_failed_and_polls_back_off() -> None:
    time = FakeTime()

    found = wait_for_verdict(
        polls("pending"), 60, interval=2, max_interval=15, clock=time.clock, sleep=time.sleep
    )

    assert found.outcome == "no report"  # distinct from "failed": Flux may drop failure events
    assert not found.healthy and found.commit is None and found.kustomization == "apps-dev"
    assert found.description == f"no status from Flux; {NO_REPORT_HINT}"
    assert time.now == 1060.0  # gave up at the deadline, not before nor long after
    backoff = time.sleeps[:-1]
    assert backoff[:3] == [2.0, 3.0, 4.5]
    assert all(later >= earlier for earlier, later in pairwise(backoff))
    assert max(time.sleeps) == 15.0 and backoff.count(15.0) >= 2  # grew up to the cap and stayed there
    assert time.sleeps[-1] == pytest.approx(60 - sum(backoff))  # the last sleep ends at the deadline


def test_a_zero_timeout_polls_once_and_reports_nothing() -> None:
    time = FakeTime()
    asked: list[int] = []

    def poll() -> Verdict:
        asked.append(1)
        return Verdict("pending", "apps-dev")

    assert wait_for_verdict(poll, 0, clock=time.clock, sleep=time.sleep).outcome == "no report"
    assert asked == [1] and time.sleeps == []


# -- hostile input ----------------------------------------------------------------------------------

FIELDS = st.one_of(
    st.text(max_size=40), st.sampled_from(["success", "succeeded", "failure", "error", "pending", ""])
)
CONTEXTS = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda name, uid: f"kustomization/{name}/{uid}",
        st.sampled_from(["apps-dev", "Apps-Dev", "x"]),
        st.text(max_size=10),
    ),
)
STATUSES = st.builds(
    CommitStatus,
    context=CONTEXTS,
    state=FIELDS,
    description=st.text(max_size=40),
    created_at=st.text(max_size=30),
    genre=st.one_of(st.none(), st.sampled_from(["fluxcd", ""]), st.text(max_size=10)),
    target_url=st.one_of(st.none(), st.text(max_size=20)),
)


@given(st.lists(STATUSES, max_size=8), st.text(max_size=20))
def test_verdict_on_never_raises_on_arbitrary_statuses(
    statuses: list[CommitStatus], kustomization: str
) -> None:
    matcher = StatusMatcher(kustomization or "apps-dev")
    found = verdict_on(statuses, matcher, "c0ffee")
    if found is None:
        assert not any(matcher.matches(each) for each in statuses)
    else:
        assert found.outcome in ("healthy", "failed", "pending")
        assert found.commit == "c0ffee"
        assert any(matcher.matches(each) and each.description == found.description for each in statuses)


def test_no_report_says_what_was_last_heard_and_which_flux_versions_stay_silent() -> None:
    time = FakeTime()
    last = Verdict("pending", "apps-dev", None, "1 of 2 reporters healthy, 1 heard from")
    found = wait_for_verdict(lambda: last, 10, clock=time.clock, sleep=time.sleep)
    assert found.description.startswith("last heard: 1 of 2 reporters healthy, 1 heard from; ")
    for words in ("v1.8.0", "v1.8.1-v1.8.4 drop failures", "`wait: true`", "`healthChecks`"):
        assert words in found.description
