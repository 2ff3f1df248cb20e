"""The whole story with a recognisable token, then a search of everything the system produced for it.

The sandbox's bot account gets the token `tok-CANARY-<uuid>`; the stack's webhook secret is random and
unique too. After a blocked release, a superseding one approved with `promoter approve`, and forged,
unsigned and replayed webhook deliveries, the token (also in the `Authorization: Basic` form git is given)
and the webhook secret must appear nowhere: Prefect's logs, flow and task runs (parameters, state
messages), artifacts, events, the Prefect home (database, results), the stack's log files, the cached
clones' files, the approve command's output, and the command line of any process while the story ran.
A hit is reported by place and byte offset, never by printing the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.forge import HUMAN_TOKEN
from sandbox.prefect_server import PrefectServer
from sandbox.stack import FINAL, Stack, promoter_stack

pytestmark = pytest.mark.timeout(1200)
IMAGE = "ghcr.io/acme/podinfo"
SCENARIO = {
    "default": {"delay": 0.2},
    "rules": [{"env": "qa", "app": "podinfo", "tag": "badc0de1", "outcome": "failing"}],
}
RUN_TIMEOUT = 600.0


def needles(token: str, webhook_secret: str) -> dict[str, bytes]:
    """Each secret in every form the system handles it, by a name that can be printed."""
    return {
        "token": token.encode(),
        "token as git Basic credentials (github)": base64.b64encode(f"x-access-token:{token}".encode()),
        "token as git Basic credentials (azdo)": base64.b64encode(f"promoter:{token}".encode()),
        "webhook secret": webhook_secret.encode(),
    }


@dataclass
class Findings:
    secrets: dict[str, bytes]
    places: int = 0
    hits: list[str] = field(default_factory=list)

    def search(self, where: str, data: bytes) -> None:
        self.places += 1
        for name, needle in self.secrets.items():
            at = data.find(needle)
            if at >= 0:
                self.hits.append(f"{name} in {where} at byte {at}")

    def search_tree(self, root: Path, skip: tuple[str, ...] = ()) -> None:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and not set(skip) & set(path.parts):
                self.search(str(path), path.read_bytes())


class ProcessWatch:
    """Samples every process's command line every 50 ms in a background thread while the story runs."""

    def __init__(self, findings: Findings) -> None:
        self.findings = findings
        self.samples = 0
        self.git_seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cmdline-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue  # the process ended between listing and reading
                if cmdline.split(b"\0", 1)[0].endswith(b"git"):
                    self.git_seen.add(int(entry.name))
                for name, needle in self.findings.secrets.items():
                    at = cmdline.find(needle)
                    if at >= 0:
                        self.findings.hits.append(
                            f"{name} in the command line of pid {entry.name} at byte {at}"
                        )
            self.samples += 1
            self._stop.wait(0.05)

    @contextmanager
    def running(self) -> Iterator[ProcessWatch]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=30)


def _post_pages(api: str, path: str, key: str | None = None, limit: int = 200) -> Iterator[bytes]:
    """Every page of an offset-paginated `POST {api}{path}` (logs, runs, artifacts), raw."""
    offset = 0
    while True:
        response = httpx.post(f"{api}{path}", json={"limit": limit, "offset": offset}, timeout=60)
        response.raise_for_status()
        items = response.json()
        if key is not None:
            items = items[key]
        yield response.content
        if len(items) < limit:
            return
        offset += limit


def _event_pages(api: str) -> Iterator[bytes]:
    """Every event since the session began, following the server's `next_page` links."""
    since = "2000-01-01T00:00:00Z"
    query = {"filter": {"occurred": {"since": since}, "order": "ASC"}, "limit": 50}
    response = httpx.post(f"{api}/events/filter", json=query, timeout=60)
    while True:
        response.raise_for_status()
        yield response.content
        next_page = response.json().get("next_page")
        if not next_page:
            return
        response = httpx.get(next_page, timeout=60)


def _wait(stack: Stack, tag: str, states: set[str]) -> dict[str, Any]:
    return stack.wait_for_run(
        lambda run: run["name"].endswith(f":{tag}") and run["state_type"] in states, timeout=RUN_TIMEOUT
    )


def _deliver(stack: Stack, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Signature"] = signature
    return httpx.post(f"{stack.webhook_url}/hooks/generic", content=body, headers=headers, timeout=30)


def _story(stack: Stack, findings: Findings) -> dict[str, int]:
    """Blocked, superseded, approved from the CLI; then hostile deliveries. Returns the receiver's counts."""
    assert stack.push(IMAGE, "badc0de1").status_code == 202
    blocked = _wait(stack, "badc0de1", FINAL)
    assert (blocked["state_type"], blocked["state_name"]) == ("FAILED", "Blocked"), blocked["state"]

    assert stack.push(IMAGE, "900dc0de").status_code == 202
    waiting = _wait(stack, "900dc0de", {"PAUSED", *FINAL})
    assert waiting["state_type"] == "PAUSED", waiting["state"]
    approved = subprocess.run(
        [sys.executable, "-m", "promoter.cli", "approve", "--app", "apps/podinfo", "--approver", "ops@acme"],
        env=stack.environment,
        capture_output=True,
        timeout=300,
    )
    findings.search("the output of promoter approve", approved.stdout + approved.stderr)
    assert approved.returncode == 0, approved.stderr.decode(errors="replace")
    done = _wait(stack, "900dc0de", FINAL)
    assert done["state_type"] == "COMPLETED", done["state"]

    body = json.dumps({"repository": IMAGE, "tag": "f00dfeed"}).encode()
    forged = "sha256=" + hmac.new(b"not-the-secret-at-all-000", body, hashlib.sha256).hexdigest()
    assert _deliver(stack, body, None).status_code == 401
    assert _deliver(stack, body, forged).status_code == 401
    assert _deliver(stack, body, "sha256=" + "0" * 64).status_code == 401
    replay = stack.push(IMAGE, "900dc0de")  # the very delivery that started the approved run
    assert replay.status_code == 202 and replay.json()["emitted"] == 0, replay.text
    assert len([r for r in stack.runs() if r["name"].endswith(":900dc0de")]) == 1
    counts: dict[str, int] = httpx.get(f"{stack.webhook_url}/stats", timeout=30).json()
    return counts


def test_no_token_or_webhook_secret_anywhere_after_the_whole_story(
    prefect_api: PrefectServer, tmp_path: Path
) -> None:
    token = f"tok-CANARY-{uuid.uuid4().hex}"
    root = tmp_path / "stack"
    tokens = {token: "promoter-bot", HUMAN_TOKEN: "alice"}
    findings = Findings({})
    watch = ProcessWatch(findings)
    with promoter_stack(
        root, scenario=SCENARIO, prefect=prefect_api, poll_interval=0.2, sweep_seconds=10, tokens=tokens
    ) as stack:
        assert stack.environment["PROMOTER_TOKEN"] == token
        findings.secrets = needles(token, stack.webhook_secret)
        with watch.running():
            counts = _story(stack, findings)
        assert stack.sandbox.violations() == []

    # The receiver counted what it refused: three bad signatures, one replay, two releases.
    assert counts["unauthorized"] == 3 and counts["duplicate"] == 1 and counts["accepted"] == 2, counts

    api = prefect_api.api_url
    for number, page in enumerate(_post_pages(api, "/logs/filter")):
        findings.search(f"Prefect logs page {number}", page)
    for number, page in enumerate(_post_pages(api, "/flow_runs/filter")):
        findings.search(f"flow runs page {number} (parameters, state messages)", page)
    for number, page in enumerate(_post_pages(api, "/task_runs/filter")):
        findings.search(f"task runs page {number} (state messages)", page)
    for number, page in enumerate(_post_pages(api, "/artifacts/filter")):
        findings.search(f"artifacts page {number}", page)
    for number, page in enumerate(_event_pages(api)):
        findings.search(f"events page {number}", page)
    for path in sorted((root / "logs").glob("*.log")):
        findings.search(f"log file {path.name}", path.read_bytes())
    clones = sorted(path for path in (root / "cache").iterdir() if (path / "config").is_file())
    assert clones, "the story left no cached clone to inspect"
    for clone in clones:
        findings.search(f"cached clone {clone.name}/config", (clone / "config").read_bytes())
    findings.search_tree(root / "cache", skip=("objects",))
    findings.search_tree(prefect_api.home)

    assert findings.hits == [], "secrets found: " + "; ".join(findings.hits)
    assert findings.places > 10, findings.places
    assert watch.samples >= 20, watch.samples
    assert watch.git_seen, "the process sampler never saw git running"
    assert os.environ.get("PROMOTER_TOKEN") != token  # the test process itself never took the token


def test_a_hit_is_reported_by_place_and_offset_without_the_secret(tmp_path: Path) -> None:
    token = f"tok-CANARY-{uuid.uuid4().hex}"
    findings = Findings(needles(token, "webhook-secret-canary-0123456789"))
    basic = base64.b64encode(f"x-access-token:{token}".encode())
    (tmp_path / "config").write_bytes(b"[http]\n\textraHeader = Authorization: Basic " + basic + b"\n")
    findings.search_tree(tmp_path)
    findings.search("a log line", b"pushed with " + token.encode())
    assert findings.hits == [
        f"token as git Basic credentials (github) in {tmp_path / 'config'} at byte 43",
        "token in a log line at byte 12",
    ]
    assert not any(token in hit or basic.decode() in hit for hit in findings.hits)
