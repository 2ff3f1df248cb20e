"""`promoter metrics`: delivery metrics (DORA) of the GitOps repository, read from main and Flux's reports.

Takes the repository and token as `new`, `promote` and `status` do (the checkout's origin, `--token` or
`PROMOTER_TOKEN`). The table goes to stdout, progress to stderr, so `--json > metrics.json` stays clean.

`--json` prints one object (keys stable; times in seconds, null where nothing was measured):
`since`, `until` (UTC ISO 8601), `days`, `apps` (`group/app`, those deployed in the window) and
`environments`, in promotion order, each with `env`, `deployments`, `per_day`, `per_week`, `daily`
(`YYYY-MM-DD` -> count), `lead_time_seconds` {`p50`, `p90`}, `failures`, `no_report`,
`change_failure_rate` (0 to 1) and `time_to_restore_seconds` {`p50`, `restored`, `unrestored`}.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from promoter.errors import InvalidInputError

_WINDOW_PART = re.compile(r"(\d+)([wdhm])")
_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
MAX_WINDOW = timedelta(days=3660)


def parse_window(text: str) -> timedelta:
    """`30d`, `12h`, `2w`, `1w3d`: how far back the metrics look. Unlike `status_timeout_minutes`, a bare
    number is refused: "30" could mean minutes or days."""
    value = text.strip().lower()
    parts = _WINDOW_PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise InvalidInputError(
            f"--since {text!r} is not a duration: use a number and a unit, w, d, h or m (30d, 12h, 2w)"
        )
    window = sum((int(n) * _UNITS[u] for n, u in parts), timedelta())
    if not timedelta(0) < window <= MAX_WINDOW:
        raise InvalidInputError(
            f"--since {text!r}: give a window longer than zero and at most {MAX_WINDOW.days} days"
        )
    return window


def _metrics(args: argparse.Namespace) -> int:
    from promoter import commands
    from promoter.delivery_render import table
    from promoter.delivery_source import measure
    from promoter.names import parse_app_ref

    window = parse_window(args.since)
    group, app = parse_app_ref(args.app) if args.app else (None, None)
    options = commands.Options.of(args)
    until = datetime.now(UTC)
    with commands.promotion_for(options) as promotion:
        print(f"reading main of {promotion.workspace.remote_url}...", file=sys.stderr)
        metrics = measure(
            promotion,
            until - window,
            until,
            group=group,
            app=app,
            progress=lambda line: print(line, file=sys.stderr),
        )
    if args.json:
        document: dict[str, Any] = metrics.as_json()
        print(json.dumps(document, indent=2))
    else:
        print(table(metrics))
    return 0


def add_parser(commands: Any, compat: argparse.ArgumentParser) -> None:
    """Register `metrics` with the repository and token options of the gitops-promotion commands."""
    metrics = commands.add_parser(
        "metrics",
        parents=[compat],
        help="delivery metrics (DORA) per environment, from main's history and Flux's reports",
        description="Deployments per day and week, lead time (p50/p90) from a release's first bump to each "
        "environment, change failure rate (deployments Flux reported failed) and time to restore, per "
        "environment, over the last --since.",
    )
    metrics.add_argument(
        "--since",
        default="30d",
        help="how far back: a number and w, d, h or m, e.g. 30d, 12h, 2w (default: 30d)",
    )
    metrics.add_argument("--app", help="one app only, as <group>/<app> (default: every app)")
    metrics.add_argument("--json", action="store_true", help="print JSON (stable keys) instead of a table")
    metrics.set_defaults(handler=_metrics)
