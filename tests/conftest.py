"""Fixtures shared by every suite: throw-away GitOps trees and git repositories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sandbox.sample import write_gitops_tree
from tests.helpers import run_git

if TYPE_CHECKING:
    from sandbox.prefect_server import PrefectServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the Prefect server, so the quick tier (`make unit-fast`) can leave it out."""
    for item in items:
        if "prefect_api" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.server)


@pytest.fixture
def gitops_tree(tmp_path: Path) -> Path:
    """A working tree with apps/{dev,qa,prod}/podinfo.yaml and a second app, no git."""
    root = tmp_path / "gitops"
    write_gitops_tree(root, {"apps": ["podinfo", "frontend"]})
    return root


@pytest.fixture
def remote(tmp_path: Path, gitops_tree: Path) -> str:
    """A bare repository holding `gitops_tree` on main, reachable as a file:// URL."""
    bare = tmp_path / "remote.git"
    run_git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    run_git(gitops_tree, "init", "--quiet", "--initial-branch=main")
    run_git(gitops_tree, "add", "-A")
    run_git(gitops_tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "seed")
    run_git(gitops_tree, "push", "--quiet", str(bare), "main")
    return bare.as_uri()


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """One real Prefect server (SQLite, loopback) for the whole session, started on first use.

    The test process itself becomes a client of it; flow heartbeats are off for flows run in-process.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_RESULTS_PERSIST_BY_DEFAULT,
        temporary_settings,
    )

    from sandbox.prefect_server import prefect_server

    home = tmp_path_factory.mktemp("prefect")
    with prefect_server(home, startup_timeout=300) as server:  # migrations are slow on a busy machine
        saved = {key: os.environ.get(key) for key in server.environment}
        os.environ.update(server.environment)
        try:
            updates = {
                PREFECT_API_URL: server.api_url,
                PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
                PREFECT_LOCAL_STORAGE_PATH: str(home / "storage"),
                PREFECT_RESULTS_PERSIST_BY_DEFAULT: True,
            }
            with temporary_settings(updates):
                yield server
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
