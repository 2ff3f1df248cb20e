"""`promoter new | promote | status`: drop-in replacements for gitops-promotion's commands.

Same flags (`--token`, `--provider`, `--sourcedir`), branch names, PR titles and bodies, printed messages
and exit codes (0, or 1 with "Application failed with error: ..." on stderr), minus its defects: every page
is read, `status` works on a detached HEAD, `pending` waits, a later green on main heals an older red,
auto-merge is switched off for `auto: false` environments and nothing is committed when nothing changed.
`status` also posts its verdict as the `promoter` commit status on the PR head.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import git

from promoter.config import load_config
from promoter.errors import InvalidInputError, PromoterError
from promoter.health import Verdict
from promoter.names import check_app, check_digest, check_group, check_tag
from promoter.promotion import (
    Promotion,
    next_state,
    open_pull_request,
    post_check,
    wait_for_environment,
)
from promoter.providers.base import MergeMethod
from promoter.providers.factory import ProviderKind, parse_remote, provider_for
from promoter.pull_request import PRState, parse_body
from promoter.workspace import Workspace, check_ref_name


@dataclass(frozen=True)
class Options:
    sourcedir: Path
    token: str
    provider: ProviderKind | None
    cache_dir: Path
    merge_method: MergeMethod = "merge"
    poll_interval: float = 5.0
    status_pattern: str | None = None


def _source_repo(sourcedir: Path) -> git.Repo:
    try:
        return git.Repo(sourcedir)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise InvalidInputError(
            f"{sourcedir} is not a git checkout of the GitOps repository; pass --sourcedir"
        ) from None


@contextmanager
def promotion_for(options: Options) -> Iterator[Promotion]:
    """The config from the checkout, its origin's forge, and the cached clone of that origin."""
    config = load_config(options.sourcedir)
    source = _source_repo(options.sourcedir)
    try:
        origin_url = source.remotes.origin.url
    except (AttributeError, IndexError, ValueError):
        raise InvalidInputError(
            f"{options.sourcedir} has no 'origin' remote; it must be a clone of the GitOps repository"
        ) from None
    remote = parse_remote(origin_url, options.provider)
    provider = provider_for(remote, options.token)
    username = "x-access-token" if remote.kind == "github" else "promoter"
    workspace = Workspace(remote.clone_url, options.cache_dir, token=options.token, username=username)
    try:
        yield Promotion(config, workspace, provider, options.merge_method, options.status_pattern)
    finally:
        provider.close()


def _open(promotion: Promotion, state: PRState) -> str:
    opened = open_pull_request(promotion, state)
    if opened.pull_request is None:
        return f"{state.group}/{state.app} already runs {state.tag} in {state.env} on {promotion.base}; nothing to promote"
    return f"created branch {opened.branch} with pull request {opened.pull_request.number} on commit {opened.push.sha}"


def command_new(options: Options, group: str, app: str, tag: str, digest: str | None = None) -> str:
    # Before any clone or request, and as a PromoterError rather than pydantic's multi-line report.
    check_group(group)
    check_app(app)
    check_tag(tag)
    if digest:
        check_digest(digest)
    with promotion_for(options) as promotion:
        first = promotion.config.first_environment().name
        state = PRState(group=group, app=app, tag=tag, env=first, digest=digest or "")
        return _open(promotion, state)


def command_promote(options: Options, commit: str | None) -> str:
    with promotion_for(options) as promotion:
        head = commit or _source_repo(options.sourcedir).head.commit.hexsha
        pr = promotion.provider.merged_pull_request_for(head)
        if pr is None or "metadata" not in pr.body:
            return "skipping PR creation as commit does not originate from promotion PR"
        merged = parse_body(pr.body)
        if merged.type == "feature":
            return "not promoting feature branch"
        following = next_state(promotion, merged, head)
        if following is None:
            return "no next environment to promote to"
        return _open(promotion, following)


def pr_branch(options: Options, branch: str | None) -> str:
    """The PR's source branch: --branch, the CI's variables, or the checkout's branch (not detached)."""
    for candidate in (
        branch,
        os.environ.get("GITHUB_HEAD_REF"),
        os.environ.get("SYSTEM_PULLREQUEST_SOURCEBRANCH"),
    ):
        if candidate:
            return candidate.removeprefix("refs/heads/")
    source = _source_repo(options.sourcedir)
    if source.head.is_detached:
        raise InvalidInputError(
            "the checkout is on a detached HEAD, so the PR branch is unknown: pass --branch, or run in a PR "
            "pipeline (GITHUB_HEAD_REF or SYSTEM_PULLREQUEST_SOURCEBRANCH)"
        )
    return str(source.active_branch.name)


class CheckFailed(PromoterError):
    """The previous environment failed or never reported: the PR must not merge."""


def command_status(options: Options, branch: str | None) -> str:
    name = pr_branch(options, branch)
    if not name.startswith("promote"):
        return "Promotion was manual, skipping check"
    check_ref_name(name)  # before any request: promotion branches are ours, so they follow our grammar
    with promotion_for(options) as promotion:
        pr = promotion.provider.find_pull_request(name, promotion.base)
        if pr is None:
            raise InvalidInputError(f"no open pull request from {name} into {promotion.base}")
        state = parse_body(pr.body)
        if state.type == "feature":
            return "Automatically allowing feature branch PR"
        previous = promotion.config.previous_environment(state.env)
        if previous is None:
            post_check(promotion, pr, "success", f"{state.env} is the first environment")
            return f'"{state.env}" is the first environment so status check is skipped'
        kustomization = f"{state.group}-{previous.name}"
        post_check(promotion, pr, "pending", f"waiting for Flux to report {kustomization} healthy")

        def progress(verdict: Verdict, left: float) -> None:
            print(
                f"retrying status check for {kustomization}: {verdict.outcome}, {left:.0f} s left",
                file=sys.stderr,
            )

        verdict = wait_for_environment(
            promotion, state.group, previous.name, state.sha, interval=options.poll_interval, on_wait=progress
        )
        where = (
            f'"{state.sha}"'
            if verdict.commit in (None, state.sha)
            else f"{promotion.base} at {verdict.commit}"
        )
        if verdict.healthy:
            post_check(promotion, pr, "success", f"{kustomization} healthy on {(verdict.commit or '')[:8]}")
            return f"successful reconciliation for {kustomization} found on {where}"
        if verdict.outcome == "failed":
            reason = f": {verdict.description}" if verdict.description else ""
            post_check(
                promotion, pr, "failure", f"{kustomization} failed on {(verdict.commit or '')[:8]}{reason}"
            )
            raise CheckFailed(f"failed reconciliation for {kustomization} found on {where}{reason}")
        minutes = promotion.config.status_timeout.total_seconds() / 60
        post_check(
            promotion, pr, "failure", f"no report from Flux for {kustomization} within {minutes:g} min"
        )
        raise CheckFailed(f"commit status check for {kustomization} has timed out {where}")


def with_token(options: Options, token: str | None) -> Options:
    return replace(options, token=token or os.environ.get("PROMOTER_TOKEN", ""))
