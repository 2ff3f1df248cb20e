"""What does Prefect orchestration add to a promotion's latency, against a plain script doing the same work?

Starts the whole stack on loopback (`sandbox/stack.py`: Prefect server, sandbox forge with the Flux
emulator reporting at once (delay 0), `promoter serve`, `promoter webhook`), adds N+1 apps to `acme/gitops`
and a twin repository `acme/floor` with the same apps, config and branch protection, then releases one
app after another, alternating:

- orchestrated: `stack.push(image, tag)` (a signed registry webhook delivery) and the `promote-release`
  run it starts, until the run is suspended at the prod gate;
- floor: this process calling the stage functions the tasks wrap (`promoter.stages`) directly against
  `acme/floor`, with the same poll interval and merge-wait backoff (resolve apps, then per environment:
  open the PR with its check, wait merge, wait Flux; stop once the prod check is posted), with one
  `Target.open()` per release.

The first release of each kind warms up (clones, server caches) and is not counted. Every span is read
from the forge's own records (PR `merged_at`, status `created_at`) against the wall clock taken just
before the push (orchestrated) or the first call (floor):

  (a) webhook -> dev PR merged;
  (b) Flux `success` on env N's merge commit -> `promoter` `success` on env N+1's PR head (dev->qa, qa->prod);
  (c) the story minus waits: push -> prod PR check green (dev and qa done, up to the prod gate).

Orchestrated only, for the breakdown: push -> flow run created (the automation acted), push -> flow run
Running (Prefect's `start_time`: the runner picked it up and its process started) and push -> run seen PAUSED
at the gate (polled every 0.25 s; a run PAUSED without its approval form saved is an error). Prints median and p95 (nearest rank: the maximum for fewer
than 20 releases) and the orchestrated/floor ratio of the medians. Goals (from the issue): (a) median at
most 3 s, and (c) ratio at most 1.5. Exit status 1 when a goal is missed. About 2-4 minutes.

    .venv/bin/python bench/latency.py [--releases N] [--sweep-seconds S] [--root DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from promoter.gate import gate
from promoter.health import Health
from promoter.promotion import Target
from promoter.pull_request import PRState
from promoter.release import resolve_apps_at
from promoter.stages import Merged, OpenedPR, open_pull_request, wait_for_environment, wait_merged
from sandbox.forge import Repository
from sandbox.sample import DEPLOYMENT, config_text
from sandbox.stack import FINAL, Stack, promoter_stack

GROUP = "apps"
REGISTRY = "ghcr.io/acme"
POLL_INTERVAL = 0.3
SCENARIO = {"default": {"outcome": "healthy", "delay": 0.0}}
MERGE_TIMEOUT = 120.0
RUN_TIMEOUT = 240.0

SPANS = (
    ("webhook -> dev PR merged", "a"),
    ("Flux green dev -> qa check green", "b"),
    ("Flux green qa -> prod check green", "b"),
    ("story: push -> prod check green", "c"),
)
EXTRAS = ("push -> flow run created", "push -> flow run Running", "push -> run PAUSED at gate")


def app_name(index: int) -> str:
    return f"lat-{index:02d}"


def release_tag(index: int) -> str:
    """A git-sha style tag, as CI pipelines push (the demo's tags look the same)."""
    return hashlib.sha256(f"latency-{index}".encode()).hexdigest()[:8]


def app_files(count: int, with_config: bool) -> dict[str, str]:
    files = {"gitops-promotion.yaml": config_text()} if with_config else {}
    for index in range(count):
        app = app_name(index)
        for env in ("dev", "qa", "prod"):
            files[f"{GROUP}/{env}/{app}.yaml"] = DEPLOYMENT.format(
                group=GROUP, app=app, registry=REGISTRY, tag="6.5.0"
            )
    return files


# -- reading the forge's records ------------------------------------------------------------------------


def _pull(forge: Any, repo: Repository, app: str, tag: str, env: str) -> Any:
    title = PRState(group=GROUP, app=app, tag=tag, env=env).title()
    found = [pr for pr in forge.pulls(repo) if pr.title == title]
    if not found:
        raise RuntimeError(f"no PR {title!r} in {repo.full_name}")
    return found[-1]


def _status_time(forge: Any, repo: Repository, sha: str | None, match: Callable[[str], bool]) -> float:
    """`created_at` of the first `success` status on `sha` whose context matches."""
    if not sha:
        raise RuntimeError("no commit to read statuses from")
    times = [s.created_at for s in forge.statuses(repo, sha) if s.state == "success" and match(s.context)]
    if not times:
        raise RuntimeError(f"no matching success status on {sha[:8]} in {repo.full_name}")
    return float(min(times))


def _flux(env: str) -> Callable[[str], bool]:
    def match(context: str) -> bool:
        parts = context.split("/")
        return len(parts) >= 2 and parts[0] == "kustomization" and parts[1] == f"{GROUP}-{env}"

    return match


def _promoter(context: str) -> bool:
    return context == "promoter"


def read_spans(forge: Any, repo: Repository, app: str, tag: str, started: float) -> dict[str, float]:
    dev, qa, prod = (_pull(forge, repo, app, tag, env) for env in ("dev", "qa", "prod"))
    if not (dev.merged and qa.merged and dev.merged_at):
        raise RuntimeError(f"{app}:{tag}: dev or qa PR not merged")
    flux_dev = _status_time(forge, repo, dev.merge_commit_sha, _flux("dev"))
    flux_qa = _status_time(forge, repo, qa.merge_commit_sha, _flux("qa"))
    qa_check = _status_time(forge, repo, qa.head_sha, _promoter)
    prod_check = _status_time(forge, repo, prod.head_sha, _promoter)
    return {
        SPANS[0][0]: dev.merged_at - started,
        SPANS[1][0]: qa_check - flux_dev,
        SPANS[2][0]: prod_check - flux_qa,
        SPANS[3][0]: prod_check - started,
    }


# -- the two ways of releasing --------------------------------------------------------------------------


def orchestrated(stack: Stack, index: int, tag: str) -> dict[str, float]:
    app = app_name(index)
    started = time.time()
    stack.push(f"{REGISTRY}/{app}", tag).raise_for_status()
    deadline = time.monotonic() + RUN_TIMEOUT
    paused_at: float | None = None
    run: dict[str, Any] = {}
    while paused_at is None:
        runs = stack.runs(f"tag:{tag}")
        if runs:
            run = runs[-1]
            if run["state_type"] == "PAUSED":
                paused_at = time.time()
                break
            if run["state_type"] in FINAL:
                raise RuntimeError(f"run {run['name']} ended {run['state_name']}: {run.get('state')}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{app}:{tag} did not reach the prod gate within {RUN_TIMEOUT:.0f} s")
        time.sleep(0.25)
    if not has_approval_form(stack, run):
        raise RuntimeError(f"run {run['name']} is PAUSED without its approval form (input schema)")
    spans = read_spans(stack.sandbox.forge, stack.repo, app, tag, started)
    for name, field in zip(EXTRAS[:2], ("created", "start_time"), strict=True):
        if run.get(field):
            spans[name] = datetime.fromisoformat(run[field]).timestamp() - started
    spans[EXTRAS[2]] = paused_at - started
    return spans


def has_approval_form(stack: Stack, run: Mapping[str, Any]) -> bool:
    """Whether the suspended run saved the schema of its approval form (the UI and resume need it)."""
    keyset = ((run.get("state") or {}).get("state_details") or {}).get("run_input_keyset") or {}
    if "schema" not in keyset:
        return False
    response = httpx.get(
        f"{stack.prefect.api_url}/flow_runs/{run['id']}/input/{keyset['schema']}", timeout=30
    )
    return response.status_code == 200


def floor(stack: Stack, repo: Repository, cache: Path, index: int, tag: str) -> dict[str, float]:
    """The same git and forge operations as the flow, straight from this process."""
    app = app_name(index)
    target = Target(
        gitops_url=stack.sandbox.clone_url(repo),
        provider="github",
        cache_dir=str(cache),
        poll_interval=POLL_INTERVAL,
    )
    started = time.time()
    with target.open() as promotion:
        snapshot = promotion.workspace.snapshot()
        apps = resolve_apps_at(snapshot, promotion.config, f"{REGISTRY}/{app}")
        if apps != [(GROUP, app)]:
            raise RuntimeError(f"{REGISTRY}/{app} resolved to {apps}")
        merge_commit = ""
        previous: Health | None = None
        for env in promotion.config.environments:
            state = PRState(group=GROUP, app=app, tag=tag, env=env.name, sha=merge_commit)
            pr = open_pull_request(promotion, state, gate(env.name, previous))
            if not isinstance(pr, OpenedPR):
                raise RuntimeError(f"{app}: {env.name} already runs {tag}")
            if not env.auto:
                break
            merged = wait_merged(promotion.provider, pr, timeout=MERGE_TIMEOUT)
            if not isinstance(merged, Merged):
                raise RuntimeError(merged.reason)
            previous = wait_for_environment(promotion, GROUP, env.name, merged.merge_commit)
            if not previous.healthy:
                raise RuntimeError(f"{GROUP}-{env.name} {previous.outcome}")
            merge_commit = merged.merge_commit
    return read_spans(stack.sandbox.forge, repo, app, tag, started)


# -- report ---------------------------------------------------------------------------------------------


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def table(
    orch: Sequence[Mapping[str, float]], flo: Sequence[Mapping[str, float]]
) -> tuple[str, dict[str, float]]:
    medians: dict[str, float] = {}
    head = f"{'span (seconds)':<36} {'orch med':>9} {'orch p95':>9} {'floor med':>10} {'floor p95':>10} {'ratio':>7}"
    lines = [head, "-" * len(head)]
    for name, _ in SPANS:
        o = [r[name] for r in orch]
        f = [r[name] for r in flo]
        om, fm = statistics.median(o), statistics.median(f)
        medians[name], medians[f"floor {name}"] = om, fm
        ratio = om / fm if fm > 0 else math.inf
        medians[f"ratio {name}"] = ratio
        lines.append(f"{name:<36} {om:9.2f} {p95(o):9.2f} {fm:10.2f} {p95(f):10.2f} {ratio:7.2f}")
    for name in EXTRAS:
        o = [r[name] for r in orch if name in r]
        if o:
            lines.append(f"{name:<36} {statistics.median(o):9.2f} {p95(o):9.2f} {'-':>10} {'-':>10} {'-':>7}")
    return "\n".join(lines), medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=5, help="counted releases of each kind (default 5)")
    parser.add_argument(
        "--sweep-seconds",
        type=float,
        default=60.0,
        help="approval-sweeper interval of `promoter serve` (default 60, its production default)",
    )
    parser.add_argument("--root", help="keep the stack's state and logs here (default: a temp dir)")
    args = parser.parse_args()
    count = args.releases + 1
    with tempfile.TemporaryDirectory(prefix="promoter-latency-") as tmp:
        root = Path(args.root) if args.root else Path(tmp)
        print(f"starting the stack under {root} ...", flush=True)
        with promoter_stack(
            root / "stack", scenario=SCENARIO, poll_interval=POLL_INTERVAL, sweep_seconds=args.sweep_seconds
        ) as stack:
            os.environ["PROMOTER_TOKEN"] = stack.sandbox.token
            stack.sandbox.create_repo("acme/gitops", files=app_files(count, with_config=False))
            twin = stack.sandbox.create_repo(
                "acme/floor", files=app_files(count, with_config=True), protect={"main": ["promoter"]}
            )
            print(f"logs: {stack.logs}", flush=True)
            orch: list[dict[str, float]] = []
            flo: list[dict[str, float]] = []
            for index in range(count):
                tag = release_tag(index)
                label = "warm-up" if index == 0 else f"release {index}"
                o = orchestrated(stack, index, tag)
                f = floor(stack, twin, root / "floor-cache", index, tag)
                shorts = ("a", "b dev->qa", "b qa->prod", "c")
                figures = "  ".join(
                    f"{k} {o[n]:.2f}/{f[n]:.2f}" for k, (n, _) in zip(shorts, SPANS, strict=True)
                )
                print(
                    f"  {label:<10} {app_name(index)}:{tag}  {figures}  (orchestrated/floor, s)", flush=True
                )
                if index > 0:
                    orch.append(o)
                    flo.append(f)
    text, medians = table(orch, flo)
    print(
        f"\nlatency over {args.releases} sequential releases (Flux delay 0, poll interval {POLL_INTERVAL} s)\n"
    )
    print(text)
    story = SPANS[3][0]
    goals = [
        (f"webhook -> dev merged median <= 3 s: {medians[SPANS[0][0]]:.2f} s", medians[SPANS[0][0]] <= 3.0),
        (
            f"story ratio orchestrated/floor <= 1.5: {medians[f'ratio {story}']:.2f}",
            medians[f"ratio {story}"] <= 1.5,
        ),
    ]
    print()
    for text_line, ok in goals:
        print(f"{'met   ' if ok else 'MISSED'}  {text_line}")
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
