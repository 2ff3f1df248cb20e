"""Registry push notifications, one parser per sender, each a pure function of (headers, raw body).

Registries describe a push in seven different shapes (REFERENCE.md section 7). Each parser turns its shape
into `ImagePush` values, whose fields already passed the OCI grammars in `promoter.names`, or into
`Ignored` with a reason (pings, deletes, untagged manifests, blobs, cosign signatures, proxy-cache pulls).
Anything malformed raises `InvalidInputError` with a one-line message that quotes no more than a short,
escaped excerpt of what was sent. Authenticity is not checked here: that is the receiver's job.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, field_validator

from promoter.errors import InvalidInputError
from promoter.names import check_digest, check_repository, check_tag

Sender = Literal["dockerhub", "github", "acr", "harbor", "quay", "distribution", "generic"]

# cosign stores signatures, attestations and SBOMs as tags `sha256-<hex>.sig|.att|.sbom`: not releases.
COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
HARBOR_PROXY_CACHE = "harbor#proxy-cache-service"
GITHUB_REGISTRY = "ghcr.io"
# Manifest media types, as opposed to the blob (layer, config) pushes a CNCF registry also notifies.
MANIFEST_MEDIA_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    }
)


class ImagePush(BaseModel):
    """One tagged image that arrived in a registry; constructing it validates every field."""

    model_config = ConfigDict(frozen=True)

    repository: str
    tag: str
    digest: str | None = None
    sender: Sender
    delivery: str | None = None

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        return check_repository(value)

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        return check_tag(value)

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        return None if value is None else check_digest(value)

    @field_validator("delivery")
    @classmethod
    def _delivery(cls, value: str | None) -> str | None:
        # Delivery ids reach logs and event payloads: keep them short and printable.
        if value is not None and not (0 < len(value) <= 128 and value.isascii() and value.isprintable()):
            raise InvalidInputError(f"invalid delivery id {_shown(value)}: expected 1-128 printable ASCII")
        return value

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


class Ignored(BaseModel):
    """A well-formed notification that is not a release to promote, and why."""

    model_config = ConfigDict(frozen=True)

    reason: str


Notification = ImagePush | Ignored
Parser = Callable[[Mapping[str, str], bytes], list[Notification]]


def _shown(value: object) -> str:
    """An excerpt of outside input for a message: escaped, so it stays on one line and harms no terminal."""
    if value is None:
        return "(missing)"
    if not isinstance(value, str):
        return f"({type(value).__name__})"
    return ascii(value) if len(value) <= 40 else ascii(value[:37] + "...")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidInputError("the body is not valid JSON") from None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where} must be a JSON object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInputError(f"{where} must be a JSON array")
    return value


def _string(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}.{key} must be a string")
    return value


def _optional_string(obj: dict[str, Any], key: str, where: str) -> str | None:
    """Missing, null and "" all mean absent: senders use each of them for "no digest"."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}.{key} must be a string")
    return value


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _registry_host(value: str | None) -> str | None:
    """The registry host of `host`, `host/path...` or `scheme://host/...`, lowercased.

    Only a first segment that reads as a registry (a dot, a port or `localhost`, as distribution/reference
    decides) counts: `registry/acme/app` would otherwise be taken for a Docker Hub path.
    """
    if not value:
        return None
    try:
        host = urlsplit(value).netloc.rpartition("@")[2] if "://" in value else value.partition("/")[0]
    except ValueError:
        raise InvalidInputError(f"invalid registry URL {_shown(value)}") from None
    if "." in host or ":" in host or host == "localhost":
        return host.lower()
    return None


def _with_host(host: str | None, path: str) -> str:
    return f"{host}/{path}" if host else path


def _release(
    sender: Sender, repository: str, tag: str | None, digest: str | None, delivery: str | None = None
) -> Notification:
    """An `ImagePush`, unless the tag says this is not a release (untagged, a cosign artefact)."""
    repository = check_repository(repository)
    if digest is not None:
        check_digest(digest)
    if not tag or tag == digest:
        return Ignored(reason=f"{repository}: untagged push")
    if tag.endswith(COSIGN_SUFFIXES):
        return Ignored(reason=f"{repository}:{check_tag(tag)}: cosign signature or attestation")
    return ImagePush(repository=repository, tag=tag, digest=digest, sender=sender, delivery=delivery)


def parse_dockerhub(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """Docker Hub sends only pushes, with no type field and no digest."""
    data = _object(_json(body), "the body")
    repository = _string(_object(data.get("repository"), "repository"), "repo_name", "repository")
    tag = _string(_object(data.get("push_data"), "push_data"), "tag", "push_data")
    return [_release("dockerhub", repository, tag, None)]


def parse_github(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """GitHub `package` / `registry_package` events, `published` with package type CONTAINER.

    GHCR sends one delivery per manifest of a multi-arch image; only the one carrying the tag counts.
    """
    data = _object(_json(body), "the body")
    event = _header(headers, "X-GitHub-Event")
    if event == "ping":
        return [Ignored(reason="github: ping")]
    if event not in ("package", "registry_package"):
        return [Ignored(reason=f"github: event {_shown(event)} is not a package event")]
    action = data.get("action")
    if action != "published":
        return [Ignored(reason=f"github: package action {_shown(action)} is not a publish")]
    package = _object(data.get(event), event)
    package_type = _string(package, "package_type", event)
    if package_type.lower() != "container":
        return [Ignored(reason=f"github: package type {_shown(package_type)} is not a container")]
    registry = package.get("registry")
    url = _optional_string(registry, "url", f"{event}.registry") if isinstance(registry, dict) else None
    host = _registry_host(url) or GITHUB_REGISTRY
    namespace = _string(package, "namespace", event).lower()
    name = _string(package, "name", event).lower()
    version = _object(package.get("package_version"), f"{event}.package_version")
    metadata = version.get("container_metadata")
    where = f"{event}.package_version.container_metadata"
    tag = _object(_object(metadata, where).get("tag"), f"{where}.tag")
    return [
        _release(
            "github",
            f"{host}/{namespace}/{name}",
            _optional_string(tag, "name", f"{where}.tag"),
            _optional_string(tag, "digest", f"{where}.tag"),
            _header(headers, "X-GitHub-Delivery"),
        )
    ]


def parse_acr(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """Azure Container Registry: `push` is a push; `ping`, `delete`, `chart_push` and others are not."""
    data = _object(_json(body), "the body")
    action = data.get("action")
    if action != "push":
        return [Ignored(reason=f"acr: action {_shown(action)} is not a push")]
    target = _object(data.get("target"), "target")
    request = data.get("request")
    host = _optional_string(request, "host", "request") if isinstance(request, dict) else None
    return [
        _release(
            "acr",
            _with_host(_registry_host(host), _string(target, "repository", "target")),
            _optional_string(target, "tag", "target"),
            _optional_string(target, "digest", "target"),
            _optional_string(data, "id", "the body"),
        )
    ]


def parse_harbor(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """Harbor's default (`PUSH_ARTIFACT`) and CloudEvents (`harbor.artifact.pushed`) formats.

    A proxy-cache project pulling an image upstream reports it as a push by `harbor#proxy-cache-service`:
    nobody released anything. An untagged artifact carries its digest as the tag.
    """
    data = _object(_json(body), "the body")
    kind = data.get("type")
    if kind == "PUSH_ARTIFACT":
        event_data, delivery = _object(data.get("event_data"), "event_data"), None
    elif kind == "harbor.artifact.pushed":
        event_data, delivery = _object(data.get("data"), "data"), _optional_string(data, "id", "the body")
    else:
        return [Ignored(reason=f"harbor: event type {_shown(kind)} is not a push")]
    if data.get("operator") == HARBOR_PROXY_CACHE:
        return [Ignored(reason="harbor: proxy-cache pull, not a push")]
    path = _string(_object(event_data.get("repository"), "repository"), "repo_full_name", "repository")
    notes: list[Notification] = []
    for index, item in enumerate(_list(event_data.get("resources"), "resources")):
        where = f"resources[{index}]"
        resource = _object(item, where)
        host = _registry_host(_optional_string(resource, "resource_url", where))
        notes.append(
            _release(
                "harbor",
                _with_host(host, path),
                _optional_string(resource, "tag", where),
                _optional_string(resource, "digest", where),
                delivery,
            )
        )
    return notes


def parse_quay(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """Quay `repo_push`: several tags at once, no digest; the registry host only appears in `docker_url`.

    Quay's "test notification" sends made-up tags for a real repository: `known_image` and the flow's own
    checks are what keep it from promoting anything.
    """
    data = _object(_json(body), "the body")
    path = _string(data, "repository", "the body")
    host = _registry_host(_string(data, "docker_url", "the body"))
    if host is None:
        raise InvalidInputError("docker_url must start with the registry host, e.g. quay.io/acme/app")
    tags = _list(data.get("updated_tags"), "updated_tags")
    if not tags:
        return [Ignored(reason=f"quay: {check_repository(path)}: no updated tags")]
    for index, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise InvalidInputError(f"updated_tags[{index}] must be a string")
    return [_release("quay", f"{host}/{path}", tag, None) for tag in tags]


def parse_distribution(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """CNCF distribution (`registry:2`, GitLab): an envelope of many events, blob pushes and pulls included."""
    events = _list(_object(_json(body), "the body").get("events"), "events")
    notes: list[Notification] = []
    for index, item in enumerate(events):
        where = f"events[{index}]"
        event = _object(item, where)
        action = event.get("action")
        if action != "push":
            notes.append(Ignored(reason=f"distribution: action {_shown(action)} is not a push"))
            continue
        target = _object(event.get("target"), f"{where}.target")
        media_type = target.get("mediaType")
        if not isinstance(media_type, str) or media_type not in MANIFEST_MEDIA_TYPES:
            notes.append(Ignored(reason="distribution: blob push, not a manifest"))
            continue
        request = event.get("request")
        host = _optional_string(request, "host", f"{where}.request") if isinstance(request, dict) else None
        notes.append(
            _release(
                "distribution",
                _with_host(_registry_host(host), _string(target, "repository", f"{where}.target")),
                _optional_string(target, "tag", f"{where}.target"),
                _optional_string(target, "digest", f"{where}.target"),
                _optional_string(event, "id", where),
            )
        )
    return notes


def parse_generic(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """`{"repository", "tag", "digest"?}` from any sender able to sign the body (CI jobs, scripts)."""
    data = _object(_json(body), "the body")
    return [
        _release(
            "generic",
            _string(data, "repository", "the body"),
            _string(data, "tag", "the body"),
            _optional_string(data, "digest", "the body"),
        )
    ]


PARSERS: dict[Sender, Parser] = {
    "dockerhub": parse_dockerhub,
    "github": parse_github,
    "acr": parse_acr,
    "harbor": parse_harbor,
    "quay": parse_quay,
    "distribution": parse_distribution,
    "generic": parse_generic,
}
