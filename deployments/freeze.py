"""`promoter freeze [--env E] --reason R [--until T]` and `promoter thaw [--env E]`: stop the line, and
start it again. The state is the Prefect Variable `promoter-freezes` (the UI's Variables page shows it);
each change is an event, `promoter.freeze.set` or `promoter.freeze.lifted`, on `promoter.freeze.<env>`
(`promoter.freeze.all` for a freeze of every environment)."""

from __future__ import annotations

import argparse
import getpass
import os
from datetime import UTC, datetime

from prefect.events import emit_event
from pydantic import ValidationError

from deployments.prefect_api import require_api
from flows.sweeper import thaw_resumes
from promoter.errors import InvalidInputError
from promoter.freeze import ALL, Freeze, parse_until
from promoter.names import check_environment
from tasks.freeze import read_freezes, write_freezes


def _env(args: argparse.Namespace) -> str:
    if args.env is None:
        return ALL
    check_environment(args.env)
    return str(args.env)


def _announce(event: str, env: str, payload: dict[str, str]) -> None:
    name = "all" if env == ALL else env  # a `*` would read as a wildcard in an automation's match
    resource = {
        "prefect.resource.id": f"promoter.freeze.{name}",
        "prefect.resource.name": f"freeze of {name}",
    }
    emit_event(event=f"promoter.freeze.{event}", resource=resource, payload=payload)


def freeze(args: argparse.Namespace) -> int:
    env, now = _env(args), datetime.now(UTC)
    until = parse_until(args.until, now) if args.until else None
    by = args.by or os.environ.get("PROMOTER_APPROVER") or getpass.getuser()
    try:
        entry = Freeze(env=env, reason=args.reason, by=by, since=now, until=until)
    except ValidationError as error:
        field = str(error.errors()[0]["loc"][0])
        raise InvalidInputError(
            f"--{field} must say something on one line, at most {300 if field == 'reason' else 100} characters "
            "(it is on every red check)"
        ) from None
    require_api("freeze")
    write_freezes(read_freezes().with_freeze(entry))
    _announce(
        "set", env, {"reason": entry.reason, "by": entry.by, "until": until.isoformat() if until else ""}
    )
    print(entry.describe())
    return 0


def thaw(args: argparse.Namespace) -> int:
    env = _env(args)
    require_api("thaw")
    freezes = read_freezes()
    if env not in freezes.entries:
        frozen = ", ".join(sorted(freezes.entries)) or "nothing"
        raise InvalidInputError(
            f"{'all environments are' if env == ALL else env + ' is'} not frozen (frozen: {frozen}); "
            "pass the --env a freeze was set with, or none for a freeze of every environment"
        )
    write_freezes(freezes.without(env))
    _announce("lifted", env, {"by": os.environ.get("PROMOTER_APPROVER") or getpass.getuser()})
    resumed = thaw_resumes(None if env == ALL else env)
    print(f"thawed {'all environments' if env == ALL else env}; resumed {resumed} waiting run(s)")
    return 0
