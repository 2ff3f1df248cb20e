"""A small router whose templates are the ones in the providers' API descriptions.

Keeping the official template (`/repos/{owner}/{repo}/pulls/{pull_number}`) on every route lets the same
string name the route in statistics and fault rules and find the operation in the spec.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.datastructures import Headers, QueryParams

from sandbox.forge import Account

Personality = Literal["github", "graphql", "azure"]


class BadRequest(Exception):
    """A request body that is not the JSON the route expects (malformed, wrong type, missing field)."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


@dataclass
class Call:
    """One authenticated API request, as a handler sees it."""

    method: str
    path: str
    params: dict[str, str]
    query: QueryParams
    headers: Headers
    body: bytes
    user: Account
    base_url: str
    _json: Any = field(default=None, repr=False)

    def json(self) -> Any:
        if self._json is None:
            if not self.body.strip():
                self._json = {}
            else:
                try:
                    self._json = json.loads(self.body)
                except (ValueError, UnicodeDecodeError):
                    raise BadRequest("Problems parsing JSON", code="malformed") from None
        return self._json

    def object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise BadRequest("Problems parsing JSON: the body must be a JSON object", code="malformed")
        return data


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    spec_path: str
    personality: Personality
    handler: Handler
    pattern: re.Pattern[str]

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"


def _compile(template: str, flags: int = 0) -> tuple[re.Pattern[str], str]:
    """`{name}` matches one path segment, `{name:path}` the rest (branch names may contain slashes)."""
    regex, spec, pos = "", "", 0
    for match in re.finditer(r"\{(\w+)(:path)?\}", template):
        literal = template[pos : match.start()]
        regex += re.escape(literal) + (f"(?P<{match[1]}>.+?)" if match[2] else f"(?P<{match[1]}>[^/]+)")
        spec += literal + "{" + match[1] + "}"
        pos = match.end()
    regex += re.escape(template[pos:])
    spec += template[pos:]
    return re.compile(regex + r"\Z", flags), spec


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        personality: Personality,
        prefix: str = "",
        spec_prefix: str = "",
        ignore_case: bool = False,
    ) -> None:
        """`prefix` is where the route is served; `spec_prefix` is the part of it the spec's paths include.

        `ignore_case` matches the literal words in any case, as Azure DevOps does (`pullRequests`).
        """
        pattern = _compile(prefix + template, re.IGNORECASE if ignore_case else 0)[0]
        spec_path = _compile(spec_prefix + template)[1]
        self.routes.append(Route(method, prefix + template, spec_path, personality, handler, pattern))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path parameters, whether the path exists under another method)."""
        other_method = False
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict(), False
            other_method = True
        return None, {}, other_method
