"""`GET /metrics`: valid text format, and counters that move with deliveries, events and forge requests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prefect import flow
from prefect.events import Event
from prefect.settings import PREFECT_API_URL, temporary_settings
from pydantic import SecretStr
from starlette.exceptions import StarletteDeprecationWarning

from deployments.metrics import MAX_ENVS, Metrics, follow_events
from deployments.webhook import RegistryEvent, WebhookSettings, create_app
from promoter.errors import ProviderNotFoundError
from promoter.providers import parse_remote, provider_for
from promoter.providers.http import take_usage
from promoter.stages import Pending
from sandbox.prefect_server import PrefectServer
from sandbox.testing import Sandbox, run_sandbox
from tasks.common import suspending
from tasks.contracts import FORGE_USAGE_EVENT, app_resource, forge_resource
from tasks.forge_usage import report_forge_usage, usage_payloads
from tasks.report import emit
from tests.deployments import samples
from tests.prometheus import Samples, parse, present, scrape, value

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

GENERIC_SECRET = "generic-hmac-secret-0123456789"
GITHUB_SECRET = "github-hmac-secret-0123456789"
SETTINGS = WebhookSettings(generic_secret=SecretStr(GENERIC_SECRET), github_secret=SecretStr(GITHUB_SECRET))
OBSERVABILITY = Path(__file__).parents[2] / "docs" / "observability.md"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def accept(event: RegistryEvent) -> None:
    """An emitter whose server takes every event."""


def generic(client: TestClient, payload: Any, secret: str = GENERIC_SECRET) -> int:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Signature": signature}
    status: int = client.post("/hooks/generic", content=body, headers=headers).status_code
    return status


def exposition(metrics: Metrics) -> Samples:
    with TestClient(create_app(SETTINGS, accept, metrics=metrics)) as client:
        return metrics_of(client)


def metrics_of(client: TestClient) -> Samples:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return parse(answer.text)


def stream_event(name: str, resource: dict[str, str], payload: dict[str, Any], at: float = 0.0) -> Event:
    """An event as the subscriber yields it: validated from the server's JSON."""
    occurred = (T0 + timedelta(seconds=at)).isoformat()
    data = {
        "event": name,
        "resource": resource,
        "payload": payload,
        "occurred": occurred,
        "id": str(uuid.uuid4()),
    }
    return Event.model_validate(data)


def app_event(name: str, app: str = "podinfo", at: float = 0.0, **payload: Any) -> Event:
    return stream_event(f"promoter.{name}", app_resource("apps", app), payload, at)


# -- deliveries -----------------------------------------------------------------------------------------


def test_signed_deliveries_move_the_counters_by_sender_and_outcome() -> None:
    with TestClient(create_app(SETTINGS, accept)) as client:
        before = metrics_of(client)
        started = value(before, "promoter_webhook_last_delivery_timestamp_seconds", sender="generic")
        assert generic(client, samples.generic(tag="1.0.0")) == 202
        assert generic(client, samples.generic(tag="1.0.0")) == 202  # the same push again
        assert generic(client, samples.generic(tag="1.0.1"), secret="wrong-secret-0123456789") == 401
        assert client.post("/hooks/no-such-sender", content=b"{}").status_code == 404
        after = metrics_of(client)

    def deliveries(samples: Samples, sender: str, outcome: str) -> float:
        return value(samples, "promoter_webhook_deliveries_total", sender=sender, outcome=outcome)

    for outcome in ("accepted", "duplicate", "unauthorized"):
        assert (deliveries(before, "generic", outcome), deliveries(after, "generic", outcome)) == (0, 1)
    assert present(before, "promoter_webhook_deliveries_total", sender="github", outcome="accepted")
    assert deliveries(after, "github", "accepted") == 0
    assert deliveries(after, "unknown", "disabled") == 1  # a made-up name does not become a label
    assert value(after, "promoter_webhook_last_delivery_timestamp_seconds", sender="generic") > started
    # github has said nothing: its clock stays at the receiver's start, for the "silent sender" alert
    assert value(after, "promoter_webhook_last_delivery_timestamp_seconds", sender="github") <= started


# -- what the run processes said --------------------------------------------------------------------------


def test_release_stage_and_approval_events_move_their_metrics() -> None:
    metrics = Metrics()
    for event in [
        app_event("release.started", tag="2.0"),
        app_event("environment.merged", tag="2.0", env="dev", seconds=12.5),
        app_event("environment.healthy", tag="2.0", env="dev", seconds=3.0),
        app_event("environment.failed", tag="2.0", env="qa", seconds=300.0),
        app_event("approval.requested", at=100, tag="2.0", env="prod"),
        app_event("approval.granted", at=4000, tag="2.0", env="prod", since=T0.timestamp() + 400),
        app_event("release.promoted", tag="2.0"),
        app_event("release.superseded", by="2.1", runs=["apps/podinfo:1.9", "apps/podinfo:2.0"]),
    ]:
        metrics.observe(event)
    found = exposition(metrics)
    releases = {
        e: value(found, "promoter_releases_total", event=e) for e in ("started", "promoted", "blocked")
    }
    assert releases == {"started": 1, "promoted": 1, "blocked": 0}
    assert value(found, "promoter_releases_total", event="superseded") == 2  # one per superseded run
    assert value(found, "promoter_stage_seconds_count", env="dev", stage="merge") == 1
    assert value(found, "promoter_stage_seconds_sum", env="dev", stage="merge") == 12.5
    assert value(found, "promoter_stage_seconds_bucket", env="dev", stage="merge", le="15.0") == 1
    assert value(found, "promoter_stage_seconds_bucket", env="dev", stage="merge", le="5.0") == 0
    assert value(found, "promoter_stage_seconds_sum", env="dev", stage="flux") == 3.0
    assert value(found, "promoter_stage_seconds_sum", env="qa", stage="flux") == 300.0
    # from the payload's `since` (the gate's start), not from when the receiver saw the request
    assert value(found, "promoter_approval_wait_seconds_sum", env="prod", decision="granted") == 3600
    assert value(found, "promoter_events_observed_total") == 8


def test_an_approval_without_since_is_timed_from_its_request() -> None:
    metrics = Metrics()
    metrics.observe(app_event("approval.requested", at=0, tag="3.0", env="prod"))
    metrics.observe(app_event("approval.timed-out", at=7200, tag="3.0", env="prod", reason="deadline"))
    metrics.observe(app_event("approval.rejected", at=9000, tag="4.0", env="prod"))  # never requested
    found = exposition(metrics)
    assert value(found, "promoter_approval_wait_seconds_sum", env="prod", decision="timed-out") == 7200
    assert value(found, "promoter_approval_wait_seconds_count", env="prod", decision="rejected") == 0


def test_a_blocked_release_is_a_gauge_until_the_apps_next_release_starts() -> None:
    metrics = Metrics()
    metrics.observe(app_event("release.blocked", at=10, tag="1.0", env="qa", reason="health check failed"))
    metrics.observe(app_event("release.blocked", app="cart", at=20, tag="7", env="prod"))
    blocked = exposition(metrics)
    since = "promoter_release_blocked_since_timestamp_seconds"
    assert value(blocked, since, app="apps/podinfo", env="qa") == T0.timestamp() + 10
    assert value(blocked, "promoter_releases_total", event="blocked") == 2
    metrics.observe(app_event("release.started", at=30, tag="1.1"))
    after = exposition(metrics)
    assert not present(after, since, app="apps/podinfo")
    assert value(after, since, app="apps/cart", env="prod") == T0.timestamp() + 20


def test_a_replayed_event_counts_once() -> None:
    """The stream re-sends the minute before each reconnection."""
    metrics = Metrics()
    event = app_event("release.started", tag="5.0")
    metrics.observe(event)
    metrics.observe(event)
    assert value(exposition(metrics), "promoter_releases_total", event="started") == 1


def test_labels_read_from_events_stay_bounded() -> None:
    metrics = Metrics()
    for index in range(MAX_ENVS + 5):
        metrics.observe(app_event("environment.merged", env=f"env-{index}", seconds=1.0))
    metrics.observe(app_event("environment.merged", env="dev", seconds=float("nan")))
    for provider, payload in [
        ("gitlab", {"requests": {"200": 1}}),  # not a provider of ours
        ("github", {"requests": {"<script>": 1, "200": -4, "201": True, "204": 2}}),
    ]:
        resource = forge_resource(provider)
        metrics.observe(stream_event(FORGE_USAGE_EVENT, resource, payload))
    found = exposition(metrics)
    envs = {labels["env"] for name, labels, _ in found if name == "promoter_stage_seconds_count"}
    assert len(envs) == MAX_ENVS + 1 and "other" in envs and "dev" not in envs
    assert value(found, "promoter_stage_seconds_count", env="other") == 5
    statuses = {labels["status"] for name, labels, _ in found if name == "promoter_forge_requests_total"}
    assert statuses == {"204"}
    assert not present(found, "promoter_forge_requests_total", provider="gitlab")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
NAMES = st.sampled_from(
    [f"promoter.{name}" for name in ("release.blocked", "release.superseded", "environment.merged")]
    + [f"promoter.approval.{name}" for name in ("requested", "granted", "timed-out")]
    + [FORGE_USAGE_EVENT, "promoter.unheard-of"]
)
KEYS = st.sampled_from(["env", "seconds", "since", "runs", "tag", "requests", "rate_limit", "other"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(NAMES, st.sampled_from(["github", "azdo", "x"]), st.dictionaries(KEYS, JSON)), max_size=8
    )
)
def test_no_payload_breaks_the_metrics(events: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Events are outside input to the receiver: any payload is counted or skipped, never an error."""
    metrics = Metrics()
    for name, provider, payload in events:
        resource = forge_resource(provider) if name == FORGE_USAGE_EVENT else app_resource("apps", "fuzz")
        metrics.observe(stream_event(name, resource, payload))
    parse_registry(metrics)  # still valid text format


# -- forge usage from the run processes ------------------------------------------------------------------


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with run_sandbox(tmp_path_factory.mktemp("sandbox"), seed_demo=True, rate_limit=1000) as running:
        yield running


def remote_of(forge: Sandbox, kind: str) -> str:
    repo = (
        forge.forge.repo("github", "acme", "gitops")
        if kind == "github"
        else forge.forge.repo("azure", "acme", "gitops", "gitops")
    )
    return forge.clone_url(repo)


@pytest.mark.parametrize(("kind", "provider"), [("github", "github"), ("azure", "azdo")])
def test_a_real_forge_call_is_tallied_by_status_and_reaches_the_counters(
    forge: Sandbox, kind: str, provider: str
) -> None:
    take_usage()  # what earlier tests of this process sent
    remote = parse_remote(remote_of(forge, kind), "github" if kind == "github" else None)
    with closing(provider_for(remote, forge.token, timeout=5.0)) as client:
        client.find_pull_request("no-such-branch", "main")
        with pytest.raises(ProviderNotFoundError):
            client.get_pull_request(9999)
        budget = client.budget
    usage = take_usage()
    assert usage.requests.get((provider, "404")) == 1
    assert usage.requests.get((provider, "200"), 0) >= 1
    assert not take_usage(), "take_usage starts counting afresh"
    payloads = usage_payloads(usage)
    assert set(payloads) == {provider}
    assert forge.token not in json.dumps(payloads)
    metrics = Metrics()
    metrics.observe(stream_event(FORGE_USAGE_EVENT, forge_resource(provider), payloads[provider]))
    found = exposition(metrics)
    assert value(found, "promoter_forge_requests_total", provider=provider, status="404") == 1
    if kind == "github":  # the sandbox reports GitHub's x-ratelimit-* headers
        assert budget.limit == 1000 and budget.remaining is not None
        assert value(found, "promoter_forge_rate_limit_limit", provider="github") == 1000
        assert value(found, "promoter_forge_rate_limit_remaining", provider="github") == budget.remaining


def test_outside_a_run_the_usage_is_kept_for_the_next_report(
    forge: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's `.fn` on its own has no server to tell; Prefect would start a throw-away one."""
    sent: list[Any] = []
    monkeypatch.setattr("tasks.forge_usage.emit_event", lambda **event: sent.append(event))
    take_usage()
    with closing(provider_for(parse_remote(remote_of(forge, "github"), "github"), forge.token)) as client:
        client.find_pull_request("no-such-branch", "main")
    report_forge_usage()
    assert sent == []
    assert take_usage().requests.get(("github", "200"), 0) >= 1


@flow(name="metrics-window")
def window(remote_url: str, token: str) -> None:
    """A wait's window that ends without a verdict: it polled the forge, then the run suspends."""
    with closing(provider_for(parse_remote(remote_url, "github"), token)) as client:
        client.find_pull_request("no-such-branch", "main")
    suspending(Pending(since=time.time(), deadline=time.time() + 60, what="a test"))


def test_a_window_that_suspends_reports_its_forge_requests(
    prefect_api: PrefectServer, forge: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most requests are polls, and a suspended run's process ends: they are reported before it does."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr("tasks.forge_usage.emit_event", lambda **event: sent.append(event))
    take_usage()
    window(remote_of(forge, "github"), forge.token)
    assert [(e["event"], e["resource"]["prefect.resource.id"]) for e in sent] == [
        (FORGE_USAGE_EVENT, "forge.api.github")
    ]
    assert sent[0]["payload"]["requests"]["200"] >= 1
    assert sent[0]["payload"]["rate_limit"]["limit"] == 1000


# -- the event stream --------------------------------------------------------------------------------------


def test_the_follower_reconnects_after_the_stream_fails(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    connections: list[int] = []

    @asynccontextmanager
    async def stream() -> AsyncIterator[AsyncIterator[Event]]:
        connections.append(len(connections))
        if len(connections) <= 2:  # one outage: two attempts in a row fail
            raise OSError("connection refused")

        async def events() -> AsyncIterator[Event]:
            yield app_event("release.started", tag=f"r{len(connections)}")
            if len(connections) == 3:  # the second outage
                raise ConnectionError("the server went away")
            await asyncio.Event().wait()  # connected, quiet

        yield events()

    async def run() -> float:
        follower = asyncio.create_task(follow_events(metrics, stream, retry=(0.01, 0.05)))
        deadline = time.monotonic() + 10
        while len(connections) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        connected = value(parse_registry(metrics), "promoter_event_stream_connected")
        follower.cancel()
        with pytest.raises(asyncio.CancelledError):
            await follower
        return connected

    with caplog.at_level(logging.INFO, logger="promoter.metrics"):
        connected = asyncio.run(run())
    assert len(connections) == 4 and connected == 1
    assert value(parse_registry(metrics), "promoter_releases_total", event="started") == 2
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2, warned  # once per outage, not per attempt
    assert "OSError: connection refused" in warned[0] and "ConnectionError: the server went away" in warned[1]


def parse_registry(metrics: Metrics) -> Samples:
    from prometheus_client.exposition import generate_latest

    return parse(generate_latest(metrics.registry).decode())


def test_without_a_prefect_api_the_receiver_says_it_counts_deliveries_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        temporary_settings(updates={PREFECT_API_URL: None}),
        caplog.at_level(logging.INFO, logger="promoter.metrics"),
        TestClient(create_app(SETTINGS, accept, follow_events=True)) as client,
    ):
        assert client.get("/metrics").status_code == 200
    lines = [r.getMessage() for r in caplog.records]
    assert any("PREFECT_API_URL is not set" in line for line in lines), lines


@flow(name="metrics-probe")
def probe(remote_url: str, token: str, env: str) -> None:
    """A run that does what a stage task does: ask the forge, then say what happened."""
    with (
        closing(provider_for(parse_remote(remote_url, "github"), token)) as client,
        suppress(ProviderNotFoundError),
    ):
        client.get_pull_request(9999)  # a 404
    emit("environment.merged", "apps", "metrics-probe", {"tag": "1.0", "env": env, "seconds": 4.0})


@pytest.mark.timeout(240)
def test_promoter_webhook_follows_the_servers_event_stream(
    prefect_api: PrefectServer, forge: Sandbox, tmp_path: Path
) -> None:
    """The real thing: `promoter webhook` in its own process, a flow run in this one emitting through
    the Prefect server; the receiver's /metrics moves."""
    env = f"probe-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "webhook.log"
    code = "from deployments.webhook_command import run, add_parser; import argparse, sys\n" + (
        "p = argparse.ArgumentParser(); add_parser(p.add_subparsers()); a = p.parse_args(sys.argv[1:])\n"
        "sys.exit(a.handler(a))\n"
    )
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", code, "webhook", "--port", "0"],
            env={**os.environ, **prefect_api.environment, "PROMOTER_WEBHOOK_GENERIC_SECRET": GENERIC_SECRET},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        url = serving_url(process)
        wait_until(lambda: value(scrape(url), "promoter_event_stream_connected") == 1, log)
        before = scrape(url)
        probe(remote_of(forge, "github"), forge.token, env)
        wait_until(
            lambda: value(scrape(url), "promoter_stage_seconds_count", env=env, stage="merge") == 1, log
        )
        wait_until(
            lambda: (
                value(scrape(url), "promoter_forge_requests_total", provider="github", status="404")
                > value(before, "promoter_forge_requests_total", provider="github", status="404")
            ),
            log,
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.stdout is not None
    said = process.stdout.read() + log.read_text()  # its own lines on stdout, Prefect's on stderr
    assert "follows the Prefect event stream in the background" in said, said
    assert GENERIC_SECRET not in said and forge.token not in said


def serving_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("promoter webhook serving "):
            return line.split()[3]
    raise AssertionError(f"promoter webhook exited (code {process.wait()}) before serving")


def wait_until(condition: Any, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, (
            f"not within {timeout:.0f} s; the receiver said:\n{log.read_text()}"
        )
        time.sleep(0.25)


# -- the documentation ---------------------------------------------------------------------------------------


def test_the_documented_alerts_are_rules_over_metrics_that_exist() -> None:
    """No promtool here: the rules load as YAML in Prometheus' shape, and name only metrics we serve."""
    blocks = re.findall(r"```yaml\n(.*?)```", OBSERVABILITY.read_text(), re.DOTALL)
    documents = [yaml.safe_load(block) for block in blocks]
    (scrape_config,) = [d for d in documents if "scrape_configs" in d]
    assert scrape_config["scrape_configs"][0]["metrics_path"] == "/metrics"
    (rules,) = [d for d in documents if "groups" in d]
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert [rule["alert"] for rule in alerts] == [
        "PromoterReleaseBlocked",
        "PromoterForgeRateLimitLow",
        "PromoterWebhookSenderSilent",
    ]
    served = served_names(Metrics())
    for rule in alerts:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert re.fullmatch(r"\d+[smhd]", rule.get("for", "0s"))
        used = set(re.findall(r"\bpromoter_[a-z_]+", rule["expr"]))
        assert used and used <= served, used - served
    documented = set(re.findall(r"^\| `(promoter_[a-z_]+)`", OBSERVABILITY.read_text(), re.MULTILINE))
    assert documented == {
        family.name + ("_total" if family.type == "counter" else "")
        for family in Metrics().registry.collect()
    }


def served_names(metrics: Metrics) -> set[str]:
    names: set[str] = set()
    for family in metrics.registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",),
        }[family.type]
        names |= {family.name + suffix for suffix in suffixes}
    return names
