"""Registry push notifications, one parser per sender, each a pure function of (headers, raw body).

Registries describe a push in eleven different shapes (REFERENCE.md section 7). Each parser turns its shape
into `ImagePush` values, whose fields already passed the OCI grammars in `promoter.names`, or into
`Ignored` with a reason (pings, deletes, untagged manifests, blobs, cosign signatures, proxy-cache pulls).
`Ignored` is only for shapes the sender really sends: a body that is not the sender's shape at all (another
registry posting to the wrong URL) raises `InvalidInputError` naming the sender expected and what was
missing, so that a misconfigured registry gets a 400 instead of looking healthy forever. Anything malformed
raises `InvalidInputError` with a one-line message that quotes no more than a short, escaped excerpt of
what was sent. Authenticity is not checked here: that is the receiver's job.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from promoter.errors import InvalidInputError
from promoter.names import check_digest, check_repository, check_tag
from promoter.trailers import one_line

Sender = Literal[
    "dockerhub",
    "github",
    "acr",
    "harbor",
    "quay",
    "distribution",
    "generic",
    "gar",
    "ecr",
    "cdevents",
    "nexus",
]
# What an error tells the person who pointed a registry at the wrong URL.
SENDER_NAMES: dict[Sender, str] = {
    "dockerhub": "Docker Hub",
    "github": "GitHub Packages",
    "acr": "Azure Container Registry",
    "harbor": "Harbor",
    "quay": "Quay",
    "distribution": "CNCF distribution (registry:2, GitLab)",
    "generic": "generic signed push",
    "gar": "Google Artifact Registry (Pub/Sub push)",
    "ecr": "AWS ECR (EventBridge)",
    "cdevents": "CDEvents",
    "nexus": "Nexus Repository",
}

# cosign stores signatures, attestations and SBOMs as tags `sha256-<hex>.sig|.att|.sbom`: not releases.
COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
MAX_PUSHER = 100
HARBOR_PROXY_CACHE = "harbor#proxy-cache-service"
GITHUB_REGISTRY = "ghcr.io"
GITHUB_PACKAGE_EVENTS = ("package", "registry_package")
FORM = "application/x-www-form-urlencoded"
# The actions each sender documents; anything else is not that sender talking.
GAR_ACTIONS = ("INSERT", "DELETE")
ACR_ACTIONS = frozenset({"push", "delete", "ping", "chart_push", "chart_delete", "quarantine"})
DISTRIBUTION_ACTIONS = frozenset({"push", "pull", "delete", "mount"})
HARBOR_DEFAULT_TYPE = re.compile(r"[A-Z][A-Z_]{2,40}")
NEXUS_SETTING_KEY = re.compile(r"[A-Za-z0-9._-]{1,100}")
ECR_ACCOUNT = re.compile(r"[0-9]{12}")
ECR_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
CDEVENTS_PUBLISHED = "dev.cdevents.artifact.published."
CLOUDEVENTS_JSON = "application/cloudevents+json"
NEXUS_COMPONENT = "rm:repository:component"
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
    # What the sender says tells this push from another of the same tag when there is neither a digest nor a
    # delivery id: Docker Hub's `push_data.pushed_at`, the image id of Quay's older `updated_tags` object.
    push_id: str | None = None
    # Who pushed, where the sender says: GitHub's `sender.login`, Docker Hub's `push_data.pusher`,
    # Harbor's `operator`, distribution's `actor.name`, Nexus' `initiator` (`user/address`), the generic
    # body's `pushed_by`. A name is a record, not a key: it is made one printable line, never refused.
    pushed_by: str | None = None

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

    @field_validator("delivery", "push_id")
    @classmethod
    def _printable(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Delivery and push ids reach logs and event payloads: keep them short and printable.
        if value is not None and not (0 < len(value) <= 128 and value.isascii() and value.isprintable()):
            what = "delivery id" if info.field_name == "delivery" else "push id"
            raise InvalidInputError(f"invalid {what} {_shown(value)}: expected 1-128 printable ASCII")
        return value

    @field_validator("pushed_by")
    @classmethod
    def _pusher(cls, value: str | None) -> str | None:
        kept = one_line(value)
        return kept[:MAX_PUSHER].rstrip() if kept else None

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


def _name(obj: Any, key: str) -> str | None:
    """Who pushed, when `obj[key]` is a non-empty string; anything else is no name (never an error)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) and value.strip() else None


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


def _unrecognised(sender: Sender, missing: str) -> InvalidInputError:
    """The body is not `sender`'s shape: most likely another registry posting to this sender's URL."""
    return InvalidInputError(
        f"this is not a notification from {SENDER_NAMES[sender]}: {missing}; point each registry at its own "
        f"/hooks/<sender> URL (this one is /hooks/{sender})"
    )


def _reference_path(reference: str | None) -> str | None:
    """`host/path` of an image reference `host/path[:tag][@digest]`, lowercased; None unless it has a host.

    Tags and digests are cut off the last path segment only: `registry:5000/app:1` keeps its port.
    """
    if not reference:
        return None
    path = reference.strip().partition("@")[0]
    head, slash, last = path.rpartition("/")
    if not slash or _registry_host(path) is None:
        return None
    return f"{head}/{last.partition(':')[0]}".lower()


def _release(
    sender: Sender,
    repository: str,
    tag: str | None,
    digest: str | None,
    delivery: str | None = None,
    push_id: str | None = None,
    pushed_by: str | None = None,
) -> Notification:
    """An `ImagePush`, unless the tag says this is not a release (untagged, a cosign artefact)."""
    repository = check_repository(repository)
    if digest is not None:
        check_digest(digest)
    if not tag or tag == digest:
        return Ignored(reason=f"{repository}: untagged push")
    if tag.endswith(COSIGN_SUFFIXES):
        return Ignored(reason=f"{repository}:{check_tag(tag)}: cosign signature or attestation")
    return ImagePush(
        repository=repository,
        tag=tag,
        digest=digest,
        sender=sender,
        delivery=delivery,
        push_id=push_id,
        pushed_by=pushed_by,
    )


def parse_dockerhub(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """Docker Hub sends only pushes, with no type field and no digest.

    `push_data.pushed_at` (epoch seconds) is kept: it is all that tells a re-push of `latest` from a retry.
    """
    data = _object(_json(body), "the body")
    if not isinstance(data.get("push_data"), dict) or not isinstance(data.get("repository"), dict):
        raise _unrecognised("dockerhub", "the push_data and repository objects are missing")
    repository = _string(data["repository"], "repo_name", "repository")
    push_data = data["push_data"]
    tag = _string(push_data, "tag", "push_data")
    pushed_at = push_data.get("pushed_at")
    stamp = str(pushed_at) if isinstance(pushed_at, int | str) and not isinstance(pushed_at, bool) else None
    pusher = _name(push_data, "pusher")
    return [_release("dockerhub", repository, tag, None, push_id=stamp or None, pushed_by=pusher)]


def github_json_body(headers: Mapping[str, str], body: bytes) -> Any:
    """The delivery's JSON: the body itself, or the `payload` field of a form-encoded delivery.

    A GitHub webhook's content type can be `application/x-www-form-urlencoded`; the signature covers the
    raw body either way, and the receiver checked it before this runs.
    """
    content_type = (_header(headers, "Content-Type") or "").partition(";")[0].strip().lower()
    if content_type != FORM:
        return _json(body)
    try:
        fields = parse_qs(body.decode("ascii"), strict_parsing=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInputError("the form-encoded body is not valid: expected payload=<JSON>") from None
    payload = fields.get("payload", [])
    if len(payload) != 1:
        raise InvalidInputError("the form-encoded body must carry exactly one payload field")
    return _json(payload[0].encode("utf-8", "surrogatepass"))


def _github_repository(package: dict[str, Any], version: dict[str, Any], where: str) -> str:
    """The pull reference's repository: `package_url`, else `installation_command`, else ghcr.io/<owner>/<name>.

    `registry.url` is not used: real deliveries carry `https://CONTAINER.pkg.github.com/<owner>`, a host no
    image reference uses (REFERENCE.md section 9).
    """
    from_url = _reference_path(_optional_string(version, "package_url", f"{where}.package_version"))
    if from_url:
        return from_url
    command = _optional_string(version, "installation_command", f"{where}.package_version")
    from_command = _reference_path(command.split()[-1] if command and command.split() else None)
    if from_command:
        return from_command
    namespace = _string(package, "namespace", where)
    return f"{GITHUB_REGISTRY}/{namespace}/{_string(package, 'name', where)}".lower()


def parse_github(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """GitHub `package` / `registry_package` events, `published` or `updated`, package type CONTAINER.

    GHCR sends one delivery per manifest of a multi-arch image; only the one carrying the tag counts.
    """
    event = _header(headers, "X-GitHub-Event")
    if not event:
        raise _unrecognised("github", "the X-GitHub-Event header is missing")
    data = _object(github_json_body(headers, body), "the body")
    if event == "ping":
        return [Ignored(reason="github: ping")]
    if event not in GITHUB_PACKAGE_EVENTS:
        return [Ignored(reason=f"github: event {_shown(event)} is not a package event")]
    if not isinstance(data.get(event), dict) or not isinstance(data.get("action"), str):
        raise _unrecognised("github", f"the action and {event} fields are missing")
    action = data["action"]
    if action not in ("published", "updated"):
        return [Ignored(reason=f"github: package action {_shown(action)} is not a publish")]
    package = data[event]
    package_type = _string(package, "package_type", event)
    if package_type.lower() != "container":
        return [Ignored(reason=f"github: package type {_shown(package_type)} is not a container")]
    version = _object(package.get("package_version"), f"{event}.package_version")
    where = f"{event}.package_version.container_metadata"
    tag = _object(_object(version.get("container_metadata"), where).get("tag"), f"{where}.tag")
    return [
        _release(
            "github",
            _github_repository(package, version, event),
            _optional_string(tag, "name", f"{where}.tag"),
            _optional_string(tag, "digest", f"{where}.tag"),
            _header(headers, "X-GitHub-Delivery"),
            pushed_by=_name(data.get("sender"), "login"),
        )
    ]


def parse_acr(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """Azure Container Registry: `push` is a push; `ping`, `delete`, `chart_push` and others are not."""
    data = _object(_json(body), "the body")
    action = data.get("action")
    if not isinstance(action, str) or action not in ACR_ACTIONS:
        raise _unrecognised("acr", f"action {_shown(action)} is not one ACR sends")
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


def _harbor_event_data(data: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str | None]:
    """(type, event data when a push, delivery id) of Harbor's default or CloudEvents format."""
    kind = data.get("type")
    if kind == "PUSH_ARTIFACT":
        return kind, _object(data.get("event_data"), "event_data"), None
    if kind == "harbor.artifact.pushed":
        return kind, _object(data.get("data"), "data"), _optional_string(data, "id", "the body")
    default = isinstance(kind, str) and HARBOR_DEFAULT_TYPE.fullmatch(kind) and "event_data" in data
    cloudevent = isinstance(kind, str) and kind.startswith("harbor.") and "specversion" in data
    if not (default or cloudevent):
        raise _unrecognised("harbor", f"type {_shown(kind)} with event_data (or a harbor.* CloudEvent)")
    return str(kind), None, None


def parse_harbor(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """Harbor's default (`PUSH_ARTIFACT`), CloudEvents (`harbor.artifact.pushed`) and CDEvents formats.

    A proxy-cache project pulling an image upstream reports it as a push by `harbor#proxy-cache-service`:
    nobody released anything. An untagged artifact carries its digest as the tag.
    """
    data = _object(_json(body), "the body")
    if isinstance(data.get("data"), dict) and "context" in data["data"] and "specversion" in data:
        return _cdevents_release("harbor", data["data"])  # Harbor's CDEvents format
    kind, event_data, delivery = _harbor_event_data(data)
    if event_data is None:
        return [Ignored(reason=f"harbor: event type {_shown(kind)} is not a push")]
    if data.get("operator") == HARBOR_PROXY_CACHE:
        return [Ignored(reason="harbor: proxy-cache pull, not a push")]
    path = _string(_object(event_data.get("repository"), "repository"), "repo_full_name", "repository")
    operator = _name(data, "operator")
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
                pushed_by=operator,
            )
        )
    return notes


def parse_quay(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """Quay `repo_push`: several tags at once, no digest; the registry host only appears in `docker_url`.

    `updated_tags` is a list of tags; older Quay sent an object of tag -> image id, and that id is kept
    as what tells a re-push from a retry (docs.quay.io/guides/notifications.html has shown both). Quay's
    "test notification" sends made-up tags for a real repository: `known_image` and the flow's own checks
    are what keep it from promoting anything.
    """
    data = _object(_json(body), "the body")
    tags = data.get("updated_tags")
    if not all(isinstance(data.get(key), str) for key in ("repository", "docker_url")) or not isinstance(
        tags, list | dict
    ):
        raise _unrecognised("quay", "the repository, docker_url and updated_tags fields are missing")
    path = data["repository"]
    host = _registry_host(data["docker_url"])
    if host is None:
        raise InvalidInputError("docker_url must start with the registry host, e.g. quay.io/acme/app")
    if not tags:
        return [Ignored(reason=f"quay: {check_repository(path)}: no updated tags")]
    pairs = list(tags.items()) if isinstance(tags, dict) else [(tag, None) for tag in tags]
    for index, (tag, image) in enumerate(pairs):
        if not isinstance(tag, str) or not (image is None or isinstance(image, str)):
            raise InvalidInputError(f"updated_tags[{index}] must be a string")
    return [_release("quay", f"{host}/{path}", tag, None, push_id=image or None) for tag, image in pairs]


def parse_distribution(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """CNCF distribution (`registry:2`, GitLab): an envelope of many events, blob pushes and pulls included."""
    data = _object(_json(body), "the body")
    if not isinstance(data.get("events"), list):
        raise _unrecognised("distribution", "the events array is missing")
    notes: list[Notification] = []
    for index, item in enumerate(data["events"]):
        where = f"events[{index}]"
        event = _object(item, where)
        action = event.get("action")
        if not isinstance(action, str) or action not in DISTRIBUTION_ACTIONS:
            raise _unrecognised(
                "distribution", f"{where}.action {_shown(action)} is not one a registry sends"
            )
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
                pushed_by=_name(event.get("actor"), "name"),
            )
        )
    return notes


def parse_generic(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """`{"repository", "tag", "digest"?}` from any sender able to sign the body (CI jobs, scripts)."""
    data = _object(_json(body), "the body")
    if "repository" not in data or "tag" not in data:
        raise _unrecognised("generic", 'the "repository" and "tag" fields are missing')
    return [
        _release(
            "generic",
            _string(data, "repository", "the body"),
            _string(data, "tag", "the body"),
            _optional_string(data, "digest", "the body"),
            pushed_by=_name(data, "pushed_by"),
        )
    ]


def _split_reference(reference: str, separator: str, where: str) -> tuple[str, str]:
    """`host/path<separator>rest` -> (host/path, rest); the host must be there (GAR names it in full)."""
    path, found, rest = (
        reference.rpartition(separator) if separator == ":" else reference.partition(separator)
    )
    if not found or "/" not in path or _registry_host(path) is None or (separator == ":" and "/" in rest):
        raise InvalidInputError(f"{where} {_shown(reference)} is not host/path{separator}...")
    return path.lower(), rest


def _pubsub_message(headers: Mapping[str, str], data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The Artifact Registry message and the Pub/Sub message id, from a wrapped or an unwrapped push."""
    if "message" not in data and data.get("action") in GAR_ACTIONS and ("tag" in data or "digest" in data):
        return data, _header(headers, "X-Goog-Pubsub-Message-Id")  # "no wrapper" push subscription
    message = data.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("data"), str):
        raise _unrecognised("gar", "the Pub/Sub message.data field is missing")
    try:
        raw = base64.b64decode(message["data"], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError("message.data is not valid base64") from None
    inner = _object(_json(raw), "message.data")
    if not isinstance(inner.get("action"), str):
        raise _unrecognised("gar", "message.data carries no action")
    message_id = message.get("messageId", message.get("message_id"))
    return inner, message_id if isinstance(message_id, str) and message_id else None


def parse_gar(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """Google Artifact Registry through a Pub/Sub push subscription on the `gcr` topic.

    `INSERT` with a tag is a tag pushed; `INSERT` with a digest only is an untagged upload; `DELETE` is a
    deletion. `tag` and `digest` are full references (`host/project/repo/image:tag`, `...@sha256:...`).
    """
    message, delivery = _pubsub_message(headers, _object(_json(body), "the body"))
    action = message["action"]
    if action != "INSERT":
        return [Ignored(reason=f"gar: action {_shown(action)} is not a push")]
    tag_ref = _optional_string(message, "tag", "message.data")
    digest_ref = _optional_string(message, "digest", "message.data")
    if tag_ref is None:
        if digest_ref is None:
            raise InvalidInputError("message.data has neither tag nor digest")
        return [
            Ignored(
                reason=f"gar: {_split_reference(digest_ref, '@', 'message.data.digest')[0]}: untagged push"
            )
        ]
    repository, tag = _split_reference(tag_ref, ":", "message.data.tag")
    digest = None
    if digest_ref is not None:
        digest_repository, digest = _split_reference(digest_ref, "@", "message.data.digest")
        if digest_repository != repository:
            raise InvalidInputError("message.data: tag and digest name different repositories")
    return [_release("gar", repository, tag, digest, delivery)]


def _ecr_host(data: dict[str, Any]) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com` (`.com.cn` in the China regions), from the event envelope."""
    account, region = data.get("account"), data.get("region")
    if not isinstance(account, str) or not ECR_ACCOUNT.fullmatch(account):
        raise InvalidInputError(f"account {_shown(account)} is not a 12-digit AWS account id")
    if not isinstance(region, str) or not ECR_REGION.fullmatch(region):
        raise InvalidInputError(f"region {_shown(region)} is not an AWS region, e.g. eu-west-1")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}"


def parse_ecr(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """AWS ECR events as an EventBridge API destination posts them: the event itself, unchanged.

    Only `ECR Image Action` with `action-type` PUSH and `result` SUCCESS is a push; a push by digest carries
    an empty `image-tag`.
    """
    data = _object(_json(body), "the body")
    kind = data.get("detail-type")
    if (
        data.get("source") != "aws.ecr"
        or not isinstance(kind, str)
        or not isinstance(data.get("detail"), dict)
    ):
        raise _unrecognised("ecr", "source aws.ecr, detail-type and detail are missing")
    if kind != "ECR Image Action":
        return [Ignored(reason=f"ecr: {_shown(kind)} is not an image action")]
    detail = data["detail"]
    action, result = detail.get("action-type"), detail.get("result")
    if action != "PUSH" or result != "SUCCESS":
        return [Ignored(reason=f"ecr: {_shown(action)} {_shown(result)} is not a successful push")]
    return [
        _release(
            "ecr",
            f"{_ecr_host(data)}/{_string(detail, 'repository-name', 'detail')}",
            _optional_string(detail, "image-tag", "detail"),
            _optional_string(detail, "image-digest", "detail"),
            _optional_string(data, "id", "the body"),
        )
    ]


def _cdevent(headers: Mapping[str, str], data: dict[str, Any]) -> dict[str, Any]:
    """The CDEvent of a CloudEvent in binary mode (the body) or structured mode (its `data`)."""
    content_type = (_header(headers, "Content-Type") or "").partition(";")[0].strip().lower()
    if content_type == CLOUDEVENTS_JSON or ("specversion" in data and "context" not in data):
        return _object(data.get("data"), "data")
    return data


def _purl(purl: str) -> tuple[str, str | None, dict[str, list[str]]] | None:
    """(name, version, qualifiers) of a `pkg:oci/...` package URL, or None for another package type."""
    if not purl.startswith("pkg:"):
        raise InvalidInputError(f"subject.id {_shown(purl)} is not a package URL (pkg:...)")
    rest = purl.removeprefix("pkg:").lstrip("/").partition("#")[0]
    path, _, query = rest.partition("?")
    kind, _, name_version = path.partition("/")
    if kind.lower() != "oci":
        return None
    name, at, version = name_version.partition("@")
    try:
        qualifiers = parse_qs(query, max_num_fields=20) if query else {}
    except ValueError:
        raise InvalidInputError(f"subject.id {_shown(purl)} has malformed qualifiers") from None
    return unquote(name), unquote(version) if at else None, qualifiers


def parse_cdevents(headers: Mapping[str, str], body: bytes) -> list[Notification]:
    """CDEvents `dev.cdevents.artifact.published.*`, as a CloudEvent in binary or structured mode."""
    return _cdevents_release("cdevents", _cdevent(headers, _object(_json(body), "the body")))


def _cdevents_release(sender: Sender, event: dict[str, Any]) -> list[Notification]:
    """The artifact of a CDEvent: a purl, `pkg:oci/<name>@<digest>?repository_url=...&tag=...`.

    The purl's `repository_url` qualifier names the repository (Harbor writes the whole reference there,
    tag and digest included); without it the name is a Docker Hub name. Its `tag` qualifier is the tag.
    """
    context = event.get("context")
    kind = context.get("type") if isinstance(context, dict) else None
    if not isinstance(context, dict) or not isinstance(kind, str) or not kind.startswith("dev.cdevents."):
        raise _unrecognised(sender, "context.type dev.cdevents.* is missing")
    if not kind.startswith(CDEVENTS_PUBLISHED):
        return [Ignored(reason=f"{sender}: {_shown(kind)} is not an artifact publish")]
    purl = _string(_object(event.get("subject"), "subject"), "id", "subject")
    parsed = _purl(purl)
    if parsed is None:
        return [Ignored(reason=f"{sender}: {_shown(purl)} is not an OCI image")]
    name, digest, qualifiers = parsed
    location = qualifiers.get("repository_url", [None])[0]
    if location is not None and "://" in location:
        location = location.partition("://")[2]
    repository = _reference_path(location) or (location or name).lower()
    tag = qualifiers.get("tag", [None])[0]
    return [_release(sender, repository, tag, digest, _optional_string(context, "id", "context"))]


def parse_nexus(
    headers: Mapping[str, str], body: bytes, hosts: Mapping[str, str] | None = None
) -> list[Notification]:
    """Nexus Repository `rm:repository:component` webhooks; a docker component is an image, its version a tag.

    The payload names the Nexus repository, not the registry host a client pulls from (a connector port or
    a path per repository), so `hosts` maps repository names to that host. `CREATED` and `UPDATED` count:
    a re-pushed tag updates its component.
    """
    data = _object(_json(body), "the body")
    kind = _header(headers, "X-Nexus-Webhook-Id")
    if not isinstance(data.get("repositoryName"), str) or not isinstance(data.get("action"), str):
        raise _unrecognised("nexus", "the repositoryName and action fields are missing")
    if kind not in (None, NEXUS_COMPONENT) or ("component" not in data and "asset" in data):
        return [Ignored(reason=f"nexus: {_shown(kind)} is not a component event")]
    if "component" not in data:
        raise _unrecognised("nexus", "the component object is missing")
    component = _object(data["component"], "component")
    repository_name, action = data["repositoryName"], data["action"]
    if _optional_string(component, "format", "component") != "docker":
        return [Ignored(reason=f"nexus: {_shown(repository_name)} is not a docker repository")]
    if action not in ("CREATED", "UPDATED"):
        return [Ignored(reason=f"nexus: action {_shown(action)} is not a push")]
    host = (hosts or {}).get(repository_name)
    if host is None:
        # The hint repeats the name only where it could be pasted into the setting as it stands.
        key = repository_name if NEXUS_SETTING_KEY.fullmatch(repository_name) else "<repository>"
        raise InvalidInputError(
            f"nexus repository {_shown(repository_name)} has no registry host: add "
            f"{key}=<host[:port][/path]> to PROMOTER_WEBHOOK_NEXUS_REGISTRIES"
        )
    return [
        _release(
            "nexus",
            f"{host}/{_string(component, 'name', 'component')}",
            _optional_string(component, "version", "component"),
            None,
            _header(headers, "X-Nexus-Webhook-Delivery"),
            pushed_by=(_name(data, "initiator") or "").partition("/")[0] or None,  # user/address
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
    "gar": parse_gar,
    "ecr": parse_ecr,
    "cdevents": parse_cdevents,
    "nexus": parse_nexus,
}
