"""The `promoter` command line.

Each command is a small function; bad input exits 2 with one clear line on stderr and no stack trace,
as a CI log reader would want.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from promoter import __version__
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


def _demo(args: argparse.Namespace) -> int:
    from promoter.demo import run_demo

    return run_demo(Path(args.root))


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

    demo = commands.add_parser("demo", help="show a bump on a sample GitOps repository")
    demo.add_argument(
        "--root", default=".promoter/demo", help="where to write the sample (default: .promoter/demo)"
    )
    demo.set_defaults(handler=_demo)

    from promoter.sandbox.command import add_parser as add_sandbox_parser

    add_sandbox_parser(commands)
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
