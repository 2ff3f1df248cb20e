"""Reading Flux's verdict from commit statuses (`promoter.health`), on plain values: no forge involved."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promoter.errors import InvalidInputError
from promoter.health import Outcome, StatusMatcher, Verdict, current_verdict, verdict_on, wait_for_verdict
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
    ("genre", "counted"), [(None, True), ("", True), ("fluxcd", True), ("ci", False), ("promoter", False)]
)
def test_only_the_fluxcd_genre_counts_on_azure_devops(genre: str | None, counted: bool) -> None:
    found = verdict_on([status(state="succeeded", genre=genre)], StatusMatcher("apps-dev"), "abc")
    assert (found is not None) is counted


# -- what they say ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        ("success", "healthy"),  # GitHub
        ("failure", "failed"),
        ("error", "failed"),
        ("succeeded", "healthy"),  # Azure DevOps
        ("failed", "failed"),
        ("SUCCEEDED", "healthy"),
        ("pending", "pending"),
        ("notSet", "pending"),
    ],
)
def test_forge_states_map_to_outcomes(state: str, outcome: Outcome) -> None:
    found = verdict_on([status(state=state, description="said so")], StatusMatcher("apps-dev"), "c0ffee")
    assert found == Verdict(outcome, "apps-dev", "c0ffee", "said so")


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
