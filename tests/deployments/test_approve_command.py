"""`promoter approve` outside a configured Prefect: a clear refusal, not a throw-away server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_approve_without_an_api_url_says_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path)  # no profile that could carry an API URL
    done = subprocess.run(
        [sys.executable, "-m", "promoter.cli", "approve", "--app", "apps/podinfo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "PREFECT_API_URL is not set" in done.stderr
    assert "Traceback" not in done.stderr and "temporary server" not in done.stderr
