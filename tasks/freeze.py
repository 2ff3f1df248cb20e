"""Freezes in a Prefect Variable (`promoter-freezes`), so the UI's Variables page shows who froze what.

`promoter freeze|thaw` write it; a run reads it at each environment's gate (and again before it merges an
approved PR) through `frozen_at`, cached per look so a resumed run replays its earlier looks.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.variables import Variable
from pydantic import ValidationError

from promoter.freeze import ALL, Freeze, Freezes
from promoter.gate import Gate, post_check
from promoter.promotion import Target
from promoter.stages import OpenedPR
from tasks.common import transient_only
from tasks.contracts import BreakGlassInput
from tasks.report import emit, prefect_key

FREEZE_VARIABLE = "promoter-freezes"


def read_freezes() -> Freezes:
    """The freezes in force. A value someone broke by hand freezes everything (fail closed), saying so."""
    raw = Variable.get(FREEZE_VARIABLE, default=None)
    if raw is None:
        return Freezes()
    try:
        return Freezes.model_validate(raw)
    except ValidationError:
        broken = Freeze(
            env=ALL,
            reason=f"the Prefect Variable {FREEZE_VARIABLE} is not valid: fix it, or run `promoter thaw` to clear every freeze",
            by="promoter",
            since=datetime.now(UTC),
        )
        return Freezes(entries={ALL: broken})


def write_freezes(freezes: Freezes) -> None:
    Variable.set(FREEZE_VARIABLE, freezes.model_dump(mode="json"), tags=["promoter"], overwrite=True)


@task(name="freeze-check", task_run_name="is {env} frozen ({look})", persist_result=True, retries=2)
def frozen_at(env: str, look: str) -> Freeze | None:
    """The freeze holding `env` now, or None; `look` tells apart the run's looks (gate or merge, and how
    many times it has waited)."""
    return read_freezes().covering(env, datetime.now(UTC))


@task(
    name="post-check",
    task_run_name="check {check.state} on PR #{pr.number} ({look})",
    persist_result=True,
    retries=3,
    retry_delay_seconds=2,
    retry_condition_fn=transient_only,
)
def post_gate(target: Target, pr: OpenedPR, check: Gate, look: str) -> None:
    """The `promoter` check on the PR's head: red naming a freeze, green again once it is over."""
    with target.forge() as provider:
        post_check(provider, pr.head_sha, check)


def frozen_check(freeze: Freeze) -> Gate:
    return Gate(state="failure", description=freeze.describe())


def record_break_glass(
    group: str, app: str, tag: str, env: str, freeze: Freeze, decision: BreakGlassInput
) -> None:
    """Loudly: an artifact on the run, and `promoter.freeze.broken` on the app."""
    create_markdown_artifact(
        key=prefect_key("break-glass", group, app, env),
        description=f"break-glass: {group}/{app}:{tag} through the freeze of {env}",
        markdown="\n".join(
            [
                f"### Break-glass: {group}/{app} `{tag}` through a freeze of {env}",
                "",
                f"- by: {decision.approver} (declared)",
                f"- why: {decision.comment or '-'}",
                f"- the freeze: {freeze.describe()}",
                f"- when: {datetime.now(UTC).isoformat(timespec='seconds')}",
            ]
        ),
    )
    emit(
        "freeze.broken",
        group,
        app,
        {
            "tag": tag,
            "env": env,
            "by": decision.approver,
            "comment": decision.comment,
            "freeze": freeze.describe(),
        },
    )
