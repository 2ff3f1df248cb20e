"""The sandbox as one ASGI application: forge personalities, git over HTTP, control endpoints, Flux.

Every API request goes through the same steps, in the order a real forge applies them: injected faults,
authentication, rate limit, `api-version` (Azure DevOps), request validation against the spec, the handler,
response validation, ETag / 304, rate-limit headers and statistics.

Control endpoints (loopback, no authentication; for tests, benchmarks and the demo):

- `GET /_sandbox/health`: readiness, whether validation is on and whether the GraphQL schema is built;
- `GET|DELETE /_sandbox/stats`: requests per route and user, counted vs conditional (304) vs faults;
- `GET|PUT|DELETE /_sandbox/faults`: the fault plan (see `faults.py`);
- `GET|DELETE /_sandbox/deliveries`: the webhooks sent (event, URL, attempts, status; sandbox/webhooks.py);
- `GET|DELETE /_sandbox/violations`: responses of the forge that broke the API description;
- `GET|PUT /_sandbox/scenario`: the Flux scenario (see `scenario.py`);
- `POST /_sandbox/repos`: create (or reuse) a repository, optionally commit files and protect a branch,
  for either personality: `{"kind": "azure", "owner": "acme", "project": "web", "name": "gitops",
  "files": {"path": "text"}, "protect": {"main": ["promoter"]}}`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import socket
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from promoter.errors import PromoterError
from sandbox import azure_merges, azure_rest, github_rest
from sandbox.accounting import RateLimits, Stats
from sandbox.faults import SECONDARY_MESSAGE, FaultPlan, FaultRule, Faults, parse_plan
from sandbox.flux import FluxEmulator
from sandbox.forge import Account, Forge, ForgeError, Kind, Repository
from sandbox.git_http import is_git_path, run_backend, target
from sandbox.github_graphql import GraphQL, subset_schema
from sandbox.github_json import error as github_error
from sandbox.github_mergeability import DEFAULT_DELAY
from sandbox.gitrepo import GitError
from sandbox.routing import BadRequest, Call, Personality, Reply, Route, Router
from sandbox.scenario import Scenario, parse_scenario
from sandbox.specs import Specs
from sandbox.webhook_api import WebhookApi
from sandbox.webhook_payloads import azure_payload, github_payload
from sandbox.webhooks import Hook, Webhooks

log = logging.getLogger("sandbox")
JSON_TYPE = "application/json; charset=utf-8"


class DroppedConnection(Exception):
    """Raised after a partial response, so the server closes the connection mid-body (an injected fault)."""


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket for uvicorn.

    Created with IPPROTO_TCP so asyncio turns Nagle off on accepted connections: without it, every
    response on a kept-alive connection waits 40 ms for a delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


class _HideDropped(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


def quiet_dropped_connections() -> None:
    """Keep uvicorn from logging a stack trace for each connection dropped on purpose."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDropped) for f in logger.filters):
        logger.addFilter(_HideDropped())


class _RepoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind = "github"
    owner: str
    name: str
    project: str | None = None
    branch: str = "main"
    files: dict[str, str] = {}
    message: str = "Seed"
    protect: dict[str, list[str]] = {}


def _dumps(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):  # a diff or patch, already in its media type
        return body
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _etag_matches(header: str, etag: str) -> bool:
    wanted = etag.removeprefix("W/")
    return any(
        tag.strip() in ("*", wanted) or tag.strip().removeprefix("W/") == wanted for tag in header.split(",")
    )


def _token(header: str, personality: Personality | None) -> str | None:
    """The token in an Authorization header, as each personality accepts it.

    GitHub: `token X` or `Bearer X`; Azure DevOps: Basic (any user, the PAT as password) or `Bearer X`;
    git (personality None): any of these. A Basic header with an empty password carries the token as user.
    """
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" or (scheme == "token" and personality != "azure"):
        return value.strip() or None
    if scheme == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or user or None
    return None


class SandboxApp:
    """Forge, git, Flux emulator and control endpoints over one sandbox root."""

    def __init__(
        self,
        root: Path,
        *,
        specs: Path | None = None,
        scenario: Scenario | None = None,
        tokens: dict[str, str] | None = None,
        rate_limit: int = 5000,
        faults: FaultPlan | None = None,
        mergeability_delay: float = DEFAULT_DELAY,
        azure_merge_delay: float = azure_merges.DEFAULT_DELAY,
        webhook_delay_scale: float = 1.0,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.forge = Forge(root, tokens)
        self.rates = RateLimits(rate_limit)
        self.router = Router()
        self.github = github_rest.GitHub(self.forge, self.rates, mergeability_delay)
        self.github.register(self.router)
        self.azure = azure_rest.AzureDevOps(self.forge, azure_merge_delay)
        self.azure.register(self.router)
        self.webhooks = Webhooks(self.forge, self._webhook_payload, delay_scale=webhook_delay_scale)
        WebhookApi(self.forge, self.webhooks).register(self.router)
        self.router.add("POST", "/api/graphql", self._graphql, "graphql")
        self.specs = Specs.load(specs, self.router.routes)
        self._subset_schema = subset_schema()
        self.faults = Faults(faults)
        self.stats = Stats()
        self.flux = FluxEmulator(self.forge, scenario)

    def start(self) -> None:
        self.flux.start()

    def _webhook_payload(self, event: str, repo: Repository, subject: Any, hook: Hook) -> dict[str, Any]:
        if hook.kind == "github":
            return github_payload(self.forge, event, repo, subject, hook)
        return azure_payload(self.azure.pull_json(hook.base_url, repo, subject), event, repo, subject)

    def close(self) -> None:
        self.flux.stop()
        self.azure.close()
        self.webhooks.close()
        self.forge.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path = request.url.path
        if path.startswith("/_sandbox/"):
            response = await self._control(request)
        else:
            response = await self._serve(request, send)
        await response(scope, receive, send)

    # -- the request pipeline ---------------------------------------------------------------------------

    async def _serve(self, request: Request, send: Send) -> Response:
        method, path = request.method, request.url.path
        git = is_git_path(path)
        route, params, other_method = (None, {}, False) if git else self.router.match(method, path)
        personality: Personality = route.personality if route else "azure" if "/_apis/" in path else "github"
        template = route.template if route else path
        name = route.name if route else f"{method} {path if git else '(unknown route)'}"
        auth = request.headers.get("authorization")
        token = _token(auth, None if git else personality) if auth else None
        user = self.forge.account_for_token(token) if token else None
        login = user.login if user else "anonymous"

        delay, fault = self.faults.pick(method, path, template)
        if delay:
            await asyncio.sleep(delay)
        if fault is not None:
            self.stats.add(name, login, "faults")
            return await self._fault(fault, personality, send)

        if git:
            return await self._git(request, user, name)
        if user is None:
            return self._unauthorized(personality, auth is not None, name)
        if route is None:
            self.stats.add(name, login, "counted")
            if personality == "azure":
                missing = azure_rest.error_body(
                    "The requested resource does not exist.", "ResourceNotFoundException", 404
                )
                return JSONResponse(missing.body, status_code=404)
            code = 405 if other_method else 404
            return JSONResponse(github_rest.with_status(code, github_error("Not Found")), status_code=code)

        body = await request.body()
        base_url = f"{request.url.scheme}://{request.url.netloc}"
        call = Call(method, path, params, request.query_params, request.headers, body, user, base_url)
        resource = "graphql" if personality == "graphql" else "core"
        rated = personality != "azure" and route.template != f"{github_rest.PREFIX}/rate_limit"
        conditional = method == "GET" and "if-none-match" in request.headers
        if rated and not conditional and self.rates.exhausted(login, resource):
            self.stats.add(name, login, "counted")
            reply = Reply(
                403,
                github_error(
                    f"API rate limit exceeded for user ID {user.id}.",
                    "https://docs.github_rest.com/rest/overview/rate-limits-for-the-rest-api",
                ),
            )
            return self._respond(reply, self.rates.headers(login, resource))

        reply = await self._handle(route, call)
        if personality == "github":
            github_rest.with_status(reply.status, reply.body)
            version = github_rest.api_version(call)
            if isinstance(version, str):  # GitHub names the version it served, never a refused one
                reply.headers.setdefault("X-GitHub-Api-Version-Selected", version)
        content = _dumps(reply.body)
        self._check_response(route, call, reply, content)
        headers = dict(reply.headers)
        status = reply.status
        if method == "GET" and status == 200:
            # GitHub's JSON answers carry weak validators (`ETag: W/"..."`, PyGithub's recorded exchanges).
            weak = "W/" if personality == "github" else ""
            etag = weak + '"' + hashlib.sha256(content).hexdigest()[:40] + '"'
            headers["ETag"] = etag
            if conditional and _etag_matches(request.headers["if-none-match"], etag):
                self.stats.add(route.name, login, "conditional")
                if rated:
                    headers.update(self.rates.headers(login, resource))
                return Response(status_code=304, headers=headers)
        self.stats.add(route.name, login, "counted")
        if rated:
            self.rates.spend(login, resource)
            headers.update(self.rates.headers(login, resource))
        return Response(
            content,
            status_code=status,
            headers=headers,
            media_type=JSON_TYPE if reply.body is not None and not isinstance(reply.body, bytes) else None,
        )

    async def _handle(self, route: Route, call: Call) -> Reply:
        try:
            if route.personality == "azure":
                refused = azure_rest.check_api_version(call)
                if refused is not None:
                    return refused
            if route.personality == "github":
                version = github_rest.api_version(call)
                if isinstance(version, Reply):
                    return version
            if call.body.strip():
                call.json()
                if route.personality == "azure":  # read as leniently as Json.NET does (azure_json.py)
                    call._json = azure_rest.lenient(call.json())
            problem = self._check_request(route, call)
            if problem is not None:
                if route.personality == "azure":
                    return azure_rest.error_body(problem, "InvalidArgumentValueException", 400)
                return Reply(422, github_error(f"Invalid request.\n\n{problem}"))
            return await route.handler(call)
        except (ForgeError, BadRequest) as exc:
            if route.personality == "azure":
                return azure_rest.error_reply(exc, route.template)
            return github_rest.error_reply(exc, route.name)
        except GitError as exc:
            log.exception("git failed while serving %s", route.name)
            if route.personality == "azure":
                return azure_rest.error_body(str(exc), "GitInternalException", 500)
            return Reply(500, github_error(f"Server Error: {exc}"))

    def _check_request(self, route: Route, call: Call) -> str | None:
        if route.personality == "github":
            return self.specs.github_request(
                route, call.path.removeprefix(github_rest.PREFIX), list(call.query.multi_items()), call.body
            )
        if route.personality == "azure" and call.body.strip():
            return self.specs.azure_request(route, call.json())
        return None

    def _check_response(self, route: Route, call: Call, reply: Reply, content: bytes) -> None:
        if isinstance(reply.body, bytes):
            return  # a diff or patch: the description has no schema for those media types
        if route.personality == "github" and content:
            path = call.path.removeprefix(github_rest.PREFIX)
            version = github_rest.selected_version(call)
            patched = None if version == github_rest.DEFAULT_VERSION else version
            self.specs.github_response(route, path, reply.status, content, patched)
        elif route.personality == "azure" and reply.body is not None:
            self.specs.azure_response(route, reply.status, reply.body)

    def _respond(self, reply: Reply, headers: dict[str, str]) -> Response:
        return Response(
            _dumps(github_rest.with_status(reply.status, reply.body)),
            status_code=reply.status,
            headers={**reply.headers, **headers},
            media_type=JSON_TYPE,
        )

    def _unauthorized(self, personality: Personality, had_header: bool, name: str) -> Response:
        self.stats.add(name, "anonymous", "counted")
        if personality == "azure":
            reply = azure_rest.error_body(
                "TF400813: The user is not authorized to access this resource.",
                "UnauthorizedRequestException",
                401,
            )
            return self._respond(reply, {"WWW-Authenticate": 'Basic realm="promoter sandbox"'})
        message = "Bad credentials" if had_header else "Requires authentication"
        return self._respond(Reply(401, github_error(message)), {})

    async def _fault(self, rule: FaultRule, personality: Personality, send: Send) -> Response:
        retry = {} if rule.retry_after is None else {"retry-after": str(rule.retry_after)}
        if rule.kind == "drop":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
            )
            await send({"type": "http.response.body", "body": b"{", "more_body": True})
            raise DroppedConnection
        if personality == "azure":
            if rule.kind == "error":
                return self._respond(
                    azure_rest.error_body(
                        "The service is temporarily unavailable.", "ServiceUnavailableException", rule.status
                    ),
                    {},
                )
            return self._respond(
                azure_rest.error_body(
                    "Request was blocked due to exceeding usage of resource.", "RequestBlockedException", 429
                ),
                retry,
            )
        if rule.kind == "error":
            return self._respond(Reply(rule.status, github_error("Server Error")), {})
        if rule.kind == "secondary":
            docs = "https://docs.github_rest.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
            return self._respond(Reply(403, github_error(SECONDARY_MESSAGE, docs)), retry)
        return self._respond(Reply(429, github_error("API rate limit exceeded")), retry)

    # -- git ----------------------------------------------------------------------------------------------

    async def _git(self, request: Request, user: Account | None, name: str) -> Response:
        if user is None:
            self.stats.add(name, "anonymous", "counted")
            return Response(
                "Authentication required\n", 401, {"WWW-Authenticate": 'Basic realm="promoter sandbox"'}
            )
        try:
            found = target(self.forge, request.url.path)
        except ForgeError:
            self.stats.add(name, user.login, "counted")
            return Response("Repository not found.\n", 404)
        self.stats.add(f"{request.method} {found.route}", user.login, "counted")
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, out_headers, payload = await run_backend(
            found, request.method, request.url.query, headers, body, user.login
        )
        if found.is_push:
            await github_rest.blocking(lambda: self.forge.refresh(found.repo))
        return Response(payload, status, dict(out_headers))

    # -- GraphQL ------------------------------------------------------------------------------------------

    async def _graphql(self, call: Call) -> Reply:
        data = call.object()

        def run() -> tuple[dict[str, Any], list[str]]:
            schema = self.specs.graphql_schema() or self._subset_schema
            graphql = GraphQL(self.forge, call.base_url, call.user.login, self.github.mergeability.computing)
            return graphql.execute(schema, data)

        out, violations = await github_rest.blocking(run)
        for violation in violations:
            self.specs.record("POST /api/graphql", 200, violation)
        return Reply(200, out)

    # -- control ------------------------------------------------------------------------------------------

    async def _control(self, request: Request) -> Response:
        what = request.url.path.removeprefix("/_sandbox/").rstrip("/")
        method = request.method
        try:
            if what == "health" and method == "GET":
                graphql = self.specs._graphql
                return JSONResponse(
                    {
                        "ok": True,
                        "specs": self.specs.enabled,
                        "graphql_ready": graphql is None or graphql.done(),
                    }
                )
            if what == "stats":
                if method == "DELETE":
                    self.stats.reset()
                snapshot = self.stats.snapshot()
                snapshot["faults_injected"] = dict(self.faults.injected)
                return JSONResponse(snapshot)
            if what == "faults":
                if method == "PUT":
                    self.faults.set(
                        parse_plan(json.loads(await request.body() or b"{}"), "PUT /_sandbox/faults")
                    )
                elif method == "DELETE":
                    self.faults.set(FaultPlan())
                return JSONResponse(self.faults.plan.model_dump())
            if what == "deliveries":
                if method == "DELETE":
                    self.webhooks.clear()
                return JSONResponse(self.webhooks.deliveries())
            if what == "violations":
                if method == "DELETE":
                    self.specs.violations.clear()
                return JSONResponse([v.__dict__ for v in self.specs.violations])
            if what == "scenario":
                if method == "PUT":
                    self.flux.set_scenario(
                        parse_scenario(json.loads(await request.body() or b"{}"), "PUT /_sandbox/scenario")
                    )
                return JSONResponse(self.flux.scenario.model_dump())
            if what == "repos" and method == "POST":
                spec = _RepoRequest.model_validate_json(await request.body())
                return JSONResponse(
                    await github_rest.blocking(lambda: self._seed_repo(spec)), status_code=201
                )
        except (ValueError, ValidationError, PromoterError, ForgeError, GitError) as error:
            return JSONResponse({"message": str(error)}, status_code=400)
        return JSONResponse({"message": f"no control endpoint {method} /_sandbox/{what}"}, status_code=404)

    def _seed_repo(self, spec: _RepoRequest) -> dict[str, Any]:
        repo = self.forge.create_repo(spec.kind, spec.owner, spec.name, spec.project, exist_ok=True)
        if spec.files:
            self.forge.commit_files(
                repo, spec.branch, {p: t.encode() for p, t in spec.files.items()}, spec.message
            )
        for branch, contexts in spec.protect.items():
            self.forge.protect(repo, branch, contexts)
        return {"full_name": repo.full_name, "branches": dict(repo.branches), "protection": repo.protection}
