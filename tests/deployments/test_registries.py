"""Every sender's parser: releases found, non-releases ignored with a reason, malformed input refused."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployments.registries import PARSERS, Ignored, ImagePush, Notification, Sender
from promoter.errors import InvalidInputError
from sandbox.specs import discover
from tests.deployments import samples
from tests.deployments.samples import DELIVERY, DIGEST, OTHER_DIGEST

GITHUB = {"X-GitHub-Event": "registry_package", "X-GitHub-Delivery": DELIVERY}


def push(
    sender: Sender,
    repository: str,
    tag: str = "1.2.3",
    digest: str | None = DIGEST,
    delivery: str | None = None,
) -> ImagePush:
    return ImagePush(repository=repository, tag=tag, digest=digest, sender=sender, delivery=delivery)


def parse(sender: Sender, payload: Any, headers: dict[str, str] | None = None) -> list[Notification]:
    return PARSERS[sender](headers or {}, json.dumps(payload).encode())


RELEASES: list[tuple[str, Sender, dict[str, str], Any, list[Notification]]] = [
    (
        "docker hub keeps the short name",
        "dockerhub",
        {},
        samples.dockerhub(),
        [push("dockerhub", "acme/podinfo", digest=None)],
    ),
    (
        "docker hub official image",
        "dockerhub",
        {},
        samples.dockerhub(repo_name="nginx", tag="1.27"),
        [push("dockerhub", "nginx", "1.27", None)],
    ),
    (
        "github registry_package",
        "github",
        GITHUB,
        samples.github_package(),
        [push("github", "ghcr.io/acme/podinfo", delivery=DELIVERY)],
    ),
    (
        "github package event, mixed-case owner lowercased",
        "github",
        {"x-github-event": "package"},
        samples.github_package(event="package", namespace="Acme", name="PodInfo"),
        [push("github", "ghcr.io/acme/podinfo")],
    ),
    (
        "acr prefixes request.host",
        "acr",
        {},
        samples.acr(),
        [
            push(
                "acr", "acmeregistry.azurecr.io/acme/podinfo", delivery="cb8c3971-9adc-488b-bdd8-43cbb4974ff5"
            )
        ],
    ),
    ("harbor default", "harbor", {}, samples.harbor(), [push("harbor", "harbor.example.com/acme/podinfo")]),
    (
        "harbor, one event for several artifacts",
        "harbor",
        {},
        samples.harbor(
            resources=[samples.harbor_resource("1.2.3"), samples.harbor_resource("latest", OTHER_DIGEST)]
        ),
        [
            push("harbor", "harbor.example.com/acme/podinfo"),
            push("harbor", "harbor.example.com/acme/podinfo", "latest", OTHER_DIGEST),
        ],
    ),
    (
        "harbor cloudevents",
        "harbor",
        {},
        samples.harbor_cloudevent(),
        [push("harbor", "harbor.example.com/acme/podinfo", delivery="fd2b8b8b-1a70-4a3a-9f0f-b36e2ec8d1f0")],
    ),
    (
        "quay, one release per updated tag",
        "quay",
        {},
        samples.quay(tags=["1.2.3", "latest"]),
        [
            push("quay", "quay.io/acme/podinfo", digest=None),
            push("quay", "quay.io/acme/podinfo", "latest", None),
        ],
    ),
    (
        "distribution prefixes request.host",
        "distribution",
        {},
        samples.distribution(),
        [push("distribution", "registry.example.com:5000/acme/podinfo", delivery="asdf-asdf-asdf-asdf-0")],
    ),
    ("generic", "generic", {}, samples.generic(), [push("generic", "registry.example.com/acme/podinfo")]),
    (
        "generic without digest",
        "generic",
        {},
        {"repository": "acme/podinfo", "tag": "v2"},
        [push("generic", "acme/podinfo", "v2", None)],
    ),
]


@pytest.mark.parametrize(
    ("sender", "headers", "payload", "expected"),
    [case[1:] for case in RELEASES],
    ids=[case[0] for case in RELEASES],
)
def test_each_sender_reports_its_release_with_the_full_repository(
    sender: Sender, headers: dict[str, str], payload: Any, expected: list[Notification]
) -> None:
    assert parse(sender, payload, headers) == expected


def _blob() -> dict[str, Any]:
    return samples.distribution_event(media_type="application/octet-stream", tag=None, event_id="blob-1")


IGNORED: list[tuple[str, Sender, dict[str, str], Any, str]] = [
    ("github ping", "github", {"X-GitHub-Event": "ping"}, samples.github_ping(), "ping"),
    (
        "github push event",
        "github",
        {"X-GitHub-Event": "push"},
        {"ref": "refs/heads/main"},
        "not a package event",
    ),
    ("github package updated", "github", GITHUB, samples.github_package(action="updated"), "not a publish"),
    ("github npm package", "github", GITHUB, samples.github_package(package_type="npm"), "not a container"),
    ("github untagged manifest", "github", GITHUB, samples.github_package(tag=""), "untagged"),
    (
        "github cosign signature",
        "github",
        GITHUB,
        samples.github_package(tag=DIGEST.replace(":", "-") + ".sig"),
        "cosign",
    ),
    ("dockerhub attestation", "dockerhub", {}, samples.dockerhub(tag="sha256-abc.att"), "cosign"),
    ("acr ping", "acr", {}, samples.acr(action="ping"), "not a push"),
    ("acr delete", "acr", {}, samples.acr(action="delete"), "not a push"),
    ("acr untagged", "acr", {}, samples.acr(tag=None), "untagged"),
    ("harbor delete", "harbor", {}, samples.harbor(kind="DELETE_ARTIFACT"), "not a push"),
    (
        "harbor proxy cache",
        "harbor",
        {},
        samples.harbor(operator="harbor#proxy-cache-service"),
        "proxy-cache",
    ),
    (
        "harbor cloudevents proxy cache",
        "harbor",
        {},
        samples.harbor_cloudevent(operator="harbor#proxy-cache-service"),
        "proxy-cache",
    ),
    (
        "harbor untagged: tag is the digest",
        "harbor",
        {},
        samples.harbor(resources=[samples.harbor_resource(DIGEST)]),
        "untagged",
    ),
    ("harbor cloudevents signature", "harbor", {}, samples.harbor_cloudevent(tag="sha256-abc.sig"), "cosign"),
    ("quay no tags", "quay", {}, samples.quay(tags=[]), "no updated tags"),
    ("distribution blob", "distribution", {}, samples.distribution(_blob()), "blob"),
    (
        "distribution pull",
        "distribution",
        {},
        samples.distribution(samples.distribution_event(action="pull")),
        "not a push",
    ),
    (
        "distribution manifest by digest",
        "distribution",
        {},
        samples.distribution(samples.distribution_event(tag=None)),
        "untagged",
    ),
    ("generic empty tag", "generic", {}, {"repository": "acme/podinfo", "tag": ""}, "untagged"),
]


@pytest.mark.parametrize(
    ("sender", "headers", "payload", "reason"),
    [case[1:] for case in IGNORED],
    ids=[case[0] for case in IGNORED],
)
def test_notifications_that_are_not_releases_are_ignored_with_a_reason(
    sender: Sender, headers: dict[str, str], payload: Any, reason: str
) -> None:
    (note,) = parse(sender, payload, headers)
    assert isinstance(note, Ignored)
    assert reason in note.reason


def test_distribution_envelope_keeps_the_manifest_and_ignores_its_blobs() -> None:
    envelope = samples.distribution(_blob(), samples.distribution_event(), _blob())
    notes = parse("distribution", envelope)
    assert [type(note) for note in notes] == [Ignored, ImagePush, Ignored]


def _without(payload: dict[str, Any], *path: str) -> dict[str, Any]:
    node = payload
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return payload


def _with(payload: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    node = payload
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return payload


INVALID: list[tuple[str, Sender, dict[str, str], Any, str]] = [
    (
        "dockerhub without repository",
        "dockerhub",
        {},
        _without(samples.dockerhub(), "repository"),
        "repository must be a JSON object",
    ),
    (
        "dockerhub uppercase repository",
        "dockerhub",
        {},
        _with(samples.dockerhub(), "Acme/Podinfo", "repository", "repo_name"),
        "invalid image repository",
    ),
    ("dockerhub tag injection", "dockerhub", {}, samples.dockerhub(tag="1.0;rm -rf /"), "invalid image tag"),
    (
        "github without package",
        "github",
        GITHUB,
        {"action": "published"},
        "registry_package must be a JSON object",
    ),
    (
        "github numeric tag",
        "github",
        GITHUB,
        _with(
            samples.github_package(),
            7,
            "registry_package",
            "package_version",
            "container_metadata",
            "tag",
            "name",
        ),
        "must be a string",
    ),
    (
        "github bad digest",
        "github",
        GITHUB,
        samples.github_package(digest="sha256:xyz"),
        "invalid image digest",
    ),
    (
        "github bad delivery id",
        "github",
        {**GITHUB, "X-GitHub-Delivery": "a\tb"},
        samples.github_package(),
        "delivery id",
    ),
    ("acr path traversal", "acr", {}, samples.acr(repository="../../etc"), "invalid image repository"),
    (
        "acr target not an object",
        "acr",
        {},
        _with(samples.acr(), [], "target"),
        "target must be a JSON object",
    ),
    (
        "harbor resources not a list",
        "harbor",
        {},
        _with(samples.harbor(), {}, "event_data", "resources"),
        "resources must be a JSON array",
    ),
    (
        "quay without docker_url host",
        "quay",
        {},
        _with(samples.quay(), "acme/podinfo", "docker_url"),
        "docker_url",
    ),
    (
        "harbor resource_url not a URL",
        "harbor",
        {},
        samples.harbor(resources=[{**samples.harbor_resource(), "resource_url": "https://[::1/acme"}]),
        "invalid registry URL",
    ),
    (
        "github registry url with a bad host",
        "github",
        GITHUB,
        _with(samples.github_package(), "https://bad-.example/acme", "registry_package", "registry", "url"),
        "invalid image repository",
    ),
    ("quay tag not a string", "quay", {}, _with(samples.quay(), [1], "updated_tags"), "updated_tags[0]"),
    ("distribution events not a list", "distribution", {}, {"events": {}}, "events must be a JSON array"),
    ("generic list body", "generic", {}, [samples.generic()], "the body must be a JSON object"),
    ("generic missing tag", "generic", {}, {"repository": "acme/podinfo"}, "tag must be a string"),
]


@pytest.mark.parametrize(
    ("sender", "headers", "payload", "message"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_malformed_notifications_are_refused_with_one_line(
    sender: Sender, headers: dict[str, str], payload: Any, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=r"^[^\n]*$") as caught:
        parse(sender, payload, headers)
    assert message in str(caught.value)


@pytest.mark.parametrize("sender", list(PARSERS))
@pytest.mark.parametrize("body", [b"", b"<xml/>", b"\xff\xfe\x00", b"[" * 100_000, b"1" * 5000])
def test_bodies_that_are_not_json_are_refused(sender: Sender, body: bytes) -> None:
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        PARSERS[sender](GITHUB, body)


@pytest.mark.skipif(discover() is None, reason="no API descriptions found (../shared/specs)")
@pytest.mark.parametrize("event", ["package", "registry_package"])
def test_github_samples_match_githubs_published_webhook_schema(event: str) -> None:
    """The part the parser reads (`action` and the package) must be what GitHub documents it sends."""
    specs = discover()
    assert specs is not None
    definitions = json.loads((specs / "github" / "webhooks-schema.json").read_text())["definitions"]
    properties = definitions[f"{event}$published"]["properties"]
    package = jsonschema.Draft7Validator({**properties[event], "definitions": definitions})
    for tag in ("1.2.3", ""):
        payload = samples.github_package(event=event, tag=tag)
        assert payload["action"] in properties["action"]["enum"]
        package.validate(payload[event])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
headers_strategy = st.fixed_dictionaries(
    {"X-GitHub-Event": st.sampled_from(["package", "registry_package", "ping", "push", ""])},
    optional={"X-GitHub-Delivery": st.text(max_size=200)},
)
SAMPLES: dict[Sender, list[Any]] = {
    "dockerhub": [samples.dockerhub()],
    "github": [samples.github_package(), samples.github_package(event="package")],
    "acr": [samples.acr()],
    "harbor": [samples.harbor(), samples.harbor_cloudevent()],
    "quay": [samples.quay(tags=["1", "2"])],
    "distribution": [samples.distribution(samples.distribution_event(), _blob())],
    "generic": [samples.generic()],
}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, sender: Sender) -> Any:
    """A real sample with one node, anywhere in it, replaced by arbitrary JSON: reaches the deep checks."""
    sample = json.loads(json.dumps(draw(st.sampled_from(SAMPLES[sender]))))
    path = draw(st.sampled_from(_paths(sample)))
    if not path:
        return draw(json_values)
    node = sample
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = draw(json_values)
    return sample


def _only_documented_errors(sender: Sender, headers: dict[str, str], body: bytes) -> None:
    try:
        notes = PARSERS[sender](headers, body)
    except InvalidInputError as error:
        assert "\n" not in str(error)
        return
    assert all(isinstance(note, ImagePush | Ignored) for note in notes)


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("sender", list(PARSERS))
@FUZZ
@given(headers=headers_strategy, body=st.binary(max_size=512))
def test_arbitrary_bytes_never_raise_an_undocumented_error(
    sender: Sender, headers: dict[str, str], body: bytes
) -> None:
    _only_documented_errors(sender, headers, body)


@pytest.mark.parametrize("sender", list(PARSERS))
@FUZZ
@given(headers=headers_strategy, value=json_values)
def test_arbitrary_json_never_raises_an_undocumented_error(
    sender: Sender, headers: dict[str, str], value: Any
) -> None:
    _only_documented_errors(sender, headers, json.dumps(value).encode())


@pytest.mark.parametrize("sender", list(PARSERS))
@FUZZ
@given(data=st.data())
def test_mutated_real_payloads_never_raise_an_undocumented_error(sender: Sender, data: st.DataObject) -> None:
    headers = data.draw(headers_strategy)
    _only_documented_errors(sender, headers, json.dumps(data.draw(mutated(sender))).encode())
