"""The `promoter` command line.

Each command is a small function; bad input exits 2 with one clear line on stderr and no stack trace,
as a CI log reader would want.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from promoter import __version__, board_command, metrics_command
from promoter.errors import PromoterError

EXIT_BAD_INPUT = 2


def _bump(args: argparse.Namespace) -> int:
    from promoter.config import load_config
    from promoter.manifests import rewrite_environment

    root = Path(args.sourcedir)
    config = load_config(root)
    config.environment(args.env)
    changed = rewrite_environment(root, args.group, args.app, args.env, args.tag, args.digest)
    for path in changed.written:
        print(path)
    return 0


def _compat(args: argparse.Namespace) -> int:
    """new / promote / status: print the message and exit 0, or fail as gitops-promotion does (exit 1)."""
    from promoter import commands

    options = commands.Options.of(args)
    try:
        if args.command == "new":
            message = commands.command_new(options, args.group, args.app, args.tag, args.digest)
        elif args.command == "promote":
            message = commands.command_promote(options, args.commit)
        else:
            message = commands.command_status(options, args.branch)
    except PromoterError as error:
        print(f"Application failed with error: {error}", file=sys.stderr)
        return 1
    print(message)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promoter",
        description="Carry container image releases through GitOps environments, gated on Flux health.",
    )
    parser.add_argument("--version", action="version", version=f"promoter {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    bump = commands.add_parser(
        "bump",
        help="rewrite one environment's manifests to a new tag (no git, no forge)",
        description="Rewrite the Flux setter markers of <group>/<env>/ in a working tree and print the "
        "changed paths, one per line. On any error nothing is written.",
    )
    bump.add_argument("--sourcedir", default=".", help="root of the GitOps working tree (default: .)")
    bump.add_argument("--group", required=True, help="group, the first directory level (e.g. apps)")
    bump.add_argument("--app", required=True, help="app name, as in the setter marker <group>:<app>")
    bump.add_argument("--tag", required=True, help="the new image tag")
    bump.add_argument("--env", required=True, help="environment, as listed in gitops-promotion.yaml")
    bump.add_argument("--digest", help="optional sha256:<hex> digest to pin")
    bump.set_defaults(handler=_bump)

    compat = argparse.ArgumentParser(add_help=False)
    compat.add_argument(
        "--token", help="forge token (prefer the PROMOTER_TOKEN environment variable: argv is visible)"
    )
    compat.add_argument(
        "--provider", choices=["github", "azdo"], help="forge kind; default: from the origin URL"
    )
    compat.add_argument("--sourcedir", default=".", help="checkout of the GitOps repository (default: .)")
    compat.add_argument(
        "--cache-dir", help="where cached clones live (default: $PROMOTER_CACHE_DIR or ~/.cache/promoter/git)"
    )
    compat.add_argument(
        "--merge-method",
        choices=["merge", "squash", "rebase"],
        help="how PRs merge (default: $PROMOTER_MERGE_METHOD or merge)",
    )
    compat.add_argument(
        "--poll-interval",
        type=float,
        help="first wait between status polls, seconds (default: $PROMOTER_POLL_INTERVAL or 5)",
    )
    compat.add_argument(
        "--status-context-pattern",
        help="regex with a (?P<name>...) group for Flux commitStatusExpr contexts "
        "(default: $PROMOTER_STATUS_PATTERN or Flux's own contexts)",
    )
    new = commands.add_parser("new", parents=[compat], help="open the first environment's PR for a new tag")
    new.add_argument("--group", required=True)
    new.add_argument("--app", required=True)
    new.add_argument("--tag", required=True)
    new.add_argument(
        "--digest",
        help="the image's sha256:<hex> digest: pins it, and every later environment's PR carries it",
    )
    new.set_defaults(handler=_compat)
    promote = commands.add_parser(
        "promote", parents=[compat], help="after a promotion PR merged: open the next one"
    )
    promote.add_argument("--commit", help="the merge commit (default: HEAD of --sourcedir)")
    promote.set_defaults(handler=_compat)
    status = commands.add_parser(
        "status", parents=[compat], help="the PR check: wait for the previous env's Flux status"
    )
    status.add_argument(
        "--branch", help="the PR's source branch (default: from CI variables or the checkout)"
    )
    status.set_defaults(handler=_compat)
    board_command.add_parser(commands, compat)
    metrics_command.add_parser(commands, compat)

    for entry in sorted(entry_points(group="promoter.commands"), key=lambda e: e.name):
        entry.load()(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except PromoterError as error:
        print(f"promoter {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"promoter {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
