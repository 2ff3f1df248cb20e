"""Rewrite Flux image-automation setter markers with a minimal byte diff.

A marker is a line comment naming an image policy, `{"$imagepolicy": "<group>:<app>[:tag|:name|:digest]"}`.
Only the marked scalar changes: comments, quoting, indentation, line endings and the other documents of
the file stay byte for byte. Positions come from PyYAML's composer rather than from a line regex, so a
marker on a mapping, a sequence or a multi-line value is recognised and refused instead of mangled.

Whole-value markers keep the registry and repository and swap the tag (and the digest where one is
pinned), unlike gitops-promotion, which wrote `<app>:<tag>` and dropped the registry.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from promoter.errors import InvalidInputError, ManifestError
from promoter.names import check_environment, check_group, check_release, parse_image_reference
from promoter.yamlsafe import YAMLInputError, compose_all, walk

Field = Literal["image", "tag", "name", "digest"]
YAML_SUFFIXES = (".yaml", ".yml")

_MARKER = re.compile(r"#\s*(\{\s*\"\$imagepolicy\"\s*:\s*\"[^\"\\]*\"\s*\})\s*$")
_POLICY_BYTES = re.compile(rb'"\$imagepolicy"\s*:\s*"([^"\\]*)"')
_SIBLING_NAMES = ("newName", "repository", "name", "image")
# Node properties before a scalar: an anchor (`&name`) and/or a tag (`!!str`). PyYAML's node starts at them.
_PROPERTIES = re.compile(r"(?:[&!][^ \t\r\n]*[ \t]+)+")
_STRING_TAGS = ("!!str", "!", "!<tag:yaml.org,2002:str>")
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()
# YAML 1.2 core schema (Go's yaml.v3, read by kustomize and Flux) types more plain scalars than PyYAML's 1.1.
_YAML12_NON_STRING = re.compile(
    r"null|Null|NULL|~|true|True|TRUE|false|False|FALSE|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.nan|\.NaN|\.NAN"
)


@dataclass(frozen=True)
class Marker:
    """One setter marker and the scalar it is attached to."""

    group: str
    app: str
    field: Field
    value: str
    line: int
    start: int
    end: int
    style: str | None
    sibling_name: str | None = None

    @property
    def tag(self) -> str | None:
        if self.field == "image" or (self.field == "tag" and _looks_like_reference(self.value)):
            return _reference_or_none(self.value, "tag")
        return self.value if self.field == "tag" else None

    @property
    def repository(self) -> str | None:
        if self.field == "image" or (self.field == "tag" and _looks_like_reference(self.value)):
            return _reference_or_none(self.value, "repository")
        if self.field == "name":
            return self.value
        return self.sibling_name


@dataclass
class RewriteResult:
    """What a rewrite did: files written (relative POSIX paths), files skipped as binary, markers seen."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    markers: int = 0


def _looks_like_reference(value: str) -> bool:
    # A bare tag never contains these; a value that does is a whole image reference under a `:tag` marker.
    return any(char in value for char in "/:@")


def _reference_or_none(value: str, part: Literal["repository", "tag"]) -> str | None:
    try:
        reference = parse_image_reference(value)
    except InvalidInputError:
        return None
    return reference.repository if part == "repository" else reference.tag


def _parse_policy(comment: str) -> tuple[str, str, Field] | None:
    try:
        policy = json.loads(comment)["$imagepolicy"]
    except (ValueError, KeyError, TypeError):
        return None
    parts = str(policy).split(":")
    if len(parts) == 2:
        return parts[0], parts[1], "image"
    if len(parts) == 3 and parts[2] in ("tag", "name", "digest"):
        return parts[0], parts[1], parts[2]  # type: ignore[return-value]
    return None


def find_markers(text: str, source: str = "<text>") -> list[Marker]:
    """Every setter marker in `text` with the scalar it marks; `ManifestError` on invalid YAML or a bad marker."""
    found: list[tuple[int, int, tuple[str, str, Field]]] = []
    for number, line in enumerate(text.splitlines()):
        match = _MARKER.search(line)
        if not match or line[: match.start()].lstrip().startswith("#"):
            continue  # no marker, or a commented-out line
        policy = _parse_policy(match.group(1))
        if policy is not None:
            found.append((number, match.start(), policy))
    if not found:
        return []
    try:
        documents = compose_all(text)
    except YAMLInputError as error:
        raise ManifestError(f"{source}:{error.line or 1}: {error}") from None

    entries: list[tuple[yaml.Node | None, yaml.Node, yaml.MappingNode | None]] = []
    for root in documents:
        entries.append((None, root, None))
        for node in walk(root):
            if isinstance(node, yaml.MappingNode):
                entries.extend((key, value, node) for key, value in node.value)
            elif isinstance(node, yaml.SequenceNode):
                entries.extend((None, item, None) for item in node.value)

    markers = []
    for number, column, (group, app, kind) in found:
        markers.append(_attach(text, entries, number, column, group, app, kind, source))
    return markers


def _attach(
    text: str,
    entries: list[tuple[yaml.Node | None, yaml.Node, yaml.MappingNode | None]],
    line: int,
    column: int,
    group: str,
    app: str,
    kind: Field,
    source: str,
) -> Marker:
    where = f"{source}:{line + 1}"
    on_line = [
        (key, value, parent)
        for key, value, parent in entries
        if value.end_mark.line == line and value.end_mark.column <= column
    ]
    if not on_line:
        if any(key is not None and key.end_mark.line == line for key, _, _ in entries):
            raise ManifestError(
                f"{where}: the marker for {group}:{app} sits on a key whose value is not a single scalar; "
                "put the marker on the line of the image or tag value itself"
            )
        raise ManifestError(f"{where}: the marker for {group}:{app} is not attached to any value")
    # The outermost node ending last before the comment is what the comment annotates.
    _, value, parent = max(on_line, key=lambda entry: (entry[1].end_mark.index, -entry[1].start_mark.index))
    if not isinstance(value, yaml.ScalarNode) or value.style in ("|", ">"):
        raise ManifestError(
            f"{where}: the marker for {group}:{app} is on a non-scalar value; "
            "setter markers belong on a single-line image or tag value"
        )
    if value.start_mark.line != line:
        raise ManifestError(
            f"{where}: the marker for {group}:{app} is on a multi-line value; write it on one line"
        )
    if value.value == "":
        raise ManifestError(
            f"{where}: the marker for {group}:{app} is on an empty value; write the current image"
        )
    start = value.start_mark.index
    properties = _PROPERTIES.match(text, start)
    if properties:
        # Keep the anchor and tag: only the scalar itself is rewritten.
        start = properties.end()
        tags = [p for p in properties.group().split() if p.startswith("!")]
        if any(tag not in _STRING_TAGS for tag in tags):
            raise ManifestError(
                f"{where}: the marker for {group}:{app} is on a value with the YAML tag {tags[0]}; "
                "an image or tag is a string: remove the tag"
            )
    sibling = None
    if parent is not None:
        names = {
            k.value: v.value
            for k, v in parent.value
            if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode)
        }
        sibling = next(
            (names[name] for name in _SIBLING_NAMES if name in names and names[name] != value.value), None
        )
    return Marker(
        group=group,
        app=app,
        field=kind,
        value=value.value,
        line=line + 1,
        start=start,
        end=value.end_mark.index,
        style=value.style,
        sibling_name=sibling,
    )


def _new_value(marker: Marker, tag: str, digest: str | None, where: str) -> str:
    if marker.field == "name":
        return marker.value
    if marker.field == "digest":
        if digest is None:
            raise ManifestError(
                f"{where}: a digest marker pins {marker.group}:{marker.app}; give the release's digest "
                "(--digest sha256:...) so the pin follows the new tag"
            )
        return digest
    if marker.field == "tag" and not _looks_like_reference(marker.value):
        return tag
    try:
        current = parse_image_reference(marker.value)
    except InvalidInputError as error:
        raise ManifestError(f"{where}: the marked value is not an image reference: {error}") from None
    if current.digest and digest is None:
        raise ManifestError(
            f"{where}: {marker.value} pins a digest; give the release's digest (--digest sha256:...) "
            "so the pin follows the new tag"
        )
    # Pin only what was pinned: a registry reports a digest with nearly every push, and pinning every
    # whole-value image would change manifests their owners wrote tag-only on purpose.
    return f"{current.repository}:{tag}" + (f"@{digest}" if digest and current.digest else "")


def _render(value: str, style: str | None) -> str:
    """Write `value` in the original quoting style; quote a plain scalar YAML would read as a non-string."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"':
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    resolved = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    if _YAML12_NON_STRING.fullmatch(value) or resolved != _STR_TAG:
        return f'"{value}"'
    return value


def rewrite_text(
    text: str, group: str, app: str, tag: str, digest: str | None = None, source: str = "<text>"
) -> tuple[str, int]:
    """Return `text` with the markers of `group:app` rewritten, and how many tag-bearing markers it had."""
    markers = [m for m in find_markers(text, source) if m.group == group and m.app == app]
    counted = sum(1 for m in markers if m.field != "name")
    for marker in sorted(markers, key=lambda m: m.start, reverse=True):
        where = f"{source}:{marker.line}"
        new = _new_value(marker, tag, digest, where)
        if new != marker.value:
            text = text[: marker.start] + _render(new, marker.style) + text[marker.end :]
    return text, counted


def policies(data: bytes) -> list[str]:
    """The `<group>:<app>` names of the setter markers in `data`; a cheap byte scan used as an index."""
    if b"$imagepolicy" not in data:
        return []
    names = {match.group(1).decode("utf-8", "replace") for match in _POLICY_BYTES.finditer(data)}
    return sorted({":".join(name.split(":")[:2]) for name in names})


@dataclass
class RewritePlan:
    """New contents per file (relative POSIX paths), files skipped as binary or not UTF-8, markers seen."""

    updates: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    markers: int = 0


def plan_rewrite(
    files: Mapping[str, bytes], group: str, app: str, env: str, tag: str, digest: str | None = None
) -> RewritePlan:
    """Rewrite the markers of `group:app` in `files` (path -> bytes) in memory; raise if there are none.

    Used both on a working tree and on a commit read from git, so both refuse and accept the same input.
    """
    check_release(group, app, env, tag, digest)
    plan = RewritePlan()
    needle = f"{group}:{app}"
    for relative, data in sorted(files.items()):
        if needle not in policies(data):
            continue
        try:
            if b"\x00" in data:
                raise UnicodeDecodeError("utf-8", data, 0, 1, "NUL byte")
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            plan.skipped.append(relative)
            continue
        new_text, counted = rewrite_text(text, group, app, tag, digest, relative)
        plan.markers += counted
        if new_text != text:
            _check_rewritten(new_text, group, app, tag, relative)
            plan.updates[relative] = new_text
    if plan.markers == 0:
        raise ManifestError(
            f'no setter marker {{"$imagepolicy": "{needle}"}} (or "{needle}:tag") under {group}/{env}/; '
            "add one as a line comment on the image or tag value"
        )
    return plan


def rewrite_environment(
    root: Path | str, group: str, app: str, env: str, tag: str, digest: str | None = None
) -> RewriteResult:
    """Point every marker of `group:app` under `<root>/<group>/<env>/` at `tag`; all files or none are written."""
    check_group(group)
    check_environment(env)
    root = Path(root).resolve()
    env_dir = root / group / env
    if not env_dir.is_dir():
        raise ManifestError(
            f"{group}/{env}/ does not exist in {root}; each group needs one directory per environment"
        )
    _inside(root, env_dir, f"{group}/{env}")
    paths = {path.relative_to(root).as_posix(): path for path in _yaml_files(root, env_dir)}
    plan = plan_rewrite(
        {relative: path.read_bytes() for relative, path in paths.items()}, group, app, env, tag, digest
    )
    _write_all({paths[relative]: text for relative, text in plan.updates.items()})
    return RewriteResult(written=sorted(plan.updates), skipped=plan.skipped, markers=plan.markers)


def _check_rewritten(text: str, group: str, app: str, tag: str, source: str) -> None:
    """Parse the result again: a file we touch must still be valid YAML carrying the new tag."""
    try:
        markers = find_markers(text, source)
    except ManifestError as error:
        raise ManifestError(f"{error} (after rewriting; nothing was written)") from None
    wrong = [
        m
        for m in markers
        if m.group == group and m.app == app and m.field in ("image", "tag") and m.tag != tag
    ]
    if wrong:
        raise ManifestError(f"{source}:{wrong[0].line}: rewrite did not take; nothing was written")


def _inside(root: Path, path: Path, shown: str) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise ManifestError(f"{shown} is a symlink that leaves the repository; refusing to read or write it")
    return resolved


def _yaml_files(root: Path, top: Path) -> list[Path]:
    files = []
    for directory, subdirs, names in os.walk(top):
        here = Path(directory)
        for name in list(subdirs):
            if (here / name).is_symlink():
                _inside(root, here / name, (here / name).relative_to(root).as_posix())
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            if name.endswith(YAML_SUFFIXES):
                path = here / name
                shown = path.relative_to(root).as_posix()
                files.append(_inside(root, path, shown) if path.is_symlink() else path)
    return files


def _write_all(updates: dict[Path, str]) -> None:
    """Replace each file atomically; if one fails, put back the ones already replaced."""
    done: list[tuple[Path, bytes]] = []
    try:
        for path, text in updates.items():
            original = path.read_bytes()
            mode = path.stat().st_mode & 0o7777
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(text.encode("utf-8"))
                os.chmod(temp, mode)
                os.replace(temp, path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
            done.append((path, original))
    except OSError as error:
        for path, original in done:
            path.write_bytes(original)
        raise ManifestError(
            f"could not write {error.filename}: {error.strerror}; nothing was changed"
        ) from None
