"""Commands that talk to Prefect, outside a configured Prefect: a clear refusal, not a throw-away server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    "args",
    [
        ["approve", "--app", "apps/podinfo"],
        ["serve"],
        ["webhook", "--port", "0"],
        ["worker", "--pool", "p"],
        ["freeze", "--reason", "quarter close"],
        ["thaw", "--env", "prod"],
    ],
    ids=["approve", "serve", "webhook", "worker", "freeze", "thaw"],
)
def test_without_an_api_url_the_command_says_how_to_get_a_server(tmp_path: Path, args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PROMOTER_"))}
    env["PREFECT_HOME"] = str(tmp_path)  # no profile that could carry an API URL
    env["PROMOTER_WEBHOOK_GENERIC_SECRET"] = "s" * 32  # so that the webhook has a sender to serve
    done = subprocess.run(
        [sys.executable, "-m", "promoter.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert f"PREFECT_API_URL is not set: `promoter {args[0]}` needs a Prefect server" in done.stderr
    assert "prefect server start" in done.stderr
    assert "Traceback" not in done.stderr and "temporary server" not in done.stderr
