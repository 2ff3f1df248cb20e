"""Does the cost of one bump grow with the size or history of the GitOps repository?

Builds two repositories with `git fast-import`: a small one (10 apps x 3 envs, 10 commits) and a large one
(5,000 apps in 50 groups x 3 envs, 5,000 commits of history), each behind a bare remote kept packed as a
forge keeps its repositories; a third, "large-flat", puts all 5,000 apps in one directory. For each, after
one warm-up bump that fills the cached clone, it times ROUNDS bumps of different apps, with main moving by
one commit before each (as when earlier promotions merge), split into: prepare the workspace from the
cached clone (fetch), rewrite, commit, push. Prints a table of medians and
the large/small ratio of the total. Goal: the large repository costs at most 2x the small one.
Exit status 1 when the goal is missed.

    .venv/bin/python bench/bump_scale.py [--rounds N] [--large-apps N] [--history N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from promoter.bump import bump_edit
from promoter.workspace import Workspace
from sandbox.sample import DEPLOYMENT, config_text

ENVS = ("dev", "qa", "prod")
PHASES = ("prepare", "rewrite", "commit", "push")


def app_path(index: int, groups: int, env: str) -> tuple[str, str, str]:
    """(group, app, path) of app number `index` when the apps are spread over `groups` groups."""
    group, app = f"team{index % groups:02d}", f"app{index:05d}"
    return group, app, f"{group}/{env}/{app}.yaml"


def build_remote(where: Path, apps: int, groups: int, history: int) -> str:
    """A bare repository whose main holds `apps` apps in `groups` groups and three envs, after `history` commits."""
    bare = where / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare)], check=True)
    stream: list[bytes] = []
    mark = 0

    def blob(text: str) -> int:
        nonlocal mark
        mark += 1
        data = text.encode()
        stream.append(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(data), data))
        return mark

    def commit(message: str, files: dict[str, int]) -> None:
        data = message.encode()
        header = b"commit refs/heads/main\ncommitter bench <bench@example.com> %d +0000\ndata %d\n%s\n" % (
            1_700_000_000 + len(stream),
            len(data),
            data,
        )
        body = b"".join(b"M 100644 :%d %s\n" % (m, path.encode()) for path, m in files.items())
        stream.append(header + body + b"\n")

    def manifest(index: int, env: str, tag: str) -> dict[str, int]:
        group, app, path = app_path(index, groups, env)
        return {path: blob(DEPLOYMENT.format(group=group, app=app, registry="ghcr.io/acme", tag=tag))}

    files = {"gitops-promotion.yaml": blob(config_text())}
    for env in ENVS:
        for index in range(apps):
            files |= manifest(index, env, "1.0.0")
    commit("seed", files)
    for i in range(1, history):
        commit(f"history {i}", manifest(i % apps, ENVS[i % 3], f"1.0.{i}"))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=bare, input=b"".join(stream), check=True)
    # Leave the remote as a forge's maintenance would: one pack with a bitmap, and a commit graph.
    subprocess.run(["git", "repack", "-adq", "--write-bitmap-index"], cwd=bare, check=True)
    subprocess.run(["git", "commit-graph", "write", "--reachable"], cwd=bare, check=True, capture_output=True)
    return bare.as_uri()


def time_bumps(url: str, cache: Path, apps: int, groups: int, rounds: int) -> dict[str, list[float]]:
    workspace = Workspace(url, cache)
    merger = Workspace(url, cache / "merger")
    timings: dict[str, list[float]] = {phase: [] for phase in (*PHASES, "total")}
    for i in range(rounds + 1):
        group, app, _ = app_path((i * 7919) % apps, groups, "dev")
        branch = f"promote/{group}-{app}"
        # As in real use, main moves between bumps (an earlier promotion merged); not timed.
        merged_group, merged_app, _ = app_path((i * 104729 + 1) % apps, groups, "qa")
        merger.publish("main", bump_edit(merged_group, merged_app, "qa", f"merged-{i}"), "merge")
        start = time.perf_counter()
        base = workspace.fetch()
        snapshot = workspace.snapshot(base)
        prepared = time.perf_counter()
        changes = bump_edit(group, app, "dev", f"bench-{i}")(snapshot)
        rewritten = time.perf_counter()
        sha = workspace.commit(base, changes, f"Promote {group}/{app} version bench-{i} to environment dev")
        committed = time.perf_counter()
        assert sha is not None and list(changes) == [f"{group}/dev/{app}.yaml"]
        workspace.push(sha, branch, workspace.remote_sha(branch))
        pushed = time.perf_counter()
        if i == 0:
            continue  # the warm-up fills the cached clone and its marker index
        phases = (prepared - start, rewritten - prepared, committed - rewritten, pushed - committed)
        for phase, seconds in zip(PHASES, phases, strict=True):
            timings[phase].append(seconds)
        timings["total"].append(pushed - start)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--large-apps", type=int, default=5000)
    parser.add_argument("--history", type=int, default=5000)
    args = parser.parse_args()
    n = args.large_apps
    repos = {  # label: (apps, groups, commits)
        "small": (10, 1, 10),
        "large": (n, 50, args.history),
        "large-flat": (n, 1, args.history),
    }
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="promoter-bench-") as tmp:
        for label, (apps, groups, history) in repos.items():
            where = Path(tmp) / label
            where.mkdir()
            started = time.perf_counter()
            url = build_remote(where, apps, groups, history)
            built = time.perf_counter() - started
            print(
                f"built {label}: {apps} apps in {groups} group(s) x 3 envs, {history} commits, in {built:.1f} s",
                flush=True,
            )
            results[label] = time_bumps(url, where / "cache", apps, groups, args.rounds)

    medians = {
        label: {p: statistics.median(t) * 1000 for p, t in result.items()}
        for label, result in results.items()
    }
    print(f"\nmedian of {args.rounds} bumps (ms)")
    print(
        f"{'repository':<12}{'apps':>6}{'groups':>7}{'commits':>8}"
        + "".join(f"{p:>9}" for p in (*PHASES, "total"))
        + f"{'vs small':>10}"
    )
    for label, (apps, groups, history) in repos.items():
        row = "".join(f"{medians[label][p]:>9.1f}" for p in (*PHASES, "total"))
        ratio = medians[label]["total"] / medians["small"]["total"]
        print(f"{label:<12}{apps:>6}{groups:>7}{history:>8}{row}{ratio:>9.2f}x")
    ratio = medians["large"]["total"] / medians["small"]["total"]
    print(f"\ngoal: large / small <= 2.0x; measured {ratio:.2f}x ({'met' if ratio <= 2.0 else 'MISSED'})")
    print(
        "large-flat keeps all 5,000 apps in one directory: git rewrites and transfers that whole tree object"
    )
    print("on every commit, so its cost follows the directory's size (shown for information).")
    return 0 if ratio <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
