"""`promoter sandbox`: forge and Flux emulator in one process, on loopback, until Ctrl-C.

Registering the command imports nothing heavy, so `promoter bump` does not pay for the web stack.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from promoter.errors import InvalidInputError, PromoterError
from promoter.network import loopback
from sandbox import require_extra
from sandbox.forge import BOT_TOKEN, DEFAULT_TOKENS, Repository
from sandbox.github_mergeability import DEFAULT_DELAY as MERGEABILITY_DELAY

TOKEN_ENV = "PROMOTER_SANDBOX_TOKEN"  # noqa: S105 - the name of a variable, not a secret
DEFAULT_ROOT = Path(".promoter/sandbox")
DEFAULT_PORT = 8787
log = logging.getLogger("sandbox")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "sandbox",
        help="run the local forge (GitHub and Azure DevOps compatible) and Flux emulator",
        description="Serve a GitHub- and Azure-DevOps-compatible forge over real git repositories, and a Flux "
        "emulator that posts health statuses, on loopback until Ctrl-C. See docs/sandbox.md.",
    )
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help=f"where repositories live (default: {DEFAULT_ROOT})"
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port, 0 for any free one (default: {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--scenario", type=Path, help="Flux scenario YAML (default: everything healthy after 1 s)"
    )
    parser.add_argument("--faults", type=Path, help="fault injection plan YAML (default: none)")
    parser.add_argument("--seed-demo", action="store_true", help="create the acme/gitops demo repositories")
    parser.add_argument(
        "--specs", type=Path, help="API descriptions folder (default: $PROMOTER_SPECS_DIR or ../shared/specs)"
    )
    parser.add_argument(
        "--mergeability-delay",
        type=float,
        default=MERGEABILITY_DELAY,
        metavar="SECONDS",
        help="how long a GitHub pull request's mergeability stays unknown after it or its branches move "
        f"(default: {MERGEABILITY_DELAY:g}; 0 turns it off)",
    )
    parser.add_argument(
        "--azure-merge-delay",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how long Azure DevOps takes to compute a merge or complete a pull request (default: 1.0)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    require_extra("sandbox")
    import uvicorn

    from sandbox.app import SandboxApp, listen, quiet_dropped_connections
    from sandbox.faults import load_plan
    from sandbox.scenario import Scenario, load_scenario
    from sandbox.seed import seed_demo
    from sandbox.specs import ENV as SPECS_ENV
    from sandbox.specs import discover

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host = loopback(args.host, "the sandbox only serves this machine (use 127.0.0.1)")
    if not 0 <= args.port <= 65535:
        raise PromoterError(f"--port {args.port} is out of range 0-65535")
    try:
        specs = discover(args.specs)
    except FileNotFoundError as error:
        raise PromoterError(str(error)) from None
    if specs is None:
        log.warning("API validation is off: no specs folder found (pass --specs DIR or set %s)", SPECS_ENV)
    scenario = load_scenario(args.scenario) if args.scenario else Scenario()
    faults = load_plan(args.faults) if args.faults else None
    tokens = dict(DEFAULT_TOKENS)
    if os.environ.get(TOKEN_ENV):
        tokens[os.environ[TOKEN_ENV]] = tokens.pop(BOT_TOKEN)
    if args.mergeability_delay < 0:
        raise PromoterError(f"--mergeability-delay {args.mergeability_delay:g} must not be negative")
    if args.azure_merge_delay < 0:
        raise InvalidInputError("--azure-merge-delay must be zero or more seconds")
    app = SandboxApp(
        args.root,
        specs=specs,
        scenario=scenario,
        tokens=tokens,
        faults=faults,
        mergeability_delay=args.mergeability_delay,
        azure_merge_delay=args.azure_merge_delay,
    )
    repos = seed_demo(app.forge) if args.seed_demo else app.forge.repos()
    try:
        sock = listen(host, args.port)  # listening before the banner: early clients wait rather than fail
    except OSError as error:
        app.close()
        raise PromoterError(
            f"cannot listen on {host}:{args.port}: {error.strerror}; pick another --port"
        ) from None
    url = f"http://{host}:{sock.getsockname()[1]}"
    print(_banner(url, args.root, specs, repos, bool(os.environ.get(TOKEN_ENV))), flush=True)
    quiet_dropped_connections()
    app.start()
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises Ctrl-C after its graceful shutdown; stopping is what the user asked for
    finally:
        app.close()
        sock.close()
    print("promoter sandbox: stopped", flush=True)
    return 0


def _banner(url: str, root: Path, specs: Path | None, repos: list[Repository], token_from_env: bool) -> str:
    token = f"${TOKEN_ENV}" if token_from_env else BOT_TOKEN
    lines = [
        f"promoter sandbox serving {url}  (root {root}, API validation {'on: ' + str(specs) if specs else 'off'})",
        f"  GitHub REST      {url}/api/v3",
        f"  GitHub GraphQL   {url}/api/graphql",
        f"  Azure DevOps     {url}/{{org}}/{{project}}/_apis/git/repositories/{{repo}}/...?api-version=7.1",
        f"  token            {token} (user promoter-bot); alice-token (user alice, a person)",
        "                   REST: 'Authorization: token <token>'; Azure DevOps and git: Basic, the token as password",
        f"  control          {url}/_sandbox/stats  (also /faults, /scenario, /violations, /health)",
    ]
    for repo in repos:
        clone = (
            f"{url}/{repo.owner}/{repo.project}/_git/{repo.name}"
            if repo.kind == "azure"
            else f"{url}/{repo.owner}/{repo.name}.git"
        )
        lines.append(f"  {repo.kind:<6} {repo.full_name:<24} git clone {clone}")
    lines.append("Ctrl-C stops it.")
    return "\n".join(lines)
