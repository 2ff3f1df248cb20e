"""Grammars for the names a promotion is built from, checked before any of them touches a path or a ref.

Group and app names become directory names, branch names and Kustomization names, so they follow
Kubernetes' DNS-label rule; environment names are a plain path segment; tags and digests follow the OCI
distribution grammar. Anything else, and anything that could climb out of the repository (`..`, `/`,
absolute paths, NUL, control characters), is refused with a message saying which rule was broken.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, NamedTuple

from pydantic import AfterValidator

from promoter.errors import InvalidInputError

DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
PATH_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

# distribution/reference: an optional registry host (with a dot, a port or `localhost`) and slash-separated
# lowercase path components joined by `.`, `_`, `__` or runs of `-`.
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*")
IMAGE_REFERENCE = re.compile(
    rf"(?P<repository>{REPOSITORY.pattern})(?::(?P<tag>{TAG.pattern}))?(?:@(?P<digest>{DIGEST.pattern}))?"
)


def _shown(value: str) -> str:
    """Quote a value for an error message without letting control characters reach a terminal."""
    return ascii(value) if len(value) <= 80 else ascii(value[:77] + "...")


def check_release(group: str, app: str, env: str, tag: str, digest: str | None = None) -> None:
    """Every name a bump is made of, checked before anything is read or written."""
    check_group(group)
    check_app(app)
    check_environment(env)
    check_tag(tag)
    if digest is not None:
        check_digest(digest)


def for_pydantic(check: Callable[[str], str], value: str) -> str:
    """Run a grammar check inside a pydantic validator, which reports `ValueError`s with their location."""
    try:
        return check(value)
    except InvalidInputError as error:
        raise ValueError(str(error)) from None


def check_group(value: str, what: str = "group") -> str:
    if not DNS_LABEL.fullmatch(value):
        raise InvalidInputError(
            f"invalid {what} name {_shown(value)}: use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (it becomes a directory, branch and Kustomization name)"
        )
    return value


def check_app(value: str) -> str:
    return check_group(value, "app")


def check_environment(value: str) -> str:
    if not PATH_SEGMENT.fullmatch(value) or set(value) <= {"."}:
        raise InvalidInputError(
            f"invalid environment name {_shown(value)}: use letters, digits, '_', '.' and '-' "
            "(a single directory name, at most 63 characters, not starting with '.' or '-')"
        )
    return value


def parse_app_ref(text: str, flag: str = "--app") -> tuple[str, str]:
    """`<group>/<app>` as a command line gives it (`promoter board --app apps/podinfo`), both checked."""
    group, slash, app = text.partition("/")
    if not slash:
        raise InvalidInputError(f"{flag} {_shown(text)}: give <group>/<app>, e.g. apps/podinfo")
    return check_group(group), check_app(app)


def check_tag(value: str) -> str:
    if not TAG.fullmatch(value):
        raise InvalidInputError(
            f"invalid image tag {_shown(value)}: an OCI tag is 1-128 characters of letters, digits, "
            "'_', '.' and '-', not starting with '.' or '-'"
        )
    return value


def check_digest(value: str) -> str:
    if not DIGEST.fullmatch(value):
        raise InvalidInputError(
            f"invalid image digest {_shown(value)}: expected 'sha256:' followed by 64 lowercase hex digits"
        )
    return value


def check_repository(value: str) -> str:
    if not REPOSITORY.fullmatch(value) or len(value) > 255:
        raise InvalidInputError(
            f"invalid image repository {_shown(value)}: expected [registry[:port]/]path with lowercase "
            "components, e.g. ghcr.io/acme/podinfo"
        )
    return value


class ImageReference(NamedTuple):
    """`[registry/]path[:tag][@digest]`, split as the OCI distribution grammar reads it."""

    repository: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        return (
            self.repository
            + (f":{self.tag}" if self.tag else "")
            + (f"@{self.digest}" if self.digest else "")
        )


def parse_image_reference(value: str) -> ImageReference:
    match = IMAGE_REFERENCE.fullmatch(value)
    if not match or len(match["repository"]) > 255:
        raise InvalidInputError(
            f"invalid image reference {_shown(value)}: expected [registry[:port]/]path[:tag][@sha256:<hex>]"
        )
    return ImageReference(match["repository"], match["tag"], match["digest"])


def canonical_repository(repository: str) -> str:
    """Docker Hub's short forms (`nginx`, `library/nginx`, `index.docker.io/...`) name one repository."""
    first, _, rest = repository.partition("/")
    has_domain = bool(rest) and ("." in first or ":" in first or first == "localhost")
    if not has_domain:
        return "docker.io/" + (repository if rest else f"library/{repository}")
    if first in ("index.docker.io", "registry-1.docker.io"):
        return "docker.io/" + rest
    return repository


def _field(check: Callable[[str], str]) -> AfterValidator:
    return AfterValidator(lambda value: for_pydantic(check, value))


# The grammars as pydantic field types, so models declare a field once and get the check with it.
GroupName = Annotated[str, _field(check_group)]
AppName = Annotated[str, _field(check_app)]
EnvironmentName = Annotated[str, _field(check_environment)]
Tag = Annotated[str, _field(check_tag)]
Digest = Annotated[str, _field(check_digest)]
Repository = Annotated[str, _field(check_repository)]
