"""Rate-limit budgets and request statistics, per user (never per token: tokens are secrets).

GitHub's rules: a primary budget per token and hour, reported in `x-ratelimit-*` headers; a conditional
request answered 304 does not spend it. Statistics split every route's requests into counted and
conditional, so a benchmark can show that polling with ETags is free.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

WINDOW = 3600


@dataclass
class _Budget:
    reset: int
    used: int = 0


class RateLimits:
    def __init__(self, limit: int = 5000) -> None:
        self.limit = limit
        self._budgets: dict[tuple[str, str], _Budget] = {}
        self._lock = threading.Lock()

    def _budget(self, user: str, resource: str) -> _Budget:
        now = int(time.time())
        budget = self._budgets.get((user, resource))
        if budget is None or budget.reset <= now:
            budget = self._budgets[(user, resource)] = _Budget(reset=now + WINDOW)
        return budget

    def exhausted(self, user: str, resource: str) -> bool:
        with self._lock:
            return self._budget(user, resource).used >= self.limit

    def spend(self, user: str, resource: str) -> None:
        with self._lock:
            self._budget(user, resource).used += 1

    def headers(self, user: str, resource: str) -> dict[str, str]:
        with self._lock:
            budget = self._budget(user, resource)
            return {
                "x-ratelimit-limit": str(self.limit),
                "x-ratelimit-remaining": str(max(self.limit - budget.used, 0)),
                "x-ratelimit-reset": str(budget.reset),
                "x-ratelimit-used": str(budget.used),
                "x-ratelimit-resource": resource,
            }


class Stats:
    """Requests per (route template, user): `counted` spent budget, `conditional` were answered 304."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def add(self, route: str, user: str, kind: str) -> None:
        with self._lock:
            self._counts[(route, user, kind)] += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            items = dict(self._counts)
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for (route, user, kind), count in items.items():
            row = rows.setdefault(
                (route, user), {"route": route, "user": user, "counted": 0, "conditional": 0, "faults": 0}
            )
            row[kind] += count
        ordered = sorted(rows.values(), key=lambda r: (r["route"], r["user"]))
        totals = {kind: sum(r[kind] for r in ordered) for kind in ("counted", "conditional", "faults")}
        return {"routes": ordered, "total": totals}
