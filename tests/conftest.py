"""Fixtures shared by every suite: throw-away GitOps trees and git repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.sample import write_gitops_tree
from tests.helpers import run_git


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
