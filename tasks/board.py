"""The board artifacts: per app, which release runs where; for all apps, apps x environments.

Published after every stage from git and the forge (promoter/board.py), under stable keys, so the
Artifacts page shows each board's latest version and keeps its history.
"""

from __future__ import annotations

import re

from prefect import task
from prefect.artifacts import create_table_artifact

from promoter.board import AppBoard, InFlight, overview, read_board
from promoter.promotion import Target
from tasks.common import run_logger
from tasks.report import prefect_key

BOARD_KEY = "promoter-board"
_PLAIN = re.compile(r"[a-z0-9]+")


def board_key(group: str, app: str) -> str:
    """`promoter-<group>-<app>`; names Prefect's keys cannot hold (`Apps`, `my_app`), or that could
    read as another pair (a dash in the group), get the folded form with a short hash instead."""
    if _PLAIN.fullmatch(group) and re.fullmatch(r"[a-z0-9-]+", app):
        return f"promoter-{group}-{app}"
    return prefect_key("promoter", group, app)


@task(name="board", task_run_name="board {group}/{app}", persist_result=True)
def publish_board(
    target: Target, group: str, app: str, flight: InFlight | None, everything: bool = True
) -> None:
    """The app's board, with `flight` (this run's release and stage), and with `everything` the
    all-apps board too (the flow asks for it where a release stops: blocked, at a gate, at its end, so a
    burst of releases does not rewrite it at every stage of every run).

    A task, cached for the run like the stages: a run resumed after a suspend replays its path, and the
    boards it already published are not published again. Best effort: the board tells, it does not
    decide, so a failure to read or write it is a warning in the run's log and the release goes on.
    """
    try:
        with target.open() as promotion:
            head = promotion.workspace.remote_sha(promotion.base) or promotion.workspace.fetch()
            (mine,) = read_board(promotion, [(group, app)], in_flight=False, head=head)
            mine = AppBoard(group, app, mine.placements, (flight,) if flight else ())
            others = (
                read_board(promotion, flux=False, in_flight=False, history=False, head=head)
                if everything
                else []
            )
            environments = promotion.config.environment_names
        create_table_artifact(key=board_key(group, app), table=mine.rows(), description=_describe(mine))
        if everything:
            boards = sorted(
                [mine, *(b for b in others if (b.group, b.app) != (group, app))], key=lambda b: b.name
            )
            create_table_artifact(
                key=BOARD_KEY,
                table=overview(boards, environments),
                description=f"What runs where: {len(boards)} apps on main of {target.gitops_url}",
            )
    except Exception as error:
        run_logger().warning("the board of %s/%s was not updated: %s", group, app, error)


def _describe(board: AppBoard) -> str:
    now = ", ".join(f"{p.env} {p.tag or '-'}" for p in board.placements)
    coming = "; ".join(f"{f.tag} at {f.env}: {f.stage}" for f in board.in_flight)
    return f"{board.name}: {now}" + (f". In flight: {coming}" if coming else "")
