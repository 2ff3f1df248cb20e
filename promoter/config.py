"""`gitops-promotion.yaml`: the environments a release walks through, in order.

Compatible with gitops-promotion's file, minus its defects: an integer `status_timeout_minutes` means
minutes (not nanoseconds) and a duration string such as "10m" or "90s" is accepted; an unknown key is an
error naming the file, the line and the nearest valid key instead of being ignored.

Three keys are promoter's own: an environment's `reporters`, the Flux clusters that must all report it
healthy (see `parse_reporters`), its `require`d commit status contexts (`parse_required`), and its
`approval` policy (`promoter.approval_policy`). gitops-promotion
decodes the file with `yaml.v2`'s `NewDecoder` without `SetStrict` (`LoadConfig` in its
`pkg/config/config.go`), which skips keys it does not know, so a file that uses them still loads there.
"""

from __future__ import annotations

import difflib
import math
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from promoter.approval_policy import ApprovalPolicy
from promoter.errors import ConfigError
from promoter.names import AppName, EnvironmentName, GroupName
from promoter.validation import describe, location
from promoter.yamlsafe import YAMLInputError, compose_all, walk

CONFIG_FILE = "gitops-promotion.yaml"
DEFAULT_STATUS_TIMEOUT = timedelta(minutes=5)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(value: Any) -> timedelta:
    """An integer is minutes (as the key's name says); a string is a Go-style duration ("1h30m", "90s")."""
    try:
        return _duration(value)
    except OverflowError:
        raise ValueError("is too large for a duration; use at most a few days") from None


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("expected a number of minutes or a duration such as '10m' or '90s'")
    if isinstance(value, int | float):
        minutes = float(value)
    else:
        text = value.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            minutes = float(text)
        elif text.startswith("-"):
            raise ValueError("must not be negative")
        else:
            parts = _DURATION_PART.findall(text)
            if not text or "".join(n + u for n, u in parts) != text:
                raise ValueError(
                    f"{value!r} is not a duration: use minutes (5) or units h, m, s, ms ('1h30m', '90s')"
                )
            return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))
    if not math.isfinite(minutes):
        raise ValueError("must be a finite number of minutes")
    if minutes < 0:
        raise ValueError("must not be negative")
    return timedelta(minutes=minutes)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

_REPORTER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,252}")
MAX_REPORTERS = 64


def parse_reporters(value: Any) -> int | tuple[str, ...] | None:
    """Who must report an environment healthy when several clusters serve it under one Kustomization name.

    A number N: N distinct reporters (each Flux Provider posts its own context,
    `kustomization/<name>/<first 8 hex of its UID>`). A list: exactly those reporters, each the context's
    cluster part (the 8 hex, or the cluster name a `commitStatusExpr` puts there) or a whole context;
    statuses from anyone else are then ignored. Unset: one reporter, as gitops-promotion assumes.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | list | tuple):
        raise ValueError(
            "expected a number of clusters (reporters: 2) or a list of the contexts' cluster parts "
            "(reporters: [0c9c2e41, 7f3a9b12])"
        )
    if isinstance(value, int):
        if not 1 <= value <= MAX_REPORTERS:
            raise ValueError(f"must be between 1 and {MAX_REPORTERS} clusters")
        return value
    names = list(value)
    if not 1 <= len(names) <= MAX_REPORTERS:
        raise ValueError(f"list 1 to {MAX_REPORTERS} reporters, or give their number (reporters: 2)")
    number = next((n for n in names if isinstance(n, int | float) and not isinstance(n, bool)), None)
    if number is not None:
        # YAML reads 01234567 as an octal number: the hex would silently change.
        raise ValueError(f"{number!r} is a YAML number, not a name: quote reporter names, e.g. '01234567'")
    bad = next((n for n in names if not isinstance(n, str) or not _REPORTER.fullmatch(n)), None)
    if bad is not None:
        raise ValueError(
            f"{bad!r} is not a reporter: write the cluster part of Flux's status context "
            "(the 8 hex of kustomization/<name>/0c9c2e41, or a commitStatusExpr cluster name)"
        )
    lowered = [n.lower() for n in names]
    repeated = sorted({n for n in lowered if lowered.count(n) > 1})
    if repeated:
        raise ValueError(f"reporters must be unique; repeated: {', '.join(repeated)}")
    return tuple(names)


Reporters = Annotated[int | tuple[str, ...] | None, BeforeValidator(parse_reporters)]

MAX_REQUIRED = 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Contexts the promoter reads already: its own check, and Flux's (`fluxcd` is Flux's Azure DevOps genre).
_OURS = re.compile(r"(?:promoter|kustomization/.*|fluxcd(?::[^/]*)?/.*)", re.IGNORECASE | re.DOTALL)


def parse_required(value: Any) -> tuple[str, ...]:
    """The commit status contexts that must say success on an environment's applied commit, besides Flux.

    Test suites and scanners that post a status (`e2e/smoke`, `security/scan`) become gates. On Azure
    DevOps a context is `genre/name` (see `promoter.health.RequiredContexts`). Compared without case, as
    Flux's contexts are.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        raise ValueError(f"expected a list of commit status contexts, e.g. [{value}]")
    if not isinstance(value, list | tuple):
        raise ValueError("expected a list of commit status contexts, e.g. [e2e/smoke, security/scan]")
    if not 1 <= len(value) <= MAX_REQUIRED:
        raise ValueError(f"list 1 to {MAX_REQUIRED} contexts, or leave require out")
    for context in value:
        if not isinstance(context, str):
            raise ValueError(
                f"{context!r} is not a commit status context: write its name as the forge shows it, "
                "quoted if YAML reads it as a number or a boolean"
            )
        if not context.strip() or _CONTROL.search(context):
            raise ValueError(f"{context!r} is not a commit status context: it must be non-empty plain text")
        if context != context.strip() or context.startswith("/") or context.endswith("/"):
            raise ValueError(
                f"{context!r} is not a commit status context: no spaces or '/' at its ends "
                "(on Azure DevOps write genre/name, e.g. e2e/smoke)"
            )
        if _OURS.fullmatch(context):
            raise ValueError(
                f"{context!r} is already read: 'promoter' is the promoter's own check and "
                "kustomization/... (genre fluxcd) are Flux's statuses; list only other checks "
                "(set reporters for more Flux clusters)"
            )
    lowered = [c.lower() for c in value]
    repeated = sorted({c for c in lowered if lowered.count(c) > 1})
    if repeated:
        raise ValueError(f"require must list each context once; repeated: {', '.join(repeated)}")
    return tuple(value)


Required = Annotated[tuple[str, ...], BeforeValidator(parse_required)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Environment(_Strict):
    name: EnvironmentName
    auto: bool = False
    reporters: Reporters = None
    require: Required = ()
    approval: ApprovalPolicy | None = None

    @model_validator(mode="after")
    def _approval_needs_a_person(self) -> Environment:
        if self.auto and self.approval is not None:
            raise ValueError(
                f"environment {self.name!r} has an approval policy but auto: true merges without anyone: "
                "set auto: false, or remove approval"
            )
        return self


class Application(_Strict):
    feature_label_selector: dict[str, str] = Field(default_factory=dict, alias="featureLabelSelector")


class Group(_Strict):
    applications: dict[AppName, Application] = Field(default_factory=dict)


class Config(_Strict):
    prflow: Literal["per-app", "per-env"] = "per-app"
    status_timeout_minutes: Duration = DEFAULT_STATUS_TIMEOUT
    environments: list[Environment] = Field(min_length=1)
    groups: dict[GroupName, Group] = Field(default_factory=dict)

    @field_validator("status_timeout_minutes")
    @classmethod
    def _zero_means_default(cls, value: timedelta) -> timedelta:
        # gitops-promotion treats 0 as "use the default"; keep files that relied on it working.
        return value or DEFAULT_STATUS_TIMEOUT

    @field_validator("environments")
    @classmethod
    def _unique(cls, value: list[Environment]) -> list[Environment]:
        names = [env.name for env in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"environment names must be unique; repeated: {', '.join(duplicates)}")
        return value

    @property
    def status_timeout(self) -> timedelta:
        return self.status_timeout_minutes

    @property
    def environment_names(self) -> list[str]:
        return [env.name for env in self.environments]

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        raise ConfigError(
            f"unknown environment {name!r}: {CONFIG_FILE} lists {', '.join(self.environment_names)}"
        )

    def first_environment(self) -> Environment:
        return self.environments[0]

    def next_environment(self, name: str) -> Environment | None:
        index = self.environments.index(self.environment(name))
        return self.environments[index + 1] if index + 1 < len(self.environments) else None

    def previous_environment(self, name: str) -> Environment | None:
        index = self.environments.index(self.environment(name))
        return self.environments[index - 1] if index > 0 else None


def load_config(path: Path | str) -> Config:
    """Load and validate a config file; a `ConfigError` says where and what to change."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: not found; create {CONFIG_FILE} at the root of the GitOps repository "
            "listing its environments in order (see README)"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read as UTF-8 text ({error.__class__.__name__})") from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str = CONFIG_FILE) -> Config:
    try:
        documents = compose_all(text)
    except YAMLInputError as error:
        where = f":{error.line}" if error.line else ""
        raise ConfigError(f"{source}{where}: {error}") from None
    if len(documents) != 1 or not isinstance(documents[0], yaml.MappingNode):
        raise ConfigError(f"{source}: expected one YAML mapping with at least an 'environments' list")
    root = documents[0]
    _refuse_duplicate_keys(root, source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        # Composing succeeded, so this is a value that its tag cannot build (`!!python/...`, `!!omap`).
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "a value cannot be read"
        raise ConfigError(
            f"{source}{where}: {problem}; write plain values without YAML tags (!!...)"
        ) from None
    except (ValueError, OverflowError) as error:
        detail = " ".join(str(error).split())[:120]
        raise ConfigError(
            f"{source}: a value does not fit its YAML tag ({detail}); write plain values without YAML tags (!!...)"
        ) from None
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, root, source)) from None


def _refuse_duplicate_keys(root: yaml.Node, source: str) -> None:
    """A repeated key silently replaces the first (an `environments` list appended below drops a gate)."""
    for node in walk(root):
        if not isinstance(node, yaml.MappingNode):
            continue
        seen: dict[tuple[str, str], yaml.Node] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            first = seen.setdefault((key.tag, key.value), key)
            if first is not key:
                raise ConfigError(
                    f"{source}:{key.start_mark.line + 1}: key {key.value!r} is repeated "
                    f"(first on line {first.start_mark.line + 1}); keep one of them"
                )


def _describe(error: ValidationError, root: yaml.Node, source: str) -> str:
    """Turn pydantic's first error into one line: file, line, what was wrong, what to do."""
    problems = []
    for item in error.errors()[:5]:
        loc = tuple(item["loc"])
        node = _node_at(root, loc)
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        if item["type"] == "extra_forbidden":
            key = str(loc[-1])
            valid = _valid_keys(loc[:-1])
            hint = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
            suggestion = f"did you mean {hint[0]!r}?" if hint else f"valid keys here: {', '.join(valid)}"
            problems.append(f"{source}{line}: unknown key {key!r}; {suggestion}")
        elif item["type"] == "missing":
            problems.append(f"{source}{line}: missing required key {location(loc)!r}")
        else:
            problems.append(f"{source}{line}: {describe(item)}")
    return "\n".join(problems)


def _node_at(root: yaml.Node, loc: tuple[Any, ...]) -> yaml.Node | None:
    node: yaml.Node | None = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                return node
            # For an unknown key, point at the key itself.
            node = match[1] if part != loc[-1] else match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _valid_keys(parent: tuple[Any, ...]) -> list[str]:
    """The keys allowed at `parent`, found by walking the model's annotations along the error's path."""
    annotation: Any = Config
    for part in parent:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {field.alias or name: field for name, field in annotation.model_fields.items()}
            annotation = fields[str(part)].annotation if str(part) in fields else None
        else:
            # list[X] -> X, dict[str, X] -> X: the element type, whatever the index or key.
            args = get_args(annotation)
            annotation = args[-1] if args else None
        # X | None -> X
        models = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        annotation = models[0] if models and type(None) in get_args(annotation) else annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sorted(field.alias or name for name, field in annotation.model_fields.items())
    return []
