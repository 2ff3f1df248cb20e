"""The board: which release runs where, since when, who let it through, what Flux says, what is on its way.

Everything is read from git (main's manifests and history, promoter/history.py) and the forge (Flux's
commit statuses, the open promotion PRs and their `promoter` check), so it tells the same story with or
without Prefect's history: `promoter board` prints it, and the flow publishes it as artifacts after every
stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from promoter.errors import InvalidInputError
from promoter.gate import CHECK_CONTEXT
from promoter.health import settled
from promoter.history import Running, latest, running
from promoter.promotion import Promotion
from promoter.pull_request import branch_name, parse_body
from promoter.stages import flux_verdict
from promoter.workspace import Snapshot

# Main's newer commits read for Flux's word on an environment: Flux reports the newest revision it
# applied, so the commit that set the release may have no status of its own.
FLUX_DEPTH = 3


@dataclass(frozen=True)
class Placement:
    """What one app runs in one environment."""

    env: str
    tag: str | None = None
    digest: str | None = None
    since: datetime | None = None
    commit: str | None = None
    pr: int | None = None
    approver: str | None = None
    flux: str = "not read"
    flux_description: str = ""


@dataclass(frozen=True)
class InFlight:
    """A release on its way: its open PR and what the PR's `promoter` check says."""

    tag: str
    env: str
    pr: int | None = None
    url: str = ""
    stage: str = ""


@dataclass(frozen=True)
class AppBoard:
    group: str
    app: str
    placements: tuple[Placement, ...]
    in_flight: tuple[InFlight, ...] = field(default=())

    @property
    def name(self) -> str:
        return f"{self.group}/{self.app}"

    def rows(self, empty: str = "") -> list[dict[str, str]]:
        """One row per environment, as the table artifact and the terminal show it; `empty` fills what
        is unknown (Prefect's table renders a cell as markdown, where a lone "-" is a list item)."""
        coming = {flight.env: flight for flight in self.in_flight}
        return [
            {
                "environment": p.env,
                "tag": p.tag or empty,
                "digest": short_digest(p.digest) or empty,
                "since": p.since.strftime("%Y-%m-%d %H:%M UTC") if p.since else empty,
                "PR": f"#{p.pr}" if p.pr else empty,
                "approver": p.approver or empty,
                "Flux": p.flux
                + (f" ({p.flux_description})" if p.flux_description and p.flux != "healthy" else ""),
                "in flight": _flight(coming.get(p.env)),
            }
            for p in self.placements
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "app": self.app,
            "environments": [
                {**asdict(p), "since": p.since.isoformat() if p.since else None} for p in self.placements
            ],
            "in_flight": [asdict(flight) for flight in self.in_flight],
        }


def short_digest(digest: str | None) -> str:
    return digest.split(":", 1)[-1][:12] if digest else ""


def _flight(flight: InFlight | None) -> str:
    if flight is None:
        return ""
    pr = f" (PR #{flight.pr})" if flight.pr else ""
    return f"{flight.tag}{pr}: {flight.stage}" if flight.stage else f"{flight.tag}{pr}"


def on_main(snapshot: Snapshot, environments: Sequence[str]) -> dict[tuple[str, str], dict[str, Running]]:
    """(group, app) -> env -> what its markers pin, for every app any environment names; groups are the
    top-level directories. One pass over each `<group>/<env>/`, however many apps there are."""
    found: dict[tuple[str, str], dict[str, Running]] = {}
    for group in snapshot.directories(""):
        for env in environments:
            for app, pinned in running(snapshot, group, env).items():
                found.setdefault((group, app), {})[env] = pinned
    return dict(sorted(found.items()))


def read_board(
    promotion: Promotion,
    apps: Iterable[tuple[str, str]] | None = None,
    *,
    flux: bool = True,
    in_flight: bool = True,
    history: bool = True,
    head: str | None = None,
) -> list[AppBoard]:
    """The board of `apps` (default: every app on main). `history` reads main's log for since when, the
    PR and the approver (a `git log` per app), `flux` Flux's statuses (a forge request per commit read),
    `in_flight` the open promotion PRs (one or two per environment). Without the three: tags alone."""
    workspace, config = promotion.workspace, promotion.config
    head = head or workspace.fetch()
    names = config.environment_names
    everything = on_main(workspace.snapshot(head), names)
    boards = []
    for group, app in list(apps) if apps is not None else list(everything):
        pinned = everything.get((group, app), {})
        if not pinned:
            raise InvalidInputError(
                f"no environment of {promotion.target.gitops_url} runs {group}/{app}: no setter marker "
                f'{{"$imagepolicy": "{group}:{app}"}} under {group}/<env>/ on {promotion.base}'
            )
        set_by = latest(workspace, head, group, app, list(pinned)) if history else {}
        placements = []
        for env in names:
            now, change = pinned.get(env), set_by.get(env)
            placement = Placement(
                env=env,
                tag=now.tag if now else None,
                digest=now.digest if now else None,
                since=change.deployed_at if change else None,
                commit=change.commit if change else None,
                pr=change.pr if change else None,
                approver=change.approved_by if change else None,
            )
            if flux and change is not None:
                placement = _with_flux(promotion, placement, group, head)
            placements.append(placement)
        flights = tuple(_in_flight(promotion, group, app, names)) if in_flight else ()
        boards.append(AppBoard(group=group, app=app, placements=tuple(placements), in_flight=flights))
    return boards


def _with_flux(promotion: Promotion, placement: Placement, group: str, head: str) -> Placement:
    assert placement.commit is not None
    verdict = flux_verdict(promotion, group, placement.env, placement.commit, head=head, depth=FLUX_DEPTH)
    health = settled(verdict)
    if health is None:
        return replace(placement, flux="no report yet")
    return replace(placement, flux=health.outcome, flux_description=health.description)


def _in_flight(promotion: Promotion, group: str, app: str, environments: Sequence[str]) -> list[InFlight]:
    """The open promotion PRs of the app (per-env: one branch per environment; per-app: one branch)."""
    prflow = promotion.config.prflow
    branches = (
        [branch_name(group, app, env, prflow) for env in environments]
        if prflow == "per-env"
        else [branch_name(group, app, environments[0], prflow)]
    )
    provider, flights = promotion.provider, []
    for branch in branches:
        pr = provider.find_pull_request(branch, promotion.base)
        if pr is None:
            continue
        try:
            state = parse_body(pr.body)
        except InvalidInputError:
            continue  # not a promotion PR any more: someone rewrote its description
        checks = [s for s in provider.commit_statuses(pr.head_sha) if s.context == CHECK_CONTEXT]
        stage = f"{checks[0].state}: {checks[0].description}" if checks else "no check yet"
        flights.append(InFlight(tag=state.tag, env=state.env, pr=pr.number, url=pr.url, stage=stage))
    return flights


def format_board(boards: Sequence[AppBoard]) -> str:
    """The board as aligned text, one block per app, for a terminal or a CI log."""
    blocks = []
    for board in boards:
        rows = board.rows(empty="-")
        columns = list(rows[0]) if rows else []
        widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
        lines = [board.name, "  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
        lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in rows]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def overview(boards: Sequence[AppBoard], environments: Sequence[str]) -> list[dict[str, str]]:
    """Apps x environments: the tag each runs, marked when Flux did not say healthy."""
    table = []
    for board in boards:
        row = {"app": board.name}
        for placement in board.placements:
            mark = "" if placement.flux in ("healthy", "not read") else f" ({placement.flux})"
            row[placement.env] = (placement.tag or "") + mark
        coming = [_flight(flight) for flight in board.in_flight]
        row["in flight"] = "; ".join(coming)
        table.append({key: row.get(key, "") for key in ["app", *environments, "in flight"]})
    return table
