"""What the emulated cluster does with each release: the scenario file of the Flux emulator.

A scenario is YAML (or the same as JSON)::

    default:                 # when no rule matches (this block and every key are optional)
      outcome: healthy       # healthy | failing | never
      delay: 0.2             # seconds between a commit landing on main and Flux's report
    repos: ["acme/*"]        # which repositories Flux watches (globs on owner/name or org/project/name;
                             # default: all)
    rules:                   # first match wins
      - env: qa              # every key is a glob; omitted keys match anything
        app: podinfo
        tag: "a8b91c33"
        outcome: failing     # -> failure / error "health check failed"
      - env: prod
        outcome: never       # Flux never reports (a dropped event)
      - group: apps
        env: dev
        delay: 5             # slow: healthy, but only after 5 s

A rule about `app`/`tag` matches a kustomization (`<group>-<env>`) when one of the setter markers under
`<group>/<env>/` at the applied commit names that app and carries that tag. When several commits land on
main before the delay is over, only the newest one gets a status, as with Flux.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promoter.errors import PromoterError

Outcome = Literal["healthy", "failing", "never"]


class ScenarioError(PromoterError):
    """A scenario file that cannot be read or breaks the format above."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Default(_Strict):
    outcome: Outcome = "healthy"
    delay: float = Field(default=1.0, ge=0.0, le=3600.0)


class Rule(_Strict):
    repo: str = "*"
    group: str = "*"
    env: str = "*"
    app: str = "*"
    tag: str = "*"
    outcome: Outcome = "healthy"
    delay: float | None = Field(default=None, ge=0.0, le=3600.0)

    def matches(self, repo: str, group: str, env: str, deployed: Iterable[tuple[str, str | None]]) -> bool:
        if not all(
            fnmatch.fnmatchcase(value, pattern)
            for value, pattern in ((repo, self.repo), (group, self.group), (env, self.env))
        ):
            return False
        if self.app == "*" and self.tag == "*":
            return True
        return any(
            fnmatch.fnmatchcase(app, self.app) and fnmatch.fnmatchcase(tag or "", self.tag)
            for app, tag in deployed
        )


class Scenario(_Strict):
    default: Default = Field(default_factory=Default)
    repos: list[str] | None = None
    rules: list[Rule] = Field(default_factory=list)

    def watches(self, repo: str) -> bool:
        return self.repos is None or any(fnmatch.fnmatchcase(repo, pattern) for pattern in self.repos)

    def decide(
        self, repo: str, group: str, env: str, deployed: Iterable[tuple[str, str | None]]
    ) -> tuple[Outcome, float]:
        """(outcome, delay in seconds) for one kustomization at one commit."""
        pairs = list(deployed)
        for rule in self.rules:
            if rule.matches(repo, group, env, pairs):
                return rule.outcome, self.default.delay if rule.delay is None else rule.delay
        return self.default.outcome, self.default.delay


def parse_scenario(data: Any, source: str = "scenario") -> Scenario:
    try:
        return Scenario.model_validate(data or {})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ScenarioError(f"{source}: {where}: {first['msg']}") from None


def load_scenario(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ScenarioError(f"{path}: cannot be read ({error.strerror})") from None
    except yaml.YAMLError:
        raise ScenarioError(f"{path}: invalid YAML") from None
    return parse_scenario(data, str(path))
