"""`promoter new | promote | status`: drop-in replacements for gitops-promotion's commands.

Same flags (`--token`, `--provider`, `--sourcedir`), branch names, PR titles and bodies, printed messages
and exit codes (0, or 1 with "Application failed with error: ..." on stderr), minus its defects: every page
is read, `status` works on a detached HEAD, `pending` waits, a later green on main heals an older red,
auto-merge is switched off for `auto: false` environments and nothing is committed when nothing changed.
`status` also posts its verdict as the `promoter` commit status on the PR head.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import git

from promoter.config import load_config
from promoter.errors import InvalidInputError, PromoterError
from promoter.gate import gate, post_check, waiting, waiting_for_required
from promoter.health import Failed, Healthy, Verdict
from promoter.names import check_app, check_digest, check_group, check_tag
from promoter.promotion import Promotion, Target
from promoter.providers.base import MergeMethod
from promoter.providers.factory import ProviderKind
from promoter.pull_request import PRState, parse_body
from promoter.stages import AlreadyRuns, next_state, open_pull_request, wait_for_environment
from promoter.trailers import MergeRecord
from promoter.workspace import check_ref_name

# How the command line names each `Target` field, for its error messages.
FLAGS = {
    "gitops_url": "the origin remote of --sourcedir",
    "provider": "--provider",
    "cache_dir": "--cache-dir",
    "merge_method": "--merge-method",
    "poll_interval": "--poll-interval",
    "status_pattern": "--status-context-pattern",
}


@dataclass(frozen=True)
class Options:
    """What the command line was given. A flag left out (None) falls back to its `PROMOTER_*` variable,
    then to `Target`'s default, exactly as for the flow; the repository is the checkout's origin."""

    sourcedir: Path
    token: str
    provider: ProviderKind | None = None
    cache_dir: str | None = None
    merge_method: MergeMethod | None = None
    poll_interval: float | None = None
    status_pattern: str | None = None

    @classmethod
    def of(cls, args: argparse.Namespace) -> Options:
        """From the flags every repository command takes (`promoter.cli`'s shared parser)."""
        return cls(
            sourcedir=Path(args.sourcedir),
            token=args.token or os.environ.get("PROMOTER_TOKEN", ""),
            provider=args.provider,
            cache_dir=args.cache_dir,
            merge_method=args.merge_method,
            poll_interval=args.poll_interval,
            status_pattern=args.status_context_pattern,
        )

    def target(self, gitops_url: str) -> Target:
        return Target.of(
            {
                "gitops_url": gitops_url,
                "provider": self.provider,
                "cache_dir": self.cache_dir,
                "merge_method": self.merge_method,
                "poll_interval": self.poll_interval,
                "status_pattern": self.status_pattern,
            },
            FLAGS,
        )


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
    with options.target(origin_url).open(token=options.token, config=config) as promotion:
        yield promotion


def _open(promotion: Promotion, state: PRState) -> str:
    opened = open_pull_request(promotion, state, record=cli_record(state))
    if isinstance(opened, AlreadyRuns):
        return f"{state.group}/{state.app} already runs {state.tag} in {state.env} on {promotion.base}; nothing to promote"
    return f"created branch {opened.branch} with pull request {opened.number} on commit {opened.commit}"


def cli_record(state: PRState) -> MergeRecord:
    """The trailers an auto-merge from the command line writes. gitops-promotion's PR metadata names the
    app, not the image, so `Release:` says `<group>/<app>:<tag>` (and `@<digest>` when pinned)."""
    return MergeRecord.of(f"{state.group}/{state.app}", state.tag, state.digest or None)


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
    """Post the gate on the PR (as the flow does) and say what gitops-promotion's `status` says."""
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
            post_check(promotion.provider, pr.head_sha, gate(state.env, None))
            return f'"{state.env}" is the first environment so status check is skipped'
        kustomization = f"{state.group}-{previous.name}"
        post_check(promotion.provider, pr.head_sha, waiting(kustomization))
        posted = [""]

        def progress(verdict: Verdict, left: float) -> None:
            if verdict.waiting_for and verdict.description != posted[0]:  # Flux healthy; say what is missing
                post_check(promotion.provider, pr.head_sha, waiting_for_required(previous.name, verdict))
                posted[0] = verdict.description
            print(
                f"retrying status check for {kustomization}: {verdict.outcome}, {left:.0f} s left",
                file=sys.stderr,
            )

        health = wait_for_environment(promotion, state.group, previous.name, state.sha, on_wait=progress)
        post_check(promotion.provider, pr.head_sha, gate(state.env, health))
        where = (
            f'"{state.sha}"' if health.commit in (None, state.sha) else f"{promotion.base} at {health.commit}"
        )
        if isinstance(health, Healthy):
            passed = f"; {', '.join(health.required)} succeeded" if health.required else ""
            return f"successful reconciliation for {kustomization} found on {where}{passed}"
        reason = f": {health.description}" if health.description else ""
        if isinstance(health, Failed):
            if health.context:  # a required context (`require`) failed
                raise CheckFailed(f"required check for {kustomization} failed on {where}{reason}")
            raise CheckFailed(f"failed reconciliation for {kustomization} found on {where}{reason}")
        if health.contexts:
            raise CheckFailed(
                f"commit status check for {kustomization} has timed out {where}: "
                f"no report from {', '.join(health.contexts)}"
            )
        raise CheckFailed(f"commit status check for {kustomization} has timed out {where}")
