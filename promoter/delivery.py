"""Delivery metrics (DORA) per environment, computed from deployments and Flux's verdict on each.

Pure: the deployments come from main's history (`promoter.history`) and the verdicts from the forge
(`promoter.delivery_source`), so every figure here can be checked by hand on a scripted history:

- a deployment counts in the window when its commit reached main (`deployed_at`) within it;
- the lead time of a deployment runs from its release's start to `deployed_at`. A release is
  (group, app, tag); it starts at the earliest `started_at` among its deployments, the first
  environment's bump, so qa's lead time includes the time spent in dev;
- a deployment is failed when Flux's verdict on it is a failure; the change failure rate of an
  environment is its failed deployments over all its deployments (those Flux said nothing on count as
  deployments, not as failures);
- an outage starts at a failed deployment whose app's previous deployment in the environment was not
  failed, and ends at the app's next healthy deployment there: a fix that fails too does not restart the
  clock. Time to restore is measured per outage; one that has not ended is counted as unrestored;
- percentiles are nearest-rank: the p-th of n sorted values is the ceil(p / 100 * n)-th, always one of
  the values (p50 of 1, 2, 3, 4 is 2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from promoter.history import Deployment

Outcome = Literal["healthy", "failed", "no report"]
DeploymentKey = tuple[str, str, str, str]  # group, app, env, commit
DAY = timedelta(days=1)


def key(deployment: Deployment) -> DeploymentKey:
    """What identifies a deployment: one commit can deploy several apps and environments at once."""
    return (deployment.group, deployment.app, deployment.env, deployment.commit)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (see the module's docstring); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class EnvironmentMetrics:
    """One environment's figures over the window; times are seconds, None where nothing was measured."""

    env: str
    deployments: int
    per_day: float
    per_week: float
    daily: tuple[tuple[date, int], ...]
    lead_p50: float | None
    lead_p90: float | None
    failures: int
    unreported: int
    change_failure_rate: float | None
    restore_p50: float | None
    restored: int
    unrestored: int

    def as_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "deployments": self.deployments,
            "per_day": round(self.per_day, 3),
            "per_week": round(self.per_week, 3),
            "daily": {day.isoformat(): count for day, count in self.daily},
            "lead_time_seconds": {"p50": self.lead_p50, "p90": self.lead_p90},
            "failures": self.failures,
            "no_report": self.unreported,
            "change_failure_rate": None
            if self.change_failure_rate is None
            else round(self.change_failure_rate, 4),
            "time_to_restore_seconds": {
                "p50": self.restore_p50,
                "restored": self.restored,
                "unrestored": self.unrestored,
            },
        }


@dataclass(frozen=True)
class DeliveryMetrics:
    """The figures of every environment (in promotion order) over [since, until]."""

    since: datetime
    until: datetime
    apps: tuple[str, ...]
    environments: tuple[EnvironmentMetrics, ...]

    @property
    def days(self) -> float:
        return (self.until - self.since) / DAY

    def environment(self, env: str) -> EnvironmentMetrics:
        return next(m for m in self.environments if m.env == env)

    def as_json(self) -> dict[str, Any]:
        """`promoter metrics --json`: stable keys, times in seconds, timestamps in UTC ISO 8601."""
        return {
            "since": _iso(self.since),
            "until": _iso(self.until),
            "days": round(self.days, 3),
            "apps": list(self.apps),
            "environments": [m.as_json() for m in self.environments],
        }


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def release_starts(deployments: Iterable[Deployment]) -> dict[tuple[str, str, str], datetime]:
    """(group, app, release) -> when the release started: its earliest bump in any environment."""
    starts: dict[tuple[str, str, str], datetime] = {}
    for deployment in deployments:
        release = _release(deployment)
        if release not in starts or deployment.started_at < starts[release]:
            starts[release] = deployment.started_at
    return starts


def _release(deployment: Deployment) -> tuple[str, str, str]:
    return (deployment.group, deployment.app, deployment.tag or deployment.digest or "")


def compute(
    deployments: Sequence[Deployment],
    outcomes: Mapping[DeploymentKey, Outcome],
    environments: Sequence[str],
    since: datetime,
    until: datetime,
) -> DeliveryMetrics:
    """The metrics of `environments` over [since, until].

    `deployments` may reach back before `since`: those only date the start of releases that were still
    going through the environments in the window. `outcomes` needs the window's deployments only; one
    missing counts as "no report".
    """
    since, until = since.astimezone(UTC), until.astimezone(UTC)  # days are UTC days
    if until <= since:
        raise ValueError("the window must end after it starts")
    starts = release_starts(deployments)
    inside = sorted(
        (d for d in deployments if since <= d.deployed_at <= until), key=lambda d: (d.deployed_at, d.commit)
    )
    measured = [
        _environment(env, [d for d in inside if d.env == env], starts, outcomes, since, until)
        for env in environments
    ]
    apps = sorted({f"{d.group}/{d.app}" for d in inside})
    return DeliveryMetrics(since=since, until=until, apps=tuple(apps), environments=tuple(measured))


def _environment(
    env: str,
    deployments: list[Deployment],
    starts: Mapping[tuple[str, str, str], datetime],
    outcomes: Mapping[DeploymentKey, Outcome],
    since: datetime,
    until: datetime,
) -> EnvironmentMetrics:
    days = (until - since) / DAY
    count = len(deployments)
    leads = [max(0.0, (d.deployed_at - starts[_release(d)]).total_seconds()) for d in deployments]
    said = [outcomes.get(key(d), "no report") for d in deployments]
    failures = said.count("failed")
    restores, unrestored = _restores(deployments, said)
    return EnvironmentMetrics(
        env=env,
        deployments=count,
        per_day=count / days,
        per_week=count / days * 7,
        daily=_daily(deployments, since, until),
        lead_p50=percentile(leads, 50),
        lead_p90=percentile(leads, 90),
        failures=failures,
        unreported=said.count("no report"),
        change_failure_rate=failures / count if count else None,
        restore_p50=percentile(restores, 50),
        restored=len(restores),
        unrestored=unrestored,
    )


def _restores(deployments: list[Deployment], said: list[Outcome]) -> tuple[list[float], int]:
    """Seconds from each outage's first failure to the next healthy deployment of that app, and how
    many outages are still open; `deployments` are one environment's, oldest first."""
    broken: dict[tuple[str, str], datetime] = {}  # app -> when its open outage began
    restores: list[float] = []
    for deployment, outcome in zip(deployments, said, strict=True):
        app = (deployment.group, deployment.app)
        if outcome == "failed":
            broken.setdefault(app, deployment.deployed_at)
        elif outcome == "healthy" and app in broken:
            restores.append((deployment.deployed_at - broken.pop(app)).total_seconds())
    return restores, len(broken)


def _daily(deployments: list[Deployment], since: datetime, until: datetime) -> tuple[tuple[date, int], ...]:
    """Deployments per UTC day, every day of the window listed (zeros too), so a chart has no gaps."""
    first, last = since.date(), until.date()
    counts = {first + timedelta(days=n): 0 for n in range((last - first).days + 1)}
    for deployment in deployments:
        counts[deployment.deployed_at.date()] += 1
    return tuple(counts.items())
