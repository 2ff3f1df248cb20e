"""What the emulated clusters do with each release: the scenario file of the Flux emulator.

A scenario is YAML (or the same as JSON); every block and key is optional::

    default:                 # when no rule matches
      outcome: healthy       # see OUTCOMES; or a list, one per reconcile of the same commit, the last
                             # repeating: [failing, healthy] self-heals, [healthy, failing] drifts
      delay: 0.2             # seconds a reconcile takes to apply and pass its health checks
      timeout: 2             # seconds a failing health check waits before Flux gives up (spec.timeout;
                             # default: `interval`, else `delay`)
      interval: 5            # reconcile again every N seconds (spec.interval); default: only when the
                             # source moves. Needed for outcome lists.
    flux:
      version: "1.9.0"       # notification-controller: 1.7 posts info events as success, 1.8.0 posts
                             # nothing, 1.8.1-1.8.4 post no failures (docs/sandbox.md has the sources)
      poll: 0                # GitRepository spec.interval in seconds; 0: a Receiver fetches every push
      clusters: 1            # or names ([east, west]): clusters reporting the same Kustomizations
      commit_status: "{kind}/{name}/{uid}"   # the context, as a Provider's commitStatusExpr would write it
      summary: null          # the Alert's summary: Azure DevOps genre becomes "fluxcd:<summary>"
    repos: ["acme/*"]        # which repositories Flux watches (globs; default: all)
    rules:                   # first match wins; every key is a glob, omitted keys match anything
      - env: qa
        app: podinfo
        tag: "a8b91c33"
        outcome: failing     # -> failure / error "health check failed", after `timeout`
      - env: prod
        cluster: west        # one cluster only
        outcome: never       # Flux never reports (a dropped event)
      - group: apps
        env: dev
        delay: 5             # slow: healthy, but only after 5 s

A rule about `app`/`tag` matches a kustomization (`<group>-<env>`) when one of the setter markers under
`<group>/<env>/` at the reconciled commit names that app and carries that tag. A scenario written for the
earlier format (only `default.outcome`, `default.delay`, `repos`, `rules`) means the same as before.
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from promoter.errors import PromoterError

Outcome = Literal[
    "healthy",
    "failing",
    "never",
    "build-failed",
    "apply-failed",
    "prune-failed",
    "dependency-not-ready",
]
OUTCOMES: tuple[Outcome, ...] = (
    "healthy",
    "failing",
    "never",
    "build-failed",
    "apply-failed",
    "prune-failed",
    "dependency-not-ready",
)
Outcomes = Outcome | list[Outcome]
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_FIELDS = {"kind", "name", "uid", "cluster"}


class ScenarioError(PromoterError):
    """A scenario file that cannot be read or breaks the format above."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Default(_Strict):
    outcome: Outcomes = "healthy"
    delay: float = Field(default=1.0, ge=0.0, le=3600.0)
    timeout: float | None = Field(default=None, ge=0.0, le=3600.0)
    interval: float | None = Field(default=None, gt=0.0, le=3600.0)


class Rule(_Strict):
    repo: str = "*"
    group: str = "*"
    env: str = "*"
    app: str = "*"
    tag: str = "*"
    cluster: str = "*"
    outcome: Outcomes = "healthy"
    delay: float | None = Field(default=None, ge=0.0, le=3600.0)
    timeout: float | None = Field(default=None, ge=0.0, le=3600.0)
    interval: float | None = Field(default=None, gt=0.0, le=3600.0)

    def matches(
        self, repo: str, group: str, env: str, deployed: Iterable[tuple[str, str | None]], cluster: str = ""
    ) -> bool:
        names = ((repo, self.repo), (group, self.group), (env, self.env), (cluster, self.cluster))
        if not all(fnmatch.fnmatchcase(value, pattern) for value, pattern in names):
            return False
        if self.app == "*" and self.tag == "*":
            return True
        return any(
            fnmatch.fnmatchcase(app, self.app) and fnmatch.fnmatchcase(tag or "", self.tag)
            for app, tag in deployed
        )


class Flux(_Strict):
    """The clusters' Flux: its notification-controller version, how often it polls, how many there are."""

    version: str = "1.9.0"
    poll: float = Field(default=0.0, ge=0.0, le=3600.0)
    clusters: int | list[str] = 1
    commit_status: str = "{kind}/{name}/{uid}"
    summary: str | None = None

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        match = _VERSION.fullmatch(value.strip().removeprefix("v"))
        if match is None:
            raise ValueError(f"{value!r} is not a version: write notification-controller's, e.g. 1.9.0")
        if match[1] != "1":
            raise ValueError(
                f"{value!r} is not a notification-controller version (those are 1.x; Flux 2.8 ships 1.8.x)"
            )
        return value

    @field_validator("clusters")
    @classmethod
    def _clusters(cls, value: int | list[str]) -> int | list[str]:
        if isinstance(value, int) and not 1 <= value <= 16:
            raise ValueError("give 1 to 16 clusters, or their names")
        if isinstance(value, list) and (not value or len(set(value)) != len(value) or "" in value):
            raise ValueError("cluster names must be unique and not empty")
        return value

    @field_validator("commit_status")
    @classmethod
    def _template(cls, value: str) -> str:
        used = {field for _, field, _, _ in string.Formatter().parse(value) if field is not None}
        if used - _FIELDS or not value.strip():
            raise ValueError(
                "use only {kind}, {name}, {uid}, {cluster} in the context, e.g. {kind}/{name}/{cluster}"
            )
        return value

    @property
    def release(self) -> tuple[int, int, int]:
        match = _VERSION.fullmatch(self.version.strip().removeprefix("v"))
        assert match is not None
        return int(match[1]), int(match[2]), int(match[3] or 0)

    @property
    def cluster_names(self) -> list[str]:
        if isinstance(self.clusters, int):
            return [f"cluster-{index}" for index in range(1, self.clusters + 1)]
        return list(self.clusters)


@dataclass(frozen=True)
class Plan:
    """One reconcile of one Kustomization on one cluster: what happens and how long it takes."""

    outcome: Outcome
    duration: float
    delay: float
    interval: float | None


class Scenario(_Strict):
    default: Default = Field(default_factory=Default)
    flux: Flux = Field(default_factory=Flux)
    repos: list[str] | None = None
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _lists_need_an_interval(self) -> Scenario:
        blocks: list[tuple[str, Default | Rule]] = [("default", self.default)]
        blocks += [(f"rules.{index}", rule) for index, rule in enumerate(self.rules)]
        for where, block in blocks:
            interval = block.interval if block.interval is not None else self.default.interval
            if isinstance(block.outcome, list) and len(block.outcome) > 1 and interval is None:
                raise ValueError(
                    f"{where}.outcome: a list needs an `interval` (the Kustomization's spec.interval), "
                    "as Flux only reconciles the same commit again after it"
                )
        return self

    def watches(self, repo: str) -> bool:
        return self.repos is None or any(fnmatch.fnmatchcase(repo, pattern) for pattern in self.repos)

    def _rule(
        self, repo: str, group: str, env: str, deployed: list[tuple[str, str | None]], cluster: str
    ) -> Rule | None:
        return next((r for r in self.rules if r.matches(repo, group, env, deployed, cluster)), None)

    def decide(
        self, repo: str, group: str, env: str, deployed: Iterable[tuple[str, str | None]]
    ) -> tuple[Outcome, float]:
        """(first outcome, delay in seconds) for one kustomization at one commit, on the first cluster."""
        plan = self.plan(repo, group, env, deployed, self.flux.cluster_names[0], 0)
        return plan.outcome, plan.delay

    def plan(
        self,
        repo: str,
        group: str,
        env: str,
        deployed: Iterable[tuple[str, str | None]],
        cluster: str,
        attempt: int,
    ) -> Plan:
        """The `attempt`-th (0-based) reconcile of the same commit: a failing health check lasts `timeout`."""
        rule = self._rule(repo, group, env, list(deployed), cluster)
        block: Default | Rule = rule or self.default
        outcomes = block.outcome if isinstance(block.outcome, list) else [block.outcome]
        outcome = outcomes[min(attempt, len(outcomes) - 1)]
        delay = block.delay if block.delay is not None else self.default.delay
        interval = block.interval if block.interval is not None else self.default.interval
        timeout = next(t for t in (block.timeout, self.default.timeout, interval, delay) if t is not None)
        return Plan(outcome, timeout if outcome == "failing" else delay, delay, interval)


def parse_scenario(data: Any, source: str = "scenario") -> Scenario:
    try:
        return Scenario.model_validate(data or {})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ScenarioError(f"{source}: {where}: {message}") from None


def load_scenario(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ScenarioError(f"{path}: cannot be read ({error.strerror})") from None
    except yaml.YAMLError:
        raise ScenarioError(f"{path}: invalid YAML") from None
    return parse_scenario(data, str(path))
