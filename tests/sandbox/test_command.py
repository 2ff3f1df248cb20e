"""`promoter sandbox` as a user runs it: prints its URLs, serves, stops cleanly on Ctrl-C, keeps state."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from promoter.cli import main

PROJECT = Path(__file__).resolve().parents[2]


def _start(root: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "promoter.cli", "sandbox", "--root", str(root), "--port", "0", "--seed-demo"],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert process.stdout is not None
    banner = ""
    for line in process.stdout:
        banner += line
        if line.startswith("Ctrl-C"):
            break
    match = re.search(r"serving (http://127\.0\.0\.1:\d+)", banner)
    assert match, banner
    assert "git clone http://127.0.0.1" in banner and "/acme/gitops.git" in banner
    assert "/acme/gitops/_git/gitops" in banner
    return process, match[1]


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0


def test_sandbox_command_serves_and_stops_cleanly(tmp_path: Path) -> None:
    process, url = _start(tmp_path)
    try:
        auth = {"Authorization": "token sandbox-token"}
        repo = httpx.get(f"{url}/api/v3/repos/acme/gitops", headers=auth, timeout=10)
        assert repo.json()["default_branch"] == "main"
        protection = httpx.get(
            f"{url}/api/v3/repos/acme/gitops/branches/main/protection", headers=auth, timeout=10
        )
        assert protection.json()["required_status_checks"]["contexts"] == ["promoter"]
        ref = httpx.get(f"{url}/api/v3/repos/acme/gitops/git/ref/heads/main", headers=auth, timeout=10)
        main_sha = ref.json()["object"]["sha"]
        httpx.post(
            f"{url}/api/v3/repos/acme/gitops/statuses/{main_sha}",
            json={"state": "success", "context": "kept"},
            headers=auth,
        )
    finally:
        _stop(process)
    process, url = _start(tmp_path)  # seeding again on the same root is fine, and state survived
    try:
        statuses = httpx.get(
            f"{url}/api/v3/repos/acme/gitops/commits/main/statuses",
            headers={"Authorization": "token sandbox-token"},
        ).json()
        assert "kept" in [s["context"] for s in statuses]
    finally:
        _stop(process)


def test_non_loopback_host_is_refused() -> None:
    assert main(["sandbox", "--host", "8.8.8.8", "--port", "0"]) == 2
