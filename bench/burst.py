"""A release burst: N apps released at once, Flux slow, every wait suspended; nothing lost, no process held.

For each backend, in one invocation (as bench/scale.py starts them, on loopback):
- `sqlite`: the embedded default, a Prefect server on SQLite and one `promoter serve`;
- `postgresql`: a Prefect server on a throwaway PostgreSQL cluster and W `promoter worker` processes (2).
The GitOps repository gets N apps (default 100) whose dev and qa are `auto` and prod is not; Flux reports
each environment healthy after `--flux-delay` s (default 30), and runs poll in-process for `--window` s
(`PROMOTER_WAIT_WINDOW_SECONDS`, default 20) before they suspend; the forge's webhooks and the wait watcher
resume them. N signed deliveries go out at once; the benchmark waits until every release waits at the
prod gate (suspended) or the timeout.

Per backend: at the gate / attempted, releases that never got a run, duplicate runs (two live runs of one
release), p50/p95 delivery -> dev PR merged, wall time until all wait at the gate, peak RSS of the whole
process tree as PSS (this process with the sandbox, the Prefect server and its database, serve or workers,
their runs, the receiver; PSS counts the pages a fork shares with its parent once), the run processes
still alive 5 s into a stretch when every unfinished release was suspended in a wait, forge API requests
(counted / conditional 304s), Prefect server log errors, and the cost per release (CPU seconds of every
process, peak RSS). `--sizes 50,100,200` repeats the first backend at each size, for the growth table.

Guarantees: N/N at the gate on every backend, 0 lost, 0 duplicated, 0 run processes held while every
release waits. Goals: p95 delivery -> dev merged <= 20 s, all at the gate within 3 x flux delay + 90 s, peak
PSS <= 2 GB. The exit status is 1 when either is missed; with `--guarantees-only` (`make proofs`, on a
machine shared with the rest of the suite) only a broken guarantee fails it, and missed goals are printed.

    .venv/bin/python bench/burst.py [--apps N] [--flux-delay S] [--window S] [--backends sqlite,postgresql]
                                    [--workers W] [--limit L] [--sizes 50,100,200] [--root DIR]
                                    [--guarantees-only]
    .venv/bin/python bench/burst.py --apps 10 --flux-delay 5 --window 2 --allow-no-postgres --guarantees-only
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from concurrency import app_files, processes, tag_of, tree
from latency import p95
from scale import all_runs, dev_merged_after, log_errors, postgres, postgres_bin, push_releases

from sandbox.prefect_server import prefect_server
from sandbox.sample import config_text
from sandbox.stack import FINAL, Stack, promoter_stack
from tasks.contracts import waits_of

BACKENDS = ("sqlite", "postgresql")
GB = 1 << 30


@dataclass
class Outcome:
    backend: str
    attempted: int
    flux_delay: float
    skipped: str = ""
    accepted: int = 0
    at_gate: int = 0
    lost: int = 0
    duplicated: int = 0
    ended: dict[str, str] = field(default_factory=dict)
    to_dev_merged: list[float] = field(default_factory=list)
    wall: float = 0.0
    timed_out: bool = False
    peak_rss: int = 0
    held: int = 0
    all_waiting_samples: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    cpu: float = 0.0
    cpu_roles: dict[str, float] = field(default_factory=dict)

    def broken(self) -> list[str]:
        """Guarantees: these fail the run whatever the machine's speed."""
        if self.skipped:
            return []
        n, found = self.attempted, []
        if self.at_gate < n:
            found.append(f"{self.backend}: {self.at_gate}/{n} at the gate")
        if self.lost or self.duplicated:
            found.append(f"{self.backend}: {self.lost} lost, {self.duplicated} duplicated")
        if self.held:
            found.append(f"{self.backend}: {self.held} run processes held while every release waited")
        return found

    def missed(self) -> list[str]:
        """Speed and memory goals: failing the run unless --guarantees-only (a loaded machine is slow)."""
        if self.skipped:
            return []
        found = []
        if not self.to_dev_merged or p95(self.to_dev_merged) > 20:
            found.append(f"{self.backend}: p95 delivery -> dev merged above 20 s")
        if self.wall > 3 * self.flux_delay + 90:
            found.append(f"{self.backend}: {self.wall:.0f} s to the gate > 3 x {self.flux_delay:g} + 90 s")
        if self.peak_rss > 2 * GB:
            found.append(f"{self.backend}: peak memory (PSS) {self.peak_rss / GB:.2f} GB > 2 GB")
        return found


def pss(pid: int) -> int:
    """Proportional set size: a forked run's pages shared with its fork server count once, not per run
    (summing RSS would count them in every fork)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class Sampler(threading.Thread):
    """Every 0.5 s: memory (PSS) of this process's whole tree; run processes that live on while every
    release waits. A run process needs a moment to exit after it suspends: one counts as held once it has
    been alive for HOLD seconds of such a stretch."""

    HOLD = 5.0

    def __init__(self, stack: Stack, outcome: Outcome) -> None:
        super().__init__(name="burst-sampler", daemon=True)
        self.stack, self.outcome = stack, outcome
        self.all_waiting = False  # set by the poller: every unfinished release is suspended in a wait
        self.stop = threading.Event()
        self._since: dict[int, float] = {}

    def run(self) -> None:
        while not self.stop.wait(0.5):
            procs = tree(processes(), os.getpid())
            self.outcome.peak_rss = max(self.outcome.peak_rss, sum(pss(p.pid) for p in procs))
            if not self.all_waiting:
                self._since.clear()
                continue
            runs = set(self.stack.flow_run_processes())
            now = time.monotonic()
            alive = {p.pid for p in procs if p.pid in runs}
            self._since = {pid: self._since.get(pid, now) for pid in alive}
            held = sum(1 for start in self._since.values() if now - start >= self.HOLD)
            self.outcome.all_waiting_samples += 1
            self.outcome.held = max(self.outcome.held, held)


def at_gate(run: dict[str, Any]) -> bool:
    return run["state_type"] == "PAUSED" and any(t.startswith("pr:") for t in run["tags"])


def waiting(run: dict[str, Any]) -> bool:
    return run["state_type"] == "PAUSED" and (at_gate(run) or waits_of(run["tags"]) is not None)


def live(run: dict[str, Any]) -> bool:
    """Not a run that stood down as a duplicate (the reconciler's twin) or was cancelled."""
    return run["state_name"] not in ("Duplicate", "Cancelled")


def watch(stack: Stack, outcome: Outcome, sampler: Sampler, started: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = 0.0
    while True:
        try:
            runs = all_runs(stack)
        except httpx.HTTPError as error:
            print(f"  {time.time() - started:6.0f}s  API poll failed: {type(error).__name__}", flush=True)
            time.sleep(2)
            continue
        mine = [r for r in runs if live(r)]
        gate = sum(1 for r in mine if at_gate(r))
        unfinished = [r for r in mine if r["state_type"] not in FINAL and not at_gate(r)]
        sampler.all_waiting = bool(unfinished) and all(waiting(r) for r in unfinished)
        now = time.time() - started
        if now - last >= 15:
            last = now
            states = collections.Counter("gate" if at_gate(r) else r["state_name"] for r in mine)
            print(f"  {now:6.0f}s  " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())), flush=True)
        if gate >= outcome.attempted:
            outcome.wall = now
            break
        if time.monotonic() > deadline:
            outcome.timed_out, outcome.wall = True, now
            break
        time.sleep(1.0)
    sampler.all_waiting = False
    by_tag = collections.Counter(r["name"].rsplit(":", 1)[-1] for r in runs if live(r))
    outcome.at_gate = gate
    outcome.lost = sum(1 for i in range(outcome.attempted) if by_tag[tag_of(i)] == 0)
    outcome.duplicated = sum(n - 1 for n in by_tag.values() if n > 1)
    for run in runs:
        if run["state_type"] in FINAL and live(run):
            outcome.ended[run["name"]] = f"{run['state_name']}: {(run.get('state') or {}).get('message')}"


def cpu_seconds() -> float:
    """CPU of this process and every child it has waited for (the stack's processes, once stopped)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


TICKS = os.sysconf("SC_CLK_TCK")
ROLES = (  # the first word of the command line that names each process of the stack
    ("multiprocessing.forkserver", "runs (forked)"),
    ("promoter.cli serve", "serve"),
    ("promoter.cli worker", "workers"),
    ("promoter.cli webhook", "receiver"),
    ("prefect server", "prefect server"),
    ("postgres", "postgresql"),
)


def role_of(pid: int) -> str:
    if pid == os.getpid():
        return "bench + sandbox"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    return next((role for words, role in ROLES if words in command), "other")


def cpu_by_pid() -> dict[int, tuple[str, float]]:
    """CPU seconds of each live process of this tree, with its children it has reaped (a serve's or a
    worker's forked runs land in their parent once they exit)."""
    found = {}
    for proc in tree(processes(), os.getpid()):
        try:
            stat = Path(f"/proc/{proc.pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        except (OSError, ValueError, IndexError):
            continue
        found[proc.pid] = (role_of(proc.pid), ticks / TICKS)
    return found


def cpu_split(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds per role between two snapshots: what the burst cost, start-up left out."""
    roles: dict[str, float] = collections.defaultdict(float)
    for pid, (role, seconds) in after.items():
        roles[role] += seconds - before.get(pid, (role, 0.0))[1]
    return dict(roles)


def run_backend(
    backend: str, count: int, args: argparse.Namespace, root: Path, bin_dir: Path | None
) -> Outcome:
    outcome = Outcome(backend, count, args.flux_delay)
    files = {
        **app_files(count),
        "gitops-promotion.yaml": config_text((("dev", True), ("qa", True), ("prod", False))),
    }
    logs = root / "stack" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cpu_before = cpu_seconds()
    print(f"\n[{backend} x{count}] starting under {root} ...", flush=True)
    with ExitStack() as stack_:
        url = None
        if backend == "postgresql":
            assert bin_dir is not None
            url = stack_.enter_context(postgres(bin_dir, logs / "postgresql.log"))
        server = stack_.enter_context(
            prefect_server(
                root / "prefect", database_url=url, log=logs / "prefect-server.log", startup_timeout=300
            )
        )
        stack = stack_.enter_context(
            promoter_stack(
                root / "stack",
                scenario={"default": {"outcome": "healthy", "delay": args.flux_delay}},
                prefect=server,
                limit=args.limit,
                workers=args.workers if backend == "postgresql" else 0,
                watch_seconds=args.watch_seconds,
                settings={"PROMOTER_WAIT_WINDOW_SECONDS": str(args.window)},
            )
        )
        stack.sandbox.create_repo("acme/gitops", files=files)
        stack.sandbox.app.stats.reset()
        sampler = Sampler(stack, outcome)
        sampler.start()
        up = cpu_by_pid()
        print(f"[{backend} x{count}] up; sending {count} releases ...", flush=True)
        started = time.time()
        sent, codes = push_releases(stack, count, 0.0)
        outcome.accepted = sum(1 for code in codes if 200 <= code < 300)
        watch(stack, outcome, sampler, started, args.timeout or 3 * args.flux_delay + 90 + 600)
        outcome.cpu_roles = cpu_split(up, cpu_by_pid())
        sampler.stop.set()
        outcome.to_dev_merged = dev_merged_after(stack, sent)
        outcome.requests = stack.sandbox.stats()["total"]
        outcome.errors = log_errors(logs)
    outcome.cpu = cpu_seconds() - cpu_before
    return outcome


def table(outcomes: list[Outcome]) -> str:
    head = (
        f"{'backend':<11} {'at gate':>8} {'lost':>5} {'dup':>4} {'dev merged p50':>15} {'p95 s':>6}"
        f" {'to gate s':>10} {'peak PSS MB':>12} {'held':>5} {'forge req (304)':>16}  server errors"
    )
    lines = [head, "-" * len(head)]
    for o in outcomes:
        if o.skipped:
            lines.append(f"{o.backend:<11} skipped: {o.skipped}")
            continue
        spans = o.to_dev_merged
        p50 = f"{statistics.median(spans):.1f}" if spans else "-"
        high = f"{p95(spans):.1f}" if spans else "-"
        held = f"{o.held}" if o.all_waiting_samples else "n/a"
        requests = f"{o.requests.get('counted', 0)} ({o.requests.get('conditional', 0)})"
        errors = ", ".join(f"{k} {v}" for k, v in o.errors.items()) or "none"
        lines.append(
            f"{o.backend:<11} {f'{o.at_gate}/{o.attempted}':>8} {o.lost:>5} {o.duplicated:>4} {p50:>15} {high:>6}"
            f" {o.wall:>9.0f}{'+' if o.timed_out else ' '} {o.peak_rss / 2**20:>12.0f} {held:>5}"
            f" {requests:>16}  {errors}"
        )
    return "\n".join(lines)


def growth(outcomes: list[Outcome]) -> str:
    head = f"{'backend':<11} {'releases':>9} {'CPU s':>8} {'CPU s / release':>16} {'peak PSS MB':>12} {'MB / release':>13}"
    lines = [head, "-" * len(head)]
    for o in outcomes:
        if not o.skipped:
            mb = o.peak_rss / 2**20
            lines.append(
                f"{o.backend:<11} {o.attempted:>9} {o.cpu:>8.0f} {o.cpu / o.attempted:>16.2f} {mb:>12.0f}"
                f" {mb / o.attempted:>13.1f}"
            )
    return "\n".join(lines)


def roles(outcomes: list[Outcome]) -> str:
    """Where the burst's CPU went, per role, from the releases' start to the last at the gate."""
    every = [role for _, role in ROLES] + ["bench + sandbox", "other"]
    names = [role for role in every if any(role in o.cpu_roles for o in outcomes)]
    head = (
        f"{'backend':<11} {'releases':>9} "
        + " ".join(f"{name:>20}" for name in names)
        + f" {'s / release':>12}"
    )
    lines = [head, "-" * len(head)]
    for o in outcomes:
        if not o.skipped:
            total = sum(o.cpu_roles.values())
            cells = " ".join(f"{o.cpu_roles.get(name, 0.0):>20.0f}" for name in names)
            lines.append(f"{o.backend:<11} {o.attempted:>9} {cells} {total / o.attempted:>12.2f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100, help="apps, one release each (default 100)")
    parser.add_argument(
        "--flux-delay", type=float, default=30.0, help="seconds before Flux reports (default 30)"
    )
    parser.add_argument(
        "--window", type=float, default=20.0, help="in-process poll before a wait suspends (20)"
    )
    parser.add_argument("--watch-seconds", type=float, default=10.0, help="the wait watcher's interval (10)")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated (default sqlite,postgresql)"
    )
    parser.add_argument("--workers", type=int, default=2, help="promoter workers on PostgreSQL (default 2)")
    parser.add_argument("--limit", type=int, default=10, help="runs at once per serve or worker (default 10)")
    parser.add_argument("--sizes", default="", help="e.g. 50,200: the first backend again at these sizes")
    parser.add_argument("--timeout", type=float, default=0.0, help="per backend (default 3 x flux + 690 s)")
    parser.add_argument("--pg-bin", help="directory of PostgreSQL's initdb and postgres (default: searched)")
    parser.add_argument("--allow-no-postgres", action="store_true", help="skip PostgreSQL when absent (CI)")
    parser.add_argument("--root", help="keep state and logs here (default: a temp dir)")
    parser.add_argument(
        "--guarantees-only", action="store_true", help="exit 1 on a broken guarantee only, not a missed goal"
    )
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if unknown := set(backends) - set(BACKENDS):
        parser.error(f"unknown backends {sorted(unknown)}; choose from {', '.join(BACKENDS)}")
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes {args.sizes!r}: give whole numbers, e.g. 50,200")
    if args.apps < 1 or any(s < 1 for s in sizes):
        parser.error("--apps and --sizes must be at least 1")
    bin_dir, why = postgres_bin(args.pg_bin) if "postgresql" in backends else (None, "")
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="promoter-burst-") as tmp:
        root = Path(args.root) if args.root else Path(tmp)
        for index, backend in enumerate(backends):
            if backend == "postgresql" and bin_dir is None:
                if not args.allow_no_postgres:
                    print(f"cannot run the PostgreSQL backend: {why} (install postgresql, or pass --pg-bin)")
                    return 1
                outcomes.append(Outcome(backend, args.apps, args.flux_delay, skipped=why))
                continue
            outcomes.append(run_backend(backend, args.apps, args, root / f"{index}-{backend}", bin_dir))
        extra = [
            run_backend(backends[0], size, args, root / f"size-{size}", bin_dir)
            for size in sizes
            if not (backends[0] == "postgresql" and bin_dir is None)
        ]
    mode = f"{args.apps} releases, Flux after {args.flux_delay:g} s, wait window {args.window:g} s"
    print(f"\nburst: {mode}, {os.cpu_count()} CPUs\n")
    print(table(outcomes))
    print()
    print(growth([o for o in outcomes if not o.skipped] + extra))
    print("\nCPU seconds by role, from the deliveries to the last release at the gate")
    print(roles([o for o in outcomes if not o.skipped] + extra))
    for o in outcomes + extra:
        for name, why_ended in list(o.ended.items())[:5]:
            print(f"  {o.backend}: {name} ended {why_ended}")
    every = outcomes + extra
    broken = [m for o in every for m in o.broken()]
    missed = [m for o in every for m in o.missed()]
    print("\n" + ("guarantees held" if not broken else "GUARANTEES BROKEN:\n  " + "\n  ".join(broken)))
    print("goals met" if not missed else "goals missed:\n  " + "\n  ".join(missed))
    return 1 if broken or (missed and not args.guarantees_only) else 0


if __name__ == "__main__":
    sys.exit(main())
