"""Benchmark of the sandbox forge: it must never be the bottleneck of the promotion benchmarks.

Runs `promoter sandbox` in its own process (so the clients' CPU does not compete with the server's) and
measures, over HTTP like any client:

- pull request creation, 8 concurrent clients (requests/s);
- combined-status reads, 8 concurrent clients (requests/s, median and p95 latency), and one client alone
  (the latency goal: with 8 clients on 2 CPUs, a read mostly waits for the 7 others);
- merges, one after another (median and p95 latency: merge-tree, commit-tree, compare-and-swap).

Goals (issue 3): status read under 5 ms median, merge under 100 ms median. Prints what it measured and
exits 1 when a goal is missed.

    .venv/bin/python bench/sandbox_speed.py [--prs 160] [--reads 2000] [--merges 40]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parents[1]
CLIENTS = 8
STATUS_READ_GOAL_MS = 5.0
MERGE_GOAL_MS = 100.0
TOKEN = "sandbox-token"  # noqa: S105 - the sandbox's documented default


def start_sandbox(root: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        # Merges are timed right after each PR is opened: GitHub's mergeability wait is not what is measured.
        [
            sys.executable,
            "-m",
            "promoter.cli",
            "sandbox",
            "--root",
            str(root),
            "--port",
            "0",
            "--seed-demo",
            "--mergeability-delay",
            "0",
        ],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert process.stdout is not None
    banner = ""
    for line in process.stdout:
        banner += line
        if line.startswith("Ctrl-C"):
            break
    found = re.search(r"serving (http://\S+)", banner)
    if not found:
        process.kill()
        raise SystemExit(f"the sandbox did not start:\n{banner}")
    return process, found[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def timed(call: Callable[[], httpx.Response], expect: int) -> float:
    start = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - start
    if response.status_code != expect:
        raise SystemExit(f"unexpected {response.status_code}: {response.text[:300]}")
    return elapsed


def make_branches(url: str, prefix: str, count: int) -> None:
    with httpx.Client(timeout=60) as client:
        for index in range(count):
            body = {
                "owner": "acme",
                "name": "gitops",
                "branch": f"{prefix}-{index}",
                "files": {f"bench/{prefix}-{index}.txt": f"{index}\n"},
            }
            client.post(f"{url}/_sandbox/repos", json=body).raise_for_status()


def bench_pr_creation(api: str, count: int) -> tuple[float, list[float]]:
    def create(index: int) -> float:
        body = {"title": f"bench {index}", "head": f"pr-{index}", "base": "main", "body": ""}
        return timed(lambda: clients[index % CLIENTS].post(f"{api}/repos/acme/gitops/pulls", json=body), 201)

    clients = [httpx.Client(headers={"Authorization": f"token {TOKEN}"}, timeout=60) for _ in range(CLIENTS)]
    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        latencies = list(pool.map(create, range(count)))
    wall = time.perf_counter() - start
    for client in clients:
        client.close()
    return count / wall, latencies


def bench_status_reads(api: str, sha: str, count: int, clients: int) -> tuple[float, list[float]]:
    """With 8 clients latency includes queueing behind the others; the goal is judged with 1."""
    url = f"{api}/repos/acme/gitops/commits/{sha}/status"

    def worker(index: int) -> list[float]:
        with httpx.Client(headers={"Authorization": f"token {TOKEN}"}, timeout=60) as client:
            client.get(url)  # connect and warm up
            return [timed(lambda: client.get(url), 200) for _ in range(count // clients)]

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [value for chunk in pool.map(worker, range(clients)) for value in chunk]
    wall = time.perf_counter() - start
    return len(latencies) / wall, latencies


def bench_merges(api: str, count: int) -> list[float]:
    latencies = []
    with httpx.Client(headers={"Authorization": f"token {TOKEN}"}, timeout=60) as client:
        for index in range(count):
            pr = client.post(
                f"{api}/repos/acme/gitops/pulls",
                json={"title": f"m {index}", "head": f"merge-{index}", "base": "main"},
            )
            pr.raise_for_status()
            head = pr.json()["head"]["sha"]
            client.post(
                f"{api}/repos/acme/gitops/statuses/{head}", json={"state": "success", "context": "promoter"}
            )
            number = pr.json()["number"]
            latencies.append(
                timed(lambda n=number: client.put(f"{api}/repos/acme/gitops/pulls/{n}/merge", json={}), 200)  # type: ignore[misc]
            )
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prs", type=int, default=160)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--merges", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        process, url = start_sandbox(Path(tmp))
        api = f"{url}/api/v3"
        try:
            health = httpx.get(f"{url}/_sandbox/health").json()
            make_branches(url, "pr", args.prs)
            make_branches(url, "merge", args.merges)
            create_rate, create_latencies = bench_pr_creation(api, args.prs)
            sha = httpx.get(
                f"{api}/repos/acme/gitops/git/ref/heads/main", headers={"Authorization": f"token {TOKEN}"}
            )
            main_sha = sha.json()["object"]["sha"]
            read_rate, read_latencies = bench_status_reads(api, main_sha, args.reads, CLIENTS)
            single_rate, single_latencies = bench_status_reads(api, main_sha, args.reads // 4, 1)
            merge_latencies = bench_merges(api, args.merges)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)

    read_median = statistics.median(single_latencies) * 1000
    merge_median = statistics.median(merge_latencies) * 1000
    rows = [
        (
            "PR creation, 8 clients",
            f"{create_rate:8.1f} req/s",
            f"{statistics.median(create_latencies) * 1000:7.2f}",
            f"{percentile(create_latencies, 0.95) * 1000:7.2f}",
            "",
        ),
        (
            "status read, 8 clients",
            f"{read_rate:8.1f} req/s",
            f"{statistics.median(read_latencies) * 1000:7.2f}",
            f"{percentile(read_latencies, 0.95) * 1000:7.2f}",
            "",
        ),
        (
            "status read, 1 client",
            f"{single_rate:8.1f} req/s",
            f"{read_median:7.2f}",
            f"{percentile(single_latencies, 0.95) * 1000:7.2f}",
            f"< {STATUS_READ_GOAL_MS:g} ms median",
        ),
        (
            "merge, sequential",
            f"{len(merge_latencies) / sum(merge_latencies):8.1f} req/s",
            f"{merge_median:7.2f}",
            f"{percentile(merge_latencies, 0.95) * 1000:7.2f}",
            f"< {MERGE_GOAL_MS:g} ms median",
        ),
    ]
    print(f"sandbox benchmark (API validation {'on' if health['specs'] else 'off'}, {os.cpu_count()} CPUs)")
    print(f"{'operation':<24} {'throughput':>14} {'median ms':>9} {'p95 ms':>7}  goal")
    for name, rate, median, p95, goal in rows:
        print(f"{name:<24} {rate:>14} {median:>9} {p95:>7}  {goal}")
    missed = []
    if read_median >= STATUS_READ_GOAL_MS:
        missed.append(f"status read median {read_median:.2f} ms >= {STATUS_READ_GOAL_MS} ms")
    if merge_median >= MERGE_GOAL_MS:
        missed.append(f"merge median {merge_median:.2f} ms >= {MERGE_GOAL_MS} ms")
    for problem in missed:
        print(f"GOAL MISSED: {problem}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
