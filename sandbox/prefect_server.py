"""A real Prefect server on loopback, started as a child process (for the demo, the tests, the benchmarks).

`prefect server start` runs the API and every service (scheduler, event triggers, automations), which event
-triggered deployments need; SQLite by default, or PostgreSQL through `database_url`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Prefect clients: retry a 503 ("database is locked") 8 times, not 5, with wider jitter so that a burst of
# clients does not retry in lockstep. Set on the server too: the automations' actions (run-deployment)
# call the API through the same client, in the server process. docs/sqlite.md has the measurements.
SQLITE_CLIENT_SETTINGS: dict[str, str] = {
    "PREFECT_CLIENT_MAX_RETRIES": "8",
    "PREFECT_CLIENT_RETRY_JITTER_FACTOR": "1.0",
}
# The server on SQLite: the client retries above, fewer writers beside the API (no late-runs marking, no
# foreman), and events persisted in batches of 200 rather than 20.
SQLITE_SETTINGS: dict[str, str] = {
    **SQLITE_CLIENT_SETTINGS,
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
}


def client_environment(api_url: str, home: Path) -> dict[str, str]:
    """Settings for every process that talks to this server (flows, runners, the webhook receiver)."""
    return {
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
    }


@dataclass
class PrefectServer:
    api_url: str
    ui_url: str
    home: Path
    process: subprocess.Popen[bytes]
    client_settings: dict[str, str] = field(default_factory=dict)  # SQLITE_CLIENT_SETTINGS on SQLite
    auth_string: str | None = field(default=None, repr=False)  # basic auth `user:password`, when set

    @property
    def environment(self) -> dict[str, str]:
        auth = {"PREFECT_API_AUTH_STRING": self.auth_string} if self.auth_string else {}
        return {**client_environment(self.api_url, self.home), **self.client_settings, **auth}

    @property
    def auth(self) -> tuple[str, str] | None:
        """For a plain HTTP client of this server (`httpx.get(..., auth=server.auth)`)."""
        if not self.auth_string:
            return None
        user, _, password = self.auth_string.partition(":")
        return user, password

    def client(self, timeout: float = 30.0) -> httpx.Client:
        """A plain HTTP client of the API, with the server's credential when it has one. A new connection
        per request: the server resets idle keep-alive ones, and a reused one fails with ReadError."""
        limits = httpx.Limits(max_keepalive_connections=0)
        return httpx.Client(base_url=self.api_url, auth=self.auth, timeout=timeout, limits=limits)


@contextmanager
def prefect_server(
    home: Path,
    *,
    port: int | None = None,
    database_url: str | None = None,
    log: Path | None = None,
    startup_timeout: float = 90.0,
    environment: Mapping[str, str] | None = None,
    sqlite_settings: bool = True,
    auth_string: str | None = None,
) -> Iterator[PrefectServer]:
    """Start `prefect server start` on 127.0.0.1, wait until healthy, stop it (and its children) at the end.

    `startup_timeout` covers the database migrations of a fresh database: longer on PostgreSQL or a loaded
    machine. On SQLite (no `database_url`) the server runs with `SQLITE_SETTINGS` and its `environment`
    (for the processes that talk to it) carries `SQLITE_CLIENT_SETTINGS`, unless `sqlite_settings` is
    false (Prefect's own defaults, for bench/sqlite_lock.py). `environment` adds settings to the server's
    environment, over all of those. `auth_string` (`user:password`) turns on Prefect's basic auth
    (`PREFECT_SERVER_API_AUTH_STRING`); `environment` then carries it as `PREFECT_API_AUTH_STRING`."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    tuned = database_url is None and sqlite_settings
    env = {
        **os.environ,
        **client_environment(api_url, home),
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url or f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_UI_API_URL": api_url,
        **(SQLITE_SETTINGS if tuned else {}),
        **({"PREFECT_SERVER_API_AUTH_STRING": auth_string} if auth_string else {}),
        **(environment or {}),
    }
    out = open(log or home / "server.log", "ab")  # noqa: SIM115 - closed below, after the process
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_healthy(api_url, process, home, startup_timeout)
        client_settings = dict(SQLITE_CLIENT_SETTINGS) if tuned else {}
        yield PrefectServer(api_url, f"http://127.0.0.1:{port}", home, process, client_settings, auth_string)
    finally:
        _stop(process)
        out.close()


def _wait_healthy(api_url: str, process: subprocess.Popen[bytes], home: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the Prefect server exited at start (code {process.returncode}); see {home / 'server.log'}"
            )
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    _stop(process)
    raise RuntimeError(f"the Prefect server did not answer within {timeout:.0f} s; see {home / 'server.log'}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
