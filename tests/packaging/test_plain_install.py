"""A production install (`pip install .`, no extras) runs the production commands without the sandbox's deps.

The wheel is built from a copy of this working tree into a fresh virtual environment, pinned by
`constraints.txt` as the Makefile pins the development one. The sandbox forge the commands talk to runs in
this test's process (the development environment), so the installed `promoter` reaches it only over HTTP
and git, as it would reach GitHub.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.testing import Sandbox, run_sandbox

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PROJECT = Path(__file__).resolve().parents[2]
# The sandbox extra's own validators; jsonschema is not listed: Prefect itself requires it.
SANDBOX_ONLY = ("openapi_core", "graphql")
LEFT_OUT = {
    ".venv",
    ".git",
    ".promoter",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "build",
    "__pycache__",
}


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `bin/` of a fresh venv holding `pip install .` of this tree, without extras."""
    root = tmp_path_factory.mktemp("plain")
    source = root / "source"
    shutil.copytree(
        PROJECT,
        source,
        ignore=lambda _, names: [n for n in names if n in LEFT_OUT or n.endswith(".egg-info")],
    )
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / "bin"
    constraints = ["-c", str(PROJECT / "constraints.txt")] if (PROJECT / "constraints.txt").exists() else []
    installed = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", *constraints, str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    # The packaging metadata is current: setuptools warns about none of it.
    assert "Deprecat" not in installed.stderr, installed.stderr[-3000:]
    return bin_dir


def run(bin_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PROMOTER_", "PYTHON"))}
    return subprocess.run(
        [str(bin_dir / "promoter"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=bin_dir.parent,  # not the project: nothing may be imported from the source tree
        env={**clean, **(env or {})},
        timeout=300,
    )


def test_the_sandbox_validators_are_not_installed(plain: Path) -> None:
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    found = subprocess.run(
        [str(plain / "python"), "-c", probe, *SANDBOX_ONLY], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"
    requires = subprocess.run(
        [str(plain / "python"), "-c", "import importlib.metadata as m; print(m.requires('promoter'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "openapi-core" in requires and 'extra == "sandbox"' in requires  # declared, but as the extra


def test_every_command_is_listed_and_the_sandbox_ones_say_how_to_get_the_extra(plain: Path) -> None:
    listed = run(plain, "--help")
    assert listed.returncode == 0, listed.stderr
    for command in ("bump", "new", "promote", "status", "serve", "webhook", "approve", "sandbox", "demo"):
        assert command in listed.stdout
    for command in ("sandbox", "demo"):
        refused = run(plain, command)
        assert refused.returncode != 0
        assert "pip install 'promoter[sandbox]'" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


def test_the_server_commands_load_and_refuse_without_a_prefect_server(plain: Path) -> None:
    """They import the deployments, flows and tasks, then stop at the missing PREFECT_API_URL."""
    sender = {"PROMOTER_WEBHOOK_PATH_TOKEN": "a-path-token-long-enough-for-the-receiver-0123"}
    for command in (["serve"], ["webhook"], ["approve", "--app", "apps/podinfo"]):
        refused = run(plain, *command, env=sender)
        assert refused.returncode != 0, command
        assert "PREFECT_API_URL" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    loaded = subprocess.run(
        [str(plain / "python"), "-c", "import deployments.serve, deployments.webhook, flows.promotion"],
        capture_output=True,
        text=True,
        check=False,
        cwd=plain.parent,
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Sandbox]:
    with run_sandbox(tmp_path / "sandbox", seed_demo=True, flux_delay=0.05) as sandbox:
        yield sandbox


@pytest.mark.parametrize("kind", ["github", "azure"])
def test_new_and_status_work_against_a_forge(plain: Path, forge: Sandbox, tmp_path: Path, kind: str) -> None:
    repo = (
        forge.forge.repo("github", "acme", "gitops")
        if kind == "github"
        else forge.forge.repo("azure", "acme", "gitops", "gitops")
    )
    checkout = tmp_path / "checkout"
    git_env = {**os.environ, **forge.git_env()}
    subprocess.run(["git", "clone", "-q", forge.clone_url(repo), str(checkout)], env=git_env, check=True)
    flags = ["--sourcedir", str(checkout), "--cache-dir", str(tmp_path / "cache"), "--poll-interval", "0.05"]
    flags += ["--provider", "github"] if kind == "github" else []
    env = {"PROMOTER_TOKEN": forge.token}

    opened = run(plain, "new", "--group", "apps", "--app", "podinfo", "--tag", "v2", *flags, env=env)
    assert opened.returncode == 0, opened.stderr
    pr = next(iter(repo.pulls.values()))
    assert pr.head_ref == "promote/apps-podinfo"

    checked = run(plain, "status", "--branch", "promote/apps-podinfo", *flags, env=env)
    assert checked.returncode == 0, checked.stderr
    assert "first environment" in checked.stdout
    merged = forge.wait_for(lambda: pr.merge_commit_sha, timeout=30)  # auto-merge, once the check is green

    promoted = run(plain, "promote", "--commit", merged, *flags, env=env)
    assert promoted.returncode == 0, promoted.stderr
    assert "with pull request" in promoted.stdout
    gated = run(plain, "status", "--branch", "promote/apps-podinfo", *flags, env=env)
    assert gated.returncode == 0, gated.stderr
    assert "successful reconciliation for apps-dev" in gated.stdout
    assert forge.violations() == []
