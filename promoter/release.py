"""A release is an image repository, a tag and optionally a digest, each checked against the OCI grammar.

`resolve_apps` answers "which `<group>/<app>` does this image feed?" from the repository itself, by reading
the setter markers and the image references they mark, so a registry event needs no extra mapping.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from promoter.config import Config
from promoter.errors import InvalidInputError, ManifestError
from promoter.manifests import YAML_SUFFIXES, find_markers, policies
from promoter.names import Digest, Repository, Tag, canonical_repository, check_repository
from promoter.validation import first_problem
from promoter.workspace import Snapshot


class Release(BaseModel):
    """One pushed image. `image` is the repository without tag, e.g. `ghcr.io/acme/podinfo`."""

    model_config = ConfigDict(frozen=True)

    image: Repository
    tag: Tag
    digest: Digest | None = None

    @classmethod
    def of(cls, image: str, tag: str, digest: str | None = None) -> Release:
        """A release from outside input (an event, a hand-started run): bad input is one clear line."""
        try:
            return cls(image=image, tag=tag, digest=digest or None)
        except ValidationError as error:
            raise InvalidInputError(f"invalid release: {first_problem(error)}") from None

    def __str__(self) -> str:
        return f"{self.image}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


def resolve_apps(root: Path | str, config: Config, image: str) -> list[tuple[str, str]]:
    """The sorted `(group, app)` pairs whose markers refer to `image`, in any environment of `config`.

    Docker Hub's short names are compared in their canonical form; files that are not valid YAML or not
    UTF-8 are passed over here (the rewrite of that environment reports them).
    """
    wanted = canonical_repository(check_repository(image))
    root = Path(root)
    found: set[tuple[str, str]] = set()
    for group_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for env in config.environment_names:
            env_dir = group_dir / env
            if not env_dir.is_dir():
                continue
            for path in sorted(env_dir.rglob("*")):
                if path.suffix not in YAML_SUFFIXES or not path.is_file():
                    continue
                if not path.resolve().is_relative_to(root.resolve()):
                    continue
                data = path.read_bytes()
                if b"$imagepolicy" not in data:
                    continue
                try:
                    markers = find_markers(data.decode("utf-8"), str(path))
                except (UnicodeDecodeError, ManifestError):
                    continue
                for marker in markers:
                    repository = marker.repository
                    if repository and canonical_repository(repository) == wanted:
                        found.add((marker.group, marker.app))
    return sorted(found)


def resolve_apps_at(snapshot: Snapshot, config: Config, image: str) -> list[tuple[str, str]]:
    """`resolve_apps` on a commit read from git: the same answer, without a work tree."""
    wanted = canonical_repository(check_repository(image))
    found: set[tuple[str, str]] = set()
    for group in snapshot.directories(""):
        for env in config.environment_names:
            directory = f"{group}/{env}"
            if not snapshot.is_dir(directory):
                continue
            candidates = sorted(
                {path for paths in snapshot.index(directory, policies).values() for path in paths}
            )
            for path, data in snapshot.read(candidates).items():
                try:
                    markers = find_markers(data.decode("utf-8"), path)
                except (UnicodeDecodeError, ManifestError):
                    continue
                for marker in markers:
                    if marker.repository and canonical_repository(marker.repository) == wanted:
                        found.add((marker.group, marker.app))
    return sorted(found)
