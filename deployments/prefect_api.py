"""The questions every command that talks to Prefect asks first: which server, and will it let us in?

Without `PREFECT_API_URL`, Prefect quietly starts a throw-away server of its own for the process, which
"cannot schedule flows on an ephemeral server": served deployments would never run, approvals would find
nothing and events would vanish. A server started with `PREFECT_SERVER_API_AUTH_STRING` (basic auth)
answers 401 to a client without the same `PREFECT_API_AUTH_STRING`, which Prefect's runner and client
report as a traceback per request. So `serve`, `worker`, `webhook` and `approve` refuse instead, in one line.
"""

from __future__ import annotations

import httpx
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL
from pydantic import SecretStr

from promoter.errors import ConfigError


def require_api_url(command: str) -> str:
    """The Prefect API URL, or a `ConfigError` saying how to get one."""
    url = PREFECT_API_URL.value()
    if not url:
        raise ConfigError(
            f"PREFECT_API_URL is not set: `promoter {command}` needs a Prefect server; start one with "
            "`prefect server start` and export PREFECT_API_URL=http://127.0.0.1:4200/api "
            "(`promoter demo` starts everything for you and prints its value)"
        )
    return str(url)


def credentials() -> tuple[dict[str, str], tuple[str, str] | None]:
    """Headers and basic auth for a plain HTTP client of the API, as Prefect's own client sends them:
    `PREFECT_API_KEY` as a bearer token (Prefect Cloud), else `PREFECT_API_AUTH_STRING` (`user:password`)."""
    if key := _plain(PREFECT_API_KEY.value()):
        return {"Authorization": f"Bearer {key}"}, None
    if auth_string := _plain(PREFECT_API_AUTH_STRING.value()):
        user, _, password = auth_string.partition(":")
        return {}, (user, password)
    return {}, None


def _plain(value: object) -> str | None:
    """A setting's text: Prefect 3.9 gives these as `str`; other versions as pydantic's `SecretStr`."""
    if isinstance(value, SecretStr):
        return value.get_secret_value() or None
    return str(value) if value else None


def require_api(command: str, *, timeout: float = 10.0) -> str:
    """`require_api_url`, then one authenticated request: a `ConfigError` when the server refuses the
    credential. A server that cannot be reached yet is left to the command's own retries."""
    url = require_api_url(command)
    headers, auth = credentials()
    try:
        answer = httpx.get(f"{url.rstrip('/')}/admin/version", headers=headers, auth=auth, timeout=timeout)
    except httpx.HTTPError:
        return url
    if answer.status_code in (401, 403):
        given = "the credential in PREFECT_API_AUTH_STRING" if auth else "a request without credentials"
        raise ConfigError(
            f"the Prefect API at {url} refused {given} (HTTP {answer.status_code}): `promoter {command}` "
            "needs PREFECT_API_AUTH_STRING set to the user:password the server has in "
            "PREFECT_SERVER_API_AUTH_STRING"
        )
    return url
