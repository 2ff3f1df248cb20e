"""The stages of a promotion, each one function with a typed input and an explicit outcome.

Each is a reconcile: it reads git and the forge to see what is already true before it acts, so running
one twice (after a crash, a suspend, or by a newer run) gives one branch, one PR, one commit per bump and
one merge. An outcome the caller must handle differently is its own type (`AlreadyRuns` or `OpenedPR`;
`Merged`, `ClosedUnmerged` or `StillOpen`; `Healthy`, `Failed` or `NoReport`), never an exception: an
exception means "something broke, trying again may help", which a PR closed by a person is not.

The two waits (for a merge, for Flux) poll only for a short window at a time; `Pending` says the window
ran out before the deadline, so the caller can suspend (holding no process) and poll again when resumed.

The Prefect tasks in `tasks/` wrap these (retries, timeouts, names, events, logs); the gitops-promotion
commands in `promoter.commands` call them directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from promoter.bump import bump_edit
from promoter.errors import ProviderError, WorkspaceError
from promoter.gate import Gate, post_check
from promoter.health import (
    Health,
    Reporters,
    RequiredContexts,
    StatusMatcher,
    Verdict,
    current_verdict,
    settled,
    wait_for_verdict,
)
from promoter.promotion import Promotion
from promoter.providers.base import CommitStatus, GitProvider, MergeMethod
from promoter.pull_request import PRState
from promoter.trailers import MergeRecord
from promoter.workspace import Workspace

# How far back from main's head a Flux report is looked for. Reads go newest first and stop at the first
# report from every cluster, and each commit read is a forge request (a 304 to a repeated one is free on
# GitHub; a first one, from a fresh run process, counts). Polls look MAX_CANDIDATES back. Flux reports only
# the newest revision it fetched, so in a burst (100 merges in minutes) the first report after a commit
# can sit under dozens of newer, unreported ones: before a wait ends as "no report", one last look goes
# LAST_LOOK back (10 alone blocked 12 of 100 healthy releases; 50 on every poll spent a 5,000/h budget).
MAX_CANDIDATES = 10
LAST_LOOK = 50
MAX_DIFF = 20000  # characters of diff in the approval form


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Pending(_Frozen):
    """A wait's window ran out before its deadline: nothing settled yet.

    `since` is when the whole wait began and `deadline` when it ends (wall-clock seconds), carried from
    window to window so a wait resumed after a suspend keeps its deadline and its measured length.
    """

    since: float
    deadline: float
    what: str = ""

    @property
    def left(self) -> float:
        return max(0.0, self.deadline - time.time())


# -- open the PR and post its check ------------------------------------------------------------------


class AlreadyRuns(_Frozen):
    """Main already runs the tag in `state.env`: no commit, no PR."""

    state: PRState
    branch: str
    base: str
    base_sha: str
    started: float = Field(default_factory=time.time)  # when the stage began, kept across suspends

    @property
    def env(self) -> str:
        return self.state.env


class OpenedPR(_Frozen):
    """One environment's PR, created or reset onto main, with its check posted.

    `state` is the PR's metadata (stamped with the base commit); `commit` the branch's commit and
    `base_sha` main's commit it was built on; `changed` the files the bump rewrote.
    """

    state: PRState
    branch: str
    base: str
    number: int
    url: str
    head_sha: str
    commit: str
    base_sha: str
    changed: tuple[str, ...] = ()
    rebases: int = 0
    auto_merge: bool = False
    started: float = Field(default_factory=time.time)  # when the stage began, kept across suspends

    @property
    def env(self) -> str:
        return self.state.env


def open_pull_request(
    promotion: Promotion, state: PRState, check: Gate | None = None, record: MergeRecord | None = None
) -> AlreadyRuns | OpenedPR:
    """Bump `state.env` on the promotion branch (rebuilt from main), create or update its PR, post `check`.

    The release's digest, when it has one, travels in `state` (and so in the PR's metadata): a pinned
    manifest gets the new pin, and the next environment's PR carries it on.

    The PR auto-merges exactly when the environment is `auto: true` and `check` is not red; it is switched
    off otherwise, so a branch reused from an automatic environment never merges into a manual one by
    itself, and a blocked or frozen PR does not merge once someone turns its check green. `check` is
    posted on the head last, so a green check never lets the forge merge a PR whose auto-merge setting
    is still the old one. The CLI's `new` and `promote` pass none: `promoter status` posts it in CI.
    `record` is what the forge's auto-merge writes into the merge commit's trailers.
    """
    env = promotion.config.environment(state.env)
    branch = state.branch_name(promotion.config.prflow)
    edit = bump_edit(state.group, state.app, state.env, state.tag, state.digest or None)
    push = promotion.workspace.publish(branch, edit, state.title())
    stamped = state.model_copy(update={"sha": push.base_sha}) if not state.sha else state
    if not push.changed:
        return AlreadyRuns(state=stamped, branch=branch, base=promotion.base, base_sha=push.base_sha)
    provider = promotion.provider
    pr = provider.upsert_pull_request(branch, promotion.base, stamped.title(), stamped.body())
    # A red check turns auto-merge off: a freeze lifted by break-glass re-enables it with its trailer.
    auto = env.auto and (check is None or check.open)
    provider.set_auto_merge(pr, auto, promotion.target.merge_method, record if auto else None)
    if check is not None:
        post_check(provider, pr.head_sha, check)
    return OpenedPR(
        state=stamped,
        branch=branch,
        base=promotion.base,
        number=pr.number,
        url=pr.url,
        head_sha=pr.head_sha,
        commit=push.sha,
        base_sha=push.base_sha,
        changed=tuple(push.changed),
        rebases=push.rebases,
        auto_merge=auto,
    )


def next_state(promotion: Promotion, merged: PRState, merge_commit: str) -> PRState | None:
    """The state of the next environment's PR after `merged` landed as `merge_commit`, or None at the end."""
    following = promotion.config.next_environment(merged.env)
    if following is None:
        return None
    return merged.model_copy(update={"env": following.name, "sha": merge_commit})


# -- wait for the merge ------------------------------------------------------------------------------


class Merged(_Frozen):
    number: int
    env: str
    merge_commit: str
    merged_by: str | None = None
    url: str = ""


class ClosedUnmerged(_Frozen):
    """A person closed the PR: the release stops at this environment. Waiting longer would not help."""

    number: int
    env: str
    url: str = ""

    @property
    def reason(self) -> str:
        return f"PR #{self.number} for {self.env} was closed without merging"


class StillOpen(_Frozen):
    """The forge did not merge the PR within `waited` seconds (a check missing, a conflict)."""

    number: int
    env: str
    waited: float
    url: str = ""

    @property
    def reason(self) -> str:
        return (
            f"PR #{self.number} for {self.env} is still open after {self.waited:.0f} s: see in the forge "
            "what keeps it from merging (a required check, a conflict), then merge it or start the release again"
        )


def wait_merged(
    provider: GitProvider,
    pr: OpenedPR,
    *,
    timeout: float,
    merge_method: MergeMethod | None = None,
    record: MergeRecord | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Merged | ClosedUnmerged | StillOpen:
    """Until the PR is merged (by auto-merge, a person, or us when `merge_method` is given, with `record`
    as the merge commit's trailers), closed, or `timeout` seconds have passed. Polls back off from 0.2 s
    to 5 s."""
    found = provider.get_pull_request(pr.number)
    if merge_method is not None and found.state == "open":
        found = provider.merge(found, merge_method, record)
    deadline = clock() + timeout
    delay = 0.2
    while found.state == "open" and clock() < deadline:
        sleep(delay)
        delay = min(delay * 1.5, 5.0)
        found = provider.get_pull_request(pr.number)
    if found.state == "closed":
        return ClosedUnmerged(number=pr.number, env=pr.env, url=pr.url)
    if found.state == "open":
        return StillOpen(number=pr.number, env=pr.env, waited=timeout, url=pr.url)
    if not found.merge_commit_sha:  # a forge hiccup: reading again (a task retry) may help
        raise ProviderError(f"PR #{pr.number} for {pr.env} is merged but the forge names no merge commit")
    return Merged(
        number=pr.number,
        env=pr.env,
        merge_commit=found.merge_commit_sha,
        merged_by=found.merged_by,
        url=pr.url,
    )


# -- read Flux's word --------------------------------------------------------------------------------


def wait_for_environment(
    promotion: Promotion,
    group: str,
    env: str,
    commit: str,
    *,
    timeout: float | None = None,
    on_wait: Callable[[Verdict, float], None] | None = None,
) -> Health:
    """Flux's word on `<group>-<env>` for `commit`, with the environment's required contexts: polled
    (every `poll_interval` seconds at first, backing off) until healthy, failed, or `timeout` seconds
    (default: the config's `status_timeout_minutes`) have passed (`NoReport`)."""
    return wait_for_verdict(
        lambda: environment_verdict(promotion, group, env, commit),
        promotion.config.status_timeout.total_seconds() if timeout is None else timeout,
        interval=promotion.target.poll_interval,
        on_wait=on_wait,
    )


def last_look(promotion: Promotion, group: str, env: str, commit: str) -> Health | None:
    """The environment's word LAST_LOOK commits back, before a wait ends as "no report"; None when still
    silent."""
    return settled(environment_verdict(promotion, group, env, commit, depth=LAST_LOOK))


def environment_verdict(
    promotion: Promotion,
    group: str,
    env: str,
    commit: str,
    head: str | None = None,
    statuses_of: Callable[[str], Sequence[CommitStatus]] | None = None,
    depth: int = MAX_CANDIDATES,
) -> Verdict:
    """What gates the next environment: Flux's word, and the `require`d contexts' on the same commits
    (read once for both). The board shows Flux's word alone (`flux_verdict`)."""
    found = next((e for e in promotion.config.environments if e.name == env), None)
    required = found.require if found is not None else ()
    return flux_verdict(promotion, group, env, commit, head, statuses_of, depth, required)


def flux_verdict(
    promotion: Promotion,
    group: str,
    env: str,
    commit: str,
    head: str | None = None,
    statuses_of: Callable[[str], Sequence[CommitStatus]] | None = None,
    depth: int = MAX_CANDIDATES,
    required: Sequence[str] = (),
) -> Verdict:
    """Flux's current word on `<group>-<env>` for `commit`, looking at main's newer commits too (up to
    `head`, fetched here when not given).

    Every cluster the environment's `reporters` names (or counts) must have said healthy, and each of the
    `required` contexts `success`. `statuses_of` replaces the forge's read of a commit's statuses (the
    wait watcher shares one per pass); `depth` is how many of main's newer commits are read at most.
    """
    pattern = promotion.target.status_pattern
    matcher = StatusMatcher(f"{group}-{env}", *([pattern] if pattern else []))
    head = head or promotion.workspace.fetch()
    candidates = _descendants(promotion.workspace, commit, head, depth)
    expected = Reporters.of(next((e.reporters for e in promotion.config.environments if e.name == env), None))
    statuses = statuses_of or promotion.provider.commit_statuses
    return current_verdict(candidates, statuses, matcher, expected, RequiredContexts(tuple(required)))


def _descendants(workspace: Workspace, commit: str, head: str, depth: int) -> list[str]:
    """`head` back to `commit` along main (newest first, at most `depth`), ending with `commit`."""
    if commit == head:
        return [commit]
    try:
        between = workspace.run("rev-list", "--first-parent", f"--max-count={depth}", f"{commit}..{head}")
    except WorkspaceError:  # the commit may be unknown to the clone; the forge still knows it
        return [head, commit]
    newer = [line for line in between.split() if line]
    if not newer or workspace.run("merge-base", head, commit).strip() != commit:
        return [commit]
    return [*newer, commit]


# -- ask a person ------------------------------------------------------------------------------------


def approval_request(promotion: Promotion, pr: OpenedPR, previous: Health | None) -> str:
    """The markdown a person decides on: the release, the PR, the previous environment's health and the
    diff the PR makes to this environment's folder."""
    state = pr.state
    diff = promotion.workspace.diff(pr.base_sha, pr.head_sha, f"{state.group}/{state.env}")
    before = promotion.config.previous_environment(state.env)
    if previous is None or before is None:
        health = "first environment"
    else:
        on = f" on `{previous.commit[:8]}`" if previous.commit else ""
        health = f"{before.name}: **{previous.outcome}**{on} {previous.description}".strip()
    return "\n".join(
        [
            f"## Promote {state.group}/{state.app} `{state.tag}` to **{state.env}**",
            "",
            f"- Release: `{state.tag}`" + (f" (`{state.digest}`)" if state.digest else ""),
            f"- Pull request: [#{pr.number}]({pr.url})",
            f"- Previous environment: {health}",
            "",
            "Approve to merge the PR (or merge it in the forge); reject to end this run and leave the PR open.",
            "",
            "```diff",
            diff.strip()[:MAX_DIFF],
            "```",
        ]
    )
