"""The `promoter` check's words: one function for the flow and `promoter status`, so they cannot drift."""

from __future__ import annotations

import pytest

from promoter.gate import Gate, gate, summary, waiting
from promoter.health import NO_REPORT_HINT, Failed, Health, Healthy, NoReport

SHA = "0c9c2e41" + "ab" * 16


def test_the_first_environment_is_open_at_once() -> None:
    assert gate("dev", None) == Gate(state="success", description="dev is the first environment")


def test_a_healthy_previous_environment_opens_the_gate_naming_the_commit() -> None:
    healthy = Healthy(kustomization="apps-dev", commit=SHA, description="reconciliation succeeded")
    assert gate("qa", healthy) == Gate(state="success", description="apps-dev healthy on 0c9c2e41")


def test_a_failed_previous_environment_closes_it_with_flux_reason() -> None:
    failed = Failed(kustomization="apps-qa", commit=SHA, description="health check failed")
    assert gate("prod", failed) == Gate(
        state="failure", description="apps-qa failed on 0c9c2e41: health check failed"
    )


@pytest.mark.parametrize(("waited", "said"), [(300.0, "5 min"), (8.0, "8 s"), (90.0, "1.5 min")])
def test_no_report_closes_it_saying_how_long_we_waited_and_why_flux_may_be_silent(
    waited: float, said: str
) -> None:
    silent = NoReport(
        kustomization="apps-qa", description=f"no status from Flux; {NO_REPORT_HINT}", waited=waited
    )
    assert gate("prod", silent) == Gate(
        state="failure",
        description=f"no report from Flux for apps-qa within {said}: no status from Flux; {NO_REPORT_HINT}",
    )


@pytest.mark.parametrize(
    "health",
    [
        Healthy(kustomization="apps-qa", commit=SHA),
        Failed(kustomization="apps-qa", commit=SHA, description="build failed"),
        NoReport(kustomization="apps-qa", waited=60),
    ],
)
def test_a_blocked_runs_message_is_the_red_checks_description(health: Health) -> None:
    assert gate("prod", health).description == summary(health)
    assert gate("prod", health).open is health.healthy


def test_while_waiting_the_check_is_pending() -> None:
    assert waiting("apps-dev") == Gate(
        state="pending", description="waiting for Flux to report apps-dev healthy"
    )
