"""Who may approve an environment, and whether the forge shows that they did.

A policy in `gitops-promotion.yaml` turns the gate from a declaration into a control:

    - name: prod
      auto: false
      approval:
        approvers: [alice, "@acme/sre"]   # forge users, and teams (GitHub) or groups (Azure DevOps)
        min_approvals: 1
        separate_duties: true             # who pushed the release cannot approve it

An approval counts only when the forge shows it: an approving review on the PR's current head (GitHub) or an
approving vote (Azure DevOps), by a listed user or a member of a listed team, never by the PR's author (the
promoter's own identity) and, with `separate_duties`, never by who pushed the release. `evaluate` decides
from what the provider read (`Reviews`); it does no I/O, so the flow, the sweeper and the tests agree.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_APPROVERS = 50
# A GitHub login or an Azure DevOps unique name (an e-mail address, or DOMAIN\user on a server).
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+\\-]{0,199}")
# `@org/team-slug` on GitHub; `@[Project]\Group` or `@Group Name` on Azure DevOps (a group's display name).
_TEAM = re.compile(r"@[^\s@,][^\n\r\t@,]{0,199}")


class ApprovalPolicy(BaseModel):
    """An environment's `approval:` block."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approvers: tuple[str, ...] = Field(min_length=1, max_length=MAX_APPROVERS)
    min_approvals: int = Field(default=1, ge=1, le=MAX_APPROVERS)
    separate_duties: bool = False

    @field_validator("approvers", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError(f"expected a list of names, e.g. [{value}]")
        if not isinstance(value, list | tuple):
            return value
        for name in value:
            if not isinstance(name, str) or not (_USER.fullmatch(name) or _TEAM.fullmatch(name.rstrip())):
                raise ValueError(
                    f"{name!r} is not an approver: write a forge login (alice), a GitHub team "
                    "('@acme/sre') or an Azure DevOps group ('@[acme]\\SRE'); quote names starting with @"
                )
        lowered = [str(n).lower() for n in value]
        repeated = sorted({n for n in lowered if lowered.count(n) > 1})
        if repeated:
            raise ValueError(f"approvers must be unique; repeated: {', '.join(repeated)}")
        return tuple(value)

    @model_validator(mode="after")
    def _reachable(self) -> ApprovalPolicy:
        if not self.teams and self.min_approvals > len(self.users):
            raise ValueError(
                f"min_approvals is {self.min_approvals} but only {len(self.users)} users are listed and no "
                "team: no release could ever be approved"
            )
        return self

    @property
    def users(self) -> tuple[str, ...]:
        return tuple(n for n in self.approvers if not n.startswith("@"))

    @property
    def teams(self) -> tuple[str, ...]:
        """Listed teams or groups, without the `@`."""
        return tuple(n[1:] for n in self.approvers if n.startswith("@"))

    def describe(self) -> str:
        """One line for the approval form and the PR's check."""
        who = " or ".join(self.approvers)
        count = "1 approval" if self.min_approvals == 1 else f"{self.min_approvals} approvals"
        duties = "; not by who pushed the release" if self.separate_duties else ""
        return f"{count} from {who} in the forge{duties}"


class Review(BaseModel):
    """One person's standing approval on a PR, as the forge shows it.

    `commit` is the head the review approved (GitHub); None where the forge ties a vote to the PR, not a
    commit (Azure DevOps, whose branch policy can reset votes on a push). `teams` are the listed teams the
    forge vouches the reviewer belongs to (GitHub team membership, Azure DevOps `votedFor`)."""

    model_config = ConfigDict(frozen=True)

    login: str
    commit: str | None = None
    teams: tuple[str, ...] = ()


class Reviews(BaseModel):
    """The approvals on a PR and who opened it (the promoter's own identity, which never counts)."""

    model_config = ConfigDict(frozen=True)

    author: str | None = None
    approvals: tuple[Review, ...] = ()

    def fingerprint(self) -> str:
        """Changes whenever an approval appears, moves or goes: the sweeper resumes a run on a change."""
        seen = sorted(f"{r.login.lower()}@{r.commit or '-'}" for r in self.approvals)
        return hashlib.sha256("\n".join(seen).encode()).hexdigest()[:12]


class Verdict(BaseModel):
    """`approvers` counted; `missing` says what is still needed, None when the policy holds."""

    model_config = ConfigDict(frozen=True)

    approvers: tuple[str, ...] = ()
    missing: str | None = None
    refused: tuple[str, ...] = ()  # "bob (pushed the release)": approvals that exist but do not count

    @property
    def granted(self) -> bool:
        return self.missing is None


def evaluate(
    policy: ApprovalPolicy, reviews: Reviews, head_sha: str, pr_number: int, pushed_by: str | None = None
) -> Verdict:
    """Whether `reviews` satisfy `policy` on the PR at `head_sha`."""
    users = {u.lower() for u in policy.users}
    teams = {t.lower() for t in policy.teams}
    author = (reviews.author or "").lower()
    pusher = (pushed_by or "").lower()
    counted: list[str] = []
    refused: list[str] = []
    for review in _one_per_person(reviews.approvals):
        login = review.login.lower()
        if review.commit is not None and review.commit != head_sha:
            refused.append(f"{review.login} (approved an older commit {review.commit[:8]})")
        elif login == author:
            refused.append(f"{review.login} (opened the PR)")
        elif policy.separate_duties and pusher and login == pusher:
            refused.append(f"{review.login} (pushed the release)")
        elif login in users or teams & {t.lower() for t in review.teams}:
            counted.append(review.login)
        else:
            refused.append(f"{review.login} (not a listed approver)")
    if len(counted) >= policy.min_approvals:
        return Verdict(approvers=tuple(counted), refused=tuple(refused))
    needed = policy.min_approvals - len(counted)
    count = "1 approval" if needed == 1 else f"{needed} approvals"
    more = " more" if counted else ""
    missing = f"needs {count}{more} from {' or '.join(policy.approvers)} on PR #{pr_number}"
    if refused:
        missing += f"; not counted: {', '.join(refused)}"
    return Verdict(approvers=tuple(counted), missing=missing, refused=tuple(refused))


def _one_per_person(reviews: Iterable[Review]) -> list[Review]:
    """The last review of each login (the forge lists them oldest first)."""
    latest: dict[str, Review] = {}
    for review in reviews:
        latest.pop(review.login.lower(), None)
        latest[review.login.lower()] = review
    return list(latest.values())
