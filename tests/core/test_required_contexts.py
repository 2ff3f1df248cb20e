"""An environment's `require`: commit status contexts besides Flux's that gate the next environment.

The config's validation, and the verdict that combines Flux's word with the required contexts' on the
same candidate commits (pure: statuses in, verdict out, each commit read once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from promoter.config import parse_config
from promoter.errors import ConfigError
from promoter.gate import gate, summary, waiting_for_required
from promoter.health import (
    Failed,
    Healthy,
    NoReport,
    RequiredContexts,
    StatusMatcher,
    Verdict,
    current_verdict,
    settled,
    wait_for_verdict,
)
from promoter.providers.base import CommitStatus

FLUX = "kustomization/apps-qa/0c9c2e41"
OURS, NEWER = "c0ffee00" * 5, "5eed0000" * 5
SMOKE = RequiredContexts(("e2e/smoke",))


def config(require: str) -> str:
    return f"environments:\n  - name: qa\n    auto: true\n    require: {require}\n  - name: prod\n"


def test_require_lists_contexts_and_defaults_to_none() -> None:
    loaded = parse_config(config("[e2e/smoke, security/scan]"))
    assert loaded.environment("qa").require == ("e2e/smoke", "security/scan")
    assert loaded.environment("prod").require == ()
    assert parse_config(config("null")).environment("qa").require == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "e2e/smoke",
            r":4: environments\[0\]\.require: expected a list of commit status contexts, e\.g\. \[e2e/smoke\]",
        ),
        ("{e2e: smoke}", r"expected a list of commit status contexts, e\.g\. \[e2e/smoke, security/scan\]"),
        ("[]", r"list 1 to 20 contexts, or leave require out"),
        ("[" + ", ".join(f"c{n}" for n in range(21)) + "]", r"list 1 to 20 contexts"),
        ("['']", r"'' is not a commit status context: it must be non-empty plain text"),
        ('["e2e\\tsmoke"]', r"'e2e\\tsmoke' is not a commit status context: it must be non-empty plain text"),
        ("[' e2e/smoke']", r"no spaces or '/' at its ends \(on Azure DevOps write genre/name"),
        ("[e2e/]", r"'e2e/' is not a commit status context: no spaces or '/' at its ends"),
        ("[12]", r"12 is not a commit status context: write its name as the forge shows it, quoted"),
        ("[promoter]", r"'promoter' is already read: 'promoter' is the promoter's own check"),
        ("[Kustomization/apps-qa/0c9c2e41]", r"is already read: .* kustomization/\.\.\. \(genre fluxcd\)"),
        ("[fluxcd/kustomization/apps-qa]", r"'fluxcd/kustomization/apps-qa' is already read"),
        ("[e2e/smoke, E2E/Smoke]", r"require must list each context once; repeated: e2e/smoke"),
    ],
)
def test_bad_require_names_the_line_and_what_to_write(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(config(value))


def test_a_misspelt_require_key_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError, match=r":4: unknown key 'requires'; did you mean 'require'\?"):
        parse_config(config("[e2e/smoke]").replace("require:", "requires:"))


def status(
    context: str, state: str, description: str = "", at: str = "1", genre: str | None = None
) -> CommitStatus:
    return CommitStatus(context, state, description, f"2024-01-01T00:00:0{at}Z", genre)


def flux(
    state: str = "success", description: str = "reconciliation succeeded", at: str = "1"
) -> CommitStatus:
    return status(FLUX, state, description, at)


def verdict(
    statuses: Mapping[str, Sequence[CommitStatus]],
    required: RequiredContexts = SMOKE,
    candidates: Sequence[str] = (OURS,),
) -> Verdict:
    return current_verdict(
        candidates, lambda sha: statuses.get(sha, []), StatusMatcher("apps-qa"), None, required
    )


def test_healthy_only_when_flux_and_every_required_context_succeed() -> None:
    found = verdict({OURS: [status("e2e/smoke", "success"), flux()]})
    assert found == Verdict(
        "healthy",
        "apps-qa",
        OURS,
        "reconciliation succeeded; e2e/smoke succeeded",
        required=("e2e/smoke",),
    )
    health = settled(found)
    assert health == Healthy(
        kustomization="apps-qa",
        commit=OURS,
        description="reconciliation succeeded; e2e/smoke succeeded",
        required=("e2e/smoke",),
    )
    assert summary(health) == "apps-qa healthy on c0ffee00, e2e/smoke succeeded"
    assert gate("prod", health).open


def test_flux_healthy_waits_for_a_missing_or_pending_context_and_says_which() -> None:
    missing = verdict({OURS: [flux()]}, RequiredContexts(("e2e/smoke", "security/scan")))
    assert missing.outcome == "pending" and missing.waiting_for == ("e2e/smoke", "security/scan")
    assert missing.description == "Flux healthy on c0ffee00; waiting for e2e/smoke, security/scan"
    assert waiting_for_required("qa", missing).description == (
        "qa: Flux healthy on c0ffee00; waiting for e2e/smoke, security/scan"
    )
    running = verdict({OURS: [status("e2e/smoke", "pending", "2 of 5 suites"), flux()]})
    assert running.description == "Flux healthy on c0ffee00; waiting for e2e/smoke (2 of 5 suites)"
    assert settled(running) is None


def test_a_failed_context_blocks_at_once_even_before_flux_reports() -> None:
    found = verdict({OURS: [status("e2e/smoke", "failure", "3 tests failed")]})
    health = settled(found)
    assert health == Failed(
        kustomization="apps-qa",
        commit=OURS,
        description="e2e/smoke failed: 3 tests failed",
        context="e2e/smoke",
    )
    assert summary(health) == "apps-qa on c0ffee00: e2e/smoke failed: 3 tests failed"
    check = gate("prod", health)
    assert check.state == "failure" and "e2e/smoke failed: 3 tests failed" in check.description
    errored = settled(verdict({OURS: [flux(), status("e2e/smoke", "error")]}))
    assert isinstance(errored, Failed) and errored.description == "e2e/smoke failed"


def test_flux_failing_speaks_first() -> None:
    found = verdict(
        {OURS: [status("e2e/smoke", "failure", "3 tests failed"), flux("failure", "health check failed")]}
    )
    assert (found.outcome, found.description, found.context) == ("failed", "health check failed", "")


def test_the_newest_status_of_a_context_on_a_commit_wins_whatever_the_listing_order() -> None:
    retried = [
        status("e2e/smoke", "failure", "flaky", at="1"),
        status("e2e/smoke", "success", at="2"),
        flux(),
    ]
    assert verdict({OURS: retried}).outcome == "healthy"
    assert verdict({OURS: retried[::-1]}).outcome == "healthy"
    relapsed = [
        status("e2e/smoke", "success", at="1"),
        status("e2e/smoke", "failure", "boom", at="2"),
        flux(),
    ]
    assert verdict({OURS: relapsed}).outcome == "failed"


def test_a_newer_commit_on_main_answers_for_ours_as_flux_does() -> None:
    healed = verdict(
        {NEWER: [status("e2e/smoke", "success")], OURS: [flux(), status("e2e/smoke", "failure", "flaky")]},
        candidates=(NEWER, OURS),
    )
    assert healed.outcome == "healthy" and healed.commit == OURS  # Flux's proof; the check passed later
    broken = verdict(
        {
            NEWER: [status("e2e/smoke", "failure", "regressed")],
            OURS: [flux(), status("e2e/smoke", "success")],
        },
        candidates=(NEWER, OURS),
    )
    assert (broken.outcome, broken.commit) == ("failed", NEWER)


def test_azure_devops_genre_and_name_join_with_a_slash_and_its_states_count() -> None:
    said = {
        OURS: [
            status("smoke", "succeeded", genre="e2e"),
            status(FLUX, "succeeded", "reconciliation succeeded", genre="fluxcd"),
        ]
    }
    assert verdict(said).outcome == "healthy"
    assert verdict(said, RequiredContexts(("E2E/Smoke",))).outcome == "healthy"  # without case
    assert verdict(said, RequiredContexts(("smoke",))).outcome == "pending"  # genre e2e is not "no genre"
    no_genre = {OURS: [status("smoke", "succeeded"), flux("succeeded")]}
    assert verdict(no_genre, RequiredContexts(("smoke",))).outcome == "healthy"
    failed = settled(verdict({OURS: [status("smoke", "failed", "3 tests failed", genre="e2e")]}))
    assert isinstance(failed, Failed) and failed.description == "e2e/smoke failed: 3 tests failed"
    for state in ("pending", "notSet", "notApplicable"):
        assert verdict({OURS: [status("smoke", state, genre="e2e"), flux("succeeded")]}).outcome == "pending"


def test_each_candidate_commit_is_read_once_for_flux_and_the_required_contexts() -> None:
    reads: list[str] = []
    statuses = {NEWER: [flux()], OURS: [status("e2e/smoke", "success")]}

    def statuses_of(sha: str) -> Sequence[CommitStatus]:
        reads.append(sha)
        return statuses.get(sha, [])

    found = current_verdict([NEWER, OURS], statuses_of, StatusMatcher("apps-qa"), None, SMOKE)
    assert found.outcome == "healthy" and reads == [NEWER, OURS]
    reads.clear()
    statuses[NEWER] = [flux(), status("e2e/smoke", "success")]
    current_verdict([NEWER, OURS], statuses_of, StatusMatcher("apps-qa"), None, SMOKE)
    assert reads == [NEWER]  # everyone heard on the newest commit: older ones are not read
    reads.clear()
    current_verdict([NEWER, OURS], statuses_of, StatusMatcher("apps-qa"))
    assert reads == [NEWER]  # without `require`, Flux's reading as before


def test_a_context_silent_until_the_deadline_is_no_report_naming_it() -> None:
    pending = verdict({OURS: [flux()]})
    health = wait_for_verdict(lambda: pending, timeout=0.0)
    assert health == NoReport(
        kustomization="apps-qa",
        description="Flux healthy on c0ffee00; waiting for e2e/smoke",
        waited=0.0,
        contexts=("e2e/smoke",),
    )
    assert summary(health.model_copy(update={"waited": 8.0})) == (
        "no report from e2e/smoke for apps-qa within 8 s: Flux healthy on c0ffee00; waiting for e2e/smoke"
    )
    silent = wait_for_verdict(lambda: verdict({}), timeout=0.0)  # Flux silent too: Flux's no report
    assert (
        isinstance(silent, NoReport) and silent.contexts == () and "no status from Flux" in silent.description
    )
