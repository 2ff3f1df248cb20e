"""End to end: `promoter webhook` in its own process, a signed GitHub delivery, the event stored by Prefect."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from sandbox.prefect_server import PrefectServer
from tests.deployments import samples

SECRET = "github-hmac-secret-" + uuid.uuid4().hex
# The command as `promoter webhook` will run it, without depending on the CLI wiring.
COMMAND = (
    "import argparse, sys\n"
    "from deployments.webhook_command import add_parser\n"
    "parser = argparse.ArgumentParser()\n"
    "add_parser(parser.add_subparsers())\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.handler(args))\n"
)


def _serving_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("promoter webhook serving "):
            return line.split()[3]
    raise AssertionError(f"promoter webhook exited (code {process.wait()}) before serving")


def _stored_events(api_url: str, repository: str, tag: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Poll the events the server persisted (written in batches, a few seconds after receipt)."""
    query = {
        "filter": {
            "event": {"name": ["registry.image.pushed"]},
            "resource": {"id": [f"registry.image.{repository}"]},
        },
        "limit": 50,
    }
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.post(f"{api_url}/events/filter", json=query, timeout=5)
        response.raise_for_status()
        events = [e for e in response.json()["events"] if e["resource"].get("promoter.tag") == tag]
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.25)


def _receive_once(api_url: str, body: bytes, log: Path, then: bytes | None = None) -> Any:
    """Start `promoter webhook`, deliver `body` (and `then`) as GitHub would, stop it: one lifetime of the
    receiver. Returns the answer to `body`."""
    with log.open("a") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", COMMAND, "webhook", "--port", "0"],
            env={**os.environ, "PROMOTER_WEBHOOK_GITHUB_SECRET": SECRET, "PREFECT_API_URL": api_url},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            url = _serving_url(process)
            answers = [
                httpx.post(
                    f"{url}/hooks/github",
                    content=content,
                    headers={
                        "Content-Type": "application/json",
                        "X-GitHub-Event": "registry_package",
                        "X-GitHub-Delivery": samples.DELIVERY,
                        "X-Hub-Signature-256": "sha256="
                        + hmac.new(SECRET.encode(), content, hashlib.sha256).hexdigest(),
                    },
                    timeout=15,
                )
                for content in [body] + ([then] if then else [])
            ]
            assert all(answer.status_code == 202 for answer in answers), [a.text for a in answers]
            return answers[0]
        finally:
            process.terminate()
            process.wait(timeout=15)


def test_a_signed_github_push_becomes_a_stored_prefect_event(
    prefect_api: PrefectServer, tmp_path: Path
) -> None:
    tag = f"1.0.0-{uuid.uuid4().hex[:8]}"
    body = json.dumps(samples.github_package(tag=tag)).encode()
    log = tmp_path / "webhook.log"
    response = _receive_once(prefect_api.api_url, body, log)
    assert (response.status_code, response.json()) == (202, {"emitted": 1, "ignored": []})
    events = _stored_events(prefect_api.api_url, "ghcr.io/acme/podinfo", tag)
    assert len(events) == 1, events
    (event,) = events
    assert event["event"] == "registry.image.pushed"
    assert {
        key: event["resource"][key] for key in ("prefect.resource.id", "promoter.image", "promoter.digest")
    } == {
        "prefect.resource.id": "registry.image.ghcr.io/acme/podinfo",
        "promoter.image": "ghcr.io/acme/podinfo",
        "promoter.digest": samples.DIGEST,
    }
    assert event["payload"]["sender"] == "github"
    assert event["payload"]["delivery"] == samples.DELIVERY
    assert SECRET not in log.read_text()


def test_a_delivery_replayed_after_the_receiver_restarts_is_stored_once(
    prefect_api: PrefectServer, tmp_path: Path
) -> None:
    """GitHub signatures carry no timestamp: a captured delivery can be replayed to a fresh receiver, whose
    memory of deliveries is empty. The event id is derived from the push, and the server keeps one event
    per id (its events table ignores a second insert of an id)."""
    tag = f"2.0.0-{uuid.uuid4().hex[:8]}"
    body = json.dumps(samples.github_package(tag=tag)).encode()
    log = tmp_path / "webhook.log"
    first = _receive_once(prefect_api.api_url, body, log)
    assert first.json() == {"emitted": 1, "ignored": []}
    assert len(_stored_events(prefect_api.api_url, "ghcr.io/acme/podinfo", tag)) == 1
    # The server persists events in batches: a sentinel push sent after the replay, once stored, shows
    # that the replay had its chance to be stored too.
    sentinel = f"{tag}-sentinel"
    replay = _receive_once(
        prefect_api.api_url, body, log, then=json.dumps(samples.github_package(tag=sentinel)).encode()
    )
    assert replay.json() == {"emitted": 1, "ignored": []}, "a restarted receiver remembers nothing"
    assert _stored_events(prefect_api.api_url, "ghcr.io/acme/podinfo", sentinel, timeout=30)
    events = _stored_events(prefect_api.api_url, "ghcr.io/acme/podinfo", tag)
    assert len(events) == 1, events
