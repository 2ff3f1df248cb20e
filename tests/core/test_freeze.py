"""What a freeze means: which environments it holds, until when, and how it reads on a red check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from promoter.errors import InvalidInputError
from promoter.freeze import ALL, Freeze, Freezes, parse_until

NOW = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)


def freeze(env: str = "prod", until: datetime | None = None, reason: str = "quarter close") -> Freeze:
    return Freeze(env=env, reason=reason, by="carol", since=NOW, until=until)


def test_an_environments_own_freeze_comes_first_then_one_of_every_environment() -> None:
    mine, everyone = freeze("prod", reason="mine"), freeze(ALL, reason="all")
    both = Freezes().with_freeze(mine).with_freeze(everyone)
    assert both.covering("prod", NOW) == mine
    assert both.covering("dev", NOW) == everyone
    assert both.without(ALL).covering("dev", NOW) is None
    assert Freezes.model_validate(both.model_dump(mode="json")) == both  # as the Variable keeps it


def test_a_freeze_with_an_end_ends_by_itself() -> None:
    timed = Freezes().with_freeze(freeze(until=NOW + timedelta(hours=2)))
    assert timed.covering("prod", NOW + timedelta(hours=1)) is not None
    assert timed.covering("prod", NOW + timedelta(hours=2)) is None


def test_the_description_says_what_who_since_until_and_why_on_one_line() -> None:
    timed = freeze(until=NOW + timedelta(minutes=90), reason="black friday\n  sale")
    assert timed.describe() == (
        "prod frozen by carol since 2026-12-04 21:00Z until 2026-12-04 22:30Z: black friday sale"
    )
    assert freeze(ALL).describe().startswith("all environments frozen by carol")
    with pytest.raises(ValueError, match="must say something"):
        freeze(reason="\n\t ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW + timedelta(hours=2)),
        ("90m", NOW + timedelta(minutes=90)),
        ("2026-12-05T10:00Z", datetime(2026, 12, 5, 10, tzinfo=UTC)),
        ("2026-12-05T10:00", datetime(2026, 12, 5, 10, tzinfo=UTC)),  # UTC unless it says otherwise
        ("2026-12-05T12:00+02:00", datetime(2026, 12, 5, 10, tzinfo=UTC)),
    ],
)
def test_until_is_a_time_or_a_duration_from_now(text: str, expected: datetime) -> None:
    assert parse_until(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "says"), [("soon", "neither a time"), ("2026-12-01T00:00Z", "in the past"), ("-5", "neither")]
)
def test_a_bad_until_says_what_to_write(text: str, says: str) -> None:
    with pytest.raises(InvalidInputError, match=says):
        parse_until(text, NOW)
