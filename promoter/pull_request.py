"""Branch names, PR titles and PR bodies exactly as gitops-promotion writes them.

Teams migrating keep their branch protection rules, dashboards and open PRs, so these strings are
byte-compatible with gitops-promotion v1.4.0. The body carries the promotion's state as JSON in an HTML
comment; the parser tolerates what people type around it, and checks every field it reads back.

A release pinned by digest adds one key, `digest`, after gitops-promotion's keys, so the pin follows the
tag from one environment to the next. gitops-promotion reads the comment with Go's `encoding/json` into a
struct, which ignores unknown keys (REFERENCE.md section 9), so its PRs and ours stay readable both ways;
without a digest the comment is byte-identical to gitops-promotion's.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from promoter.errors import InvalidInputError
from promoter.names import AppName, EnvironmentName, GroupName, Tag, check_digest, for_pydantic
from promoter.validation import first_problem

PRFlow = Literal["per-app", "per-env"]
_METADATA = re.compile(r"<!--\s*metadata\s*=\s*(.*?)\s*-->", re.DOTALL)
_SHA = re.compile(r"[0-9a-f]{0,64}")


class PRState(BaseModel):
    """The metadata of a promotion PR; field order is the JSON key order gitops-promotion writes."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    group: GroupName
    app: AppName
    tag: Tag
    env: EnvironmentName
    sha: str = ""
    feature: str = ""
    type: Literal["promote", "feature"] = "promote"
    digest: str = ""

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        return for_pydantic(check_digest, value) if value else value

    @field_validator("sha")
    @classmethod
    def _sha(cls, value: str) -> str:
        if not _SHA.fullmatch(value):
            raise ValueError("sha must be empty or a hex commit id")
        return value

    def branch_name(self, prflow: PRFlow) -> str:
        return branch_name(self.group, self.app, self.env, prflow, self.type)

    def title(self) -> str:
        if self.type == "feature":
            return f"Review {self.group}/{self.app} feature {self.tag} in environment {self.env}"
        return f"Promote {self.group}/{self.app} version {self.tag} to environment {self.env}"

    def body(self) -> str:
        metadata = self.model_dump(exclude={"digest"} if not self.digest else set())
        pinned = f"\n\tDIGEST: {self.digest}" if self.digest else ""
        return f"<!-- metadata = {_go_json(metadata)} -->\n\tENV: {self.env}\n\tAPP: {self.app}\n\tTAG: {self.tag}{pinned}"


def branch_name(group: str, app: str, env: str, prflow: PRFlow, kind: str = "promote") -> str:
    """`promote/<group>-<app>` per app, `promote/<env>/<group>-<app>` per environment."""
    if prflow == "per-env":
        return f"{kind}/{env}/{group}-{app}"
    return f"{kind}/{group}-{app}"


def _go_json(data: dict[str, object]) -> str:
    """JSON as Go's encoding/json writes it: compact, with <, > and & escaped."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def parse_body(body: str | None) -> PRState:
    """Read the metadata back from a PR body; `InvalidInputError` says what is missing or wrong."""
    match = _METADATA.search(body or "")
    if match is None:
        raise InvalidInputError(
            "the PR description has no promotion metadata comment (<!-- metadata = {...} -->); "
            "it was not opened by promoter or gitops-promotion, or the comment was deleted: restore it or re-run `new`"
        )
    try:
        data = json.loads(match.group(1))
    except json.JSONDecodeError as error:
        raise InvalidInputError(
            f"the PR's promotion metadata is not valid JSON ({error.msg} at character {error.pos}); "
            "restore the comment as promoter wrote it or re-run `new`"
        ) from None
    except (ValueError, RecursionError):
        # Numbers beyond Python's digit limit, arrays nested thousands deep: nothing promoter wrote.
        raise InvalidInputError(
            "the PR's promotion metadata cannot be read (a number too long or nesting too deep); "
            "restore the comment as promoter wrote it or re-run `new`"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInputError("the PR's promotion metadata must be a JSON object")
    try:
        return PRState.model_validate(data)
    except ValidationError as error:
        raise InvalidInputError(
            f"the PR's promotion metadata is wrong: {first_problem(error)}; restore the comment as "
            "promoter wrote it or re-run `new`"
        ) from None
