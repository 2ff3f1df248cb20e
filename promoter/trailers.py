"""The record a promotion leaves in git: trailers on each environment's merge commit.

Prefect deletes artifacts and events after its retention period; the GitOps repository keeps its history as
long as it exists. So every merge the promoter makes, or asks the forge to make (auto-merge), ends its
message with a trailer block that `git interpret-trailers --parse` and `git log --format=%(trailers)`
read back:

    Release: ghcr.io/acme/podinfo:a8b91c33@sha256:<64 hex>     (no "@..." for a release without digest)
    Promoted-by: promoter (flow run <id>)                       ("promoter (cli)" from the command line)
    Approved-by: alice (declared)                                (only after an approval; or "(verified)")
    Break-glass: alice: <why>                                    (when someone let it through a freeze)
    Pushed-by: bob                                               (when the registry said who pushed)
    Flow-Run: https://prefect.example/runs/flow-run/<id>         (when run under Prefect)

The trailers are the last paragraph, after a blank line, as git-interpret-trailers(1) requires; each value
is one line, so no input can add a trailer of its own or end the block early.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from promoter.errors import InvalidInputError

MAX_VALUE = 300
TRAILER_KEYS = ("Release", "Promoted-by", "Approved-by", "Break-glass", "Pushed-by", "Flow-Run")
Approval = Literal["verified", "declared"]


def check_value(key: str, value: str) -> str:
    """A trailer value as git keeps it: one line, no surrounding blanks, printable, not too long."""
    if not value or value != value.strip() or len(value) > MAX_VALUE:
        raise InvalidInputError(
            f"invalid {key} trailer value {value[:60]!r}: expected 1-{MAX_VALUE} characters without "
            "leading or trailing blanks"
        )
    if any(not character.isprintable() for character in value):
        raise InvalidInputError(
            f"invalid {key} trailer value {value[:60]!r}: newlines and control characters would break "
            "the trailer block"
        )
    return value


def one_line(value: str | None) -> str | None:
    """A name someone typed or a registry sent, made safe for a trailer: blanks collapsed, control
    characters dropped, cut to length; None when nothing is left. A declared name must not fail a merge
    that was approved."""
    if value is None:
        return None
    kept = "".join(character if character.isprintable() else " " for character in value)
    return " ".join(kept.split())[:MAX_VALUE].strip() or None


class MergeRecord(BaseModel):
    """Who and what a merge promotes; a task parameter, so it is plain data."""

    model_config = ConfigDict(frozen=True)

    release: str
    promoted_by: str
    approved_by: str | None = None
    approval: Approval = "declared"
    break_glass: str | None = None
    pushed_by: str | None = None
    flow_run_url: str | None = None

    @field_validator("release", "promoted_by", "approved_by", "break_glass", "pushed_by", "flow_run_url")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        return None if value is None else check_value("merge record", value)

    @classmethod
    def of(
        cls,
        image: str,
        tag: str,
        digest: str | None = None,
        *,
        flow_run_id: str | None = None,
        flow_run_url: str | None = None,
        approved_by: str | None = None,
        approval: Approval = "declared",
        pushed_by: str | None = None,
    ) -> MergeRecord:
        """`flow_run_id` None means the command line."""
        return cls(
            release=release_value(image, tag, digest),
            promoted_by=promoted_by(flow_run_id),
            approved_by=one_line(approved_by),
            approval=approval,
            pushed_by=one_line(pushed_by),
            flow_run_url=flow_run_url or None,
        )

    def approved(self, login: str, approval: Approval = "declared") -> MergeRecord:
        """The same record after `login` approved it (the Prefect form only declares a name)."""
        return self.model_copy(update={"approved_by": one_line(login), "approval": approval})

    def broke_glass(self, who: str, why: str) -> MergeRecord:
        """The same record after `who` let it through a freeze, saying `why`."""
        return self.model_copy(update={"break_glass": one_line(f"{who}: {why}" if why else who)})

    def trailers(self) -> list[tuple[str, str]]:
        """(key, value) pairs in a fixed order, optional ones left out when unknown."""
        pairs = [("Release", self.release), ("Promoted-by", self.promoted_by)]
        if self.approved_by:
            pairs.append(("Approved-by", f"{self.approved_by} ({self.approval})"))
        if self.break_glass:
            pairs.append(("Break-glass", self.break_glass))
        if self.pushed_by:
            pairs.append(("Pushed-by", self.pushed_by))
        if self.flow_run_url:
            pairs.append(("Flow-Run", self.flow_run_url))
        return pairs


def release_value(image: str, tag: str, digest: str | None = None) -> str:
    """`<image>:<tag>@<digest>`, the form `docker pull` takes; a release without digest has no `@`."""
    return check_value("Release", f"{image}:{tag}" + (f"@{digest}" if digest else ""))


def promoted_by(flow_run_id: str | None) -> str:
    return check_value(
        "Promoted-by", f"promoter (flow run {flow_run_id})" if flow_run_id else "promoter (cli)"
    )


def trailer_block(record: MergeRecord) -> str:
    return "\n".join(f"{key}: {value}" for key, value in record.trailers())


def with_trailers(body: str, record: MergeRecord | None) -> str:
    """`body` with the record as its last paragraph; `body` alone without a record.

    A body whose own last paragraph looks like trailers would merge with ours into one block, so the body
    is kept apart by a blank line and its trailing blank lines are dropped.
    """
    text = body.rstrip()
    if record is None:
        return text
    block = trailer_block(record)
    return f"{text}\n\n{block}" if text else block


def commit_message(headline: str, body: str, record: MergeRecord | None) -> str:
    """A whole commit message (headline, blank line, body, blank line, trailers), as Azure DevOps'
    `mergeCommitMessage` takes it."""
    rest = with_trailers(body, record)
    return f"{headline.strip()}\n\n{rest}" if rest else headline.strip()
