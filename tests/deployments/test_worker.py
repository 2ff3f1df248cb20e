"""`promoter worker`: a process worker on the promoter's pool whose runs start as forks of a warm process."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from prefect.workers.base import BaseWorker
from prefect.workers.process import ProcessWorker

from deployments import commands
from deployments.worker import WARM, WarmProcessWorker, check_pool
from promoter.errors import ConfigError
from sandbox.sample import config_text
from sandbox.stack import promoter_stack

if TYPE_CHECKING:
    from sandbox.prefect_server import PrefectServer

ROOT = Path(__file__).resolve().parents[2]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="promoter")
    commands.add_worker(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["worker", *argv])


def test_worker_takes_a_pool_a_limit_a_name_and_a_watch_interval() -> None:
    args = _parse("--pool", "promoter", "--limit", "5", "--name", "host-1", "--watch-seconds", "3")
    assert (args.pool, args.limit, args.name, args.watch_seconds) == ("promoter", 5, "host-1", 3.0)
    assert (_parse("--pool", "promoter").limit, _parse("--pool", "promoter").watch_seconds) == (None, 10.0)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "the following arguments are required: --pool"),
        (["--pool", ""], "'' is not a name"),
        (["--pool", "team/promoter"], "without '/' or '%'"),
        (["--pool", "promoter", "--name", "a%2Fb"], "without '/' or '%'"),
        (["--pool", "promoter", "--limit", "0"], "'0' is not a whole number of runs, 1 or more"),
        (["--pool", "promoter", "--limit", "two"], "'two' is not a whole number of runs"),
        (["--pool", "promoter", "--watch-seconds", "0"], "'0' is not a positive number of seconds"),
    ],
)
def test_bad_worker_arguments_exit_2_saying_what_is_wrong(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _parse(*argv)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


def test_the_warm_flows_are_the_entrypoints_prefect_yaml_deploys() -> None:
    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    assert {d["entrypoint"] for d in declared} == set(WARM)


def test_the_warm_worker_is_a_process_worker_and_leaves_prefects_process_type_alone() -> None:
    assert WarmProcessWorker.type == "process"
    assert BaseWorker.get_worker_class_from_type("process") is ProcessWorker


def test_a_missing_pool_or_one_of_another_type_is_refused(prefect_api: PrefectServer) -> None:
    with pytest.raises(ConfigError, match="work pool 'no-such-pool' not found: create it with"):
        check_pool("no-such-pool")
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="promoter-k8s-test", type="kubernetes"), overwrite=True)
    with pytest.raises(ConfigError, match="is of type 'kubernetes'"):
        check_pool("promoter-k8s-test")


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _command(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.mark.timeout(600)
def test_a_work_pool_run_is_a_fork_of_the_workers_fork_server_and_completes(
    prefect_api: PrefectServer, tmp_path: Path
) -> None:
    # Flux reports after 3 s: the run is alive, in its process, while the test looks at that process.
    scenario = {"default": {"outcome": "healthy", "delay": 3.0}}
    with promoter_stack(tmp_path, prefect=prefect_api, scenario=scenario, workers=1) as stack:
        everything_auto = config_text((("dev", True), ("qa", True), ("prod", True)))
        stack.sandbox.forge.commit_files(
            stack.repo, "main", {"gitops-promotion.yaml": everything_auto.encode()}, "All auto"
        )
        stack.push("ghcr.io/acme/podinfo", "7b3f4e5d").raise_for_status()
        run = stack.wait_for_run(lambda r: r["state_type"] == "RUNNING", "tag:7b3f4e5d", timeout=240)
        pid = run["infrastructure_pid"]
        assert pid and int(pid) in stack.flow_run_pids(run["id"]), (pid, stack.flow_run_processes())
        fork_server = _parent(int(pid))
        assert "forkserver" in _command(fork_server), _command(fork_server)
        worker = _parent(fork_server)
        assert "promoter.cli worker --pool promoter" in _command(worker), _command(worker)
        assert os.getpid() != worker
        done = stack.wait_for_run(
            lambda r: r["id"] == run["id"] and r["state_type"] in ("COMPLETED", "FAILED", "CRASHED"),
            "tag:7b3f4e5d",
            timeout=400,
        )
        assert done["state_type"] == "COMPLETED", done["state_name"]
