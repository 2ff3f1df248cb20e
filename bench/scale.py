"""Scale-out on an existing distributed engine: Prefect on PostgreSQL, two workers on one work pool.

For each backend in turn (PostgreSQL, then SQLite for comparison) starts everything on loopback:

- PostgreSQL (postgresql only): Debian's server binaries (`initdb`, `postgres`, searched on PATH, with
  `pg_config --bindir`, under /usr/lib/postgresql/<version>/bin and /usr/local/pgsql/bin, or `--pg-bin`),
  a throwaway cluster `initdb`-ed into a temp dir, listening on 127.0.0.1 on a free port with its unix
  socket in that dir, a random password (others share the machine's loopback). PostgreSQL refuses to
  run as root: as root the cluster belongs to the `postgres` user (or `nobody`); otherwise to the caller;
- a Prefect server on that database (`PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://...`) or on
  SQLite, the sandbox forge with the Flux emulator, and `promoter webhook` (`sandbox/stack.py`);
- the work-pool set-up documented in `prefect.yaml` and docs/scale-out.md, run as documented: `prefect
  work-pool create promoter --type process`, `prefect deploy --all` from the project directory (the
  `promote-release` deployment with its `registry.image.pushed` trigger, and the sweeper), then W
  `promoter worker --pool promoter` processes (default 2; `--cold-workers`: `prefect worker start`, a new
  interpreter per run), each `--limit L` (default 5: both backends
  get the same load; SQLite said "database is locked" under more) and its own clone cache.

Then adds N apps (default 100) to `acme/gitops` with every environment `auto: true`, so a run completes
without a person (dev -> qa -> prod, each merged by the forge and reported healthy by Flux after
`--flux-delay` s): an approval gate would end each run's process at prod and start a second one on resume,
doubling the process starts this 2-core machine can afford. Sends N signed webhook deliveries, one release
(new tag) per app, all at once (or `--interval` s apart), and waits until every run has ended.

Per backend: runs completed / releases sent, wall time (first delivery -> last run's end), completed runs
per minute, p50/p95 (nearest rank) of delivery -> dev PR merged, read from the forge's `merged_at`
against the clock taken just before each delivery, and p95 of delivery -> flow run created (how long the
event trigger took; the rest is waiting for a worker slot and the run itself); also how many runs each
worker started, and errors in the logs. Exit status 1 when a release did not complete or a commit is lost
on `main` (3N merge commits and 3N bump commits since the apps were added, no bump twice, every manifest
at its new tag).

    .venv/bin/python bench/scale.py [--apps N] [--workers W] [--limit L] [--backends postgresql,sqlite]
                                    [--interval S] [--flux-delay S] [--root DIR]
    .venv/bin/python bench/scale.py --apps 6 --allow-no-postgres   # the short version, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from concurrency import ENVS, GROUP, REGISTRY, app_files, app_name, main_since, tag_of
from latency import p95

from promoter.pull_request import PRState
from sandbox.prefect_server import free_port, prefect_server
from sandbox.sample import config_text
from sandbox.stack import FINAL, Stack, promoter_stack

BACKENDS = ("postgresql", "sqlite")
SETTLE = 120.0


# -- PostgreSQL -----------------------------------------------------------------------------------------


def postgres_bin(explicit: str | None) -> tuple[Path | None, str]:
    """The directory holding `initdb` and `postgres`, or None and where it looked."""
    candidates: list[Path] = [Path(explicit)] if explicit else []
    if not explicit:
        found = shutil.which("initdb")
        if found:
            candidates.append(Path(found).resolve().parent)  # /usr/local/bin/initdb -> the real bin dir
        if shutil.which("pg_config"):
            done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
            if done.returncode == 0 and done.stdout.strip():
                candidates.append(Path(done.stdout.strip()))

        def version(path: str) -> tuple[int, ...]:
            return tuple(int(part) for part in re.findall(r"\d+", path))

        candidates += [
            Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
        ]
        candidates.append(Path("/usr/local/pgsql/bin"))
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "postgres")):
            return directory, ""
    looked = ", ".join(dict.fromkeys(str(c) for c in candidates))
    return None, f"no PostgreSQL server binaries (initdb, postgres) in {looked}"


def _owner() -> tuple[int, int] | None:
    """Who runs PostgreSQL: as root an unprivileged user (initdb, postgres refuse root), else the caller."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError(
        "running as root, and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL"
    )


@contextmanager
def postgres(bin_dir: Path, log: Path) -> Iterator[str]:
    """A throwaway cluster on 127.0.0.1; yields the Prefect connection URL of its `prefect` database.

    The cluster lives in its own temp dir (not under --root: as root, the unprivileged owner must be able to
    reach it), removed afterwards."""
    owner = _owner()
    as_owner: dict[str, Any] = {"user": owner[0], "group": owner[1], "extra_groups": []} if owner else {}
    base = Path(tempfile.mkdtemp(prefix="promoter-pg-"))
    data, sockets = base / "data", base / "socket"
    try:
        base.chmod(0o711)
        for directory in (data, sockets):
            directory.mkdir(mode=0o700)
            if owner:
                os.chown(directory, *owner)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        password = secrets.token_hex(16)  # other people share this machine's loopback: no trust auth
        pwfile = base / "pwfile"
        pwfile.write_text(password)
        pwfile.chmod(0o600)
        if owner:
            os.chown(pwfile, *owner)
        port = free_port()
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "prefect", f"--pwfile={pwfile}"]
        initdb += ["--auth=scram-sha-256", "--no-sync", "--locale=C", "--encoding=UTF8"]
        serve = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port)]
        serve += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sockets}"]
        with log.open("ab") as out:
            subprocess.run(
                initdb, env=env, cwd=base, stdout=out, stderr=subprocess.STDOUT, check=True, **as_owner
            )
            server: subprocess.Popen[bytes] = subprocess.Popen(
                serve,
                env=env,
                cwd=base,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **as_owner,
            )
        pwfile.unlink()
        try:
            asyncio.run(_create_database(port, password, server))
            yield f"postgresql+asyncpg://prefect:{password}@127.0.0.1:{port}/prefect"
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGINT)  # "fast" shutdown: roll back, disconnect, stop
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def _create_database(
    port: int, password: str, server: subprocess.Popen[bytes], timeout: float = 60.0
) -> None:
    import asyncpg  # type: ignore[import-untyped]  # Prefect's PostgreSQL driver, installed with Prefect

    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"postgres exited at start (code {server.returncode})")
        try:
            connection = await asyncpg.connect(
                host="127.0.0.1", port=port, user="prefect", password=password, database="postgres"
            )
            break
        except (OSError, asyncpg.CannotConnectNowError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)
    try:
        await connection.execute("CREATE DATABASE prefect")
    finally:
        await connection.close()


# -- one backend ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    backend: str
    attempted: int
    accepted: int = 0
    completed: int = 0
    ended: dict[str, str] = field(default_factory=dict)  # run name -> final state, when not COMPLETED
    wall: float = 0.0
    to_dev_merged: list[float] = field(default_factory=list)
    to_created: list[float] = field(default_factory=list)  # delivery -> flow run created by the trigger
    per_worker: dict[str, int] = field(default_factory=dict)
    lost_claims: int = 0
    created: int = 0  # flow runs the trigger created
    main_problems: list[str] = field(default_factory=list)
    log_errors: dict[str, int] = field(default_factory=dict)
    timed_out: bool = False
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return (
            not self.skipped
            and self.completed == self.attempted
            and self.accepted == self.attempted
            and not self.main_problems
            and len(self.to_dev_merged) == self.attempted
        )


def all_runs(stack: Stack) -> list[dict[str, Any]]:
    """Every promote-release run (pages of 200: the API's default limit)."""
    runs: list[dict[str, Any]] = []
    while True:
        query = {"flow_runs": {"tags": {"all_": ["promoter"]}}, "limit": 200, "offset": len(runs)}
        response = httpx.post(f"{stack.prefect.api_url}/flow_runs/filter", json=query, timeout=60)
        response.raise_for_status()
        page = list(response.json())
        runs += page
        if len(page) < 200:
            return runs


def push_releases(stack: Stack, count: int, interval: float) -> tuple[list[float], list[int]]:
    """One delivery per app (all at once, or `interval` s apart); when each was sent, and its status."""

    def push(index: int) -> tuple[float, int]:
        time.sleep(index * interval)
        sent = time.time()
        try:
            return sent, stack.push(f"{REGISTRY}/{app_name(index)}", tag_of(index)).status_code
        except httpx.HTTPError:
            return sent, 0

    with ThreadPoolExecutor(max_workers=min(count, 50)) as pool:
        results = list(pool.map(push, range(count)))
    return [sent for sent, _ in results], [code for _, code in results]


def wait_until_ended(
    stack: Stack, outcome: Outcome, started: float, timeout: float
) -> dict[str, dict[str, Any]]:
    """Poll every 2 s until N runs have ended, printing the count per state every 15 s. Stop early when
    every run has ended and none appeared for SETTLE s: a release whose trigger action failed never gets
    a run (SQLite's server answered 503 to it), and waiting for it would only run into the timeout."""
    deadline = time.monotonic() + timeout
    settled_since = time.monotonic()
    last_print = 0.0
    runs: dict[str, dict[str, Any]] = {}
    while True:
        try:
            runs = {run["id"]: run for run in all_runs(stack)}
        except httpx.HTTPError as error:  # a busy server may not answer in time: keep watching
            print(f"  {time.time() - started:6.0f}s  API poll failed: {type(error).__name__}", flush=True)
            runs = runs or {}
        states = collections.Counter(run["state_name"] for run in runs.values())
        now = time.time() - started
        if now - last_print >= 15:
            last_print = now
            print(f"  {now:6.0f}s  " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())), flush=True)
        ended = sum(1 for run in runs.values() if run["state_type"] in FINAL)
        if ended >= outcome.attempted:
            return runs
        if not runs or ended < len(runs) or len(runs) != outcome.created:
            settled_since = time.monotonic()
        outcome.created = len(runs)
        if time.monotonic() - settled_since > SETTLE:
            return runs
        if time.monotonic() > deadline:
            outcome.timed_out = True
            return runs
        time.sleep(2.0)


def check_main(stack: Stack, seed: str, count: int) -> list[str]:
    """What is wrong on `main` since the apps were added (nothing, when every release landed once)."""
    git, main, merges, bumps = main_since(stack, seed)
    stale = [
        f"{env}/{app_name(index)}"
        for index in range(count)
        for env in ENVS
        if f"{REGISTRY}/{app_name(index)}:{tag_of(index)} "
        not in (git.read_file(main, f"{GROUP}/{env}/{app_name(index)}.yaml") or b"").decode()
    ]
    problems = []
    if merges != len(ENVS) * count:
        problems.append(f"{merges}/{len(ENVS) * count} merge commits")
    if len(bumps) != len(ENVS) * count:
        problems.append(f"{len(bumps)}/{len(ENVS) * count} bump commits")
    if len(set(bumps)) != len(bumps):
        problems.append(f"{len(bumps) - len(set(bumps))} bumps twice")
    if stale:
        problems.append(f"{len(stale)} manifests not at the new tag (e.g. {', '.join(stale[:3])})")
    return problems


def dev_merged_after(stack: Stack, sent: list[float]) -> list[float]:
    """Delivery -> dev PR merged, per release whose dev PR merged, from the forge's own records."""
    pulls = {pr.title: pr for pr in stack.sandbox.forge.pulls(stack.repo)}
    spans = []
    for index, at in enumerate(sent):
        title = PRState(group=GROUP, app=app_name(index), tag=tag_of(index), env=ENVS[0]).title()
        pr = pulls.get(title)
        if pr is not None and pr.merged and pr.merged_at:
            spans.append(pr.merged_at - at)
    return spans


def created_after(runs: Iterable[dict[str, Any]], sent: list[float]) -> list[float]:
    """Delivery -> flow run created (the automation acted), per run, matched by its `tag` parameter."""
    when = {tag_of(index): at for index, at in enumerate(sent)}
    return [
        datetime.fromisoformat(run["created"]).timestamp() - when[run["parameters"]["tag"]]
        for run in runs
        if run.get("created") and (run.get("parameters") or {}).get("tag") in when
    ]


def per_worker(logs: Path, run_ids: set[str]) -> tuple[dict[str, int], int]:
    """Runs each worker started, and claims it lost: both workers may try to submit the same run; the
    server lets one move it to Pending and tells the other to abort (a resumed run is started again)."""
    counts, aborted = {}, 0
    for log in sorted(logs.glob("worker-*.log")):
        text = log.read_text(errors="replace")
        submitted = re.findall(r"submitting flow run '([0-9a-f-]+)'", text)
        lost = re.findall(r"Aborted submission of flow run '([0-9a-f-]+)'", text)
        counts[log.stem] = sum(1 for i in submitted if i in run_ids) - sum(1 for i in lost if i in run_ids)
        aborted += sum(1 for i in lost if i in run_ids)
    return counts, aborted


def log_errors(logs: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for log in sorted(logs.glob("*.log")):
        text = log.read_text(errors="replace")
        for needle in ("Traceback", "database is locked", "| ERROR", "Action failed"):
            if text.count(needle):
                counts[f"{log.name} {needle!r}"] = text.count(needle)
    return counts


def run_backend(backend: str, args: argparse.Namespace, root: Path, bin_dir: Path | None) -> Outcome:
    count: int = args.apps
    outcome = Outcome(backend, count)
    environments = (("dev", True), ("qa", True), ("prod", True))
    files = {**app_files(count), "gitops-promotion.yaml": config_text(environments)}
    logs = root / "stack" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"\n[{backend}] starting under {root} ...", flush=True)
    with ExitStack() as stack_:
        url = None
        if backend == "postgresql":
            assert bin_dir is not None
            url = stack_.enter_context(postgres(bin_dir, logs / "postgresql.log"))
            print(f"[{backend}] PostgreSQL from {bin_dir} on {url.split('@')[1]}", flush=True)
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
                workers=args.workers,
                warm_workers=not args.cold_workers,
            )
        )
        stack.sandbox.create_repo("acme/gitops", files=files)
        seed = stack.sandbox.forge.git(stack.repo).branches()[stack.repo.default_branch]
        print(f"[{backend}] {args.workers} workers up; sending {count} releases ...", flush=True)
        started = time.time()
        sent, codes = push_releases(stack, count, args.interval)
        outcome.accepted = sum(1 for code in codes if 200 <= code < 300)
        timeout = args.timeout or 600 + 30 * count
        runs = wait_until_ended(stack, outcome, started, timeout)
        outcome.created = len(runs)
        ends = [
            datetime.fromisoformat(run["end_time"]).timestamp() for run in runs.values() if run["end_time"]
        ]
        outcome.wall = (max(ends) if ends and not outcome.timed_out else time.time()) - started
        for run in runs.values():
            if run["state_type"] == "COMPLETED":
                outcome.completed += 1
            else:
                outcome.ended[run["name"]] = f"{run['state_name']}: {(run.get('state') or {}).get('message')}"
        outcome.to_dev_merged = dev_merged_after(stack, sent)
        outcome.to_created = created_after(runs.values(), sent)
        outcome.main_problems = check_main(stack, seed, count)
        outcome.per_worker, outcome.lost_claims = per_worker(stack.logs, set(runs))
        outcome.log_errors = log_errors(logs)  # before the teardown, which logs its own cancellations
    return outcome


# -- report ---------------------------------------------------------------------------------------------


def table(outcomes: list[Outcome]) -> str:
    head = (
        f"{'backend':<11} {'completed':>10} {'wall s':>8} {'runs/min':>9} {'dev merged p50 s':>17}"
        f" {'p95 s':>7} {'run created p95 s':>18}  {'main':<6} runs per worker"
    )
    lines = [head, "-" * len(head)]
    for o in outcomes:
        if o.skipped:
            lines.append(f"{o.backend:<11} skipped: {o.skipped}")
            continue
        spans = o.to_dev_merged
        p50 = f"{statistics.median(spans):.1f}" if spans else "-"
        high = f"{p95(spans):.1f}" if spans else "-"
        created = f"{p95(o.to_created):.1f}" if o.to_created else "-"
        rate = o.completed / o.wall * 60 if o.wall > 0 else 0.0
        wall = f"{o.wall:.0f}" + ("+" if o.timed_out else "")
        workers = " ".join(f"{name} {n}" for name, n in o.per_worker.items())
        lines.append(
            f"{o.backend:<11} {f'{o.completed}/{o.attempted}':>10} {wall:>8} {rate:>9.1f} {p50:>17}"
            f" {high:>7} {created:>18}  {'ok' if not o.main_problems else 'BAD':<6} {workers}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100, help="apps, one release each (default 100)")
    parser.add_argument("--workers", type=int, default=2, help="process workers on the pool (default 2)")
    parser.add_argument("--limit", type=int, default=5, help="runs at once per worker (default 5)")
    parser.add_argument(
        "--cold-workers",
        action="store_true",
        help="`prefect worker start` instead of `promoter worker`: each run a new interpreter",
    )
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated, in order (default postgresql,sqlite)"
    )
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between deliveries (default 0)")
    parser.add_argument(
        "--flux-delay", type=float, default=1.0, help="seconds before Flux reports (default 1)"
    )
    parser.add_argument("--timeout", type=float, default=0.0, help="per backend (default 600 + 30 s per app)")
    parser.add_argument("--pg-bin", help="directory of PostgreSQL's initdb and postgres (default: searched)")
    parser.add_argument(
        "--allow-no-postgres",
        action="store_true",
        help="without PostgreSQL's server binaries, say why and run the other backends (for CI)",
    )
    parser.add_argument("--root", help="keep state and logs here (default: a temp dir)")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if unknown := set(backends) - set(BACKENDS):
        parser.error(f"unknown backends {sorted(unknown)}; choose from {', '.join(BACKENDS)}")
    bin_dir, why = postgres_bin(args.pg_bin) if "postgresql" in backends else (None, "")
    if "postgresql" in backends and bin_dir is None:
        if not args.allow_no_postgres:
            print(f"cannot run the PostgreSQL backend: {why} (install Debian's postgresql, or pass --pg-bin)")
            return 1
        print(f"skipping PostgreSQL: {why}", flush=True)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="promoter-scale-") as tmp:
        root = Path(args.root) if args.root else Path(tmp)
        for backend in backends:
            if backend == "postgresql" and bin_dir is None:
                outcomes.append(Outcome(backend, args.apps, skipped=why))
                continue
            outcomes.append(run_backend(backend, args, root / backend, bin_dir))
            print(table(outcomes[-1:]).splitlines()[-1], flush=True)  # a long run keeps each row
    print(
        f"\n{args.apps} releases of {args.apps} apps (one each), sent "
        + (f"{args.interval:g} s apart" if args.interval else "at once")
        + f"; {args.workers} {'prefect' if args.cold_workers else 'promoter'} workers x --limit {args.limit};"
        + " dev -> qa -> prod, all auto;"
        f" Flux delay {args.flux_delay:g} s\n"
    )
    print(table(outcomes))
    for o in outcomes:
        for name, what in sorted(o.ended.items()):
            print(f"  {o.backend}: not completed: {name} -> {what}")
        if o.created < o.attempted and not o.skipped:
            print(f"  {o.backend}: {o.attempted - o.created} releases got no flow run (see 'Action failed')")
        if o.accepted != o.attempted and not o.skipped:
            print(f"  {o.backend}: {o.attempted - o.accepted} deliveries refused")
        for problem in o.main_problems:
            print(f"  {o.backend}: main: {problem}")
        if o.lost_claims:
            print(f"  {o.backend}: {o.lost_claims} submissions aborted (the other worker had the run)")
        if o.log_errors:
            print(f"  {o.backend} logs: " + ", ".join(f"{k} {v}" for k, v in o.log_errors.items()))
    if args.root:
        print(f"\nlogs kept under {args.root}")
    ran = [o for o in outcomes if not o.skipped]
    return 0 if ran and all(o.ok for o in ran) else 1


if __name__ == "__main__":
    sys.exit(main())
