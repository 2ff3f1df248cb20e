"""Stop the line: a frozen environment takes no release until it is thawed (or someone breaks the glass).

The state is one JSON value (`Freezes`), kept by the Prefect layer in a Variable so the UI shows it; this
module only says what it means. A freeze names its environment, or every environment (`ALL`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from promoter.config import parse_duration
from promoter.errors import InvalidInputError
from promoter.trailers import one_line

ALL = "*"


class Freeze(BaseModel):
    model_config = ConfigDict(frozen=True)

    env: str
    reason: str = Field(min_length=1, max_length=300)
    by: str = Field(min_length=1, max_length=100)
    since: datetime
    until: datetime | None = None

    @field_validator("reason", "by")
    @classmethod
    def _one_line(cls, value: str) -> str:
        line = one_line(value)
        if not line:
            raise ValueError("must say something")
        return line

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until

    def describe(self) -> str:
        """One line for the red check and the run's log: what, who, since when, why."""
        scope = "all environments" if self.env == ALL else self.env
        until = f" until {_stamp(self.until)}" if self.until else ""
        return f"{scope} frozen by {self.by} since {_stamp(self.since)}{until}: {self.reason}"


class Freezes(BaseModel):
    """Every freeze in force, by environment (`*` for all)."""

    model_config = ConfigDict(frozen=True)

    entries: dict[str, Freeze] = Field(default_factory=dict)

    def covering(self, env: str, now: datetime) -> Freeze | None:
        """The freeze that holds `env` now: its own first, then one of every environment."""
        for key in (env, ALL):
            freeze = self.entries.get(key)
            if freeze is not None and freeze.active(now):
                return freeze
        return None

    def with_freeze(self, freeze: Freeze) -> Freezes:
        return Freezes(entries={**self.entries, freeze.env: freeze})

    def without(self, env: str) -> Freezes:
        return Freezes(entries={k: v for k, v in self.entries.items() if k != env})


def parse_until(text: str, now: datetime) -> datetime:
    """`--until`: an ISO 8601 time (UTC unless it says otherwise) or a duration from now ("2h", "90m")."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        try:
            return now + parse_duration(text)
        except ValueError:
            raise InvalidInputError(
                f"--until {text[:60]!r} is neither a time (2026-12-24T18:00Z) nor a duration (2h, 90m)"
            ) from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= now:
        raise InvalidInputError(f"--until {text[:60]!r} is in the past: give a later time or a duration")
    return when


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")
