"""`promoter board [--app G/A] [--json]`: which release runs where, read from git and the forge."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(commands: Any, compat: argparse.ArgumentParser) -> None:
    board = commands.add_parser(
        "board",
        parents=[compat],
        help="which release runs where: tag, digest, since when, PR, approver, Flux, what is in flight",
        description="Read main's manifests and history from the checkout's origin, Flux's commit statuses "
        "and the open promotion PRs from the forge. Works without Prefect.",
    )
    board.add_argument("--app", help="only this app, as GROUP/APP (default: every app)")
    board.add_argument("--json", action="store_true", help="print JSON instead of a table")
    board.add_argument("--no-flux", action="store_true", help="skip Flux's statuses (fewer forge requests)")
    board.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from promoter.board import format_board, read_board  # the parser stays cheap for `promoter bump`
    from promoter.commands import Options, promotion_for
    from promoter.names import parse_app_ref

    apps = [parse_app_ref(args.app)] if args.app else None

    options = Options.of(args)
    print("reading main and the forge...", file=sys.stderr)
    with promotion_for(options) as promotion:
        boards = read_board(promotion, apps, flux=not args.no_flux)
    if args.json:
        print(json.dumps([board.as_json() for board in boards], indent=2))
    else:
        print(format_board(boards) or "no app has a setter marker on main")
    return 0
