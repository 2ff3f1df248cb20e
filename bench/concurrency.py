"""Many apps released at once on one Prefect server: do they all reach the prod gate, with nothing lost?

Starts the whole stack on loopback (`sandbox/stack.py`: Prefect server on SQLite, sandbox forge with
the Flux emulator, `promoter serve`, `promoter webhook`), adds N apps to `acme/gitops`
(`apps/{dev,qa,prod}/app-NN.yaml`, image `ghcr.io/acme/app-NN`), then sends N signed webhook deliveries
at once (one thread each), one new tag per app, and waits until every `promote-release` run is suspended
at the prod gate (PAUSED) or has ended. Meanwhile, every 0.5 s, it sums the RSS of the `promoter serve`
process tree (read from /proc; git and other helpers included) and counts its flow-run processes
(the processes `promoter serve` logs starting for a flow run).

Guarantees checked (exit status 1 when one is broken):
- every delivery is accepted and every run reaches the prod gate (none Failed, Crashed, Cancelled), with
  its approval form (the input schema the UI and a resume need) saved;
- no lost commit on `main`: exactly 2N merge commits (dev and qa of each app) and 2N bump commits since the
  apps were added, no bump twice, and every app's dev and qa manifests on `main` carry its new tag (prod
  still the old one); every prod PR is open with a green `promoter` check;
- no process held by a suspended run: within a grace period after the last run is PAUSED, no process
  under `promoter serve` belongs to a PAUSED run.
Also reported: wall time, peak memory, peak concurrent runs, task retries, and errors in the stack's logs.

`--limit` caps the runs `promoter serve` executes at once (`promoter serve --limit`; default 10, 0 for no
limit: see DEFAULT_LIMIT for why). A run suspended at the gate holds no slot, so all N still get there.

    .venv/bin/python bench/concurrency.py [--apps N] [--limit L] [--flux-delay S] [--root DIR]
    .venv/bin/python bench/concurrency.py --apps 5        # the short version, for CI
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from promoter.pull_request import PRState
from sandbox.gitrepo import BareRepo
from sandbox.sample import DEPLOYMENT
from sandbox.stack import FINAL, Stack, promoter_stack

GROUP = "apps"
REGISTRY = "ghcr.io/acme"
OLD_TAG = "6.5.0"
ENVS = ("dev", "qa", "prod")
PAGE = os.sysconf("SC_PAGE_SIZE")
GRACE = 60.0
# On the 2-core machine this was written on, 50 runs at once (no limit) kept the Prefect server (SQLite) too
# busy to answer a flow-run query within 30 s and took minutes before the first run reached the gate; 10
# at once keeps both cores busy without starving the server. Suspended runs free their slot.
DEFAULT_LIMIT = 10


def app_name(index: int) -> str:
    return f"app-{index:02d}"


def tag_of(index: int) -> str:
    """A git-sha style tag, as CI pipelines push (the demo's tags look the same)."""
    return hashlib.sha256(f"concurrency-{index}".encode()).hexdigest()[:8]


# -- processes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    rss: int
    flow_run: str | None


def _read_proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        rest = stat[stat.rindex(")") + 2 :].split()
        return Proc(pid, int(rest[1]), rest[0], int(rest[21]) * PAGE, None)
    except (OSError, ValueError, IndexError):
        return None  # gone meanwhile


def processes() -> list[Proc]:
    found = (_read_proc(int(entry.name)) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [p for p in found if p is not None]


def tree(procs: list[Proc], root: int) -> list[Proc]:
    """`root` and its descendants, zombies left out."""
    children: dict[int, list[Proc]] = collections.defaultdict(list)
    for proc in procs:
        children[proc.ppid].append(proc)
    out, todo = [], [p for p in procs if p.pid == root]
    while todo:
        proc = todo.pop()
        if proc.state != "Z":
            out.append(proc)
        todo.extend(children[proc.pid])
    return out


def child_pid(*words: str) -> int:
    """Our child process whose command line holds all `words` (the stack starts them from this process)."""
    me = os.getpid()
    for proc in processes():
        if proc.ppid != me:
            continue
        try:
            args = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if all(word in args for word in words):
            return proc.pid
    raise RuntimeError(f"no child process running {' '.join(words)}")


@dataclass
class Sampler:
    """Every 0.5 s: RSS of the serve tree (and the Prefect server's), its flow-run processes."""

    serve: int
    server: int
    runs: Callable[[], dict[int, str]]  # pid -> flow run id, as `promoter serve` logs them
    peak_rss: int = 0
    peak_rss_processes: int = 0
    peak_flow_processes: int = 0
    peak_server_rss: int = 0
    samples: int = 0
    latest: list[Proc] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def sample(self) -> list[Proc]:
        procs = processes()
        runs = self.runs()
        serve = [dataclasses.replace(p, flow_run=runs.get(p.pid)) for p in tree(procs, self.serve)]
        rss = sum(p.rss for p in serve)
        with self._lock:
            self.samples += 1
            self.latest = serve
            if rss > self.peak_rss:
                self.peak_rss, self.peak_rss_processes = rss, len(serve)
            self.peak_flow_processes = max(self.peak_flow_processes, sum(1 for p in serve if p.flow_run))
            server = sum(p.rss for p in tree(procs, self.server))
            self.peak_server_rss = max(self.peak_server_rss, server)
        return serve

    def run(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self.run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# -- the run --------------------------------------------------------------------------------------------


def app_files(count: int) -> dict[str, str]:
    return {
        f"{GROUP}/{env}/{app_name(i)}.yaml": DEPLOYMENT.format(
            group=GROUP, app=app_name(i), registry=REGISTRY, tag=OLD_TAG
        )
        for i in range(count)
        for env in ENVS
    }


def push_all(stack: Stack, count: int) -> list[int]:
    """All deliveries at once, one thread each; their HTTP status codes."""

    def push(index: int) -> int:
        try:
            return stack.push(f"{REGISTRY}/{app_name(index)}", tag_of(index)).status_code
        except httpx.HTTPError:
            return 0

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(push, range(count)))


@dataclass
class Progress:
    paused_at: dict[str, float] = field(default_factory=dict)
    forms: dict[str, str] = field(default_factory=dict)
    ended: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    peak_running: int = 0
    timed_out: bool = False
    api_errors: list[str] = field(default_factory=list)


def wait_for_gate(stack: Stack, count: int, started: float, timeout: float) -> Progress:
    progress = Progress()
    deadline = time.monotonic() + timeout
    last_print = 0.0
    while True:
        try:
            runs = stack.runs()
        except httpx.HTTPError as error:  # the server may stall under load: note it, keep watching
            progress.api_errors.append(f"{time.time() - started:.0f}s {type(error).__name__}")
            if time.monotonic() > deadline:
                progress.timed_out = True
                return progress
            time.sleep(1.0)
            continue
        states = collections.Counter(run["state_type"] for run in runs)
        progress.peak_running = max(progress.peak_running, states.get("RUNNING", 0))
        for run in runs:
            progress.names[run["id"]] = run["name"]
            if run["state_type"] == "PAUSED":
                progress.paused_at.setdefault(run["id"], time.time() - started)
                keyset = ((run.get("state") or {}).get("state_details") or {}).get("run_input_keyset")
                progress.forms[run["id"]] = (keyset or {}).get("schema", "")
            elif run["state_type"] in FINAL:
                progress.ended[run["id"]] = f"{run['state_name']}: {(run.get('state') or {}).get('message')}"
        now = time.time() - started
        if now - last_print >= 15:
            last_print = now
            print(f"  {now:6.0f}s  " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())), flush=True)
        if len(progress.paused_at) + len(progress.ended) >= count:
            return progress
        if time.monotonic() > deadline:
            progress.timed_out = True
            return progress
        time.sleep(1.0)


def approval_forms(stack: Stack, forms: dict[str, str]) -> int:
    """How many PAUSED runs saved the schema of their approval form (the UI and resume need it)."""
    saved = 0
    for run_id, key in forms.items():
        url = f"{stack.prefect.api_url}/flow_runs/{run_id}/input/{key}"
        saved += bool(key) and httpx.get(url, timeout=30).status_code == 200
    return saved


def held_processes(sampler: Sampler, paused: set[str]) -> tuple[int, float]:
    """Flow-run processes of PAUSED runs still alive, waiting up to GRACE s for them to go; (count, waited)."""
    began = time.monotonic()
    while True:
        held = [p for p in sampler.sample() if p.flow_run in paused]
        waited = time.monotonic() - began
        if not held or waited > GRACE:
            return len(held), waited
        time.sleep(0.5)


@dataclass
class Landed:
    merges: int
    bumps: int
    duplicate_bumps: int
    dev_ok: int
    qa_ok: int
    prod_untouched: int
    prod_prs_green: int
    merged_prs: int


def main_since(stack: Stack, seed: str) -> tuple[BareRepo, str, int, list[str]]:
    """(the bare repo, main's commit, merge commits, bump commit subjects) on main since `seed`."""
    forge, repo = stack.sandbox.forge, stack.repo
    git = forge.git(repo)
    main = git.branches()[repo.default_branch]
    first_parent = [s for s in git.out("rev-list", "--first-parent", f"{seed}..{main}").split() if s]
    merges = sum(1 for sha in first_parent if len(forge.commit(repo, sha).parents) == 2)
    subjects = [s for s in git.out("log", "--no-merges", "--format=%s", f"{seed}..{main}").splitlines() if s]
    bumps = [s for s in subjects if s.startswith(f"Promote {GROUP}/app-")]
    return git, main, merges, bumps


def check_main(stack: Stack, seed: str, count: int) -> Landed:
    forge, repo = stack.sandbox.forge, stack.repo
    git, main, merges, bumps = main_since(stack, seed)
    ok = collections.Counter[str]()
    for index in range(count):
        for env in ENVS:
            text = (git.read_file(main, f"{GROUP}/{env}/{app_name(index)}.yaml") or b"").decode()
            want = OLD_TAG if env == "prod" else tag_of(index)
            if f"{REGISTRY}/{app_name(index)}:{want} " in text:
                ok[env] += 1
    pulls = {pr.title: pr for pr in forge.pulls(repo)}
    green = merged = 0
    for index in range(count):
        for env in ENVS:
            title = PRState(group=GROUP, app=app_name(index), tag=tag_of(index), env=env).title()
            pr = pulls.get(title)
            if pr is None:
                continue
            if env == "prod":
                latest = [s for s in forge.statuses(repo, pr.head_sha) if s.context == "promoter"]
                green += pr.state == "open" and bool(latest) and latest[0].state == "success"
            else:
                merged += pr.merged
    return Landed(
        merges=merges,
        bumps=len(bumps),
        duplicate_bumps=len(bumps) - len(set(bumps)),
        dev_ok=ok["dev"],
        qa_ok=ok["qa"],
        prod_untouched=ok["prod"],
        prod_prs_green=green,
        merged_prs=merged,
    )


def retried_tasks(stack: Stack) -> int:
    retried, offset = 0, 0
    while True:
        response = httpx.post(
            f"{stack.prefect.api_url}/task_runs/filter", json={"limit": 200, "offset": offset}, timeout=30
        )
        response.raise_for_status()
        page = response.json()
        retried += sum(1 for run in page if (run.get("run_count") or 0) > 1)
        if len(page) < 200:
            return retried
        offset += 200


def log_counts(logs: Path) -> dict[str, int]:
    serve = (logs / "serve.log").read_text(errors="replace")
    server = (logs / "prefect-server.log").read_text(errors="replace")
    webhook = (logs / "webhook.log").read_text(errors="replace")
    return {
        "serve.log ERROR lines": sum(1 for line in serve.splitlines() if "| ERROR" in line),
        "serve.log Tracebacks": serve.count("Traceback"),
        "serve.log 'database is locked'": serve.count("database is locked"),
        "prefect-server.log ERROR/Traceback": server.count("ERROR") + server.count("Traceback"),
        "prefect-server.log 'database is locked'": server.count("database is locked"),
        "webhook.log ERROR lines": sum(1 for line in webhook.splitlines() if " ERROR " in line),
    }


Row = tuple[str, str, bool | None]  # name, value, guarantee held (None: a figure, not a guarantee)


def print_rows(title: str, rows: list[Row], value_width: int = 24) -> None:
    """The figures as a two-column table, each guarantee marked ok or BROKEN."""
    print(f"\n{title}\n")
    width = max(len(name) for name, _, _ in rows)
    for name, value, ok in rows:
        mark = "" if ok is None else ("ok" if ok else "BROKEN")
        print(f"  {name:<{width}}  {value:<{value_width}} {mark}")


def mb(value: int) -> str:
    return f"{value / 2**20:,.0f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=50, help="apps released at once (default 50)")
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"at most this many runs at once in `promoter serve` (default {DEFAULT_LIMIT}; 0: no limit)",
    )
    parser.add_argument(
        "--flux-delay", type=float, default=1.0, help="seconds before Flux reports (default 1)"
    )
    parser.add_argument(
        "--sweep-seconds", type=float, default=60.0, help="approval-sweeper interval (default 60)"
    )
    parser.add_argument("--timeout", type=float, default=1500.0, help="give up after this many seconds")
    parser.add_argument("--root", help="keep the stack's state and logs here (default: a temp dir)")
    args = parser.parse_args()
    count: int = args.apps
    scenario = {"default": {"outcome": "healthy", "delay": args.flux_delay}}
    with tempfile.TemporaryDirectory(prefix="promoter-concurrency-") as tmp:
        root = Path(args.root) if args.root else Path(tmp)
        print(f"starting the stack under {root} ...", flush=True)
        with promoter_stack(
            root / "stack", scenario=scenario, sweep_seconds=args.sweep_seconds, limit=args.limit or None
        ) as stack:
            print(f"logs: {stack.logs}", flush=True)
            stack.sandbox.create_repo("acme/gitops", files=app_files(count))
            seed = stack.sandbox.forge.git(stack.repo).branches()[stack.repo.default_branch]
            sampler = Sampler(
                child_pid("promoter.cli", "serve"),
                child_pid("prefect", "server", "start"),
                stack.flow_run_processes,
            )
            with sampler:
                print(f"pushing {count} releases at once ...", flush=True)
                started = time.time()
                codes = push_all(stack, count)
                pushed = time.time() - started
                progress = wait_for_gate(stack, count, started, args.timeout)
                wall = time.time() - started
                paused = set(progress.paused_at)
                held, waited = held_processes(sampler, paused)
            forms = approval_forms(stack, progress.forms)
            landed = check_main(stack, seed, count)
            retried = retried_tasks(stack)
            logs = log_counts(stack.logs)
            violations = len(stack.sandbox.violations())
            log_dir = stack.logs

        accepted = sum(1 for code in codes if 200 <= code < 300)
        times = sorted(progress.paused_at.values())
        rows: list[Row] = [
            ("apps released at once", str(count), None),
            ("runner limit (promoter serve --limit)", str(args.limit or "none"), None),
            ("Flux delay", f"{args.flux_delay:g} s", None),
            ("deliveries accepted", f"{accepted}/{count} (sent in {pushed:.1f} s)", accepted == count),
            ("runs at the prod gate (PAUSED)", f"{len(paused)}/{count}", len(paused) == count),
            ("runs ended otherwise", str(len(progress.ended)), not progress.ended),
            ("PAUSED runs with their approval form saved", f"{forms}/{len(paused)}", forms == len(paused)),
            (
                "wall time: first push -> all at gate",
                f"{wall:.1f} s" + (" (TIMED OUT)" if progress.timed_out else ""),
                None,
            ),
            (
                "at gate after: first / median / last",
                " / ".join(f"{t:.1f} s" for t in (times[0], statistics.median(times), times[-1]))
                if times
                else "-",
                None,
            ),
            ("peak concurrent RUNNING runs", str(progress.peak_running), None),
            (
                "Prefect API polls failed (30 s timeout)",
                f"{len(progress.api_errors)}"
                + (f" (first at {progress.api_errors[0]})" if progress.api_errors else ""),
                None,
            ),
            (
                "peak RSS, serve process tree",
                f"{mb(sampler.peak_rss)} ({sampler.peak_rss_processes} processes)",
                None,
            ),
            ("peak flow-run processes under serve", str(sampler.peak_flow_processes), None),
            ("peak RSS, Prefect server", mb(sampler.peak_server_rss), None),
            ("processes held by PAUSED runs", f"{held} (after {waited:.1f} s)", held == 0),
            ("merge commits on main (dev+qa)", f"{landed.merges}/{2 * count}", landed.merges == 2 * count),
            ("bump commits on main", f"{landed.bumps}/{2 * count}", landed.bumps == 2 * count),
            ("bump commits twice", str(landed.duplicate_bumps), landed.duplicate_bumps == 0),
            ("dev PRs + qa PRs merged", f"{landed.merged_prs}/{2 * count}", landed.merged_prs == 2 * count),
            ("dev manifests on main at new tag", f"{landed.dev_ok}/{count}", landed.dev_ok == count),
            ("qa manifests on main at new tag", f"{landed.qa_ok}/{count}", landed.qa_ok == count),
            (
                "prod manifests on main untouched",
                f"{landed.prod_untouched}/{count}",
                landed.prod_untouched == count,
            ),
            (
                "prod PRs open with green check",
                f"{landed.prod_prs_green}/{count}",
                landed.prod_prs_green == count,
            ),
            ("task runs retried", str(retried), None),
            ("forge API spec violations", str(violations), None),
            *((name, str(value), None) for name, value in logs.items()),
        ]
        print_rows(f"{count} apps released at once on one Prefect server (SQLite)", rows, 34)
        for run_id, what in sorted(progress.ended.items()):
            print(f"  ended: {progress.names.get(run_id, run_id)} -> {what}")
        if args.root:
            print(f"\nlogs kept in {log_dir}")
        return 0 if all(ok is not False for _, _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
