"""`promoter demo` (`make demo`): the acceptance story on the embedded default, with a live timeline.

1. `podinfo:a8b91c33` is pushed: the webhook becomes an event, the automation starts a run; dev merges and
   turns healthy, qa merges and Flux reports it failing, the prod PR is opened red and the run is Blocked.
2. `podinfo:cc2b7e0a` is pushed: the new run resets the PR branch to dev, dev and qa turn green, and the
   run waits for a person to approve prod in the Prefect UI (or `promoter approve --app apps/podinfo`, or
   a merge of the PR in the forge). `--approve` approves by itself. Approved: merged, healthy, completed.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.approve import approve
from sandbox import require_extra

if TYPE_CHECKING:
    from sandbox.stack import Stack

IMAGE = "ghcr.io/acme/podinfo"
SCENARIO = {"default": {"delay": 1.0}, "rules": [{"env": "qa", "tag": "a8b91c33", "outcome": "failing"}]}


class Timeline:
    """Prints each `promoter.*` event once, as it arrives."""

    def __init__(self, stack: Stack, started: float) -> None:
        self.stack, self.started, self.seen = stack, started, set[str]()
        self.since: str | None = None

    def update(self) -> None:
        for event in self.stack.events(since=self.since):
            if event["id"] in self.seen:
                continue
            self.seen.add(event["id"])
            self.since = event["occurred"]
            payload = event.get("payload") or {}
            details = ", ".join(
                f"{k}={v}"
                for k, v in payload.items()
                if v and k in ("tag", "env", "reason", "pr", "outcome", "approver")
            )
            print(f"  {time.monotonic() - self.started:6.1f}s  {event['event']:<32} {details}", flush=True)


def _follow(stack: Stack, timeline: Timeline, tag: str, done: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        timeline.update()
        runs = [run for run in stack.runs(f"tag:{tag}")]
        if runs and runs[-1]["state_type"] in done:
            timeline.update()
            return runs[-1]
        time.sleep(0.5)
    raise TimeoutError(f"the run for {tag} did not reach {sorted(done)} within {timeout:.0f} s")


def _board(stack: Stack) -> str:
    """The board as `promoter board` prints it, read from the sandbox forge."""
    from promoter.board import format_board, read_board
    from promoter.promotion import Target

    settings = stack.environment
    target = Target.of(
        {
            "gitops_url": settings["PROMOTER_GITOPS_URL"],
            "provider": settings["PROMOTER_PROVIDER"],
            "cache_dir": str(stack.logs.parent / "board-cache"),
        }
    )
    with target.open(token=settings["PROMOTER_TOKEN"]) as promotion:
        return format_board(read_board(promotion))


def run(args: argparse.Namespace) -> int:
    require_extra("demo")
    from sandbox.stack import FINAL, promoter_stack

    root = Path(args.root).resolve()
    if root.exists():
        shutil.rmtree(root)
    print(
        "starting: Prefect server, sandbox forge and Flux emulator, deployments, webhook receiver ...",
        flush=True,
    )
    started = time.monotonic()
    with (
        promoter_stack(root, scenario=SCENARIO, poll_interval=0.5) as stack,
        temporary_settings({PREFECT_API_URL: stack.prefect.api_url}),
    ):
        print(f"Prefect UI      {stack.prefect.ui_url}")
        print(f"forge           {stack.sandbox.url}  (repository acme/gitops)")
        print(f"webhook         {stack.webhook_url}/hooks/generic")
        print(f"logs            {stack.logs}\n", flush=True)
        timeline = Timeline(stack, time.monotonic())

        print(f"push {IMAGE}:a8b91c33  (Flux will report qa failing)", flush=True)
        stack.push(IMAGE, "a8b91c33").raise_for_status()
        first = _follow(stack, timeline, "a8b91c33", FINAL, args.timeout)
        print(
            f"-> {first['name']}: {first['state_name']} ({(first.get('state') or {}).get('message')})\n",
            flush=True,
        )
        print(_board(stack) + "\n", flush=True)

        print(f"push {IMAGE}:cc2b7e0a", flush=True)
        stack.push(IMAGE, "cc2b7e0a").raise_for_status()
        waiting = _follow(stack, timeline, "cc2b7e0a", {"PAUSED", *FINAL}, args.timeout)
        if waiting["state_type"] == "PAUSED":
            print(f"\nprod waits for approval: {stack.ui_link(waiting)}")
            print(
                "  approve there, or merge the prod PR in the forge, or from another shell:\n"
                f"  PREFECT_API_URL={stack.prefect.api_url} .venv/bin/promoter approve --app apps/podinfo\n"
            )
            if args.approve:
                approve(
                    "apps",
                    "podinfo",
                    "cc2b7e0a",
                    reject=False,
                    approver="demo",
                    comment="approved by --approve",
                )
                print("approved by --approve", flush=True)
        final = _follow(stack, timeline, "cc2b7e0a", FINAL, args.timeout)
        print(f"-> {final['name']}: {final['state_name']} ({(final.get('state') or {}).get('message')})")
        prs = {n: (p.title, "merged" if p.merged else p.state) for n, p in sorted(stack.repo.pulls.items())}
        print("\npull requests in acme/gitops:")
        for number, (title, state) in prs.items():
            print(f"  #{number} {title}: {state}")
        print("\nthe board (`promoter board`: main's manifests and history, Flux's statuses, open PRs):")
        print(_board(stack))
        print(f"\ndone in {time.monotonic() - started:.0f} s")
        return 0 if final["state_type"] == "COMPLETED" else 1
