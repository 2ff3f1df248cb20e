"""The receiver over HTTP: authenticity per sender, the event contract, dedupe, limits and counters."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr
from starlette.exceptions import StarletteDeprecationWarning

from deployments.registries import Sender
from deployments.webhook import (
    EVENT,
    SENDERS,
    EmitError,
    GoogleOIDC,
    PrefectEmitter,
    RecentDeliveries,
    RegistryEvent,
    StaticHeader,
    WebhookSettings,
    create_app,
    signature_matches,
)
from promoter.errors import ConfigError
from sandbox.prefect_server import free_port
from tests.deployments import captured, samples
from tests.deployments.google_oidc import AUDIENCE, SERVICE_ACCOUNT, other_key, serve_google_keys
from tests.deployments.samples import DELIVERY, DIGEST, OTHER_DIGEST

with warnings.catch_warnings():
    # Starlette 1.x would rather drive its TestClient with httpx2; the httpx the project ships works the same.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

GITHUB_SECRET = "github-hmac-secret-0123456789"
GENERIC_SECRET = "generic-hmac-secret-0123456789"
NEXUS_SECRET = "nexus-hmac-secret-0123456789"
HARBOR_TOKEN = "Bearer harbor-token-0123456789"
PATH_TOKEN = "path-token-0123456789abcdef"
HEADER_VALUE = "static-header-value-0123456789"
ECR_KEY = "ecr-api-key-value-0123456789"
SECRETS = (GITHUB_SECRET, GENERIC_SECRET, NEXUS_SECRET, HARBOR_TOKEN, PATH_TOKEN, HEADER_VALUE, ECR_KEY)
NEXUS_HOST = "nexus.example.com:8082"
KEYS = serve_google_keys()
SETTINGS = WebhookSettings(
    github_secret=SecretStr(GITHUB_SECRET),
    generic_secret=SecretStr(GENERIC_SECRET),
    nexus_secret=SecretStr(NEXUS_SECRET),
    harbor_token=SecretStr(HARBOR_TOKEN),
    path_token=SecretStr(PATH_TOKEN),
    header=StaticHeader(name="X-Registry-Token", value=SecretStr(HEADER_VALUE)),
    ecr_api_key=StaticHeader(name="X-Api-Key", value=SecretStr(ECR_KEY)),
    gar_oidc=GoogleOIDC(audience=AUDIENCE, service_account=SERVICE_ACCOUNT, jwks_url=KEYS.url),
    nexus_registries={"docker-hosted": NEXUS_HOST},
)


class Recorder:
    """An emitter that keeps what it was given, and can fail the first `failures` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.events: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.ids: list[str] = []
        self.failures = failures

    def __call__(self, event: RegistryEvent) -> None:
        if self.failures:
            self.failures -= 1
            raise EmitError("the Prefect API answered HTTP 503 to POST /events")
        self.events.append((event.event, event.resource, event.payload))
        self.ids.append(str(event.id))

    @property
    def images(self) -> list[str]:
        return [f"{r['promoter.image']}:{r['promoter.tag']}" for _, r, _ in self.events]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(recorder: Recorder) -> Iterator[TestClient]:
    with TestClient(create_app(SETTINGS, recorder)) as test_client:
        yield test_client


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_nexus(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def authentic(sender: Sender, body: bytes) -> tuple[str, dict[str, str]]:
    """The URL path and headers a correctly configured registry would use."""
    if sender == "github":
        return "/hooks/github", {
            "X-GitHub-Event": "registry_package",
            "X-GitHub-Delivery": DELIVERY,
            "X-Hub-Signature-256": sign(GITHUB_SECRET, body),
        }
    if sender == "generic":
        return "/hooks/generic", {"X-Signature": sign(GENERIC_SECRET, body)}
    if sender == "nexus":
        return "/hooks/nexus", {
            **captured.NEXUS_COMPONENT_HEADERS,
            "X-Nexus-Webhook-Signature": sign_nexus(NEXUS_SECRET, body),
        }
    if sender == "harbor":
        return "/hooks/harbor", {"Authorization": HARBOR_TOKEN}
    if sender in ("acr", "distribution", "cdevents"):
        return f"/hooks/{sender}", {"X-Registry-Token": HEADER_VALUE}
    if sender == "ecr":
        return "/hooks/ecr", {"X-Api-Key": ECR_KEY}
    if sender == "gar":
        return "/hooks/gar", {"Authorization": KEYS.bearer()}
    return f"/hooks/{sender}/{PATH_TOKEN}", {}


def post(client: TestClient, sender: Sender, payload: Any, **extra: str) -> Any:
    body = json.dumps(payload).encode()
    path, headers = authentic(sender, body)
    return client.post(path, content=body, headers={"Content-Type": "application/json", **headers, **extra})


# sender: (payload, repository, tag, digest, delivery id)
# Who pushed, as each sample's sender says it (the others do not say).
PUSHED_BY: dict[Sender, str] = {
    "dockerhub": "acmebuild",
    "github": "acme",
    "harbor": "robot$acme+ci",
    "distribution": "ci",
    "nexus": "ci",
}
RELEASE: dict[Sender, tuple[Any, str, str, str, str]] = {
    "dockerhub": (samples.dockerhub(), "acme/podinfo", "1.2.3", "", ""),
    "github": (samples.github_package(), "ghcr.io/acme/podinfo", "1.2.3", DIGEST, DELIVERY),
    "acr": (
        samples.acr(),
        "acmeregistry.azurecr.io/acme/podinfo",
        "1.2.3",
        DIGEST,
        "cb8c3971-9adc-488b-bdd8-43cbb4974ff5",
    ),
    "harbor": (samples.harbor(), "harbor.example.com/acme/podinfo", "1.2.3", DIGEST, ""),
    "quay": (samples.quay(), "quay.io/acme/podinfo", "1.2.3", "", ""),
    "distribution": (
        samples.distribution(),
        "registry.example.com:5000/acme/podinfo",
        "1.2.3",
        DIGEST,
        "asdf-asdf-asdf-asdf-0",
    ),
    "generic": (samples.generic(), "registry.example.com/acme/podinfo", "1.2.3", DIGEST, ""),
    "gar": (
        captured.pubsub_push(captured.GAR_MESSAGE),
        captured.GAR_REPOSITORY,
        captured.GAR_TAG,
        captured.GAR_DIGEST,
        "2070443601311540",
    ),
    "ecr": (
        captured.ECR_PUSH,
        captured.ECR_REPOSITORY,
        "latest",
        captured.ECR_DIGEST,
        captured.ECR_PUSH["id"],
    ),
    "cdevents": (
        captured.HARBOR_CDEVENT,
        "harbor.dev/library/busybox",
        "v1.0",
        captured.HARBOR_CDEVENT_DIGEST,
        "2d47734c-83e2-41dc-bcbf-23bd2a3734a2",
    ),
    "nexus": (
        captured.NEXUS_DOCKER_COMPONENT,
        f"{NEXUS_HOST}/acme/podinfo",
        "1.2.3",
        "",
        captured.NEXUS_DOCUMENTED_HEADERS["X-Nexus-Webhook-Delivery"],
    ),
}


@pytest.mark.parametrize("sender", SENDERS)
def test_an_authentic_push_emits_the_contract_event(
    client: TestClient, recorder: Recorder, sender: Sender
) -> None:
    payload, repository, tag, digest, delivery = RELEASE[sender]
    response = post(client, sender, payload)
    assert (response.status_code, response.json()) == (202, {"emitted": 1, "ignored": []})
    ((event, resource, body),) = recorder.events
    assert event == EVENT == "registry.image.pushed"
    assert resource == {
        "prefect.resource.id": f"registry.image.{repository}",
        "promoter.image": repository,
        "promoter.tag": tag,
        "promoter.digest": digest,
        "promoter.pushed-by": PUSHED_BY.get(sender, ""),
    }
    assert body == {"sender": sender, "received_at": body["received_at"], "delivery": delivery}
    assert datetime.fromisoformat(body["received_at"]).tzinfo is not None
    assert client.get("/stats").json()["accepted"] == 1


def test_githubs_published_hmac_test_vector_verifies() -> None:
    secret = SecretStr("It's a Secret to Everybody")
    vector = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_matches(secret, b"Hello, World!", vector)
    assert not signature_matches(secret, b"Hello, World?", vector)
    assert not signature_matches(secret, b"Hello, World!", vector[:-1] + "f")
    assert not signature_matches(secret, b"Hello, World!", None)


def test_github_vector_passes_authentication_then_fails_as_not_json(recorder: Recorder) -> None:
    settings = WebhookSettings(github_secret=SecretStr("It's a Secret to Everybody"))
    vector = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    with TestClient(create_app(settings, recorder)) as client:
        ok = client.post(
            "/hooks/github",
            content=b"Hello, World!",
            headers={"X-Hub-Signature-256": vector, "X-GitHub-Event": "registry_package"},
        )
        forged = client.post(
            "/hooks/github", content=b"Hello, World?", headers={"X-Hub-Signature-256": vector}
        )
    assert (ok.status_code, ok.json()) == (400, {"error": "the body is not valid JSON"})
    assert forged.status_code == 401


def _forgeries(sender: Sender, body: bytes) -> list[tuple[str, str, dict[str, str]]]:
    """(name, path, headers) of requests a forger could send, each lacking or faking the credential."""
    path, headers = authentic(sender, body)
    if sender in ("github", "generic"):
        header = "X-Hub-Signature-256" if sender == "github" else "X-Signature"
        unsigned = {k: v for k, v in headers.items() if k != header}
        other = GENERIC_SECRET if sender == "github" else GITHUB_SECRET
        return [
            ("unsigned", path, unsigned),
            ("signed with another key", path, {**unsigned, header: sign(other, body)}),
            ("sha1 form", path, {**unsigned, header: "sha1=" + hashlib.sha1(body).hexdigest()}),  # noqa: S324
        ]
    if sender == "nexus":
        unsigned = {k: v for k, v in headers.items() if k != "X-Nexus-Webhook-Signature"}
        return [
            ("unsigned", path, unsigned),
            (
                "signed with another key",
                path,
                {**unsigned, "X-Nexus-Webhook-Signature": sign_nexus(GITHUB_SECRET, body)},
            ),
            ("sha256 form", path, {**unsigned, "X-Nexus-Webhook-Signature": sign(NEXUS_SECRET, body)}),
        ]
    if sender == "gar":
        forged = KEYS.token()
        foreign = KEYS.key
        KEYS.key = other_key()
        try:
            wrong_key = KEYS.bearer()
        finally:
            KEYS.key = foreign
        return [
            ("no token", path, {}),
            ("not a bearer token", path, {"Authorization": forged}),
            ("another audience", path, {"Authorization": KEYS.bearer(aud="https://attacker.example/hook")}),
            ("another account", path, {"Authorization": KEYS.bearer(email="someone@gmail.com")}),
            ("unverified email", path, {"Authorization": KEYS.bearer(email_verified=False)}),
            ("another issuer", path, {"Authorization": KEYS.bearer(iss="https://issuer.example")}),
            ("expired", path, {"Authorization": KEYS.bearer(iat=1_000_000, exp=1_000_600)}),
            ("signed by another key", path, {"Authorization": wrong_key}),
            (
                "alg none",
                path,
                {"Authorization": "Bearer " + forged.split(".")[0] + "." + forged.split(".")[1] + "."},
            ),
        ]
    if sender == "ecr":
        return [("no key", path, {}), ("wrong key", path, {"X-Api-Key": ECR_KEY[:-1]})]
    if sender == "harbor":
        return [
            ("no authorization", path, {}),
            ("token without its scheme", path, {"Authorization": HARBOR_TOKEN.removeprefix("Bearer ")}),
        ]
    if sender in ("acr", "distribution", "cdevents"):
        return [("no header", path, {}), ("wrong header", path, {"X-Registry-Token": HEADER_VALUE + "x"})]
    return [
        ("no token", f"/hooks/{sender}", {}),
        ("wrong token", f"/hooks/{sender}/{PATH_TOKEN[:-1]}", {}),
        ("token prefix", f"/hooks/{sender}/{PATH_TOKEN[:8]}", {}),
    ]


FORGERIES = [
    (sender, name, path, headers)
    for sender in SENDERS
    for name, path, headers in _forgeries(sender, json.dumps(RELEASE[sender][0]).encode())
]


@pytest.mark.parametrize(
    ("sender", "name", "path", "headers"), FORGERIES, ids=[f"{f[0]}: {f[1]}" for f in FORGERIES]
)
def test_forged_or_unsigned_deliveries_are_401_emit_nothing_and_are_counted(
    client: TestClient, recorder: Recorder, sender: Sender, name: str, path: str, headers: dict[str, str]
) -> None:
    response = client.post(path, content=json.dumps(RELEASE[sender][0]).encode(), headers=headers)
    assert (response.status_code, response.json()) == (401, {"error": "unauthorized"})
    assert recorder.events == []
    assert client.get("/stats").json()["unauthorized"] == 1


@pytest.mark.parametrize("sender", ["github", "generic"])
def test_a_signature_header_that_is_not_ascii_is_401_not_a_crash(client: TestClient, sender: Sender) -> None:
    header = b"X-Hub-Signature-256" if sender == "github" else b"X-Signature"
    response = client.post(
        f"/hooks/{sender}", content=b"{}", headers=[(header, "sha256=\u00e9\u00ff".encode("latin-1"))]
    )
    assert response.status_code == 401
    assert not signature_matches(SecretStr(GITHUB_SECRET), b"{}", "sha256=\ud800\u00e9")


def test_a_body_altered_after_signing_is_rejected(client: TestClient, recorder: Recorder) -> None:
    body = json.dumps(samples.github_package()).encode()
    _, headers = authentic("github", body)
    tampered = body.replace(b"1.2.3", b"6.6.6")
    assert client.post("/hooks/github", content=tampered, headers=headers).status_code == 401
    assert recorder.events == []


def test_senders_without_a_configured_secret_are_disabled_not_open(recorder: Recorder) -> None:
    settings = WebhookSettings(github_secret=SecretStr(GITHUB_SECRET))
    with TestClient(create_app(settings, recorder)) as client:
        for path in (
            "/hooks/dockerhub",
            "/hooks/dockerhub/anything",
            "/hooks/generic",
            "/hooks/harbor",
            "/hooks/acr",
        ):
            assert client.post(path, content=b"{}").status_code == 404, path
        assert client.post("/hooks/gitlab", content=b"{}").status_code == 404
        assert client.post(f"/hooks/github/{GITHUB_SECRET}", content=b"{}").status_code == 404
        assert client.get("/stats").json()["disabled"] == 7
    assert recorder.events == []


def test_acr_and_distribution_fall_back_to_the_path_token_without_a_header(recorder: Recorder) -> None:
    settings = WebhookSettings(path_token=SecretStr(PATH_TOKEN))
    assert settings.enabled() == {
        sender: "path" for sender in ("dockerhub", "acr", "quay", "distribution", "gar", "ecr", "cdevents")
    }
    with TestClient(create_app(settings, recorder)) as client:
        assert client.post("/hooks/acr", content=json.dumps(samples.acr()).encode()).status_code == 401
        response = client.post(f"/hooks/acr/{PATH_TOKEN}", content=json.dumps(samples.acr()).encode())
    assert response.json() == {"emitted": 1, "ignored": []}


def test_a_replayed_github_delivery_is_emitted_once(client: TestClient, recorder: Recorder) -> None:
    first = post(client, "github", samples.github_package())
    replay = post(client, "github", samples.github_package())
    assert first.json() == {"emitted": 1, "ignored": []}
    assert replay.status_code == 202
    assert replay.json() == {
        "emitted": 0,
        "ignored": [f"ghcr.io/acme/podinfo:1.2.3@{DIGEST}: duplicate delivery"],
    }
    assert len(recorder.events) == 1
    stats = client.get("/stats").json()
    assert (stats["duplicate"], stats["accepted"]) == (1, 1)


def test_one_delivery_carrying_two_artifacts_emits_both_and_its_retry_neither(
    client: TestClient, recorder: Recorder
) -> None:
    """A Harbor CloudEvent has one id for all its resources: the delivery key is per artifact."""
    event = {
        **samples.harbor_cloudevent(),
        "data": samples.harbor(
            resources=[samples.harbor_resource("1.2.3"), samples.harbor_resource("latest", OTHER_DIGEST)]
        )["event_data"],
    }
    assert post(client, "harbor", event).json() == {"emitted": 2, "ignored": []}
    assert post(client, "harbor", event).json()["emitted"] == 0
    assert recorder.images == [
        "harbor.example.com/acme/podinfo:1.2.3",
        "harbor.example.com/acme/podinfo:latest",
    ]


def test_docker_hub_retries_without_digest_are_deduplicated_on_repository_and_tag(
    client: TestClient, recorder: Recorder
) -> None:
    for _ in range(3):
        post(client, "dockerhub", samples.dockerhub())
    post(client, "dockerhub", samples.dockerhub(tag="1.2.4"))
    assert recorder.images == ["acme/podinfo:1.2.3", "acme/podinfo:1.2.4"]
    assert client.get("/stats").json()["duplicate"] == 2


def test_one_digest_under_two_tags_is_two_releases(client: TestClient, recorder: Recorder) -> None:
    post(client, "harbor", samples.harbor(resources=[samples.harbor_resource("1.2.3", DIGEST)]))
    post(client, "harbor", samples.harbor(resources=[samples.harbor_resource("latest", DIGEST)]))
    assert recorder.images == [
        "harbor.example.com/acme/podinfo:1.2.3",
        "harbor.example.com/acme/podinfo:latest",
    ]


def test_a_multi_arch_push_to_ghcr_emits_once_for_the_tagged_index(
    client: TestClient, recorder: Recorder
) -> None:
    """GHCR sends a delivery per platform manifest (untagged) and one for the tagged index."""
    for index, (tag, digest) in enumerate(
        [("", OTHER_DIGEST), ("", "sha256:" + "1" * 64), ("1.2.3", DIGEST)]
    ):
        post(
            client,
            "github",
            samples.github_package(tag=tag, digest=digest),
            **{"X-GitHub-Delivery": f"d-{index}"},
        )
    assert recorder.images == ["ghcr.io/acme/podinfo:1.2.3"]
    assert client.get("/stats").json()["ignored"] == 2


def test_recent_deliveries_expire_after_the_ttl_and_stay_bounded() -> None:
    now = [0.0]
    recent = RecentDeliveries(max_entries=2, ttl=60, clock=lambda: now[0])
    assert recent.claim(["a"])
    assert not recent.claim(["a"])
    assert not recent.claim(["b", "a"])
    now[0] = 61
    assert recent.claim(["a"])
    assert recent.claim(["b"]) and recent.claim(["c"])
    assert recent.claim(["a"]), "the oldest key was evicted to keep two entries"


def test_an_emit_failure_answers_503_and_the_retry_is_not_taken_for_a_duplicate() -> None:
    recorder = Recorder(failures=1)
    with TestClient(create_app(SETTINGS, recorder)) as client:
        failed = post(client, "github", samples.github_package())
        retried = post(client, "github", samples.github_package())
        stats = client.get("/stats").json()
    assert failed.status_code == 503
    assert "retry" in failed.json()["error"]
    assert retried.json() == {"emitted": 1, "ignored": []}
    assert (stats["failed"], stats["accepted"], stats["duplicate"]) == (1, 1, 0)


def test_oversized_bodies_are_413_whether_declared_or_streamed(recorder: Recorder) -> None:
    settings = SETTINGS.model_copy(update={"max_body_bytes": 1024})
    body = json.dumps({**samples.generic(), "padding": "x" * 2048}).encode()
    with TestClient(create_app(settings, recorder)) as client:
        declared = client.post(
            "/hooks/generic", content=body, headers={"X-Signature": sign(GENERIC_SECRET, body)}
        )
        streamed = client.post(
            "/hooks/generic",
            content=iter([body[:1000], body[1000:]]),
            headers={"X-Signature": sign(GENERIC_SECRET, body)},
        )
        assert client.get("/stats").json()["invalid"] == 2
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert recorder.events == []


def test_the_default_limit_is_one_mebibyte(client: TestClient) -> None:
    body = b" " * (1 << 20) + b"{}"
    assert (
        client.post(
            "/hooks/generic", content=body, headers={"X-Signature": sign(GENERIC_SECRET, body)}
        ).status_code
        == 413
    )


@pytest.mark.parametrize(
    "body",
    [b"not json", b"\xff\xfe", b"[" * 50_000, json.dumps({"repository": "Acme/Up", "tag": "1"}).encode()],
    ids=["text", "bad utf-8", "deep nesting", "bad repository"],
)
def test_malformed_bodies_are_400_with_one_line_and_no_trace(
    client: TestClient, recorder: Recorder, body: bytes
) -> None:
    response = client.post(
        "/hooks/generic", content=body, headers={"X-Signature": sign(GENERIC_SECRET, body)}
    )
    assert response.status_code == 400
    assert list(response.json()) == ["error"]
    assert "\n" not in response.json()["error"] and "Traceback" not in response.text
    assert recorder.events == []
    assert client.get("/stats").json()["invalid"] == 1


def test_pings_and_non_releases_are_accepted_and_ignored(client: TestClient, recorder: Recorder) -> None:
    ping = post(client, "github", samples.github_ping(), **{"X-GitHub-Event": "ping"})
    proxy = post(client, "harbor", samples.harbor(operator="harbor#proxy-cache-service"))
    envelope = post(client, "distribution", samples.distribution(samples.distribution_event(action="pull")))
    assert ping.json() == {"emitted": 0, "ignored": ["github: ping"]}
    assert proxy.json() == {"emitted": 0, "ignored": ["harbor: proxy-cache pull, not a push"]}
    assert envelope.json() == {"emitted": 0, "ignored": ["distribution: action 'pull' is not a push"]}
    assert recorder.events == []
    assert client.get("/stats").json()["ignored"] == 3


def test_images_no_app_uses_are_ignored_with_202(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    known: Callable[[str], bool] = lambda repository: repository == "ghcr.io/acme/podinfo"  # noqa: E731
    with (
        caplog.at_level(logging.INFO, logger="promoter.webhook"),
        TestClient(create_app(SETTINGS, recorder, known)) as client,
    ):
        unknown = post(client, "quay", samples.quay())
        wanted = post(client, "github", samples.github_package())
        stats = client.get("/stats").json()
    assert (unknown.status_code, unknown.json()) == (
        202,
        {"emitted": 0, "ignored": ["quay.io/acme/podinfo: not an image any app uses"]},
    )
    assert wanted.json()["emitted"] == 1
    assert recorder.images == ["ghcr.io/acme/podinfo:1.2.3"]
    assert (stats["ignored"], stats["accepted"]) == (1, 1)
    assert "quay.io/acme/podinfo: not an image any app uses" in caplog.text


def test_health_and_stats(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/stats").json() == dict.fromkeys(
        ["accepted", "duplicate", "ignored", "unauthorized", "invalid", "disabled", "failed"], 0
    )


def test_secrets_never_reach_logs_responses_or_reprs(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    texts: list[str] = [repr(SETTINGS), str(SETTINGS), SETTINGS.model_dump_json()]
    with caplog.at_level(logging.DEBUG):
        for sender in SENDERS:
            payload = RELEASE[sender][0]
            texts += [post(client, sender, payload).text, post(client, sender, payload).text]
            for _, path, headers in _forgeries(sender, json.dumps(payload).encode()):
                texts.append(client.post(path, content=b"{}", headers=headers).text)
            texts.append(post(client, sender, "not an object").text)
    # httpx's own records are the test client's requests, whose URLs hold the path token by design.
    texts += [record.getMessage() for record in caplog.records if record.name != "httpx"]
    texts.append(client.get("/stats").text)
    for secret in SECRETS:
        assert not any(secret in text for text in texts)


def test_settings_come_from_the_environment() -> None:
    settings = WebhookSettings.from_env(
        {
            "PROMOTER_WEBHOOK_GITHUB_SECRET": GITHUB_SECRET,
            "PROMOTER_WEBHOOK_GENERIC_SECRET": "",
            "PROMOTER_WEBHOOK_HARBOR_TOKEN": HARBOR_TOKEN,
            "PROMOTER_WEBHOOK_PATH_TOKEN": PATH_TOKEN,
            "PROMOTER_WEBHOOK_HEADER": f"X-Registry-Token:  {HEADER_VALUE} ",
        }
    )
    assert settings.enabled() == {
        "dockerhub": "path",
        "github": "hmac",
        "acr": "header",
        "harbor": "token",
        "quay": "path",
        "distribution": "header",
        "gar": "path",
        "ecr": "path",
        "cdevents": "header",
    }
    assert settings.header is not None and settings.header.name == "X-Registry-Token"
    assert settings.header.value.get_secret_value() == HEADER_VALUE
    assert WebhookSettings.from_env({}).enabled() == {}


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("PATH_TOKEN", "s3cr3t-short", "s3cr3t"),
        ("GITHUB_SECRET", "s3cr3t-short", "s3cr3t"),
        ("HEADER", "s3cr3t without colon", "s3cr3t"),
        ("HEADER", "Bad Name: s3cr3t-value-0123456789", "s3cr3t"),
        ("HEADER", "X-Token:", "X-Token"),
    ],
)
def test_unusable_settings_are_refused_without_echoing_the_secret(name: str, value: str, secret: str) -> None:
    with pytest.raises(ConfigError) as caught:
        WebhookSettings.from_env({f"PROMOTER_WEBHOOK_{name}": value})
    assert secret not in str(caught.value)


def test_prefect_emitter_reports_an_unreachable_server_as_emit_error() -> None:
    emitter = PrefectEmitter(f"http://127.0.0.1:{free_port()}/api", timeout=2)
    try:
        event = RegistryEvent(
            id=uuid.uuid4(),
            occurred=datetime.now(UTC),
            resource={"prefect.resource.id": "registry.image.a/b"},
        )
        with pytest.raises(EmitError, match="could not reach the Prefect API"):
            emitter(event)
    finally:
        emitter.close()


def test_a_form_encoded_github_delivery_is_verified_over_its_raw_body(
    client: TestClient, recorder: Recorder
) -> None:
    """GitHub's x-www-form-urlencoded content type: JSON in the payload field, signature over the raw bytes."""
    body = urlencode({"payload": json.dumps(captured.GHCR_PACKAGE_PUBLISHED)}).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-GitHub-Event": "package",
        "X-GitHub-Delivery": DELIVERY,
    }
    resigned = {
        **headers,
        "X-Hub-Signature-256": sign(GITHUB_SECRET, json.dumps(captured.GHCR_PACKAGE_PUBLISHED).encode()),
    }
    assert client.post("/hooks/github", content=body, headers=resigned).status_code == 401
    signed = {**headers, "X-Hub-Signature-256": sign(GITHUB_SECRET, body)}
    response = client.post("/hooks/github", content=body, headers=signed)
    assert (response.status_code, response.json()) == (202, {"emitted": 1, "ignored": []})
    assert recorder.images == [f"{captured.GHCR_REPOSITORY}:{captured.GHCR_TAG}"]


WRONG_URL = [
    (url, origin)
    for url in SENDERS
    for origin in SENDERS
    if url != origin and (url, origin) != ("harbor", "cdevents")  # Harbor's CDEvents format is Harbor's
]


@pytest.mark.parametrize(("url", "origin"), WRONG_URL, ids=[f"{o}-to-{u}" for u, o in WRONG_URL])
def test_a_sender_posting_to_another_senders_url_gets_400_not_202(
    client: TestClient, recorder: Recorder, url: Sender, origin: Sender
) -> None:
    body = json.dumps(RELEASE[origin][0]).encode()
    path, headers = authentic(url, body)
    response = client.post(path, content=body, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 400, response.text
    assert f"/hooks/{url}" in response.json()["error"]
    assert recorder.events == []


def test_docker_hub_re_pushing_a_mutable_tag_is_a_new_release_its_retry_is_not(
    client: TestClient, recorder: Recorder
) -> None:
    """Docker Hub sends no digest and no delivery id; push_data.pushed_at is what differs on a re-push."""
    first = captured.DOCKERHUB_DOCUMENTED
    again = {**first, "push_data": {**first["push_data"], "pushed_at": first["push_data"]["pushed_at"] + 600}}
    assert post(client, "dockerhub", first).json()["emitted"] == 1
    assert post(client, "dockerhub", first).json()["emitted"] == 0, "a retry of the same delivery"
    assert post(client, "dockerhub", again).json()["emitted"] == 1, "a re-push of latest ten minutes later"
    assert recorder.images == ["svendowideit/testhook:latest"] * 2
    assert len(set(recorder.ids)) == 2


def test_quay_pushes_nothing_tells_apart_are_suppressed_for_the_short_window_only(recorder: Recorder) -> None:
    settings = SETTINGS.model_copy(update={"dedupe_window_seconds": 0.3})
    with TestClient(create_app(settings, recorder)) as client:
        assert post(client, "quay", captured.QUAY_DOCUMENTED).json()["emitted"] == 1
        assert post(client, "quay", captured.QUAY_DOCUMENTED).json()["emitted"] == 0
        time.sleep(0.5)
        assert post(client, "quay", captured.QUAY_DOCUMENTED).json()["emitted"] == 1
    assert recorder.images == ["quay.io/mynamespace/repository:latest"] * 2


def test_the_event_id_is_the_same_for_a_delivery_replayed_to_a_restarted_receiver() -> None:
    """A new app is a restarted receiver (nothing in memory): the replay gets the id it got before."""
    ids = []
    for _ in range(2):
        recorder = Recorder()
        with TestClient(create_app(SETTINGS, recorder)) as client:
            assert (
                post(
                    client, "github", captured.GHCR_PACKAGE_PUBLISHED, **{"X-GitHub-Event": "package"}
                ).json()["emitted"]
                == 1
            )
        ids += recorder.ids
    assert ids[0] == ids[1]
    other = Recorder()
    with TestClient(create_app(SETTINGS, other)) as client:
        post(client, "github", samples.github_package(tag="1.2.4"))
    assert other.ids[0] != ids[0]


def test_google_keys_out_of_reach_is_503_so_that_pub_sub_retries(recorder: Recorder) -> None:
    oidc = GoogleOIDC(
        audience=AUDIENCE, service_account=SERVICE_ACCOUNT, jwks_url=f"http://127.0.0.1:{free_port()}/certs"
    )
    settings = WebhookSettings(gar_oidc=oidc)
    body = json.dumps(captured.pubsub_push(captured.GAR_MESSAGE)).encode()
    with TestClient(create_app(settings, recorder)) as client:
        response = client.post("/hooks/gar", content=body, headers={"Authorization": KEYS.bearer()})
    assert response.status_code == 503
    assert "retry" in response.json()["error"]
    assert recorder.events == []


def test_gar_settings_need_both_audience_and_service_account() -> None:
    with pytest.raises(ConfigError, match="GAR_SERVICE_ACCOUNT"):
        WebhookSettings.from_env({"PROMOTER_WEBHOOK_GAR_AUDIENCE": AUDIENCE})
    settings = WebhookSettings.from_env(
        {
            "PROMOTER_WEBHOOK_GAR_AUDIENCE": AUDIENCE,
            "PROMOTER_WEBHOOK_GAR_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
            "PROMOTER_WEBHOOK_NEXUS_SECRET": NEXUS_SECRET,
            "PROMOTER_WEBHOOK_NEXUS_REGISTRIES": "docker-hosted=Nexus.example.com:8082, docker-b=nexus.example.com/b",
            "PROMOTER_WEBHOOK_ECR_API_KEY": f"X-Api-Key: {ECR_KEY}",
        }
    )
    assert settings.enabled() == {"gar": "oidc", "nexus": "hmac", "ecr": "header"}
    assert settings.nexus_registries == {
        "docker-hosted": "nexus.example.com:8082",
        "docker-b": "nexus.example.com/b",
    }
    with pytest.raises(ConfigError, match="NEXUS_REGISTRIES"):
        WebhookSettings.from_env({"PROMOTER_WEBHOOK_NEXUS_REGISTRIES": "docker-hosted"})
    with pytest.raises(ConfigError, match="GAR_SERVICE_ACCOUNT is not valid"):
        WebhookSettings.from_env(
            {
                "PROMOTER_WEBHOOK_GAR_AUDIENCE": AUDIENCE,
                "PROMOTER_WEBHOOK_GAR_SERVICE_ACCOUNT": "not an e-mail",
            }
        )


def test_gitlabs_registry_notifications_are_distributions_with_its_authorization_header(
    recorder: Recorder,
) -> None:
    """GitLab's registry is CNCF distribution: `registry['notifications']` posts the same envelope, with
    the media type of distribution's events and a configured `Authorization` header, which
    PROMOTER_WEBHOOK_HEADER checks (GitLab's own receiver compares that header the same way)."""
    settings = WebhookSettings.from_env({"PROMOTER_WEBHOOK_HEADER": f"Authorization: {HEADER_VALUE}"})
    envelope = json.dumps(
        {"events": [captured.DISTRIBUTION_DOCUMENTED_EVENT, captured.DISTRIBUTION_DOCUMENTED_PUSH]}
    ).encode()
    headers = {"Content-Type": captured.DISTRIBUTION_MEDIA_TYPE}
    with TestClient(create_app(settings, recorder)) as client:
        assert client.post("/hooks/distribution", content=envelope, headers=headers).status_code == 401
        response = client.post(
            "/hooks/distribution", content=envelope, headers={**headers, "Authorization": HEADER_VALUE}
        )
    assert response.json() == {"emitted": 1, "ignored": ["distribution: action 'pull' is not a push"]}
    assert recorder.images == ["192.168.100.227:5000/hello-world:latest"]
