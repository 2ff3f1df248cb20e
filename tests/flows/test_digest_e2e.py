"""A digest-pinned app released end to end, on both forge personalities: the registry's digest reaches
every environment's manifests and every PR's metadata, and nothing is pinned that was not pinned before.

One stack per personality (the session's Prefect server is shared; the GitHub stack is stopped, and its
deployments removed, before the Azure DevOps one starts).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from promoter.pull_request import parse_body
from sandbox.prefect_server import PrefectServer
from sandbox.stack import FINAL, Stack, promoter_stack
from tests.flows.test_story_e2e import promoter, state, wait

pytestmark = pytest.mark.timeout(600)
IMAGE = "ghcr.io/acme/pinned"
OLD = "sha256:" + "0" * 64
NEW = "sha256:" + "5e" * 32
PINNED = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pinned
spec:
  template:
    spec:
      containers:
        - name: pinned
          image: ghcr.io/acme/pinned:1.0@{digest} # {{"$imagepolicy": "apps:pinned"}}
        - name: helper
          image: ghcr.io/acme/pinned:1.0 # {{"$imagepolicy": "apps:pinned"}}
"""


@pytest.fixture(scope="module", params=["github", "azure"])
def stack(
    request: pytest.FixtureRequest, prefect_api: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp(f"digest-{request.param}")
    with promoter_stack(
        root,
        kind=request.param,
        scenario={"default": {"delay": 0.2}},
        prefect=prefect_api,
        poll_interval=0.2,
        sweep_seconds=10,
    ) as running:
        files = {
            f"apps/{env}/pinned.yaml": PINNED.format(digest=OLD).encode() for env in ("dev", "qa", "prod")
        }
        running.sandbox.forge.commit_files(running.repo, "main", files, "A pinned app")
        yield running
        assert running.sandbox.violations() == []


def main_file(stack: Stack, path: str) -> str:
    sha = stack.sandbox.forge.resolve(stack.repo, "main")
    data = stack.sandbox.forge.git(stack.repo).read_file(str(sha), path)
    assert data is not None, path
    return str(data.decode())


def pulls(stack: Stack) -> list[Any]:
    return [pr for _, pr in sorted(stack.repo.pulls.items()) if "apps/pinned " in pr.title]


def test_the_pushed_digest_reaches_every_environment_and_every_pr(stack: Stack) -> None:
    tag = f"2.0-{stack.repo.kind}"  # the server is shared: each personality's run has its own name
    assert stack.push(IMAGE, tag, NEW).status_code == 202
    waiting = wait(stack, tag, {"PAUSED", *FINAL})
    assert waiting["state_type"] == "PAUSED", state(waiting)
    approved = promoter(stack, "approve", "--app", "apps/pinned", "--approver", "ops@acme")
    assert approved.returncode == 0, approved.stderr
    done = wait(stack, tag, FINAL)
    assert state(done)[0] == "COMPLETED", state(done)

    prs = pulls(stack)
    assert [parse_body(pr.body).env for pr in prs] == ["dev", "qa", "prod"]
    assert all(parse_body(pr.body).digest == NEW for pr in prs)
    for env in ("dev", "qa", "prod"):
        text = main_file(stack, f"apps/{env}/pinned.yaml")
        assert f"image: ghcr.io/acme/pinned:{tag}@{NEW} #" in text  # the pin follows the tag
        assert f"image: ghcr.io/acme/pinned:{tag} #" in text  # an unpinned image stays unpinned
        assert OLD not in text
