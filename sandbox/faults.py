"""Fault injection, so that tests and benchmarks can prove a client survives a misbehaving forge.

Rules (YAML or JSON, from `--faults FILE` or `PUT /_sandbox/faults` at run time)::

    seed: 42                     # the random sequence is reproducible for a given seed and request order
    rules:
      - route: "*/statuses*"     # glob on the request path, or on "METHOD /template" (e.g. "GET */pulls")
        method: GET              # optional
        kind: error              # error | rate_limit | secondary | latency | drop
        rate: 0.2                # probability per matching request (default 1)
        status: 502              # for `error` (default 502)
        retry_after: 1           # seconds, for rate_limit and secondary (default 1; null: no header)
        latency: 0.05            # seconds, for latency

`rate_limit` answers 429 with `retry-after`; `secondary` answers GitHub's secondary-rate-limit 403 (with its
message and `retry-after`, or without it when `retry_after` is null, since GitHub sends it only sometimes:
"If the retry-after response header is present ... Otherwise, wait for at least one minute",
docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api); `drop` closes the connection
without a complete response. Latency rules add up; of the other kinds, the first rule that fires wins.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promoter.errors import PromoterError

SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID."
)


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    route: str = "*"
    method: str | None = None
    kind: Literal["error", "rate_limit", "secondary", "latency", "drop"]
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    status: int = Field(default=502, ge=500, le=599)
    retry_after: int | None = Field(default=1, ge=0, le=3600)
    latency: float = Field(default=0.0, ge=0.0, le=60.0)

    def matches(self, method: str, path: str, template: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return fnmatch.fnmatchcase(path, self.route) or fnmatch.fnmatchcase(
            f"{method} {template}", self.route
        )


class FaultPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    rules: list[FaultRule] = Field(default_factory=list)


class FaultConfigError(PromoterError):
    """A fault plan that does not parse or breaks the rules above."""


def parse_plan(data: Any, source: str = "faults") -> FaultPlan:
    try:
        return FaultPlan.model_validate(data or {})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise FaultConfigError(f"{source}: {where}: {first['msg']}") from None


def load_plan(path: Path) -> FaultPlan:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise FaultConfigError(f"{path}: cannot be read as YAML ({error.__class__.__name__})") from None
    return parse_plan(data, str(path))


class Faults:
    """The current plan and its random sequence; swapped atomically at run time."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.set(plan or FaultPlan())

    def set(self, plan: FaultPlan) -> None:
        with self._lock:
            self.plan = plan
            self._random = random.Random(plan.seed)

    def pick(self, method: str, path: str, template: str) -> tuple[float, FaultRule | None]:
        """(latency to add, the failing rule that fired or None)."""
        delay, fired = 0.0, None
        with self._lock:
            for rule in self.plan.rules:
                if not rule.matches(method, path, template) or self._random.random() >= rule.rate:
                    continue
                if rule.kind == "latency":
                    delay += rule.latency
                    self.injected["latency"] += 1
                elif fired is None:
                    fired = rule
                    self.injected[rule.kind] += 1
        return delay, fired
