"""The one question every command that talks to Prefect asks first: which server?

Without `PREFECT_API_URL`, Prefect quietly starts a throw-away server of its own for the process, which
"cannot schedule flows on an ephemeral server": served deployments would never run, approvals would find
nothing and events would vanish. So `serve`, `webhook` and `approve` refuse instead, in one line.
"""

from __future__ import annotations

from prefect.settings import PREFECT_API_URL

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
