"""The stages of a promotion on git and the forge, each one a reconcile: read what is true, then act.

Used by the gitops-promotion compatible commands (`new`, `promote`, `status`) and by the Prefect tasks.
Running any stage twice gives the same result: one branch, one PR, one commit per bump, one merge.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from promoter.bump import bump_edit
from promoter.config import CONFIG_FILE, Config, Environment, parse_config
from promoter.errors import WorkspaceError
from promoter.health import Reporters, StatusMatcher, Verdict, current_verdict, wait_for_verdict
from promoter.providers.base import GitProvider, MergeMethod, PullRequest, StatusState
from promoter.providers.factory import ProviderKind, parse_remote, provider_for
from promoter.pull_request import PRState
from promoter.workspace import PushResult, Workspace

CHECK_CONTEXT = "promoter"
MAX_CANDIDATES = 10


@dataclass
class Promotion:
    """What a stage needs: the repository's config, its cached clone and its forge."""

    config: Config
    workspace: Workspace
    provider: GitProvider
    merge_method: MergeMethod = "merge"
    status_pattern: str | None = None

    @property
    def base(self) -> str:
        return self.workspace.base_branch


@dataclass(frozen=True)
class Opened:
    """The PR of one environment after `open_pull_request`; None when main already runs the tag there."""

    state: PRState
    branch: str
    pull_request: PullRequest | None
    push: PushResult


def open_pull_request(promotion: Promotion, state: PRState) -> Opened:
    """Bump `state.env` on the promotion branch (rebuilt from main), then create or update its PR.

    The release's digest, when it has one, travels in `state` (and so in the PR's metadata): a pinned
    manifest gets the new pin, and the next environment's PR carries it on.

        The PR auto-merges exactly when the environment is `auto: true`; it is switched off otherwise, so a
        branch reused from an automatic environment never merges into a manual one by itself.
    """
    env = promotion.config.environment(state.env)
    branch = state.branch_name(promotion.config.prflow)
    edit = bump_edit(state.group, state.app, state.env, state.tag, state.digest or None)
    push = promotion.workspace.publish(branch, edit, state.title())
    stamped = state.model_copy(update={"sha": push.base_sha}) if not state.sha else state
    if not push.changed:
        return Opened(stamped, branch, None, push)
    pr = promotion.provider.upsert_pull_request(branch, promotion.base, stamped.title(), stamped.body())
    promotion.provider.set_auto_merge(pr, env.auto, promotion.merge_method)
    return Opened(stamped, branch, pr, push)


def next_state(promotion: Promotion, merged: PRState, merge_commit: str) -> PRState | None:
    """The state of the next environment's PR after `merged` landed as `merge_commit`, or None at the end."""
    following = promotion.config.next_environment(merged.env)
    if following is None:
        return None
    return merged.model_copy(update={"env": following.name, "sha": merge_commit})


def previous_environment(promotion: Promotion, state: PRState) -> Environment | None:
    return promotion.config.previous_environment(state.env)


def flux_verdict(promotion: Promotion, group: str, env: str, commit: str) -> Verdict:
    """Flux's current word on `<group>-<env>` for `commit`, looking at main's newer commits too.

    Every cluster the environment's `reporters` names (or counts) must have said healthy.
    """
    matcher = StatusMatcher(
        f"{group}-{env}", *([promotion.status_pattern] if promotion.status_pattern else [])
    )
    head = promotion.workspace.fetch()
    candidates = _descendants(promotion.workspace, commit, head)
    expected = Reporters.of(next((e.reporters for e in promotion.config.environments if e.name == env), None))
    return current_verdict(candidates, promotion.provider.commit_statuses, matcher, expected)


def _descendants(workspace: Workspace, commit: str, head: str) -> list[str]:
    """`head` back to `commit` along main (newest first, at most MAX_CANDIDATES), ending with `commit`."""
    if commit == head:
        return [commit]
    try:
        between = workspace.run(
            "rev-list", "--first-parent", f"--max-count={MAX_CANDIDATES}", f"{commit}..{head}"
        )
    except WorkspaceError:  # the commit may be unknown to the clone; the forge still knows it
        return [head, commit]
    newer = [line for line in between.split() if line]
    if not newer or workspace.run("merge-base", head, commit).strip() != commit:
        return [commit]
    return [*newer, commit]


def wait_for_environment(
    promotion: Promotion,
    group: str,
    env: str,
    commit: str,
    *,
    interval: float,
    on_wait: Callable[[Verdict, float], None] | None = None,
) -> Verdict:
    """Poll Flux's verdict until healthy, failed or the config's `status_timeout_minutes` ("no report")."""
    return wait_for_verdict(
        lambda: flux_verdict(promotion, group, env, commit),
        promotion.config.status_timeout.total_seconds(),
        interval=interval,
        on_wait=on_wait,
    )


def post_check(promotion: Promotion, pr: PullRequest, state: StatusState, description: str) -> None:
    """The flow is its own PR check: context `promoter` on the PR head, which branch protection requires."""
    promotion.provider.set_commit_status(pr.head_sha, CHECK_CONTEXT, state, description)


class Target(BaseModel):
    """Where a release goes: the GitOps repository and how to work on it. Serializable, and free of secrets
    (the token is read from `PROMOTER_TOKEN` in the process that does the work), so it can be a flow
    parameter and cross process boundaries."""

    model_config = ConfigDict(frozen=True)

    gitops_url: str
    provider: ProviderKind | None = None
    cache_dir: str = ""
    merge_method: MergeMethod = "merge"
    poll_interval: float = 5.0
    status_pattern: str | None = None

    @contextmanager
    def forge(self) -> Iterator[GitProvider]:
        """The forge's API alone, for stages that touch no git (checks, merges, reading a PR)."""
        remote = parse_remote(self.gitops_url, self.provider)
        provider = provider_for(remote, os.environ.get("PROMOTER_TOKEN", ""))
        try:
            yield provider
        finally:
            provider.close()

    @contextmanager
    def open(self, refresh: bool = True) -> Iterator[Promotion]:
        """A `Promotion` on this target; the forge client is closed at the end.

        `refresh=False` skips the fetch when the cached clone already has main: for a stage that fetches
        by itself (a push, a Flux poll) or that runs right after one that did.
        """
        token = os.environ.get("PROMOTER_TOKEN", "")
        remote = parse_remote(self.gitops_url, self.provider)
        with self.forge() as provider:
            username = "x-access-token" if remote.kind == "github" else "promoter"
            cache = Path(self.cache_dir) if self.cache_dir else default_cache_dir()
            workspace = Workspace(remote.clone_url, cache, token=token, username=username)
            if refresh or workspace.remote_sha(workspace.base_branch) is None:
                workspace.fetch()
            config = parse_config(workspace.read(CONFIG_FILE), f"{CONFIG_FILE} on {workspace.base_branch}")
            yield Promotion(config, workspace, provider, self.merge_method, self.status_pattern)


def default_cache_dir() -> Path:
    """Cached clones: `$PROMOTER_CACHE_DIR`, else `$XDG_CACHE_HOME/promoter/git`, else `~/.cache/promoter/git`."""
    if os.environ.get("PROMOTER_CACHE_DIR"):
        return Path(os.environ["PROMOTER_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "promoter" / "git"
