"""Does a promotion survive SIGKILL at any point, and end exactly as an uninterrupted one?

Starts the whole stack on loopback (`sandbox/stack.py`), Flux reporting healthy after FLUX_DELAY s so
that every wait has a window. Each release (one app, one tag) runs twice: first uninterrupted in a twin
repository `acme/calm` (same files, same protection; the run created through the API), then as the story
in `acme/gitops` (signed registry webhook -> event -> automation -> run) while this script SIGKILLs the
process executing the run (and its git children) at seeded points. After each kill the crashed run is set
back to Scheduled ("AwaitingRetry") and `promoter serve` runs it again; the prod gate is approved through
the API (again when a kill lands after the approval). Kill points, per environment E (dev, qa, prod):

  running     the run is Running, seeded delay 0-1 s (clone, resolve, first bump)
  pushed:E    E's branch push landed in the forge, before the push is answered and before E's PR exists
  pr:E        E's PR exists, seeded delay 0-0.5 s (check, auto-merge, suspend)
  merged:E    E's merge landed on main, before Flux's status (prod: before the merge call is answered)
  flux:E      E merged, seeded delay within FLUX_DELAY (waiting for Flux)

The first two kills are a `pushed` and a `merged` one, the rest follow a seeded shuffle of all points, a
few per release. A kill counts once the runner reports the run Crashed; a point the run passed with no
process to kill (or as it suspended) is moved to the next release. Guarantees
(from the issue), per release against its twin: the run completes and is the release's only run; exactly
one PR per environment on `promote/apps-<app>`, each merged; the same commit subjects on main (PR numbers
aside), so no duplicate bump commit or merge; the same branches (no orphan); at the end, the same main
tree. Prints kills per point and per release; exit status 1 when a guarantee is broken or fewer kills hit
than asked. Measured while others' benchmarks loaded the 2-core machine (load average 12-18): `--kills 2`
(one release) 5.5 min, the default 24 (7 releases) 21 min, 3-4 min of each starting the Prefect server.

    .venv/bin/python bench/chaos.py [--kills N] [--per-release K] [--seed S] [--root DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from promoter.pull_request import PRState
from sandbox.forge import Repository
from sandbox.prefect_server import PrefectServer, prefect_server
from sandbox.sample import DEPLOYMENT
from sandbox.stack import Stack, promoter_stack

GROUP, REGISTRY, ENVS, GATE = "apps", "ghcr.io/acme", ("dev", "qa", "prod"), "prod"
FLUX_DELAY = 1.5
POINTS = ("running", *(f"{kind}:{env}" for env in ENVS for kind in ("pushed", "pr", "merged", "flux")))
DELAY = {"running": 1.0, "pr": 0.5, "flux": 0.8 * FLUX_DELAY}  # the others fire inside the forge
RUN_TIMEOUT = 300.0
APPROVAL = {"decision": "approve", "approver": "chaos@acme", "comment": "chaos bench"}


# -- finding the process executing a run -----------------------------------------------------------------


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line), zombies left out."""
    found: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            if state != "Z":
                found[int(entry.name)] = (int(ppid), cmdline)
    return found


def _below(procs: dict[int, tuple[int, str]], roots: Iterable[int]) -> list[int]:
    """Every descendant of `roots`, roots excluded."""
    out, todo = [], list(roots)
    while todo:
        parent = todo.pop()
        children = [pid for pid, (ppid, _) in procs.items() if ppid == parent]
        out += children
        todo += children
    return out


def kill_flow_run(stack: Stack, run_id: str) -> list[int]:
    """SIGKILL the process executing `run_id` and its descendants (git mid-push too); the pids killed.

    `promoter serve` logs the pid of each process it starts for a run; the latest one is the live one."""
    started = stack.flow_run_pids(run_id)
    procs = _processes()
    roots = [started[-1]] if started and started[-1] in procs else []
    killed = [*roots, *_below(procs, roots)]
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    return killed


# -- driving one release -----------------------------------------------------------------------------------


@dataclass
class Release:
    app: str
    tag: str
    points: list[str]
    hit: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{GROUP}/{self.app}:{self.tag}"

    def title(self, env: str) -> str:
        return PRState(group=GROUP, app=self.app, tag=self.tag, env=env).title()

    def line(self) -> str:
        return f"{self.name:<24} killed at {', '.join(self.hit) or '-':<48} {'; '.join(self.problems) or 'converged'}"


class Chaos:
    """Arms one kill point at a time. `pushed` and `merged` fire from the forge's ref listener, inside the
    request that moved the ref: the kill lands before the promoter hears the answer."""

    def __init__(self, stack: Stack, rng: random.Random) -> None:
        self.stack, self.rng, self.forge = stack, rng, stack.sandbox.forge
        self.lock = threading.Lock()
        self.armed = ""
        self.killed: list[int] | None = None  # once a kill fired: the pids ([] when no process was there)
        self.release = Release("", "", [])
        self.run_id = ""
        self.known: set[str] = set()  # the runs that are not the one being driven
        self.forge.subscribe(self._on_ref)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """A Prefect API call; 503 (SQLite busy) is tried again, as Prefect's own client does."""
        for delay in (0.5, 1, 2, 4, 8, 0):
            response = httpx.request(method, f"{self.stack.prefect.api_url}{path}", json=body, timeout=30)
            if response.status_code != 503 or not delay:
                break
            time.sleep(delay)
        response.raise_for_status()
        return response.json() if response.content else None

    def pr(self, env: str) -> Any:
        title = self.release.title(env)
        return next((pr for pr in self.forge.pulls(self.stack.repo) if pr.title == title), None)

    def _on_ref(self, repo: Repository, branch: str, _before: str | None, after: str | None) -> None:
        with self.lock:
            kind, _, env = self.armed.partition(":")
            if not env or repo.key != self.stack.repo.key or after is None:
                return
            if kind == "pushed":
                index = ENVS.index(env)
                ready = index == 0 or getattr(self.pr(ENVS[index - 1]), "merged", False)
                fire = branch == f"promote/{GROUP}-{self.release.app}" and ready and self.pr(env) is None
            else:
                fire = (
                    kind == "merged"
                    and branch == "main"
                    and getattr(self.pr(env), "merge_commit_sha", "") == after
                )
            if fire:
                self._kill()

    def _kill(self) -> None:
        """Under the lock: kill the run's processes and disarm. A `pushed` point armed before the run was
        known kills the one process `promoter serve` started for a run not seen before."""
        if not self.run_id:
            fresh = [run for run in self.stack.flow_run_processes().values() if run not in self.known]
            self.run_id = fresh[-1] if fresh else ""
        self.killed, self.armed = kill_flow_run(self.stack, self.run_id) if self.run_id else [], ""

    def arm_before_start(self, release: Release, known: set[str]) -> None:
        """Arm a first `pushed` point before the webhook is sent: a fast run pushes its first branch before a
        poll could learn its id."""
        with self.lock:
            self.release, self.run_id, self.killed, self.known = release, "", None, known
            first = release.points[0] if release.points else ""
            self.armed = first if first.startswith("pushed:") else ""

    def _passed(self, point: str, state: str) -> bool:
        """Whether the run is beyond `point`: arming it would kill a later stage, or nothing."""
        kind, _, env = point.partition(":")
        if state == "COMPLETED" or (state == "PAUSED" and not (env == GATE and kind in ("merged", "flux"))):
            return True
        pr = self.pr(env or ENVS[0])
        merged = pr is not None and bool(pr.merged)
        if kind in ("running", "pushed"):
            return pr is not None
        if kind == "pr" or not merged:  # `merged` waits for Flux: a PR reads merged before the listener fires
            return merged
        statuses = self.forge.statuses(self.stack.repo, pr.merge_commit_sha)
        return any(s.context.startswith(f"kustomization/{GROUP}-{env}/") for s in statuses)

    def _due(self, point: str, state: str) -> bool:
        """Whether a polled point is reached, its process up (the run is Running)."""
        kind, _, env = point.partition(":")
        pr = self.pr(env) if kind in ("pr", "flux") and state == "RUNNING" else None
        return state == "RUNNING" and (kind == "running" or (pr is not None and (kind == "pr" or pr.merged)))

    def drive(self, release: Release, run_id: str) -> str:
        """Until the run completes: kill at each point in turn, restart after each kill, approve the gate.

        Returns "COMPLETED", or what stopped the run."""
        queue, deadline, approved = list(release.points), time.monotonic() + RUN_TIMEOUT, ""
        with self.lock:
            if self.release is not release:  # else armed before the start: a kill may have fired already
                self.killed = None
            self.release, self.run_id = release, run_id
        while time.monotonic() < deadline:
            run = self.api("GET", f"/flow_runs/{run_id}")
            state, point = str(run["state_type"]), queue[0] if queue else ""
            with self.lock:
                self.armed = point if self.killed is None else ""
                if self.killed is None and point and self._passed(point, state):
                    self.killed, self.armed = [], ""
            if self.killed is None and point and self._due(point, state):
                time.sleep(self.rng.uniform(0, DELAY[point.partition(":")[0]]))
                with self.lock:
                    self._kill()
            with self.lock:
                fired, self.killed = self.killed, None
            if fired is not None:
                crashed = bool(fired) and self._restart(run_id)
                (release.hit if crashed else release.missed).append(queue.pop(0))
            elif state == "PAUSED" and approved != run["state"]["id"]:
                approved = run["state"]["id"]
                self.api("POST", f"/flow_runs/{run_id}/resume", {"run_input": APPROVAL})
            elif state == "COMPLETED" and not queue:
                return state
            elif state in ("FAILED", "CRASHED", "CANCELLED"):
                release.missed += queue
                return f"{state} {run['state_name']}: {(run.get('state') or {}).get('message')}"
            time.sleep(0.05)
        return f"not completed within {RUN_TIMEOUT:.0f} s"

    def _restart(self, run_id: str) -> bool:
        """Once the runner has reported the crash, hand the run back to it, as an operator's retry does.

        False when the run did not crash: its process was leaving anyway (suspended or done)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = self.api("GET", f"/flow_runs/{run_id}")["state_type"]
            if state in ("CRASHED", "FAILED"):
                retry = {"type": "SCHEDULED", "name": "AwaitingRetry"}
                self.api("POST", f"/flow_runs/{run_id}/set_state", {"state": retry, "force": True})
                return True
            if state in ("PAUSED", "COMPLETED"):
                return False
            time.sleep(0.2)
        raise TimeoutError(f"run {run_id} not reported crashed 120 s after its process was killed")


# -- the bench ---------------------------------------------------------------------------------------------


def plan(kills: int, seed: int) -> list[str]:
    """`kills` points: a `pushed` and a `merged` one first, then a seeded shuffle of all, cycled."""
    rng = random.Random(seed)
    first = [rng.choice([p for p in POINTS if p.startswith(kind)]) for kind in ("pushed", "merged")]
    rest = [p for p in POINTS if p not in first]
    rng.shuffle(rest)
    return [(first + rest)[i % len(POINTS)] for i in range(kills)]


def seed_apps(stack: Stack, count: int) -> Repository:
    """`count` apps in `acme/gitops`, then its twin `acme/calm` with the same files and protection."""
    forge = stack.sandbox.forge
    files = {
        f"{GROUP}/{env}/chaos-{i:02d}.yaml": DEPLOYMENT.format(
            group=GROUP, app=f"chaos-{i:02d}", registry=REGISTRY, tag="1.0"
        ).encode()
        for i in range(count)
        for env in ENVS
    }
    forge.commit_files(stack.repo, "main", files, "Chaos apps")
    bare = forge.git(stack.repo)
    twin = {
        path: bare.read_file("main", path) or b""
        for path in bare.out("ls-tree", "-r", "--name-only", "main").split()
    }
    return stack.sandbox.create_repo("acme/calm", files=twin, protect=dict(stack.repo.protection))


def history(stack: Stack, repo: Repository, start: str) -> list[str]:
    """Subjects of main's commits since `start`, PR numbers left out (they differ between the twins)."""
    log = stack.sandbox.forge.git(repo).out("log", "--format=%s", f"{start}..main")
    return [re.sub(r"#\d+", "#N", line) for line in log.splitlines()]


def check(stack: Stack, calm: Repository, start: list[str], release: Release, known: set[str]) -> list[str]:
    """The guarantees for one release, against its uninterrupted twin (`known`: runs that are not its)."""
    forge, problems = stack.sandbox.forge, []
    runs = [r for r in stack.runs() if r["name"] == release.name and r["id"] not in known]
    if len(runs) != 1:
        problems.append(f"{len(runs)} runs")
    prs = [pr for pr in forge.pulls(stack.repo) if f"{GROUP}/{release.app} " in pr.title]
    if sorted(pr.title for pr in prs) != sorted(release.title(env) for env in ENVS):
        problems.append(f"PRs {sorted(pr.title.rsplit(' ', 1)[1] for pr in prs)}")
    if any(not pr.merged or pr.head_ref != f"promote/{GROUP}-{release.app}" for pr in prs):
        problems.append(f"PRs not all merged from their branch: {[(pr.number, pr.state) for pr in prs]}")
    ours, theirs = history(stack, stack.repo, start[0]), history(stack, calm, start[1])
    problems += [
        f"{ours.count(t)} bump commits for {t}" for t in map(release.title, ENVS) if ours.count(t) != 1
    ]
    if ours != theirs:
        odd = sorted(set(ours) ^ set(theirs)) or [s for s in ours if ours.count(s) != theirs.count(s)]
        problems.append(f"main's commits differ from the uninterrupted run's: {odd[:3]}")
    mine, twin = set(forge.git(stack.repo).branches()), set(forge.git(calm).branches())
    if mine != twin:
        problems.append(f"branches differ: {sorted(mine ^ twin)}")
    return problems


def release_once(chaos: Chaos, calm: Repository, release: Release) -> tuple[str, set[str]]:
    """The release uninterrupted in the twin (a run created through the API), then as the story (registry
    webhook -> run) killed at its points; the chaos run's outcome and the ids of the runs that are not it."""
    known = {run["id"] for run in chaos.stack.runs()}
    deployment = chaos.api("GET", "/deployments/name/promote-release/promote-release")
    parameters = {
        "image": f"{REGISTRY}/{release.app}",
        "tag": release.tag,
        "gitops_url": chaos.stack.sandbox.clone_url(calm),
        "provider": "github",
    }
    run = chaos.api("POST", f"/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters})
    known.add(run["id"])
    outcome = chaos.drive(Release(release.app, release.tag, []), run["id"])
    if outcome != "COMPLETED":
        raise RuntimeError(f"the uninterrupted run of {release.name} ended {outcome}")
    chaos.arm_before_start(release, known)
    chaos.stack.push(f"{REGISTRY}/{release.app}", release.tag).raise_for_status()
    ours = chaos.stack.wait_for_run(
        lambda r: r["name"].endswith(f"{release.app}:{release.tag}") and r["id"] not in known
    )
    return chaos.drive(release, ours["id"]), known


@dataclass
class Report:
    releases: list[Release]
    same_tree: bool

    @property
    def attempted(self) -> int:
        return sum(len(r.hit) for r in self.releases)

    @property
    def survived(self) -> int:
        return sum(len(r.hit) for r in self.releases if not r.problems)

    def table(self) -> str:
        head = f"{'kill point':<14} {'attempted':>9} {'survived':>9} {'missed':>7}"
        lines = [head, "-" * len(head)]
        for point in POINTS:
            hit = [r for r in self.releases for p in r.hit if p == point]
            missed = sum(r.missed.count(point) for r in self.releases)
            if hit or missed:
                lines.append(f"{point:<14} {len(hit):>9} {sum(not r.problems for r in hit):>9} {missed:>7}")
        missed = sum(len(r.missed) for r in self.releases)
        lines += ["-" * len(head), f"{'total':<14} {self.attempted:>9} {self.survived:>9} {missed:>7}", ""]
        return "\n".join(lines + [r.line() for r in self.releases])


def run_chaos(
    root: Path,
    kills: int,
    *,
    per_release: int = 4,
    seed: int = 7,
    points: Sequence[str] | None = None,
    prefect: PrefectServer | None = None,
) -> Report:
    """Release after release until `kills` kills hit (at most 3 releases more than planned)."""
    pending, releases = list(points or plan(kills, seed)), list[Release]()
    most = -(-len(pending) // per_release) + 3
    scenario = {"default": {"outcome": "healthy", "delay": FLUX_DELAY}}
    with ExitStack() as scope:
        (root / "logs").mkdir(parents=True, exist_ok=True)
        log = root / "logs" / "prefect-server.log"  # started here to allow for slow migrations when busy
        prefect = prefect or scope.enter_context(
            prefect_server(root / "prefect", log=log, startup_timeout=300)
        )
        stack = scope.enter_context(
            promoter_stack(root, scenario=scenario, prefect=prefect, poll_interval=0.3, sweep_seconds=3600)
        )
        chaos, calm = Chaos(stack, random.Random(seed)), seed_apps(stack, most)
        start = [stack.sandbox.forge.git(repo).branches()["main"] for repo in (stack.repo, calm)]
        print(f"logs: {stack.logs}", flush=True)
        for index in range(most):
            if not pending or sum(len(r.hit) for r in releases) >= kills:
                break
            chosen = list(dict.fromkeys(pending))[:per_release]
            for point in chosen:
                pending.remove(point)
            tag = hashlib.sha256(f"chaos-{index}".encode()).hexdigest()[:8]
            release = Release(f"chaos-{index:02d}", tag, sorted(chosen, key=POINTS.index))
            outcome, known = release_once(chaos, calm, release)
            release.problems = ([] if outcome == "COMPLETED" else [f"run {outcome}"]) + check(
                stack, calm, start, release, known
            )
            pending, releases = release.missed + pending, [*releases, release]
            print(f"  {release.line()}; missed {', '.join(release.missed) or '-'}", flush=True)
        trees = {stack.sandbox.forge.git(repo).out("rev-parse", "main^{tree}") for repo in (stack.repo, calm)}
        return Report(releases, len(trees) == 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=24, help="kills that must hit a process (default 24)")
    parser.add_argument("--per-release", type=int, default=4, help="kill points per release (default 4)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the kill points and delays (default 7)")
    parser.add_argument("--root", help="keep the stack's state and logs here (default: a temp dir)")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="promoter-chaos-") as tmp:
        root = Path(args.root) if args.root else Path(tmp)
        print(f"starting the stack under {root} ...", flush=True)
        report = run_chaos(root / "stack", args.kills, per_release=args.per_release, seed=args.seed)
    print(f"\nSIGKILL of the flow-run process: seed {args.seed}, Flux delay {FLUX_DELAY} s, ", end="")
    print(f"{len(report.releases)} releases in {time.monotonic() - started:.0f} s\n\n{report.table()}\n")
    goals = [
        (
            f"kills survived / attempted: {report.survived}/{report.attempted}",
            report.survived == report.attempted >= args.kills,
        ),
        ("same main tree as the uninterrupted twin", report.same_tree),
    ]
    for text, ok in goals:
        print(f"{'met   ' if ok else 'BROKEN'}  {text}")
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
