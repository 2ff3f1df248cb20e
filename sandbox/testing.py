"""Run a sandbox inside the current process, for tests and benchmarks.

    from sandbox.testing import run_sandbox

    with run_sandbox(tmp_path, seed_demo=True) as sandbox:
        gh = github.Github(base_url=sandbox.github_api, auth=github.Auth.Token(sandbox.token))
        ...
        assert sandbox.violations() == []

The server listens on a free loopback port in a background thread; everything it does is reachable over
HTTP as for any client, and its state is also reachable directly (`sandbox.forge`, `sandbox.app`) for
assertions and set-up. Leaving the block stops the server and the Flux emulator and saves the forge state.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import uvicorn

from sandbox.app import SandboxApp, listen, quiet_dropped_connections
from sandbox.faults import FaultPlan, parse_plan
from sandbox.flux import context
from sandbox.forge import BOT_TOKEN, DEFAULT_TOKENS, HUMAN_TOKEN, Kind, Repository
from sandbox.scenario import Default, Scenario, parse_scenario
from sandbox.seed import seed_demo as _seed_demo
from sandbox.specs import Violation, discover

T = TypeVar("T")


@dataclass
class Sandbox:
    """A running sandbox: its URLs, tokens and a few helpers for tests."""

    app: SandboxApp
    url: str
    token: str = BOT_TOKEN
    human_token: str = HUMAN_TOKEN
    _server: uvicorn.Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def forge(self) -> Any:
        return self.app.forge

    @property
    def github_api(self) -> str:
        """REST base URL, as for GitHub Enterprise Server (`https://HOST/api/v3`)."""
        return f"{self.url}/api/v3"

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/api/graphql"

    def azure_api(self, organization: str, project: str) -> str:
        """Base of Azure DevOps git calls: append `/repositories/{repo}/...?api-version=7.1`."""
        return f"{self.url}/{organization}/{project}/_apis/git"

    def clone_url(self, repo: Repository) -> str:
        if repo.kind == "azure":
            return f"{self.url}/{repo.owner}/{repo.project}/_git/{repo.name}"
        return f"{self.url}/{repo.owner}/{repo.name}.git"

    def git_env(self, token: str | None = None) -> dict[str, str]:
        """Environment for `git` so it authenticates without the token in a URL, argument or .git/config."""
        basic = base64.b64encode(f"x-access-token:{token or self.token}".encode()).decode()
        return {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            "GIT_TERMINAL_PROMPT": "0",
        }

    def create_repo(
        self,
        full_name: str,
        *,
        kind: Kind = "github",
        files: Mapping[str, str | bytes] | None = None,
        protect: Mapping[str, list[str]] | None = None,
    ) -> Repository:
        """`owner/name` (GitHub) or `org/project/name` (Azure DevOps), with files committed on main."""
        parts = full_name.split("/")
        if kind == "azure":
            owner, project, name = parts
            repo: Repository = self.forge.create_repo(kind, owner, name, project, exist_ok=True)
        else:
            owner, name = parts
            repo = self.forge.create_repo(kind, owner, name, exist_ok=True)
        if files:
            data = {path: text.encode() if isinstance(text, str) else text for path, text in files.items()}
            self.forge.commit_files(repo, repo.default_branch, data, "Seed")
        for branch, contexts in (protect or {}).items():
            self.forge.protect(repo, branch, contexts)
        return repo

    def seed_demo(self) -> list[Repository]:
        result: list[Repository] = _seed_demo(self.forge)
        return result

    def set_faults(self, plan: FaultPlan | Mapping[str, Any]) -> None:
        self.app.faults.set(plan if isinstance(plan, FaultPlan) else parse_plan(dict(plan)))

    def clear_faults(self) -> None:
        self.app.faults.set(FaultPlan())

    def set_scenario(self, scenario: Scenario | Mapping[str, Any]) -> None:
        self.app.flux.set_scenario(
            scenario if isinstance(scenario, Scenario) else parse_scenario(dict(scenario))
        )

    def set_mergeability_delay(self, seconds: float) -> None:
        """How long GitHub pull requests report their mergeability as unknown after a move (0: never)."""
        self.app.github.mergeability.delay = seconds

    def stats(self) -> dict[str, Any]:
        return self.app.stats.snapshot()

    def violations(self) -> list[Violation]:
        return list(self.app.specs.violations)

    def flux_context(self, repo: Repository, kustomization: str, cluster: int = 0) -> str:
        """The status context a cluster's Flux posts for a kustomization under the current scenario,
        e.g. `kustomization/apps-dev/0c9c2e41` (the first cluster's)."""
        return context(repo, kustomization, cluster, self.app.flux.scenario.flux)

    def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.02) -> T:
        """Poll until `predicate` returns something truthy; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s")
            time.sleep(interval)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None
        self.app.close()


@contextmanager
def run_sandbox(
    root: Path,
    *,
    scenario: Scenario | Mapping[str, Any] | None = None,
    specs: Path | Literal["auto"] | None = "auto",
    seed_demo: bool = False,
    tokens: dict[str, str] | None = None,
    rate_limit: int = 5000,
    flux_delay: float = 0.1,
    mergeability_delay: float = 0.2,
    azure_merge_delay: float = 0.2,
    webhook_delay_scale: float = 1.0,
) -> Iterator[Sandbox]:
    """Start forge and Flux emulator on a free loopback port; stop them when the block ends.

    `specs="auto"` finds the API descriptions as the CLI does (None turns validation off); without a
    scenario, Flux reports every environment healthy `flux_delay` seconds after each merge. GitHub pull
    requests report their mergeability as unknown for `mergeability_delay` seconds after they or their
    branches move, and Azure DevOps merges and completions take `azure_merge_delay` seconds, as on the
    services (short here; `promoter sandbox` uses the services' few seconds). Azure DevOps' webhook retry
    delays are scaled by `webhook_delay_scale`.
    """
    if scenario is None:
        chosen = Scenario(default=Default(delay=flux_delay))
    else:
        chosen = scenario if isinstance(scenario, Scenario) else parse_scenario(dict(scenario))
    app = SandboxApp(
        root,
        specs=discover() if specs == "auto" else specs,
        scenario=chosen,
        tokens=tokens or dict(DEFAULT_TOKENS),
        rate_limit=rate_limit,
        mergeability_delay=mergeability_delay,
        azure_merge_delay=azure_merge_delay,
        webhook_delay_scale=webhook_delay_scale,
    )
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    quiet_dropped_connections()
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="sandbox-server", daemon=True
    )
    bot = next((t for t, login in app.forge.tokens.items() if login == "promoter-bot"), BOT_TOKEN)
    human = next((t for t, login in app.forge.tokens.items() if login == "alice"), HUMAN_TOKEN)
    sandbox = Sandbox(app, f"http://127.0.0.1:{port}", bot, human, server, thread)
    try:
        if seed_demo:
            sandbox.seed_demo()
        app.start()
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        yield sandbox
    finally:
        sandbox.stop()
        sock.close()
        logging.getLogger("sandbox").debug("sandbox on port %d stopped", port)
