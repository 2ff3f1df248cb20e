"""Checking requests and responses against the providers' official API descriptions (REFERENCE.md section 8).

- GitHub REST: openapi-core on a subset of `github/api.github.com.json` holding only the paths the forge
  serves and the components they reference (about 0.3 s to load instead of 27 s for the whole file).
- GitHub GraphQL: graphql-core 3.2 builds `github/schema.graphql` (about 1.5 s) in a background thread,
  so start-up does not wait for it; the first GraphQL request does.
- Azure DevOps: jsonschema on the definitions of `azure-devops/git-7.1.json` (Swagger 2.0, UTF-8 BOM),
  the request and response schemas of each operation read from the description itself.

GitHub's description marks what each API version changes (`x-github-breaking-changes`); a response is
checked against the description as patched for the version the request selected (`X-GitHub-Api-Version`).

Routes the description does not list (GitHub still answers `GET /repos/{o}/{r}/statuses/{sha}`, which
PyGithub uses) are served unchecked.

A bad request gets the provider's error; a bad response is the forge's own bug: it is sent anyway, and
recorded as a violation that `/_sandbox/violations` lists and the test fixtures assert empty. Results are
memoised by content, so polling the same resource costs one validation.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from graphql import GraphQLSchema, build_schema
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

from sandbox.routing import Route

log = logging.getLogger("sandbox")
ENV = "PROMOTER_SPECS_DIR"
GITHUB_SERVER = "https://api.github.com"
_MEMO_LIMIT = 20_000


def project_root(start: Path | None = None) -> Path | None:
    """The folder holding `pyproject.toml` above this package (the promoter checkout)."""
    here = (start or Path(__file__)).resolve()
    for folder in [here, *here.parents]:
        if (folder / "pyproject.toml").is_file():
            return folder
    return None


def discover(explicit: Path | str | None = None) -> Path | None:
    """`--specs DIR`, else `$PROMOTER_SPECS_DIR`, else `../shared/specs` next to the project root."""
    if explicit is not None:
        path = Path(explicit)
        if not (path / "github").is_dir() and not (path / "azure-devops").is_dir():
            raise FileNotFoundError(f"{path}: not a specs folder (expected github/ and azure-devops/ inside)")
        return path
    if os.environ.get(ENV):
        return discover(os.environ[ENV])
    root = project_root()
    candidate = root.parent / "shared" / "specs" if root else None
    if candidate is not None and (candidate / "github" / "api.github.com.json").is_file():
        return candidate
    return None


class _Request:
    """The request protocol openapi-core reads."""

    def __init__(
        self, method: str, path: str, query: Iterable[tuple[str, str]], body: bytes | None, content_type: str
    ) -> None:
        self.method = method.lower()
        self.host_url = GITHUB_SERVER
        self.path = path
        self.full_url_pattern = GITHUB_SERVER + path
        self.body = body
        self.content_type = content_type
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(query)), header=Headers(), cookie=ImmutableMultiDict()
        )


class _Response:
    def __init__(self, status: int, data: bytes) -> None:
        self.status_code = status
        self.data = data
        self.content_type = "application/json"
        self.headers = Headers()


def _cause(error: Exception) -> str:
    """openapi-core wraps the jsonschema errors that say what is wrong; surface them."""
    parts = [str(error)]
    cause = error.__cause__
    if cause is not None:
        parts.append(str(cause))
        details = getattr(cause, "schema_errors", None)
        if details:
            parts.extend(
                f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in details[:5]
            )
    return "; ".join(parts)[:2000]


@dataclass
class Violation:
    route: str
    status: int
    detail: str


@dataclass
class Specs:
    """The loaded descriptions; `None` members mean that part is not validated."""

    folder: Path | None
    github: OpenAPI | None = None
    azure: dict[str, Any] | None = None
    _graphql: Future[GraphQLSchema] | None = None
    violations: list[Violation] = field(default_factory=list)
    _memo: dict[tuple[Any, ...], str | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _azure_validators: dict[str, jsonschema.protocols.Validator] = field(default_factory=dict)
    _github_source: tuple[Path, tuple[str, ...]] | None = None

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    @classmethod
    def load(cls, folder: Path | None, routes: list[Route]) -> Specs:
        if folder is None:
            return cls(None)
        specs = cls(folder)
        github_file = folder / "github" / "api.github.com.json"
        if github_file.is_file():
            paths = tuple(sorted({r.spec_path for r in routes if r.personality == "github"}))
            specs._github_source = (github_file.resolve(), paths)
            specs.github = _openapi(github_file.resolve(), paths)
        graphql_file = folder / "github" / "schema.graphql"
        if graphql_file.is_file():
            specs._graphql = _graphql_schema(graphql_file.resolve())
        azure_file = folder / "azure-devops" / "git-7.1.json"
        if azure_file.is_file():
            specs.azure = _azure(azure_file.resolve())
        return specs

    def graphql_schema(self) -> GraphQLSchema | None:
        return self._graphql.result() if self._graphql is not None else None

    def record(self, route: str, status: int, detail: str) -> None:
        with self._lock:
            self.violations.append(Violation(route, status, detail))
        log.error("sandbox response violates the API description: %s -> %d: %s", route, status, detail)

    def _memoised(self, key: tuple[Any, ...], check: Any) -> str | None:
        if key in self._memo:
            return self._memo[key]
        result: str | None = check()
        with self._lock:
            if len(self._memo) > _MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = result
        return result

    # -- GitHub REST ------------------------------------------------------------------------------------

    def github_request(
        self, route: Route, path: str, query: list[tuple[str, str]], body: bytes
    ) -> str | None:
        """The problem with a GitHub request, or None when it is valid (or not validated)."""
        api = self.github
        if api is None:
            return None
        content = body if body.strip() else None
        request = _Request(route.method, path, query, content, "application/json" if content else "")

        def check() -> str | None:
            errors = [e for e in api.iter_request_errors(request) if not isinstance(e, PathError)]
            return "; ".join(_cause(e) for e in errors) or None

        key = ("req", route.method, path, tuple(query), hashlib.sha1(body).digest())  # noqa: S324
        return self._memoised(key, check)

    def github_response(
        self, route: Route, path: str, status: int, body: bytes, version: str | None = None
    ) -> None:
        """Record a violation when a response breaks the description (as of API `version`)."""
        api = self.github
        if api is None or self._github_source is None:
            return
        if version is not None:
            api = _openapi(*self._github_source, version=version)
        request = _Request(route.method, path, [], None, "")

        def check() -> str | None:
            errors = api.iter_response_errors(request, _Response(status, body))
            problems = [_cause(e) for e in errors if not isinstance(e, PathError | ResponseNotFound)]
            return "; ".join(problems) or None

        key = ("resp", route.name, status, version, hashlib.sha1(body).digest())  # noqa: S324
        problem = self._memoised(key, check)
        if problem:
            self.record(route.name, status, problem)

    # -- Azure DevOps -----------------------------------------------------------------------------------

    def _azure_operation(self, route: Route) -> dict[str, Any] | None:
        if self.azure is None:
            return None
        wanted = route.spec_path.lower()
        for path, item in self.azure["paths"].items():
            if path.lower() == wanted:
                operation: dict[str, Any] | None = item.get(route.method.lower())
                return operation
        return None

    def _azure_validator(self, schema: dict[str, Any]) -> jsonschema.protocols.Validator:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._azure_validators:
            assert self.azure is not None
            self._azure_validators[key] = jsonschema.Draft4Validator(
                {**schema, "definitions": self.azure["definitions"]}
            )
        return self._azure_validators[key]

    def _azure_errors(self, schema: dict[str, Any], value: Any) -> str | None:
        errors = list(self._azure_validator(schema).iter_errors(value))[:5]
        return (
            "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors)
            or None
        )

    def azure_request(self, route: Route, body: Any) -> str | None:
        operation = self._azure_operation(route)
        if operation is None:
            return None
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "body" and "schema" in parameter:
                return self._azure_errors(parameter["schema"], body)
        return None

    def azure_response(self, route: Route, status: int, body: Any) -> None:
        operation = self._azure_operation(route)
        if operation is None or status >= 300:
            return
        declared = operation.get("responses", {}).get(str(status)) or operation.get("responses", {}).get(
            "200"
        )
        schema = (declared or {}).get("schema")
        if schema is None:
            return

        def check() -> str | None:
            if schema.get("type") == "array":
                if (
                    not isinstance(body, dict)
                    or not isinstance(body.get("value"), list)
                    or body.get("count") != len(body["value"])
                ):
                    return "a list must be wrapped as {count, value}"
                return self._azure_errors(schema, body["value"])
            return self._azure_errors(schema, body)

        key = ("azure", route.name, status, hashlib.sha1(json.dumps(body, sort_keys=True).encode()).digest())  # noqa: S324
        problem = self._memoised(key, check)
        if problem:
            self.record(route.name, status, problem)


@functools.cache
def _openapi(path: Path, paths: tuple[str, ...], version: str | None = None) -> OpenAPI:
    """Loaded once per process and version: every sandbox in a test run shares it."""
    subset = _subset(json.loads(path.read_bytes()), list(paths))
    if version is not None:
        _apply_breaking_changes(subset, version)
    return OpenAPI.from_dict(subset, config=Config(spec_validator_cls=None))


def _apply_breaking_changes(node: Any, version: str) -> None:
    """Apply every `x-github-breaking-changes` patch up to `version`, in place.

    A patch comes in two forms: an object merged into the one that carries it (a null member removes the
    member, an object merges recursively, anything else, like a `required` list, replaces it), or a list
    of JSON Patch operations (RFC 6902 `remove`, `replace`, `add`) relative to it. Subset nodes may be
    shared, so each is patched once."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict) or id(item) in seen:
            continue
        seen.add(id(item))
        for change in item.pop("x-github-breaking-changes", []):
            patch = change.get("patch") or {}
            if str(change.get("version", "")) > version:
                continue
            if isinstance(patch, list):
                for operation in patch:
                    _json_patch(item, operation)
            else:
                _merge_patch(item, patch)
        stack.extend(item.values())


def _json_patch(target: Any, operation: dict[str, Any]) -> None:
    """One RFC 6902 operation; one whose path is not in the subset is skipped."""
    *parents, last = [
        part.replace("~1", "/").replace("~0", "~") for part in str(operation.get("path", "")).split("/")[1:]
    ]
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target.get(part)
        if not isinstance(target, dict | list):
            return
    kind = operation.get("op")
    if isinstance(target, list):
        index = int(last)
        if kind == "remove" and index < len(target):
            del target[index]
        elif kind in ("replace", "add") and index <= len(target):
            target[index : index + (kind == "replace")] = [operation.get("value")]
    elif kind == "remove":
        target.pop(last, None)
    elif kind in ("replace", "add"):
        target[last] = operation.get("value")


def _merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_patch(target[key], value)
        else:
            target[key] = value


@functools.cache
def _graphql_schema(path: Path) -> Future[GraphQLSchema]:
    """Built once per process in a background thread: about 1.5 s that start-up need not wait for."""
    future: Future[GraphQLSchema] = Future()

    def build() -> None:
        try:
            future.set_result(build_schema(path.read_text(encoding="utf-8"), assume_valid_sdl=True))
        except Exception as error:
            future.set_exception(error)

    threading.Thread(target=build, name="sandbox-graphql-schema", daemon=True).start()
    return future


@functools.cache
def _azure(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))
    return document


def _subset(document: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """The named paths of an OpenAPI document plus every component they reference, transitively."""
    missing = [p for p in paths if p not in document["paths"]]
    if missing:
        raise ValueError(f"paths not in the GitHub description: {', '.join(missing)}")
    subset: dict[str, Any] = {
        "openapi": document["openapi"],
        "info": document["info"],
        "servers": [{"url": GITHUB_SERVER}],
        "paths": {p: document["paths"][p] for p in paths},
        "components": {},
    }
    stack: list[Any] = [subset["paths"]]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/"):
                _, _, kind, name = ref.split("/", 3)
                bucket = subset["components"].setdefault(kind, {})
                if name not in bucket:
                    bucket[name] = document["components"][kind][name]
                    stack.append(bucket[name])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return subset
