"""Everything the promoter runs on, started together on loopback: the embedded default.

A Prefect server, the sandbox forge with its Flux emulator and the seeded `acme/gitops` repository, the
two deployments served by `promoter serve`, and the registry webhook receiver (`promoter webhook`). The
demo, the end-to-end tests and the benchmarks use it; each part is the real program, in its own process
where it is one in production. With `workers=N` the deployments run as teams that scale out run them:
deployed from `prefect.yaml` to a process work pool and executed by N `promoter worker` processes (or,
with `warm_workers=False`, Prefect's own `prefect worker start`, which starts each run cold).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sandbox.forge import Repository
from sandbox.prefect_server import PrefectServer, prefect_server
from sandbox.testing import Sandbox, run_sandbox

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
PROJECT = Path(__file__).resolve().parent.parent  # where prefect.yaml and the flows' entrypoints live
POOL = "promoter"  # the work pool prefect.yaml deploys to


@dataclass
class Stack:
    prefect: PrefectServer
    sandbox: Sandbox
    repo: Repository
    webhook_url: str
    webhook_secret: str = field(repr=False)
    logs: Path
    environment: dict[str, str] = field(repr=False)

    def push(
        self, image: str, tag: str, digest: str | None = None, pushed_by: str | None = None
    ) -> httpx.Response:
        """A registry notification, signed as the generic HMAC sender does."""
        fields = {"digest": digest, "pushed_by": pushed_by}
        body = json.dumps(
            {"repository": image, "tag": tag, **{k: v for k, v in fields.items() if v}}
        ).encode()
        signature = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        return httpx.post(
            f"{self.webhook_url}/hooks/generic",
            content=body,
            headers={"X-Signature": f"sha256={signature}", "Content-Type": "application/json"},
            timeout=30,
        )

    def runs(self, *tags: str) -> list[dict[str, Any]]:
        """Flow runs of promote-release carrying all `tags`, oldest first."""
        query: dict[str, Any] = {
            "flow_runs": {"tags": {"all_": ["promoter", *tags]}},
            "sort": "START_TIME_ASC",
        }
        with self.prefect.client() as api:
            response = api.post("/flow_runs/filter", json=query)
        response.raise_for_status()
        return list(response.json())

    def wait_for_run(
        self, predicate: Callable[[dict[str, Any]], bool], *tags: str, timeout: float = 120.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = [run for run in self.runs(*tags) if predicate(run)]
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                states = [(r["name"], r["state_type"], r["state_name"]) for r in self.runs(*tags)]
                raise TimeoutError(
                    f"no flow run of {tags or 'promoter'} matched within {timeout:.0f} s: {states}"
                )
            time.sleep(0.5)

    def events(
        self, prefix: str = "promoter.", since: str | None = None, resource: str | None = None
    ) -> list[dict[str, Any]]:
        """The first 50 matching events, oldest first; `resource` narrows them to one resource id."""
        query: dict[str, Any] = {"filter": {"event": {"prefix": [prefix]}, "order": "ASC"}, "limit": 50}
        if since:
            query["filter"]["occurred"] = {"since": since}
        if resource:
            query["filter"]["resource"] = {"id": [resource]}
        with self.prefect.client() as api:
            response = api.post("/events/filter", json=query)
        response.raise_for_status()
        return list(response.json()["events"])

    def ui_link(self, run: Mapping[str, Any]) -> str:
        return f"{self.prefect.ui_url}/runs/flow-run/{run['id']}"

    def flow_run_processes(self) -> dict[int, str]:
        """pid -> flow run id of every run process forked by `promoter serve` or `promoter worker`, from
        their logs."""
        found: dict[int, str] = {}
        for log in [self.logs / "serve.log", *sorted(self.logs.glob("worker-*.log"))]:
            if not log.exists():
                continue
            for line in log.read_text(errors="replace").splitlines():
                head, sep, pid = line.partition(" started in process ")
                if sep and " flow run " in head and pid.strip().isdigit():
                    found[int(pid)] = head.rsplit(" flow run ", 1)[1].strip()
        return found

    def flow_run_pids(self, run_id: str) -> list[int]:
        """The processes of one flow run, oldest first (a retried run has several)."""
        return [pid for pid, run in self.flow_run_processes().items() if run == run_id]


@contextmanager
def promoter_stack(
    root: Path,
    *,
    scenario: Mapping[str, Any] | None = None,
    prefect: PrefectServer | None = None,
    kind: str = "github",
    poll_interval: float = 0.3,
    sweep_seconds: float = 5.0,
    watch_seconds: float = 2.0,
    limit: int | None = None,
    tokens: dict[str, str] | None = None,
    workers: int = 0,
    warm_workers: bool = True,
    settings: Mapping[str, str] | None = None,
    forge_hooks: bool = True,
    azure_merge_delay: float = 0.2,
) -> Iterator[Stack]:
    """Start the stack under `root`; stop all of it when the block ends, whatever happened inside.

    `tokens` (token -> login) replaces the sandbox's well-known ones; the `promoter-bot` login's token is
    the one the promoter uses, so a test can give it a recognisable value and look for it afterwards.
    `workers` > 0 replaces `promoter serve` with the work-pool set-up of `prefect.yaml`: `prefect work-pool
    create`, `prefect deploy --all`, then that many workers (logs `worker-N.log`), each with its own cache
    directory and `--limit limit`: `promoter worker`, or `prefect worker start` with `warm_workers=False`
    (a benchmark that compares the two). `settings` are extra environment variables for the promoter's
    processes (e.g. a Prefect setting). With `forge_hooks`, the GitOps repository's forge sends its
    webhooks (GitHub `status` and `pull_request`, Azure DevOps `git.pullrequest.merged|updated`) to the
    receiver's `/forge/<kind>`, subscribed through the forge's API as a platform team would.
    """
    root.mkdir(parents=True, exist_ok=True)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    with ExitStack() as stack:
        server = prefect or stack.enter_context(
            prefect_server(root / "prefect", log=logs / "prefect-server.log")
        )
        if prefect is not None:  # a shared server: leave no trigger behind to start runs for a dead stack
            stack.callback(_forget_deployments, server)
        sandbox = stack.enter_context(
            run_sandbox(
                root / "sandbox",
                seed_demo=True,
                scenario=scenario,
                tokens=tokens,
                azure_merge_delay=azure_merge_delay,
            )
        )
        repo = (
            sandbox.forge.repo("github", "acme", "gitops")
            if kind == "github"
            else sandbox.forge.repo("azure", "acme", "gitops", "gitops")
        )
        secret = secrets.token_hex(24)
        environment = {
            **os.environ,
            **server.environment,
            "PROMOTER_TOKEN": sandbox.token,
            "PROMOTER_GITOPS_URL": sandbox.clone_url(repo),
            "PROMOTER_PROVIDER": "github" if kind == "github" else "azdo",
            "PROMOTER_CACHE_DIR": str(root / "cache"),
            "PROMOTER_POLL_INTERVAL": str(poll_interval),
            "PROMOTER_WEBHOOK_GENERIC_SECRET": secret,
            **(_forge_hook_settings(secret) if forge_hooks else {}),
            **(settings or {}),
        }
        serve = [
            "serve",
            "--sweep-seconds",
            str(sweep_seconds),
            "--watch-seconds",
            str(watch_seconds),
            *(["--limit", str(limit)] if limit else []),
        ]
        if workers:  # the commands of prefect.yaml's header; workers start while `prefect deploy` runs
            create = ["work-pool", "create", POOL, "--type", "process", "--overwrite"]
            _prefect(create, environment, logs / "deploy.log")
            for index in range(workers):
                watch = watch_seconds if warm_workers else None
                stack.enter_context(_worker(index, root, environment, logs, limit, watch))
            _prefect(["--no-prompt", "deploy", "--all"], environment, logs / "deploy.log")
            _wait_workers(server, workers, logs)
        else:
            stack.enter_context(_process(serve, environment, logs / "serve.log"))
        webhook = stack.enter_context(_process(["webhook", "--port", "0"], environment, logs / "webhook.log"))
        webhook_url = _wait_line(logs / "webhook.log", "promoter webhook serving ", webhook).split()[3]
        if forge_hooks:
            _subscribe(sandbox, repo, f"{webhook_url}/forge/{kind}", secret)
        _wait_deployment(server, logs / ("deploy.log" if workers else "serve.log"))
        yield Stack(server, sandbox, repo, webhook_url, secret, logs, environment)


def _forge_hook_settings(secret: str) -> dict[str, str]:
    return {
        "PROMOTER_WEBHOOK_FORGE_GITHUB_SECRET": secret,
        "PROMOTER_WEBHOOK_FORGE_AZURE_USERNAME": "sandbox-hooks",
        "PROMOTER_WEBHOOK_FORGE_AZURE_PASSWORD": secret,
    }


def _subscribe(sandbox: Sandbox, repo: Repository, url: str, secret: str) -> None:
    """Subscribe the receiver to the repository's webhooks through the forge's own API."""
    auth = {"Authorization": f"token {sandbox.human_token}"}
    if repo.kind == "github":
        body: dict[str, Any] = {
            "name": "web",
            "events": ["status", "pull_request", "pull_request_review"],
            "config": {"url": url, "content_type": "json", "secret": secret},
        }
        answer = httpx.post(
            f"{sandbox.github_api}/repos/{repo.owner}/{repo.name}/hooks", json=body, headers=auth
        )
        answer.raise_for_status()
        return
    for event in ("git.pullrequest.merged", "git.pullrequest.updated"):
        body = {
            "publisherId": "tfs",
            "eventType": event,
            "resourceVersion": "1.0",
            "consumerId": "webHooks",
            "consumerActionId": "httpRequest",
            "publisherInputs": {"repository": repo.uuid, "projectId": repo.project_uuid},
            "consumerInputs": {"url": url, "basicAuthUsername": "sandbox-hooks", "basicAuthPassword": secret},
        }
        answer = httpx.post(
            f"{sandbox.url}/{repo.owner}/_apis/hooks/subscriptions",
            params={"api-version": "7.1"},
            json=body,
            auth=("", sandbox.human_token),
        )
        answer.raise_for_status()


def _forget_deployments(server: PrefectServer) -> None:
    """Delete the promoter's deployments and the automations their triggers own."""
    with server.client() as api:
        for name in ("promote-release/promote-release", "approval-sweeper/approval-sweeper"):
            found = api.get(f"/deployments/name/{name}")
            if found.status_code != 200:
                continue
            deployment = found.json()["id"]
            api.delete(f"/automations/owned-by/prefect.deployment.{deployment}")
            api.delete(f"/deployments/{deployment}")


def _prefect(args: list[str], environment: dict[str, str], log: Path) -> None:
    """A `prefect` command, run from the project directory as prefect.yaml documents it."""
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", "prefect", *args],
            env=environment,
            cwd=PROJECT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=False,
        )
    if done.returncode:
        raise RuntimeError(f"prefect {' '.join(args)} exited {done.returncode}; see {log}")


@contextmanager
def _worker(
    index: int,
    root: Path,
    environment: dict[str, str],
    logs: Path,
    limit: int | None,
    watch_seconds: float | None,
) -> Iterator[subprocess.Popen[bytes]]:
    """One worker: its own clone cache (workers share nothing but the forge and the API). With
    `watch_seconds` it is `promoter worker` (its wait watcher at that interval), else `prefect worker`."""
    env = {
        **environment,
        "PROMOTER_CACHE_DIR": str(root / f"cache-worker-{index}"),
        "PROMOTER_CHECKOUT": str(PROJECT),  # prefect.yaml's pull step: where the flow code is
        "PREFECT_WORKER_QUERY_SECONDS": "1",  # default 10 s: a run would wait that long to start
    }
    if watch_seconds is not None:
        args = ["worker", "--pool", POOL, "--name", f"worker-{index}", "--watch-seconds", str(watch_seconds)]
    else:
        args = ["worker", "start", "--pool", POOL, "--type", "process", "--name", f"worker-{index}"]
    args += ["--limit", str(limit)] if limit else []
    module = "prefect" if watch_seconds is None else "promoter.cli"
    with _process(args, env, logs / f"worker-{index}.log", module=module) as process:
        yield process


def _wait_workers(server: PrefectServer, count: int, logs: Path, timeout: float = 120.0) -> None:
    """Until `count` workers have sent their first heartbeat to the pool."""
    deadline = time.monotonic() + timeout
    with server.client(timeout=10) as api:
        while time.monotonic() < deadline:
            response = api.post(f"/work_pools/{POOL}/workers/filter", json={})
            if response.status_code == 200 and len(response.json()) >= count:
                return
            time.sleep(0.5)
    raise RuntimeError(f"{count} workers did not join the {POOL} pool within {timeout:.0f} s; see {logs}")


@contextmanager
def _process(
    args: list[str], environment: dict[str, str], log: Path, module: str = "promoter.cli"
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def _wait_line(log: Path, prefix: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(map(str, process.args))} exited; see {log}")  # type: ignore[arg-type]
        time.sleep(0.2)
    raise RuntimeError(f"no '{prefix}' in {log} within {timeout:.0f} s")


def _wait_deployment(server: PrefectServer, log: Path, timeout: float = 120.0) -> None:
    """Until `promote-release` is served and its event trigger's automation exists."""
    deadline = time.monotonic() + timeout
    with server.client(timeout=10) as api:
        while time.monotonic() < deadline:
            deployment = api.get("/deployments/name/promote-release/promote-release")
            automations = api.post("/automations/filter", json={})
            if deployment.status_code == 200 and automations.status_code == 200 and automations.json():
                return
            time.sleep(0.5)
    raise RuntimeError(f"promote-release was not served within {timeout:.0f} s; see {log}")
