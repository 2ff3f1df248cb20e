"""Nothing a client sends can corrupt a repository: merges into one branch are serialised."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import httpx

from sandbox.forge import Repository
from sandbox.testing import Sandbox

N = 8


def _merge(sandbox: Sandbox, number: int) -> int:
    response = httpx.put(
        f"{sandbox.github_api}/repos/acme/gitops/pulls/{number}/merge",
        json={"merge_method": "merge"},
        headers={"Authorization": f"token {sandbox.token}"},
        timeout=60,
    )
    return response.status_code


def test_concurrent_merges_of_different_pull_requests_all_land(sandbox: Sandbox, gitops: Repository) -> None:
    sandbox.set_mergeability_delay(0)  # about serialising merges; GitHub's mergeability wait is tested apart
    forge = sandbox.forge
    numbers = []
    for index in range(N):
        sha = forge.commit_files(
            gitops, f"feature-{index}", {f"notes/{index}.txt": f"{index}\n".encode()}, "note"
        )
        forge.add_status(gitops, sha, "promoter-bot", "success", "promoter")
        numbers.append(
            forge.create_pull(gitops, "promoter-bot", f"feature-{index}", "main", f"note {index}").number
        )
    with ThreadPoolExecutor(N) as pool:
        codes = list(pool.map(lambda n: _merge(sandbox, n), numbers))
    assert codes == [200] * N
    git = forge.git(gitops)
    main = gitops.branches["main"]
    merged = {forge.pull(gitops, n).merge_commit_sha for n in numbers}
    first_parents = git.out("rev-list", "--first-parent", f"--max-count={N}", main).split()
    assert set(first_parents) == merged  # one merge commit per PR, each on top of the previous
    assert sorted(git.files(main, "notes")) == sorted(f"notes/{i}.txt" for i in range(N))
    assert subprocess.run(["git", "fsck", "--no-progress"], cwd=git.path, capture_output=True).returncode == 0


def test_the_same_pull_request_merged_concurrently_merges_once(sandbox: Sandbox, gitops: Repository) -> None:
    sandbox.set_mergeability_delay(0)
    forge = sandbox.forge
    sha = forge.commit_files(gitops, "feature", {"notes/x.txt": b"x\n"}, "note")
    forge.add_status(gitops, sha, "promoter-bot", "success", "promoter")
    number = forge.create_pull(gitops, "promoter-bot", "feature", "main", "note").number
    before = gitops.branches["main"]
    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(lambda _: _merge(sandbox, number), range(4)))
    assert codes == [200, 405, 405, 405]
    assert forge.git(gitops).out("rev-list", "--count", f"{before}..main") == "2"  # the commit and one merge
