"""Many bumps pushed to one branch at once: does every one land on `main`, once, with nothing lost?

Starts the sandbox forge (real smart-HTTP git, `main` protected: fast-forward only), creates `acme/race`
with N apps (`apps/{dev,qa,prod}/app-NN.yaml`), and forks N worker processes before anything else runs, so
each is a separate OS process with its own cache directory (its own clone), like separate workers. Each
warms its clone, waits at a barrier, then publishes a bump of its app's dev environment straight to `main`
with `Workspace.publish` (leased push; when `main` moved, the edit is re-applied on the new base: a rebase).
This is the path of direct bumps and of the flow's branch pushes; merges to `main` go through the forge.

Guarantees checked by reading `main` afterwards (exit status 1 when one is broken):
- every worker pushed, without error, and the commit it pushed is on `main` (none lost);
- exactly one bump commit per app on `main` since the apps were added (none duplicated), nothing else;
- the history is linear (no merge commit, each commit's parent is the one before it);
- every app's dev manifest carries its new tag; qa and prod keep the old one.
Also reported: rebases (total, per worker max), publish time per worker, wall time from the barrier.

    .venv/bin/python bench/push_race.py [--apps N] [--root DIR]
    .venv/bin/python bench/push_race.py --apps 5        # the short version, for CI
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from threading import BrokenBarrierError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from concurrency import ENVS, GROUP, OLD_TAG, REGISTRY, Row, app_files, app_name, print_rows, tag_of

from promoter.bump import bump_edit
from promoter.pull_request import PRState
from promoter.workspace import Workspace
from sandbox.sample import config_text
from sandbox.testing import run_sandbox

READY_TIMEOUT = 300.0


@dataclass(frozen=True)
class Outcome:
    """What one worker saw; `error` is set when it did not push."""

    index: int
    sha: str = ""
    pushed: bool = False
    rebases: int = 0
    seconds: float = 0.0
    error: str = ""


def message(index: int) -> str:
    return PRState(group=GROUP, app=app_name(index), tag=tag_of(index), env="dev").title()


def worker(index: int, cache: Path, config: Queue[tuple[str, str]], go: Barrier, out: Queue[Outcome]) -> None:
    """One process: warm its own clone, wait for the others, publish one bump to main."""
    workspace, error = None, ""
    try:
        url, token = config.get(timeout=READY_TIMEOUT)
        workspace = Workspace(url, cache, token=token)
        workspace.fetch()  # a warm clone, as a long-lived worker has: the race is on the push
    except Exception as exc:
        error = f"warm-up: {exc}"
    try:
        go.wait(timeout=READY_TIMEOUT)
    except BrokenBarrierError:
        error = error or "the barrier broke"
    if workspace is None or error:
        out.put(Outcome(index, error=error))
        return
    started = time.monotonic()
    try:
        edit = bump_edit(GROUP, app_name(index), "dev", tag_of(index))
        result = workspace.publish("main", edit, message(index))
        out.put(Outcome(index, result.sha, result.pushed, result.rebases, time.monotonic() - started))
    except Exception as exc:
        out.put(Outcome(index, seconds=time.monotonic() - started, error=str(exc)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=20, help="workers, one app each (default 20)")
    parser.add_argument("--root", help="keep the sandbox and the clones here (default: a temp dir)")
    args = parser.parse_args()
    count: int = args.apps
    # Fork before the sandbox starts its threads: the workers then share none of them.
    context = multiprocessing.get_context("fork")
    config: Queue[tuple[str, str]] = context.Queue()
    out: Queue[Outcome] = context.Queue()
    go = context.Barrier(count + 1)
    with tempfile.TemporaryDirectory(prefix="promoter-push-race-") as tmp:
        root = Path(args.root) if args.root else Path(tmp)
        workers = [
            context.Process(
                target=worker,
                args=(i, root / "clones" / f"w{i:02d}", config, go, out),
                daemon=True,
            )
            for i in range(count)
        ]
        for process in workers:
            process.start()
        with run_sandbox(root / "sandbox", specs=None) as sandbox:
            files = {"gitops-promotion.yaml": config_text(), **app_files(count)}
            repo = sandbox.create_repo("acme/race", files=files, protect={"main": []})
            git = sandbox.forge.git(repo)
            seed = git.branches()["main"]
            for _ in workers:
                config.put((sandbox.clone_url(repo), sandbox.token))
            print(f"{count} workers warming their clones ...", flush=True)
            go.wait(timeout=READY_TIMEOUT)
            started = time.monotonic()
            outcomes = sorted((out.get(timeout=READY_TIMEOUT) for _ in workers), key=lambda o: o.index)
            wall = time.monotonic() - started
            for process in workers:
                process.join(timeout=30)
            head = git.branches()["main"]
            history = [
                line.split() for line in git.out("rev-list", "--parents", f"{seed}..{head}").splitlines()
            ]
            subjects = collections.Counter(git.out("log", "--format=%s", f"{seed}..{head}").splitlines())
            manifests = {
                (i, env): (git.read_file(head, f"{GROUP}/{env}/{app_name(i)}.yaml") or b"").decode()
                for i in range(count)
                for env in ENVS
            }
            ancestor = git.is_ancestor(seed, head)

    on_main = {line[0] for line in history}
    chain = [line[0] for line in history] + [seed]
    linear = ancestor and all(len(line) == 2 and line[1] == chain[n + 1] for n, line in enumerate(history))
    expected = {message(i) for i in range(count)}
    failed = [o for o in outcomes if o.error or not o.pushed]
    lost = [o for o in outcomes if o.pushed and o.sha not in on_main]
    once = sum(1 for i in range(count) if subjects[message(i)] == 1)
    unexpected = sum(n for subject, n in subjects.items() if subject not in expected)
    new_tag = sum(
        1 for i in range(count) if f"{REGISTRY}/{app_name(i)}:{tag_of(i)} " in manifests[(i, "dev")]
    )
    untouched = sum(
        1
        for i in range(count)
        for env in ENVS[1:]
        if f"{REGISTRY}/{app_name(i)}:{OLD_TAG} " in manifests[(i, env)]
    )
    rebases = [o.rebases for o in outcomes]
    seconds = sorted(o.seconds for o in outcomes if not o.error)
    rows: list[Row] = [
        ("workers (processes, own clone each)", str(count), None),
        ("bumps pushed without error", f"{count - len(failed)}/{count}", not failed),
        ("pushed commits lost from main", str(len(lost)), not lost),
        ("commits on main since the apps were added", f"{len(history)}/{count}", len(history) == count),
        ("apps with exactly one bump commit", f"{once}/{count}", once == count),
        ("other commits on main", str(unexpected), unexpected == 0),
        ("history linear (no merge, no gap)", "yes" if linear else "no", linear),
        ("dev manifests at the new tag", f"{new_tag}/{count}", new_tag == count),
        ("qa and prod manifests untouched", f"{untouched}/{2 * count}", untouched == 2 * count),
        ("rebases: total / max per worker", f"{sum(rebases)} / {max(rebases, default=0)}", None),
        (
            "publish time: median / max",
            f"{statistics.median(seconds):.2f} s / {seconds[-1]:.2f} s" if seconds else "-",
            None,
        ),
        ("wall time: barrier -> last push", f"{wall:.2f} s", None),
    ]
    print_rows(f"{count} bumps of different apps pushed to main of one repository at once", rows)
    for outcome in failed:
        print(f"  {app_name(outcome.index)}: {outcome.error or 'nothing pushed'}")
    return 0 if all(ok is not False for _, _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
