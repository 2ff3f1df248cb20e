"""Every sender's parser: releases found, non-releases ignored with a reason, malformed input refused."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployments.registries import (
    PARSERS,
    SENDER_NAMES,
    Ignored,
    ImagePush,
    Notification,
    Sender,
    parse_nexus,
)
from promoter.errors import InvalidInputError
from sandbox.specs import discover
from tests.deployments import captured, samples
from tests.deployments.samples import DELIVERY, DIGEST, OTHER_DIGEST

GITHUB = {"X-GitHub-Event": "registry_package", "X-GitHub-Delivery": DELIVERY}


NEXUS_HOSTS = {"docker-hosted": "nexus.example.com:8082"}


def push(
    sender: Sender,
    repository: str,
    tag: str = "1.2.3",
    digest: str | None = DIGEST,
    delivery: str | None = None,
    push_id: str | None = None,
) -> ImagePush:
    return ImagePush(
        repository=repository, tag=tag, digest=digest, sender=sender, delivery=delivery, push_id=push_id
    )


def by(who: str, *pushes: ImagePush) -> list[Notification]:
    """`pushes` as the sender names who pushed them."""
    return [p.model_copy(update={"pushed_by": who}) for p in pushes]


def parse(sender: Sender, payload: Any, headers: dict[str, str] | None = None) -> list[Notification]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if sender == "nexus":
        return parse_nexus(headers or {}, body, NEXUS_HOSTS)
    return PARSERS[sender](headers or {}, body)


RELEASES: list[tuple[str, Sender, dict[str, str], Any, list[Notification]]] = [
    (
        "docker hub keeps the short name",
        "dockerhub",
        {},
        samples.dockerhub(),
        by("acmebuild", push("dockerhub", "acme/podinfo", digest=None, push_id="1714641161")),
    ),
    (
        "docker hub official image",
        "dockerhub",
        {},
        samples.dockerhub(repo_name="nginx", tag="1.27"),
        by("acmebuild", push("dockerhub", "nginx", "1.27", None, push_id="1714641161")),
    ),
    (
        "docker hub, Docker's documented example",
        "dockerhub",
        {},
        captured.DOCKERHUB_DOCUMENTED,
        by(
            "trustedbuilder", push("dockerhub", "svendowideit/testhook", "latest", None, push_id="1417566161")
        ),
    ),
    (
        "ghcr: a real delivery names ghcr.io, not CONTAINER.pkg.github.com",
        "github",
        {"X-GitHub-Event": "package"},
        captured.GHCR_PACKAGE_PUBLISHED,
        by("theryangeary", push("github", captured.GHCR_REPOSITORY, captured.GHCR_TAG, captured.GHCR_DIGEST)),
    ),
    (
        "ghcr: action updated is a push too",
        "github",
        {"X-GitHub-Event": "package"},
        {**captured.GHCR_PACKAGE_PUBLISHED, "action": "updated"},
        by("theryangeary", push("github", captured.GHCR_REPOSITORY, captured.GHCR_TAG, captured.GHCR_DIGEST)),
    ),
    (
        "quay, Quay's documented example",
        "quay",
        {},
        captured.QUAY_DOCUMENTED,
        [push("quay", "quay.io/mynamespace/repository", "latest", None)],
    ),
    (
        "quay, the older tag -> image id form keeps the image id",
        "quay",
        {},
        {
            **captured.QUAY_DOCUMENTED,
            "updated_tags": {"latest": "b750fe79269d2ec9a3c593ef05b4332b1d1a02a62b"},
        },
        [
            push(
                "quay",
                "quay.io/mynamespace/repository",
                "latest",
                None,
                push_id="b750fe79269d2ec9a3c593ef05b4332b1d1a02a62b",
            )
        ],
    ),
    (
        "distribution's documented event, pulled then pushed (GitLab's registry sends this envelope)",
        "distribution",
        {"Content-Type": captured.DISTRIBUTION_MEDIA_TYPE, "Authorization": "gitlab-notification-secret"},
        {"events": [captured.DISTRIBUTION_DOCUMENTED_EVENT, captured.DISTRIBUTION_DOCUMENTED_PUSH]},
        [
            Ignored(reason="distribution: action 'pull' is not a push"),
            push(
                "distribution",
                "192.168.100.227:5000/hello-world",
                "latest",
                "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
                "320678d8-ca14-430f-8bb6-4ca139cd83f7",
            ),
        ],
    ),
    (
        "gar: a captured gcr-topic message in Google's push envelope",
        "gar",
        {},
        captured.pubsub_push(captured.GAR_MESSAGE),
        [push("gar", captured.GAR_REPOSITORY, captured.GAR_TAG, captured.GAR_DIGEST, "2070443601311540")],
    ),
    (
        "gar: an unwrapped push subscription sends the message itself",
        "gar",
        {"X-Goog-Pubsub-Message-Id": "2070443601311541"},
        captured.GAR_MESSAGE,
        [push("gar", captured.GAR_REPOSITORY, captured.GAR_TAG, captured.GAR_DIGEST, "2070443601311541")],
    ),
    (
        "ecr: host from account and region",
        "ecr",
        {},
        captured.ECR_PUSH,
        [
            push(
                "ecr",
                captured.ECR_REPOSITORY,
                "latest",
                captured.ECR_DIGEST,
                "13cde686-328b-6117-af20-0e5566167482",
            )
        ],
    ),
    (
        "ecr: China regions live under amazonaws.com.cn",
        "ecr",
        {},
        {**captured.ECR_PUSH, "region": "cn-north-1"},
        [
            push(
                "ecr",
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/my-repository-name",
                "latest",
                captured.ECR_DIGEST,
                "13cde686-328b-6117-af20-0e5566167482",
            )
        ],
    ),
    (
        "cdevents: Harbor's structured CloudEvent, repository_url holding the whole reference",
        "cdevents",
        {"Content-Type": "application/cloudevents+json"},
        captured.HARBOR_CDEVENT,
        [
            push(
                "cdevents",
                "harbor.dev/library/busybox",
                "v1.0",
                captured.HARBOR_CDEVENT_DIGEST,
                "2d47734c-83e2-41dc-bcbf-23bd2a3734a2",
            )
        ],
    ),
    (
        "cdevents: binary mode, the CDEvent is the body",
        "cdevents",
        {"Ce-Type": "dev.cdevents.artifact.published.0.1.1", "Ce-Specversion": "1.0"},
        captured.HARBOR_CDEVENT["data"],
        [
            push(
                "cdevents",
                "harbor.dev/library/busybox",
                "v1.0",
                captured.HARBOR_CDEVENT_DIGEST,
                "2d47734c-83e2-41dc-bcbf-23bd2a3734a2",
            )
        ],
    ),
    (
        "nexus: a docker component, host from the configured map",
        "nexus",
        captured.NEXUS_COMPONENT_HEADERS,
        captured.NEXUS_DOCKER_COMPONENT,
        by(
            "ci",
            push(
                "nexus",
                "nexus.example.com:8082/acme/podinfo",
                digest=None,
                delivery="7f4a6dde-5c68-4999-bcc0-a62f3fb8ae48",
            ),
        ),
    ),
    (
        "github registry_package",
        "github",
        GITHUB,
        samples.github_package(),
        by("acme", push("github", "ghcr.io/acme/podinfo", delivery=DELIVERY)),
    ),
    (
        "github package event, mixed-case owner lowercased",
        "github",
        {"x-github-event": "package"},
        samples.github_package(event="package", namespace="Acme", name="PodInfo"),
        by("acme", push("github", "ghcr.io/acme/podinfo")),
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
    (
        "harbor default",
        "harbor",
        {},
        samples.harbor(),
        by("robot$acme+ci", push("harbor", "harbor.example.com/acme/podinfo")),
    ),
    (
        "harbor, one event for several artifacts",
        "harbor",
        {},
        samples.harbor(
            resources=[samples.harbor_resource("1.2.3"), samples.harbor_resource("latest", OTHER_DIGEST)]
        ),
        by(
            "robot$acme+ci",
            push("harbor", "harbor.example.com/acme/podinfo"),
            push("harbor", "harbor.example.com/acme/podinfo", "latest", OTHER_DIGEST),
        ),
    ),
    (
        "harbor cloudevents",
        "harbor",
        {},
        samples.harbor_cloudevent(),
        by(
            "robot$acme+ci",
            push(
                "harbor", "harbor.example.com/acme/podinfo", delivery="fd2b8b8b-1a70-4a3a-9f0f-b36e2ec8d1f0"
            ),
        ),
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
        by(
            "ci",
            push("distribution", "registry.example.com:5000/acme/podinfo", delivery="asdf-asdf-asdf-asdf-0"),
        ),
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
    ("github package deleted", "github", GITHUB, samples.github_package(action="deleted"), "not a publish"),
    (
        "github: GitHub's own registry_package example is an npm package",
        "github",
        GITHUB,
        captured.OCTOKIT_REGISTRY_PACKAGE_PUBLISHED,
        "not a container",
    ),
    (
        "gar delete",
        "gar",
        {},
        captured.pubsub_push({**captured.GAR_MESSAGE, "action": "DELETE"}),
        "not a push",
    ),
    (
        "gar untagged upload",
        "gar",
        {},
        captured.pubsub_push({"action": "INSERT", "digest": captured.GAR_MESSAGE["digest"]}),
        "untagged",
    ),
    (
        "ecr untagged push",
        "ecr",
        {},
        {**captured.ECR_PUSH, "detail": {**captured.ECR_PUSH["detail"], "image-tag": ""}},
        "untagged",
    ),
    (
        "ecr failed push",
        "ecr",
        {},
        {**captured.ECR_PUSH, "detail": {**captured.ECR_PUSH["detail"], "result": "FAILURE"}},
        "not a successful push",
    ),
    (
        "ecr pull-through cache",
        "ecr",
        {},
        {
            **captured.ECR_PUSH,
            "detail-type": "ECR Pull Through Cache Action",
            "detail": {"sync-status": "SUCCESS"},
        },
        "not an image action",
    ),
    (
        "cdevents: the spec's example is a Go module",
        "cdevents",
        {},
        captured.CDEVENTS_SPEC_EXAMPLE,
        "not an OCI image",
    ),
    (
        "cdevents: another CDEvent",
        "cdevents",
        {},
        {**captured.CDEVENTS_SPEC_EXAMPLE, "context": {"type": "dev.cdevents.build.finished.0.1.1"}},
        "not an artifact publish",
    ),
    (
        "nexus: Sonatype's documented asset event",
        "nexus",
        captured.NEXUS_DOCUMENTED_HEADERS,
        captured.NEXUS_DOCUMENTED_ASSET,
        "not a component event",
    ),
    (
        "nexus: an npm component",
        "nexus",
        captured.NEXUS_COMPONENT_HEADERS,
        {
            **captured.NEXUS_DOCKER_COMPONENT,
            "component": {**captured.NEXUS_DOCKER_COMPONENT["component"], "format": "npm"},
        },
        "not a docker repository",
    ),
    (
        "nexus: a deleted component",
        "nexus",
        captured.NEXUS_COMPONENT_HEADERS,
        {**captured.NEXUS_DOCKER_COMPONENT, "action": "DELETED"},
        "not a push",
    ),
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
        "not a notification from Docker Hub",
    ),
    (
        "ecr: AWS's documented sample, whose digest is 60 hex digits",
        "ecr",
        {},
        captured.ECR_DOCUMENTED_PUSH,
        "invalid image digest",
    ),
    (
        "ecr account not 12 digits",
        "ecr",
        {},
        {**captured.ECR_PUSH, "account": "12345"},
        "12-digit AWS account",
    ),
    (
        "ecr region injection",
        "ecr",
        {},
        {**captured.ECR_PUSH, "region": "us-west-2/../x"},
        "not an AWS region",
    ),
    (
        "gar message.data not base64",
        "gar",
        {},
        {"message": {"data": "not base64!", "messageId": "1"}},
        "not valid base64",
    ),
    (
        "gar tag and digest of two repositories",
        "gar",
        {},
        captured.pubsub_push({**captured.GAR_MESSAGE, "digest": "gcr.io/other/image@" + DIGEST}),
        "different repositories",
    ),
    (
        "gar tag without a registry host",
        "gar",
        {},
        captured.pubsub_push({"action": "INSERT", "tag": "freshly:latest"}),
        "not host/path:",
    ),
    (
        "cdevents subject not a purl",
        "cdevents",
        {},
        {**captured.CDEVENTS_SPEC_EXAMPLE, "subject": {"id": "myapp"}},
        "not a package URL",
    ),
    (
        "nexus repository with no configured host",
        "nexus",
        captured.NEXUS_COMPONENT_HEADERS,
        {**captured.NEXUS_DOCKER_COMPONENT, "repositoryName": "docker-other"},
        "add docker-other=<host[:port][/path]> to PROMOTER_WEBHOOK_NEXUS_REGISTRIES",
    ),
    (
        "nexus repository name that the setting could not hold",
        "nexus",
        captured.NEXUS_COMPONENT_HEADERS,
        {**captured.NEXUS_DOCKER_COMPONENT, "repositoryName": "a,b=c\nd"},
        "add <repository>=<host[:port][/path]> to PROMOTER_WEBHOOK_NEXUS_REGISTRIES",
    ),
    (
        "github form body without payload",
        "github",
        {**GITHUB, "Content-Type": "application/x-www-form-urlencoded"},
        b"nothing=here",
        "exactly one payload field",
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
        "not a notification from GitHub Packages",
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
        _with(
            samples.github_package(),
            "bad-.example/acme/podinfo:1",
            "registry_package",
            "package_version",
            "package_url",
        ),
        "invalid image repository",
    ),
    ("quay tag not a string", "quay", {}, _with(samples.quay(), [1], "updated_tags"), "updated_tags[0]"),
    ("distribution events not a list", "distribution", {}, {"events": {}}, "not a notification from CNCF"),
    ("generic list body", "generic", {}, [samples.generic()], "the body must be a JSON object"),
    ("generic missing tag", "generic", {}, {"repository": "acme/podinfo"}, '"tag" fields are missing'),
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


def test_a_form_encoded_github_delivery_is_read_from_its_payload_field() -> None:
    """GitHub's "application/x-www-form-urlencoded" content type: the JSON is the `payload` form field."""
    body = urlencode({"payload": json.dumps(captured.GHCR_PACKAGE_PUBLISHED)}).encode()
    headers = {"X-GitHub-Event": "package", "Content-Type": "application/x-www-form-urlencoded"}
    assert parse("github", body, headers) == by(
        "theryangeary", push("github", captured.GHCR_REPOSITORY, captured.GHCR_TAG, captured.GHCR_DIGEST)
    )


@pytest.mark.parametrize(
    ("sender", "payload", "who"),
    [
        (
            "generic",
            {**samples.generic(), "pushed_by": "  ci\nForged-by: mallory  "},
            "ci Forged-by: mallory",
        ),
        ("generic", {**samples.generic(), "pushed_by": 42}, None),
        ("generic", {**samples.generic(), "pushed_by": "x" * 500}, "x" * 100),
        ("dockerhub", {**samples.dockerhub(), "push_data": {"tag": "1.2.3", "pusher": ""}}, None),
        ("distribution", {"events": [captured.DISTRIBUTION_DOCUMENTED_PUSH]}, None),  # `actor` is {}
        ("quay", captured.QUAY_DOCUMENTED, None),  # Quay does not say who pushed
    ],
    ids=["one-line", "not-a-string", "too-long", "empty", "distribution-no-actor", "quay"],
)
def test_who_pushed_is_one_printable_line_or_nothing_and_never_refuses_the_push(
    sender: Sender, payload: dict[str, Any], who: str | None
) -> None:
    """A pusher's name goes into the event, the run and a merge commit's `Pushed-by` trailer: a newline
    there could forge a trailer of its own, so it is folded into one line; a release is never refused
    over it."""
    notes = parse(sender, payload)
    assert notes and all(isinstance(n, ImagePush) for n in notes)
    assert {n.pushed_by for n in notes if isinstance(n, ImagePush)} == {who}


def test_ghcr_host_falls_back_to_the_installation_command_then_ghcr_io() -> None:
    version = captured.GHCR_PACKAGE_PUBLISHED["package"]["package_version"]
    no_url = {**version, "package_url": ""}
    neither = {**no_url, "installation_command": ""}
    for package_version in (no_url, neither):
        payload = {
            **captured.GHCR_PACKAGE_PUBLISHED,
            "package": {**captured.GHCR_PACKAGE_PUBLISHED["package"], "package_version": package_version},
        }
        (note,) = parse("github", payload, {"X-GitHub-Event": "package"})
        assert isinstance(note, ImagePush) and note.repository == captured.GHCR_REPOSITORY


def test_ghcr_repository_is_the_lowercased_pull_reference() -> None:
    """GitHub's own example spells the owner Codertocat; OCI repositories are lowercase."""
    version = captured.OCTOKIT_REGISTRY_PACKAGE_PUBLISHED["registry_package"]["package_version"]
    tagged = {**version, "container_metadata": {"tag": {"name": "1.0", "digest": DIGEST}}}
    payload = {
        **captured.OCTOKIT_REGISTRY_PACKAGE_PUBLISHED,
        "registry_package": {
            **captured.OCTOKIT_REGISTRY_PACKAGE_PUBLISHED["registry_package"],
            "package_type": "CONTAINER",
            "package_version": tagged,
        },
    }
    (note,) = parse("github", payload, GITHUB)
    assert isinstance(note, ImagePush)
    assert (note.repository, note.tag) == ("ghcr.io/codertocat/hello-world", "1.0")


def test_no_parser_emits_a_container_pkg_github_com_repository() -> None:
    """The regression itself: `registry.url` is never a host of the image."""
    for event in ("package", "registry_package"):
        (note,) = parse("github", samples.github_package(event=event), {"X-GitHub-Event": event})
        assert isinstance(note, ImagePush) and not note.repository.startswith("container.pkg.github.com")


# Each sender's genuine shape, for the cross-sender test: (headers, payload).
GENUINE: dict[Sender, tuple[dict[str, str], Any]] = {
    "dockerhub": ({}, captured.DOCKERHUB_DOCUMENTED),
    "github": ({"X-GitHub-Event": "package"}, captured.GHCR_PACKAGE_PUBLISHED),
    "acr": ({}, samples.acr()),
    "harbor": ({}, samples.harbor()),
    "quay": ({}, captured.QUAY_DOCUMENTED),
    "distribution": ({}, {"events": [captured.DISTRIBUTION_DOCUMENTED_PUSH]}),
    "generic": ({}, samples.generic()),
    "gar": ({}, captured.pubsub_push(captured.GAR_MESSAGE)),
    "ecr": ({}, captured.ECR_PUSH),
    "cdevents": ({"Content-Type": "application/cloudevents+json"}, captured.HARBOR_CDEVENT),
    "nexus": (captured.NEXUS_COMPONENT_HEADERS, captured.NEXUS_DOCKER_COMPONENT),
}
# Harbor's CDEvents format is Harbor's own: /hooks/harbor takes it (below), /hooks/cdevents too.
WRONG_SENDER = [
    (url, origin)
    for url in GENUINE
    for origin in GENUINE
    if url != origin and (url, origin) != ("harbor", "cdevents")
]


def test_harbor_takes_its_own_cdevents_format() -> None:
    (note,) = parse("harbor", captured.HARBOR_CDEVENT)
    assert note == push(
        "harbor",
        "harbor.dev/library/busybox",
        "v1.0",
        captured.HARBOR_CDEVENT_DIGEST,
        "2d47734c-83e2-41dc-bcbf-23bd2a3734a2",
    )


@pytest.mark.parametrize(("url", "origin"), WRONG_SENDER, ids=[f"{o}-to-{u}" for u, o in WRONG_SENDER])
def test_another_senders_notification_is_refused_naming_the_sender_expected(
    url: Sender, origin: Sender
) -> None:
    """A misconfigured registry must not look healthy: the wrong shape is an error, not an ignore."""
    headers, payload = GENUINE[origin]
    if url == "github":
        headers = {**headers, "X-GitHub-Event": "registry_package"}
    with pytest.raises(InvalidInputError, match=r"^[^\n]*$") as caught:
        parse(url, payload, headers)
    assert f"not a notification from {SENDER_NAMES[url]}" in str(caught.value)
    assert f"/hooks/{url}" in str(caught.value)


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
    optional={
        "X-GitHub-Delivery": st.text(max_size=200),
        "Content-Type": st.sampled_from(
            ["application/json", "application/x-www-form-urlencoded", "application/cloudevents+json"]
        ),
        "X-Nexus-Webhook-Id": st.sampled_from(["rm:repository:component", "rm:repository:asset", "x"]),
        "X-Nexus-Webhook-Delivery": st.text(max_size=200),
        "X-Goog-Pubsub-Message-Id": st.text(max_size=200),
    },
)
SAMPLES: dict[Sender, list[Any]] = {
    "dockerhub": [samples.dockerhub(), captured.DOCKERHUB_DOCUMENTED],
    "github": [
        samples.github_package(),
        samples.github_package(event="package"),
        captured.GHCR_PACKAGE_PUBLISHED,
    ],
    "acr": [samples.acr()],
    "harbor": [samples.harbor(), samples.harbor_cloudevent()],
    "quay": [samples.quay(tags=["1", "2"]), captured.QUAY_DOCUMENTED],
    "distribution": [
        samples.distribution(samples.distribution_event(), _blob()),
        {"events": [captured.DISTRIBUTION_DOCUMENTED_EVENT, captured.DISTRIBUTION_DOCUMENTED_PUSH]},
    ],
    "generic": [samples.generic()],
    "gar": [captured.pubsub_push(captured.GAR_MESSAGE), captured.GAR_MESSAGE],
    "ecr": [captured.ECR_PUSH, captured.ECR_DOCUMENTED_PUSH],
    "cdevents": [captured.HARBOR_CDEVENT, captured.HARBOR_CDEVENT["data"], captured.CDEVENTS_SPEC_EXAMPLE],
    "nexus": [captured.NEXUS_DOCKER_COMPONENT, captured.NEXUS_DOCUMENTED_ASSET],
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
        notes = parse(sender, body, headers)
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
