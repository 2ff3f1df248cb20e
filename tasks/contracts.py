"""The strings other programs and people rely on, each built and read in this one place.

- Run tags: how `promoter approve`, the approval sweeper and supersession find a run (Prefect's
  `FlowRunFilter` cannot filter on parameters, REFERENCE.md section 5).
- Events: `registry.image.pushed` (the webhook receiver's output, the deployment trigger's input),
  `promoter.*` on `promoter.app.<group>.<app>` (what automations and notifications hang on) and
  `forge.api.usage` (forge requests, for the receiver's `/metrics`).
- The approval form: `ApprovalInput`, the one shape of a decision, whoever makes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from prefect.input import RunInput
from pydantic import Field

# -- run tags ----------------------------------------------------------------------------------------

RUN_TAG = "promoter"
_APP, _TAG, _AT, _PR, _WAIT, _REVIEWS = "app:", "tag:", "at:", "pr:", "wait:", "reviews:"
_FROZEN = "frozen:"


def app_tag(group: str, app: str) -> str:
    return f"{_APP}{group}/{app}"


def release_tag(tag: str) -> str:
    return f"{_TAG}{tag}"


def stage_tag(env: str) -> str:
    """Where the run is: `at:start`, then `at:<env>` (prflow per-env supersedes by it)."""
    return f"{_AT}{env}"


def run_tags(
    kept: Iterable[str],
    group: str,
    app: str,
    tag: str,
    at: str,
    awaiting: int | None,
    waiting: Iterable[str] = (),
    reviews: str | None = None,
    frozen: str | None = None,
) -> list[str]:
    """The run's tags: `kept` (a user's own), then ours, replacing any of ours from before.

    `awaiting` is the PR of an approval gate; `waiting` the `wait:` tags of a suspended merge or Flux wait;
    `reviews` the fingerprint of the approvals an approval policy last found wanting (`reviews:<hex>`);
    `frozen` the environment whose freeze the run waits out (`frozen:<env>`).
    """
    own = [t for t in kept if not t.startswith((_APP, _TAG, _AT, _PR, _WAIT, _REVIEWS, _FROZEN))]
    ours = {RUN_TAG, app_tag(group, app), release_tag(tag), stage_tag(at), *waiting}
    if awaiting is not None:
        ours.add(f"{_PR}{awaiting}")
    if reviews is not None:
        ours.add(f"{_REVIEWS}{reviews}")
    if frozen is not None:
        ours.add(frozen_tag(frozen))
    return sorted({*own, *ours})


# A suspended wait outlives its deadline by this much, so the wait watcher resumes the run to end the wait
# itself (NoReport, NotMerged) before Prefect's pause expiry fails it with "paused and never resumed".
WAIT_GRACE_SECONDS = 600


def merge_wait_tag(number: int) -> str:
    """A run suspended until PR `number` merges or closes: `wait:pr:<number>`."""
    return f"{_WAIT}pr:{number}"


def flux_wait_tag(kustomization: str) -> str:
    """A run suspended until Flux reports on Kustomization `kustomization`: `wait:flux:<name>` (lowercase,
    as Flux writes the status context)."""
    return f"{_WAIT}flux:{kustomization.lower()}"


def commit_wait_tag(sha: str) -> str:
    """The commit a suspended Flux wait is about (the merge commit; a descendant's report settles it too)."""
    return f"{_WAIT}commit:{sha.lower()}"


@dataclass(frozen=True)
class Waits:
    """What a suspended run waits on, read back from its tags: a PR to merge, or Flux on a commit."""

    pr: int | None = None
    group: str | None = None
    env: str | None = None
    commit: str | None = None
    kustomization: str | None = None


def waits_of(tags: Iterable[str]) -> Waits | None:
    """The run's `wait:` tags (with its app and stage), or None when it waits on neither."""
    tags = list(tags)
    if not any(tag.startswith(_WAIT) for tag in tags):
        return None

    def value(prefix: str) -> str | None:
        return next((tag.removeprefix(prefix) for tag in tags if tag.startswith(prefix)), None)

    pr = value(f"{_WAIT}pr:")
    app = value(_APP)
    return Waits(
        pr=int(pr) if pr and pr.isdigit() else None,
        group=app.split("/", 1)[0] if app else None,
        env=value(_AT),
        commit=value(f"{_WAIT}commit:"),
        kustomization=value(f"{_WAIT}flux:"),
    )


def tag_value(tags: Iterable[str], prefix: Literal["app:", "tag:", "at:"]) -> str | None:
    """The value of the run's `app:`, `tag:` or `at:` tag, or None."""
    return next((t.removeprefix(prefix) for t in tags if t.startswith(prefix)), None)


def reviews_seen(tags: Iterable[str]) -> str | None:
    """The approvals' fingerprint a run under an approval policy suspended on, or None (no policy)."""
    return next((t.removeprefix(_REVIEWS) for t in tags if t.startswith(_REVIEWS)), None)


def frozen_tag(env: str) -> str:
    """A run suspended until `env` thaws (or someone breaks the glass): `frozen:<env>`."""
    return f"{_FROZEN}{env}"


def frozen_env(tags: Iterable[str]) -> str | None:
    """The environment whose freeze a suspended run waits out, or None."""
    return next((t.removeprefix(_FROZEN) for t in tags if t.startswith(_FROZEN)), None)


def awaited_pr(tags: Iterable[str]) -> int | None:
    """The PR a suspended run waits on (`pr:<number>`), or None."""
    for tag in tags:
        number = tag.removeprefix(_PR)
        if tag.startswith(_PR) and number.isdigit():
            return int(number)
    return None


# -- registry.image.pushed ---------------------------------------------------------------------------

REGISTRY_EVENT = "registry.image.pushed"
REGISTRY_RESOURCE = "registry.image.*"
PROMOTE_DEPLOYMENT = "promote-release/promote-release"
# What the reconciler emits when it starts the run a push's trigger did not (tasks/reconcile.py).
TRIGGER_RECOVERED = "promoter.trigger.recovered"
IMAGE, TAG, DIGEST = "promoter.image", "promoter.tag", "promoter.digest"
PUSHED_BY = "promoter.pushed-by"  # who pushed, where the registry says ("" when it does not)
# The promote-release deployment's parameters, templated from the event (served and in prefect.yaml).
TRIGGER_PARAMETERS = {
    "image": f"{{{{ event.resource['{IMAGE}'] }}}}",
    "tag": f"{{{{ event.resource['{TAG}'] }}}}",
    "digest": f"{{{{ event.resource['{DIGEST}'] }}}}",
    "pushed_by": f"{{{{ event.resource['{PUSHED_BY}'] }}}}",
    # Rendered as the event's UUID in text: the run says which push it is for (tasks/reconcile.py).
    "event_id": "{{ event.id | string }}",
}


def push_parameters(resource: Mapping[str, str], event_id: str) -> dict[str, str]:
    """What `TRIGGER_PARAMETERS` renders for an event with these resource labels (a missing label renders
    as ""), for the reconciler to start the same run the trigger would have."""
    return {
        "image": resource.get(IMAGE, ""),
        "tag": resource.get(TAG, ""),
        "digest": resource.get(DIGEST, ""),
        "pushed_by": resource.get(PUSHED_BY, ""),
        "event_id": event_id,
    }


def registry_resource(
    image: str, tag: str, digest: str | None, pushed_by: str | None = None
) -> dict[str, str]:
    return {
        "prefect.resource.id": f"registry.image.{image}",
        IMAGE: image,
        TAG: tag,
        DIGEST: digest or "",
        PUSHED_BY: pushed_by or "",
    }


# -- promoter.* events -------------------------------------------------------------------------------

AppEvent = Literal[
    "release.started",
    "release.promoted",
    "release.blocked",
    "release.superseded",
    "environment.merged",
    "environment.healthy",
    "environment.failed",
    "approval.requested",
    "approval.granted",
    "approval.rejected",
    "approval.timed-out",
    "approval.unverified",
    "freeze.broken",
]


def event_name(event: AppEvent) -> str:
    return f"promoter.{event}"


def app_resource(group: str, app: str) -> dict[str, str]:
    return {"prefect.resource.id": f"promoter.app.{group}.{app}", "prefect.resource.name": f"{group}/{app}"}


# -- forge.api.usage ---------------------------------------------------------------------------------

# The forge requests a run process made, reported beside its promoter.* events (tasks/forge_usage.py) for
# the webhook receiver's /metrics. Not under `promoter.`: notifications hung on `promoter.*` stay quiet.
FORGE_USAGE_EVENT = "forge.api.usage"


def forge_resource(provider: str) -> dict[str, str]:
    return {"prefect.resource.id": f"forge.api.{provider}", "prefect.resource.name": provider}


# -- the approval form -------------------------------------------------------------------------------


class ApprovalInput(RunInput):
    """The form in the Prefect UI. `decision` has no default, so an empty resume cannot approve."""

    decision: Literal["approve", "reject"] = Field(description="approve merges the PR; reject ends the run")
    approver: str = Field(min_length=1, max_length=100, description="who decides (name or e-mail)")
    comment: str = Field(default="", max_length=2000, description="why, for the record")

    @classmethod
    def of(cls, approve: bool, approver: str, comment: str = "") -> ApprovalInput:
        return cls(decision="approve" if approve else "reject", approver=approver, comment=comment)

    def as_run_input(self) -> dict[str, Any]:
        """What `resume_flow_run(run_input=...)` takes: the form's fields, nothing else."""
        return {"decision": self.decision, "approver": self.approver, "comment": self.comment}


class BreakGlassInput(RunInput):
    """The form of a run waiting out a freeze: `promoter thaw` resumes it with `break_glass` false (it
    looks again); true lets this one release through, recorded loudly."""

    break_glass: bool = Field(description="true lets this release through the freeze, on the record")
    approver: str = Field(min_length=1, max_length=100, description="who breaks the glass")
    comment: str = Field(default="", max_length=2000, description="why it cannot wait")

    def as_run_input(self) -> dict[str, Any]:
        return {"break_glass": self.break_glass, "approver": self.approver, "comment": self.comment}
