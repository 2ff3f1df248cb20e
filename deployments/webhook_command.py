"""`promoter webhook`: the registry webhook receiver on loopback, until Ctrl-C.

It listens on loopback only: registries reach it through a reverse proxy or tunnel that terminates TLS.
uvicorn's access log is off because Docker Hub and Quay URLs carry the path token. `/metrics` follows the
Prefect event stream while it serves (docs/observability.md).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from deployments.registries import Sender
from deployments.webhook import ENV_PREFIX, SIGNATURES, Auth, WebhookSettings
from promoter.errors import PromoterError
from promoter.network import loopback

DEFAULT_PORT = 8788
_HOW = {
    "hmac": "HMAC-signed body",
    "token": f"Authorization header = ${ENV_PREFIX}HARBOR_TOKEN",
    "header": f"header from ${ENV_PREFIX}HEADER",
    "path": "secret path token",
    "oidc": f"Google OIDC token for ${ENV_PREFIX}GAR_AUDIENCE from ${ENV_PREFIX}GAR_SERVICE_ACCOUNT",
}


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "webhook",
        help="receive registry push notifications and emit registry.image.pushed Prefect events",
        description="Serve POST /hooks/<sender> for Docker Hub, GitHub packages, ACR, Harbor, Quay, CNCF "
        "distribution (and GitLab), Google Artifact Registry, AWS ECR, CDEvents, Nexus and signed generic "
        f"senders on loopback. Secrets come from {ENV_PREFIX}* variables; events go to $PREFECT_API_URL.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port, 0 for any free one (default: {DEFAULT_PORT})"
    )
    parser.set_defaults(handler=run)


def banner(url: str, enabled: Mapping[Sender, Auth], forges: Sequence[str] = ()) -> str:
    """One line per enabled sender and forge: its URL with a token as a placeholder, never its value."""
    lines = [
        f"promoter webhook serving {url}  (events to $PREFECT_API_URL; stats at {url}/stats, "
        f"Prometheus metrics at {url}/metrics)"
    ]
    for sender, auth in enabled.items():
        path = f"/hooks/{sender}" + (f"/<${ENV_PREFIX}PATH_TOKEN>" if auth == "path" else "")
        how = _HOW[auth] + (f" in {SIGNATURES[sender][0]}" if auth == "hmac" else "")
        if sender == "ecr" and auth == "header":
            how = f"API key header from ${ENV_PREFIX}ECR_API_KEY"
        lines.append(f"  {sender:<13} POST {url}{path}  ({how})")
    for forge in forges:  # "github (how it proves itself)"
        name, _, how = forge.partition(" ")
        lines.append(f"  forge {name:<7} POST {url}/forge/{name}  ({how.strip('()')}; resumes waiting runs)")
    lines.append("Ctrl-C stops it.")
    return "\n".join(lines)


def _log_to_stdout() -> None:
    """The receiver's own lines (`promoter.*`) at INFO on stdout. Not `logging.basicConfig`: importing
    Prefect has configured the root logger already, which makes basicConfig do nothing."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    ours = logging.getLogger("promoter")
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    ours.propagate = False


def run(args: argparse.Namespace) -> int:
    import uvicorn
    from prometheus_client import disable_created_metrics

    from deployments.forge_hooks import FORGE_PREFIX, ForgeHookSettings, ForgeReceiver
    from deployments.prefect_api import require_api
    from deployments.webhook import PrefectEmitter, create_app

    _log_to_stdout()
    # No `*_created` series beside each counter and histogram: half of /metrics, and rarely read.
    disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
    host = loopback(args.host, "put a reverse proxy in front instead")
    if not 0 <= args.port <= 65535:
        raise PromoterError(f"--port {args.port} is out of range 0-65535")
    settings = WebhookSettings.from_env()
    forges = ForgeHookSettings.from_env()
    enabled = settings.enabled()
    if not enabled and not forges.enabled():
        raise PromoterError(
            f"no sender is enabled: set {ENV_PREFIX}GITHUB_SECRET, {ENV_PREFIX}GENERIC_SECRET, "
            f"{ENV_PREFIX}NEXUS_SECRET, {ENV_PREFIX}HARBOR_TOKEN, {ENV_PREFIX}ECR_API_KEY, "
            f"{ENV_PREFIX}GAR_AUDIENCE with {ENV_PREFIX}GAR_SERVICE_ACCOUNT, {ENV_PREFIX}PATH_TOKEN or "
            f"{ENV_PREFIX}HEADER (registries), or {FORGE_PREFIX}GITHUB_SECRET / {FORGE_PREFIX}AZURE_* (forges)"
        )
    emitter = PrefectEmitter(require_api("webhook"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, args.port))  # listening before the banner: the printed port is the real one
        sock.listen(128)
    except OSError as error:
        sock.close()
        emitter.close()
        raise PromoterError(
            f"cannot listen on {host}:{args.port}: {error.strerror}; pick another --port"
        ) from None
    print(banner(f"http://{host}:{sock.getsockname()[1]}", enabled, forges.enabled()), flush=True)
    app = create_app(
        settings, emitter, extra_routes=ForgeReceiver(forges, emitter).routes(), follow_events=True
    )
    # lifespan on: it runs the metrics' event-stream follower (deployments/metrics.py)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises Ctrl-C after its graceful shutdown; stopping is what the user asked for
    finally:
        emitter.close()
        sock.close()
    print("promoter webhook: stopped", flush=True)
    return 0
