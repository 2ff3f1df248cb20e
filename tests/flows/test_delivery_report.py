"""delivery-report against the session's Prefect server: the week's figures of a scripted history on the
sandbox forge (a failure in qa, then its fix), published as the `promoter-delivery` markdown artifact."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker

from flows.delivery import delivery_report
from sandbox.prefect_server import PrefectServer
from sandbox.testing import run_sandbox
from tasks.delivery import ARTIFACT_KEY
from tests.scripted_history import script_failure_then_fix


def test_the_weekly_report_publishes_the_figures_as_markdown(
    prefect_api: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_sandbox(tmp_path / "sandbox", scenario={"repos": ["nobody/*"]}) as sandbox:
        scripted = script_failure_then_fix(sandbox, tmp_path)
        for name, value in {
            "PROMOTER_GITOPS_URL": sandbox.clone_url(scripted.repo),
            "PROMOTER_PROVIDER": "github",
            "PROMOTER_TOKEN": sandbox.token,
            "PROMOTER_CACHE_DIR": str(scripted.cache),
        }.items():
            monkeypatch.setenv(name, value)
        state = delivery_report(return_state=True)
        assert sandbox.violations() == []
    document = state.result()
    qa = document["environments"][1]
    assert (document["days"], document["apps"], qa["deployments"], qa["change_failure_rate"]) == (
        7.0,
        ["apps/podinfo"],
        2,
        0.5,
    )
    assert (qa["lead_time_seconds"]["p50"], qa["time_to_restore_seconds"]["p50"]) == (1200.0, 4200.0)

    run = state.state_details.flow_run_id
    assert run is not None
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[ARTIFACT_KEY]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[run]),
            )
        )
    assert artifact.type == "markdown"
    text = str(artifact.data)
    assert "| qa | 2 | 0.29 | 2.00 | 20m 00s | 30m 00s | 50% (1 of 2) | 1h 10m | 0 |" in text
    assert "| dev | 2 | 0.29 | 2.00 | 2m 00s | 2m 00s | 0% (0 of 2) | - | 0 |" in text
    day = scripted.base.strftime("%a %m-%d")
    assert f"{day}  dev   ██ 2" in text and "```text" in text
    assert "](data:image/png;base64," in text  # the picture of the same chart
    # The run's last logs and events go out now, while the server is up: the session's server may stop
    # next, and a worker still holding some retries against it for minutes when the process exits.
    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)
