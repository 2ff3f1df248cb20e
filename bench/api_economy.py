"""How many forge API requests does one release cost, and does waiting for Flux cost any?

Runs one release through dev, qa and prod on the sandbox with `promoter new | promote | status`, as CI
pipelines would, for each personality (GitHub, Azure DevOps). Flux reports qa only after WAIT seconds, so
the prod PR's `status` polls for that long. Prints, per stage, the API requests the promoter's token made,
split into counted and conditional (304, free against GitHub's rate limit), read from the sandbox's
`/_sandbox/stats`. Goals: at most 30 counted requests for the whole promotion, and zero counted requests
per minute while waiting for Flux. Exit status 1 when a goal is missed.

    .venv/bin/python bench/api_economy.py [--wait SECONDS]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from promoter.cli import main as promoter
from sandbox.testing import Sandbox, run_sandbox

BOT = "promoter-bot"
BRANCH = "promote/apps-podinfo"


def api_counts(sandbox: Sandbox) -> tuple[int, int]:
    """(counted, conditional) API requests made so far by the promoter's token (git traffic excluded)."""
    counted = conditional = 0
    for row in sandbox.stats()["routes"]:
        if row["user"] == BOT and ".git/" not in row["route"] and "/_git/" not in row["route"]:
            counted += row["counted"]
            conditional += row["conditional"]
    return counted, conditional


def run(checkout: Path, cache: Path, sandbox: Sandbox, kind: str, *args: str) -> None:
    provider = ["--provider", "github"] if kind == "github" else []
    argv = [*args, "--sourcedir", str(checkout), "--cache-dir", str(cache), "--poll-interval", "1", *provider]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = promoter(argv)
    if code != 0:
        raise SystemExit(f"promoter {' '.join(args)} failed: {err.getvalue().strip()}")


def one_release(kind: str, wait: float, tmp: Path) -> tuple[list[tuple[str, int, int, float]], Waiting]:
    scenario = {"default": {"delay": 0.1}, "rules": [{"env": "qa", "delay": wait}]}
    with run_sandbox(tmp / kind / "sandbox", seed_demo=True, scenario=scenario) as sandbox:
        os.environ["PROMOTER_TOKEN"] = sandbox.token
        repo = sandbox.forge.repo(kind, "acme", "gitops", "gitops" if kind == "azure" else None)
        checkout = tmp / kind / "checkout"
        env = {**os.environ, **sandbox.git_env()}
        subprocess.run(["git", "clone", "-q", sandbox.clone_url(repo), str(checkout)], env=env, check=True)
        cache = tmp / kind / "cache"
        rows: list[tuple[str, int, int, float]] = []

        def stage(name: str, *args: str) -> None:
            before = api_counts(sandbox)
            started = time.perf_counter()
            run(checkout, cache, sandbox, kind, *args)
            seconds = time.perf_counter() - started
            after = api_counts(sandbox)
            rows.append((name, after[0] - before[0], after[1] - before[1], seconds))

        def merged(number: int) -> str:
            sha: str = sandbox.wait_for(lambda: repo.pulls[number].merge_commit_sha, timeout=30)
            return sha

        stage("new (dev PR)", "new", "--group", "apps", "--app", "podinfo", "--tag", "cc2b7e0a")
        stage("status (dev PR)", "status", "--branch", BRANCH)
        stage("promote (qa PR)", "promote", "--commit", merged(1))
        stage("status (qa PR)", "status", "--branch", BRANCH)
        stage("promote (prod PR)", "promote", "--commit", merged(2))

        # While the prod check waits for Flux to report qa, sample what the polls cost: from just after
        # the first read until just before Flux reports, nothing has changed, so nothing should be counted.
        window: list[tuple[int, int]] = []

        def sample() -> None:
            time.sleep(2.0)
            window.append(api_counts(sandbox))
            time.sleep(max(0.0, wait - 3.0))
            window.append(api_counts(sandbox))

        sampler = threading.Thread(target=sample)
        sampler.start()
        stage("status (prod PR)", "status", "--branch", BRANCH)
        sampler.join()
        assert repo.pulls[3].merge_commit_sha is None, "prod must wait for a person"
        (c0, q0), (c1, q1) = window
        return rows, Waiting(seconds=max(0.0, wait - 3.0), counted=c1 - c0, conditional=q1 - q0)


@dataclass
class Waiting:
    seconds: float
    counted: int
    conditional: int


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--wait", type=float, default=20.0, help="seconds before Flux reports qa (default 20)"
    )
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="promoter-api-") as tmp:
        for kind in ("github", "azure"):
            rows, waiting = one_release(kind, args.wait, Path(tmp))
            print(f"\n{kind}: one release through dev, qa and prod (API requests by the promoter's token)")
            print(f"{'stage':<20}{'counted':>9}{'conditional':>13}{'seconds':>9}")
            for name, counted, conditional, seconds in rows:
                print(f"{name:<20}{counted:>9}{conditional:>13}{seconds:>9.1f}")
            total = sum(row[1] for row in rows)
            print(f"{'total':<20}{total:>9}{sum(row[2] for row in rows):>13}")
            per_minute = waiting.counted / (waiting.seconds / 60)
            print(
                f"while waiting for Flux ({waiting.seconds:.0f} s sampled): {waiting.counted} counted, "
                f"{waiting.conditional} conditional = {per_minute:.1f} counted/min"
            )
            goals = total <= 30 and waiting.counted == 0 and waiting.conditional > 0
            print(
                f"goals (<= 30 counted in all, 0 counted/min while waiting): {'met' if goals else 'MISSED'}"
            )
            failed |= not goals
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
