"""`promoter demo`: show a bump on a sample GitOps repository, with nothing to set up.

It writes a repository laid out as gitops-promotion expects under `.promoter/demo`, commits it, bumps
`apps/podinfo` in dev and prints the resulting diff, the minimal change a promotion PR carries.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from promoter.config import load_config
from promoter.manifests import rewrite_environment
from promoter.release import resolve_apps
from promoter.sample import write_gitops_tree


def _git(root: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=promoter demo", "-c", "user.email=demo@localhost", *args]
    return subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout


def run_demo(root: Path, tag: str = "a8b91c33") -> int:
    if root.exists():
        shutil.rmtree(root)
    write_gitops_tree(root, {"apps": ["podinfo", "frontend"]})
    _git(root, "init", "--quiet", "--initial-branch=main")
    _git(root, "add", "-A")
    _git(root, "commit", "--quiet", "-m", "Seed the sample GitOps repository")
    print(f"sample GitOps repository: {root}")

    config = load_config(root)
    apps = resolve_apps(root, config, "ghcr.io/acme/podinfo")
    print(f"image ghcr.io/acme/podinfo feeds: {', '.join(f'{g}/{a}' for g, a in apps)}")
    env = config.first_environment().name
    for group, app in apps:
        result = rewrite_environment(root, group, app, env, tag)
        print(f"bumped {group}/{app} to {tag} in {env}: {', '.join(result.written)}\n")
    print(_git(root, "diff"))
    return 0
