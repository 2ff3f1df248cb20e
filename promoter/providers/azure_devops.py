"""Azure DevOps Services and Server: the Git REST API 7.1 (pull requests, statuses, diffs).

Completing a pull request is asynchronous on the real service: `PATCH .../pullrequests/{id}` with
`status: completed` usually answers the pull request still `active` with `mergeStatus: queued` and
`completionQueueTime` set, and the merge lands a second or so later (REFERENCE.md section 9; observed in
berenddeboer/ready-for-agent#1209 and loncadev/baron#217). `merge` therefore polls until the pull request
is `completed`, or until the service says why it will not be: `conflicts`, `rejectedByPolicy` or
`failure` (the `PullRequestAsyncStatus` values of `git-7.1.json`).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from promoter.approval_policy import Review, Reviews
from promoter.errors import ProviderError
from promoter.providers.base import CommitStatus, MergeMethod, PullRequest, StatusState
from promoter.providers.http import ForgeClient, HTTPProvider
from promoter.trailers import MergeRecord, commit_message

API_VERSION = "7.1"
STATUS_API_VERSION = "7.1-preview.1"
PERMISSIONS = "the scopes 'Code (Read & Write)' and 'Code (Status)'"
NOBODY = "00000000-0000-0000-0000-000000000000"
CONNECTION_DATA_API_VERSION = "7.1-preview.1"  # connectionData is still preview-only at 7.1
_STRATEGY = {"merge": "noFastForward", "squash": "squash", "rebase": "rebase"}
_STATE = {"pending": "pending", "success": "succeeded", "failure": "failed", "error": "error"}
_PR_STATE = {"active": "open", "completed": "merged", "abandoned": "closed"}
PAGE = 100
COMPLETION_TIMEOUT = 120.0  # seconds to wait for a queued completion before giving up, clearly
_REFUSED = {
    "conflicts": "its source branch conflicts with {base}: merge {base} into {branch} (or rebase it), "
    "push, and promote again",
    "rejectedByPolicy": "a branch policy on {base} is not met (a required status such as 'promoter', "
    "a reviewer, a work item link): open the pull request, see which policy blocks it, fix that and "
    "promote again",
    "failure": "the merge failed on the service ({reason}): open the pull request, fix what it reports "
    "and promote again",
}


class AzureDevOpsProvider(HTTPProvider):
    """One repository: `collection_url` is `https://dev.azure.com/{org}` (or a Server collection URL)."""

    kind = "azdo"

    def __init__(
        self,
        collection_url: str,
        project: str,
        name: str,
        token: str,
        *,
        completion_timeout: float = COMPLETION_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        **client: Any,
    ) -> None:
        self.project, self.name = project, name
        self.repository = f"{project}/{name}"
        self._collection = collection_url.rstrip("/")
        self._web = f"{collection_url.rstrip('/')}/{project}/_git/{name}"
        self.completion_timeout = completion_timeout
        self._clock = clock
        self._sleep: Callable[[float], None] = client.get("sleep", time.sleep)
        self._me: str | None = None
        basic = base64.b64encode(f":{token}".encode()).decode()
        self.client = ForgeClient(
            f"{collection_url.rstrip('/')}/{project}/_apis/git/repositories/{name}",
            headers={
                "Authorization": f"Basic {basic}",
                "Accept": "application/json",
                "User-Agent": "promoter",
            },
            describe=f"Azure DevOps repository {self.repository}",
            permission_hint=PERMISSIONS,
            provider="azdo",
            **client,
        )

    def _get(self, path: str, route: str, **params: Any) -> Any:
        return self.client.request(
            "GET", path, params={"api-version": API_VERSION, **params}, route=route
        ).data

    def _send(self, method: str, path: str, body: Any, route: str, version: str = API_VERSION) -> Any:
        return self.client.request(method, f"{path}?api-version={version}", json_body=body, route=route).data

    def _pages(
        self, path: str, route: str, version: str = API_VERSION, paging: str = "$", **params: Any
    ) -> list[Any]:
        """Every item of a list; `paging` prefixes `top`/`skip` ("$" for pull requests, "" for statuses)."""
        items: list[Any] = []
        while True:
            params_page = {
                "api-version": version,
                f"{paging}top": PAGE,
                f"{paging}skip": len(items),
                **params,
            }
            data = self.client.request("GET", path, params=params_page, route=route).data
            page = data.get("value") if isinstance(data, dict) else None
            if not isinstance(page, list):
                raise ProviderError(f"Azure DevOps answered {route} without a 'value' list")
            items.extend(page)
            if len(page) < PAGE:
                return items

    # -- pull requests ------------------------------------------------------------------------------

    def find_pull_request(
        self, branch: str, base: str, state: Literal["open", "all"] = "open"
    ) -> PullRequest | None:
        found = self._pages(
            "/pullrequests",
            "list pullrequests",
            **{
                "searchCriteria.sourceRefName": f"refs/heads/{branch}",
                "searchCriteria.targetRefName": f"refs/heads/{base}",
                "searchCriteria.status": "active" if state == "open" else "all",
            },
        )
        pulls = sorted((self._pull(item) for item in found), key=lambda pr: pr.number, reverse=True)
        return pulls[0] if pulls else None

    def get_pull_request(self, number: int) -> PullRequest:
        return self._pull(self._get(f"/pullrequests/{number}", "get pullrequest"))

    def upsert_pull_request(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        existing = self.find_pull_request(branch, base)
        if existing is None:
            response = self.client.request(
                "POST",
                f"/pullrequests?api-version={API_VERSION}",
                json_body={
                    "sourceRefName": f"refs/heads/{branch}",
                    "targetRefName": f"refs/heads/{base}",
                    "title": title,
                    "description": body,
                },
                route="create pullrequest",
                ok=(200, 201, 409),
            )
            if response.status != 409:
                return self._pull(response.data)
            existing = self.find_pull_request(branch, base)
            if existing is None:
                raise ProviderError(f"Azure DevOps refused to open a PR from {branch} into {base} (409)")
        if existing.title == title and existing.body == body:
            return existing
        data = self._send(
            "PATCH",
            f"/pullrequests/{existing.number}",
            {"title": title, "description": body},
            "update pullrequest",
        )
        return self._pull(data)

    def set_auto_merge(
        self, pr: PullRequest, enabled: bool, method: MergeMethod, record: MergeRecord | None = None
    ) -> None:
        """Auto-complete is set by, and in the name of, the authenticated identity (as `az repos pr
        update --auto-complete` does); the empty GUID turns it off. The completion options sent with it
        are the ones the service completes with, `record` in their `mergeCommitMessage`."""
        if pr.auto_merge == enabled or pr.state != "open":
            return
        body: dict[str, Any] = {"autoCompleteSetBy": {"id": self._my_id() if enabled else NOBODY}}
        if enabled:
            body["completionOptions"] = _completion_options(pr, method, record)
        self._send("PATCH", f"/pullrequests/{pr.number}", body, "auto-complete pullrequest")

    def _my_id(self) -> str:
        """The id of the identity the token belongs to, from `GET {collection}/_apis/connectionData`."""
        if self._me is None:
            data = self.client.request(
                "GET",
                f"{self._collection}/_apis/connectionData",
                params={"api-version": CONNECTION_DATA_API_VERSION},
                route="connection data",
            ).data
            me = _text(_object(_object(data).get("authenticatedUser")).get("id"))
            if not me or me == NOBODY:
                raise ProviderError(
                    "Azure DevOps did not say who the token belongs to (connectionData without "
                    "authenticatedUser.id); check the collection URL and that the token is a PAT"
                )
            self._me = me
        return self._me

    def merge(self, pr: PullRequest, method: MergeMethod, record: MergeRecord | None = None) -> PullRequest:
        """Ask for completion, then wait for the service to finish it (or to say why it will not)."""
        raw = self._get(f"/pullrequests/{pr.number}", "get pullrequest")
        current = self._pull(raw)
        if current.state == "merged":
            return current
        if current.state == "closed":
            raise ProviderError(
                f"Azure DevOps PR {pr.number} is abandoned; reactivate it or let the promotion open a new one"
            )
        if not _completing(raw):
            self._request_completion(current, method, record)
        return self._await_completion(current)

    def _request_completion(
        self, current: PullRequest, method: MergeMethod, record: MergeRecord | None
    ) -> None:
        response = self.client.request(
            "PATCH",
            f"/pullrequests/{current.number}?api-version={API_VERSION}",
            json_body={
                "status": "completed",
                "lastMergeSourceCommit": {"commitId": current.head_sha},
                "completionOptions": _completion_options(current, method, record),
            },
            route="complete pullrequest",
            ok=(200, 400, 409),
        )
        if response.status != 200:
            message = response.data.get("message") if isinstance(response.data, dict) else None
            raise ProviderError(
                f"Azure DevOps refused to complete PR {current.number}: {' '.join(str(message or 'no details').split())[:300]}"
            )

    def _await_completion(self, pr: PullRequest) -> PullRequest:
        """Poll with backoff until completed, refused or `completion_timeout` seconds have passed."""
        deadline = self._clock() + self.completion_timeout
        wait = 0.1
        while True:
            raw = self._get(f"/pullrequests/{pr.number}", "get pullrequest")
            current = self._pull(raw)
            if current.state == "merged":
                return current
            if current.state == "closed":
                raise ProviderError(
                    f"Azure DevOps PR {pr.number} was abandoned while it was being completed; "
                    "find out who abandoned it, then promote again"
                )
            status = _text(_object(raw).get("mergeStatus"))
            if status in _REFUSED:
                reason = _text(_object(raw).get("mergeFailureMessage")) or "no reason given"
                detail = _REFUSED[status].format(base=pr.base_branch, branch=pr.head_branch, reason=reason)
                raise ProviderError(f"Azure DevOps refused to complete PR {pr.number} ({status}): {detail}")
            if self._clock() + wait > deadline:
                raise ProviderError(
                    f"Azure DevOps PR {pr.number} is still not completed {self.completion_timeout:.0f} s after "
                    f"completion was requested (mergeStatus {status or 'missing'}); the service may be busy: "
                    "promote again later, it will find the PR completed or ask again"
                )
            self._sleep(wait)
            wait = min(wait * 2, 2.0)

    def merged_pull_request_for(self, commit: str) -> PullRequest | None:
        data = self._send(
            "POST",
            "/pullrequestquery",
            {"queries": [{"type": "lastMergeCommit", "items": [commit]}]},
            "query pullrequests",
        )
        results = data.get("results") if isinstance(data, dict) else None
        for result in results if isinstance(results, list) else []:
            found = _object(result).get(commit)
            for item in found if isinstance(found, list) else []:
                pr = self._pull(item)
                if pr.state == "merged":
                    return pr
        return None

    # -- statuses and ancestry ----------------------------------------------------------------------

    def commit_statuses(self, sha: str) -> list[CommitStatus]:
        statuses = []
        for item in self._pages(f"/commits/{sha}/statuses", "list statuses", STATUS_API_VERSION, ""):
            if not isinstance(item, dict):
                continue
            context = _object(item.get("context"))
            statuses.append(
                CommitStatus(
                    context=str(context.get("name") or ""),
                    genre=_text(context.get("genre")) or None,
                    state=str(item.get("state") or ""),
                    description=str(item.get("description") or ""),
                    created_at=str(item.get("creationDate") or ""),
                    target_url=_text(item.get("targetUrl")) or None,
                )
            )
        return sorted(statuses, key=lambda status: status.created_at, reverse=True)

    def set_commit_status(
        self, sha: str, context: str, state: StatusState, description: str, target_url: str | None = None
    ) -> None:
        genre, _, name = context.rpartition("/")
        body: dict[str, Any] = {
            "state": _STATE[state],
            "description": description[:4000],
            "context": {"name": name, **({"genre": genre} if genre else {})},
        }
        if target_url:
            body["targetUrl"] = target_url
        self._send("POST", f"/commits/{sha}/statuses", body, "create status", STATUS_API_VERSION)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        if ancestor == descendant:
            return True
        data = self._get(
            "/diffs/commits",
            "diff commits",
            baseVersion=ancestor,
            baseVersionType="commit",
            targetVersion=descendant,
            targetVersionType="commit",
            **{"$top": 1},
        )
        return isinstance(data, dict) and data.get("commonCommit") == ancestor

    def reviews(self, number: int, teams: Sequence[str] = ()) -> Reviews:
        """Approving votes (10 approved, 5 approved with suggestions) of people, by unique name.

        A group cannot vote: "When a member of the group or team votes, that vote is rolled up into the
        group or team vote", and the member's entry lists the group in `votedFor` (`IdentityRefWithVote`,
        git-7.1.json). So a listed group vouches for a member only when it is a reviewer on the PR (add it
        with a required-reviewer branch policy). Votes belong to the PR, not to a commit."""
        created_by = _object(
            _object(self._get(f"/pullrequests/{number}", "get pullrequest")).get("createdBy")
        )
        wanted = {team.lower(): team for team in teams}
        approvals = []
        listed = _object(self._get(f"/pullrequests/{number}/reviewers", "list reviewers")).get("value")
        for item in listed if isinstance(listed, list) else []:
            reviewer = _object(item)
            login = _text(reviewer.get("uniqueName"))
            vote = reviewer.get("vote")
            if not login or reviewer.get("isContainer") or not isinstance(vote, int) or vote < 5:
                continue
            groups = {
                name.lower()
                for group in reviewer.get("votedFor") or []
                for name in (
                    _text(_object(group).get("displayName")),
                    _text(_object(group).get("uniqueName")),
                )
                if name
            }
            approvals.append(Review(login=login, teams=tuple(wanted[g] for g in wanted if g in groups)))
        author = _text(created_by.get("uniqueName")) or None
        return Reviews(author=author, approvals=tuple(approvals))

    def teams_of(self, login: str, teams: Sequence[str]) -> tuple[str, ...]:
        """None: group membership outside a PR's reviewers is Azure DevOps' Graph API, on another host
        (vssps.dev.azure.com) and with another scope; a group vouches only through `votedFor`."""
        return ()

    def _pull(self, item: Any) -> PullRequest:
        if not isinstance(item, dict) or not isinstance(item.get("pullRequestId"), int):
            raise ProviderError(
                "Azure DevOps answered a pull request without an id; is this an Azure DevOps API?"
            )
        number = item["pullRequestId"]
        state = _PR_STATE.get(str(item.get("status")), "closed")
        closed_by = _object(item.get("closedBy"))
        merge_commit = _text(_object(item.get("lastMergeCommit")).get("commitId")) or None
        auto = _object(item.get("autoCompleteSetBy"))
        return PullRequest(
            number=number,
            title=str(item.get("title") or ""),
            body=str(item.get("description") or ""),
            head_branch=str(item.get("sourceRefName") or "").removeprefix("refs/heads/"),
            base_branch=str(item.get("targetRefName") or "").removeprefix("refs/heads/"),
            head_sha=_text(_object(item.get("lastMergeSourceCommit")).get("commitId")),
            state=state,  # type: ignore[arg-type]
            url=f"{self._web}/pullrequest/{number}",
            merge_commit_sha=merge_commit if state == "merged" else None,
            merged_by=(_text(closed_by.get("uniqueName")) or _text(closed_by.get("displayName")) or None)
            if state == "merged"
            else None,
            auto_merge=bool(auto.get("id")) and auto.get("id") != NOBODY,
        )


def _completing(raw: Any) -> bool:
    """Whether a completion is queued and not yet decided: `completionQueueTime` set, merge `queued`.

    A refusal (`conflicts`, `rejectedByPolicy`, `failure`) from an earlier attempt leaves
    `completionQueueTime` set too, so only `queued` counts as in flight; then asking again is needless.
    """
    data = _object(raw)
    return (
        _text(data.get("status")) == "active"
        and bool(data.get("completionQueueTime"))
        and _text(data.get("mergeStatus")) == "queued"
    )


def _object(value: Any) -> dict[str, Any]:
    """A JSON object from a response, or an empty one where the forge sent something else."""
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _completion_options(pr: PullRequest, method: MergeMethod, record: MergeRecord | None) -> dict[str, Any]:
    """GitPullRequestCompletionOptions (specs/azure-devops/git-7.1.json): `mergeCommitMessage` "If set,
    this will be used as the commit message of the merge commit", so it is the whole message, headed
    like the service's default ("Merged PR N: title"); unset without a record, leaving that default."""
    options: dict[str, Any] = {"mergeStrategy": _STRATEGY[method], "deleteSourceBranch": False}
    if record is not None and method != "rebase":
        options["mergeCommitMessage"] = commit_message(f"Merged PR {pr.number}: {pr.title}", "", record)
    return options
