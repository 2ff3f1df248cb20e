"""Each use of a Prefect private name: it applies to the pinned Prefect, and a moved name is reported
and skipped (Prefect's own behaviour kept) rather than silently turning the patch into a no-op."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prefect import flow_engine
from prefect.client import orchestration
from prefect.runner import Runner

from deployments import prefect_compat

ROOT = Path(__file__).resolve().parents[2]


def test_every_patch_applies_to_the_installed_prefect() -> None:
    assert prefect_compat.check() == []


def test_fork_runs_puts_both_halves_in_place(tmp_path: Path) -> None:
    code = """
        from prefect import flow_engine
        from prefect.runner import _starter_direct
        from deployments import prefect_compat
        print(prefect_compat.forked(), prefect_compat.fork_runs(["json"]), prefect_compat.forked())
        print(flow_engine.multiprocessing.get_context("spawn").get_start_method())
        print(_starter_direct.run_flow_in_subprocess.__wrapped__ is flow_engine.run_flow_in_subprocess)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PREFECT_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "forkserver", "True"]


def test_a_spawn_call_that_moved_is_reported_and_runs_keep_prefects_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def run_flow_in_subprocess(*args: object, **kwargs: object) -> None:
        """A future Prefect that builds its process some other way."""

    monkeypatch.setattr(flow_engine, "run_flow_in_subprocess", run_flow_in_subprocess)
    assert any(p.startswith("fork_runs:") for p in prefect_compat.check())
    assert prefect_compat.fork_runs(["json"]) is False
    assert flow_engine.multiprocessing.__name__ == "multiprocessing"  # type: ignore[attr-defined]
    assert prefect_compat.forked() is False


def test_a_client_module_without_its_own_ssl_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(orchestration, "ssl")
    assert any(
        p.startswith("share_tls_context: prefect.client.orchestration") for p in prefect_compat.check()
    )


def test_poll_now_is_the_runners_poll_and_none_where_it_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = Runner(name="compat-test")
    assert prefect_compat.poll_now(runner) is not None
    monkeypatch.delattr(Runner, "_get_and_submit_flow_runs")
    assert prefect_compat.poll_now(runner) is None
    assert any(p.startswith("poll_now:") for p in prefect_compat.check())


def test_a_problem_is_a_loud_warning_naming_the_upgrade_guide(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="promoter.prefect_compat"):
        prefect_compat.warn_about(["poll_now: gone"])
    assert "poll_now: gone" in caplog.text and "docs/prefect-upgrade.md" in caplog.text


def test_a_moved_executor_or_direct_starter_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.runner import _starter_direct

    monkeypatch.delattr(_starter_direct, "DirectSubprocessStarter")
    assert any(p.startswith("run_in_fork:") for p in prefect_compat.check())


def test_run_in_fork_runs_a_flow_run_in_a_fork_with_the_jobs_environment(
    prefect_api: object, tmp_path: Path
) -> None:
    code = """
        import asyncio, os, sys
        from prefect import flow, get_client
        from deployments import prefect_compat

        @flow
        def report(path: str) -> None:
            with open(path, "w") as out:
                out.write(f"{os.environ.get('PROMOTER_JOB_SETTING')} {os.getppid()}")

        async def main() -> None:
            assert prefect_compat.fork_runs(["json"])
            async with get_client() as client:
                run = await client.create_flow_run(report, parameters={"path": sys.argv[1]})
            pid, status = await prefect_compat.run_in_fork(
                run, report, deployment_name=None, env={"PROMOTER_JOB_SETTING": "from-the-job"}
            )
            async with get_client() as client:
                state = (await client.read_flow_run(run.id)).state
            print(pid, status, state.type.value, os.getpid())

        asyncio.run(main())
    """
    out = tmp_path / "out.txt"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),  # the session server's client settings
    )
    assert result.returncode == 0, result.stderr
    pid, status, state, parent = result.stdout.split()[-4:]
    assert (status, state) == ("0", "COMPLETED")
    setting, fork_parent = out.read_text().split()
    assert setting == "from-the-job"
    assert int(pid) != int(parent) and int(fork_parent) != int(parent)  # a child of the fork server
