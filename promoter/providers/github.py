"""GitHub and GitHub Enterprise Server: REST v3 for most things, GraphQL for auto-merge.

Two things GitHub does that a client must live with (sources in docs/sandbox.md):

- it computes a pull request's mergeability in the background, so right after a PR is opened or a branch
  moves, `mergeable` is null, a merge answers 405 "Base branch was modified" and enabling auto-merge fails
  with "... is in unstable status": `merge` and `set_auto_merge` wait until GitHub knows, then try again;
- the API version is pinned to 2022-11-28 because 2026-03-10 drops `merge_commit_sha` from pull requests,
  which `merged_pull_request_for` needs to tell a PR's own merge commit from a commit it merely contains.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal
from urllib.parse import quote

from promoter.approval_policy import Review, Reviews
from promoter.errors import ProviderAuthError, ProviderError
from promoter.providers.base import CommitStatus, MergeMethod, PullRequest, StatusState
from promoter.providers.http import ForgeClient, HTTPProvider
from promoter.trailers import MergeRecord, with_trailers

PERMISSIONS = "'contents: write', 'pull-requests: write' and 'statuses: write' (or the 'repo' scope)"
API_VERSION = "2022-11-28"
_GRAPHQL_METHOD = {"merge": "MERGE", "squash": "SQUASH", "rebase": "REBASE"}
MERGEABILITY_WAIT = 60.0
"""How long `merge` and `set_auto_merge` wait for GitHub to compute a PR's mergeability; clients in the
wild wait from 5 s (not always enough) to a minute (ksimback/hermes-ecosystem#217)."""
_COMPUTING = ("Base branch was modified", "is in unstable status", "is in unknown status")


class GitHubProvider(HTTPProvider):
    """One repository on github.com (`api_url` https://api.github.com) or on an Enterprise host (`/api/v3`)."""

    kind = "github"

    def __init__(
        self, api_url: str, graphql_url: str, owner: str, name: str, token: str, **client: Any
    ) -> None:
        self.owner, self.name = owner, name
        self._sleep: Callable[[float], None] = client.get("sleep", time.sleep)
        self.repository = f"{owner}/{name}"
        self._graphql_url = graphql_url
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "promoter",
        }
        self.client = ForgeClient(
            api_url.rstrip("/"),
            headers=headers,
            describe=f"GitHub repository {self.repository}",
            permission_hint=PERMISSIONS,
            provider="github",
            **client,
        )

    @property
    def _repo(self) -> str:
        return f"/repos/{self.owner}/{self.name}"

    # -- pull requests ------------------------------------------------------------------------------

    def find_pull_request(
        self, branch: str, base: str, state: Literal["open", "all"] = "open"
    ) -> PullRequest | None:
        params = {
            "head": f"{self.owner}:{branch}",
            "base": base,
            "state": state,
            "sort": "created",
            "direction": "desc",
        }
        for item in self.client.paginate(f"{self._repo}/pulls", params, "list pulls"):
            return _pull(item)
        return None

    def get_pull_request(self, number: int) -> PullRequest:
        return _pull(self._pull_data(number))

    def _pull_data(self, number: int) -> Any:
        return self.client.request("GET", f"{self._repo}/pulls/{number}", route="get pull").data

    def _await_mergeability(self, number: int, deadline: float) -> bool:
        """Re-read the PR until GitHub has computed whether it merges; False if it is closed or time is up.

        GitHub's own advice: "After giving the job time to complete, resubmit the request"
        (docs.github.com/rest/pulls/pulls#get-a-pull-request)."""
        delay = 0.25
        while True:
            data = _object(self._pull_data(number))
            if data.get("state") != "open":
                return False
            if data.get("mergeable") is not None:
                return True
            if time.monotonic() + delay > deadline:
                return False
            self._sleep(delay)
            delay = min(delay * 2, 5.0)

    def upsert_pull_request(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        existing = self.find_pull_request(branch, base)
        if existing is None:
            response = self.client.request(
                "POST",
                f"{self._repo}/pulls",
                json_body={"title": title, "head": branch, "base": base, "body": body},
                route="create pull",
                ok=(201, 422),
            )
            if response.status == 201:
                return _pull(response.data)
            existing = self.find_pull_request(branch, base)  # created by a retried request or a racing run
            if existing is None:
                raise ProviderError(
                    f"GitHub refused to open a PR from {branch} into {base}: {_message(response.data)}"
                )
        if existing.title == title and existing.body == body:
            return existing
        data = self.client.request(
            "PATCH",
            f"{self._repo}/pulls/{existing.number}",
            json_body={"title": title, "body": body},
            route="update pull",
        ).data
        return _pull(data)

    def set_auto_merge(
        self, pr: PullRequest, enabled: bool, method: MergeMethod, record: MergeRecord | None = None
    ) -> None:
        """GraphQL `enablePullRequestAutoMerge`; `record` goes into its `commitHeadline` and `commitBody`
        ("Commit headline/body to use for the commit when the PR is mergable; if omitted, a default
        message will be used", EnablePullRequestAutoMergeInput in specs/github/schema.graphql), so an
        auto-merged PR carries the same trailers as one we merge."""
        if pr.auto_merge == enabled or pr.state != "open":
            return
        if enabled:
            query = (
                "mutation($id: ID!, $method: PullRequestMergeMethod!, $headline: String, $body: String) "
                "{ enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method, "
                "commitHeadline: $headline, commitBody: $body}) { clientMutationId } }"
            )
            variables: dict[str, Any] = {"id": pr.node_id, "method": _GRAPHQL_METHOD[method]}
            variables.update(self._message_fields(pr, method, record, "headline", "body"))
        else:
            query = "mutation($id: ID!) { disablePullRequestAutoMerge(input: {pullRequestId: $id}) { clientMutationId } }"
            variables = {"id": pr.node_id}
        deadline = time.monotonic() + MERGEABILITY_WAIT
        while True:
            text = self._graphql_errors(query, variables)
            if text is None:
                return
            if not (enabled and _computing(text) and self._await_mergeability(pr.number, deadline)):
                break
        hint = (
            "GitHub had not finished computing whether the PR merges; try again later"
            if _computing(text)
            else "turn on 'Allow auto-merge' in the repository settings"
        )
        raise ProviderError(
            f"could not {'enable' if enabled else 'disable'} auto-merge on PR #{pr.number}: {text}; {hint}"
        )

    def _graphql_errors(self, query: str, variables: dict[str, Any]) -> str | None:
        """Run a mutation; the errors GitHub answered, as one line, or None when it went through."""
        response = self.client.request(
            "POST",
            self._graphql_url,
            json_body={"query": query, "variables": variables},
            route="graphql auto-merge",
        )
        errors = response.data.get("errors") if isinstance(response.data, dict) else None
        if not errors:
            return None
        listed = errors if isinstance(errors, list) else [errors]
        return "; ".join(
            str(error.get("message", error) if isinstance(error, dict) else error) for error in listed
        )[:500]

    def merge(self, pr: PullRequest, method: MergeMethod, record: MergeRecord | None = None) -> PullRequest:
        """Merge the head we read first; a 405 while GitHub computes mergeability is waited out, a moved
        head (409) or a failing check is not. `record` goes into `commit_title` ("Title for the automatic
        commit message") and `commit_message` ("Extra detail to append to automatic commit message"),
        `PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge` in specs/github/api.github.com.json."""
        current = self.get_pull_request(pr.number)
        if current.state == "merged":
            return current
        body: dict[str, Any] = {"merge_method": method, "sha": current.head_sha}
        body.update(self._message_fields(current, method, record, "commit_title", "commit_message"))
        deadline = time.monotonic() + MERGEABILITY_WAIT
        while True:
            response = self.client.request(
                "PUT",
                f"{self._repo}/pulls/{pr.number}/merge",
                json_body=body,
                route="merge pull",
                ok=(200, 405, 409),
            )
            if response.status == 200:
                return self.get_pull_request(pr.number)
            data = _object(self._pull_data(pr.number))
            if _pull(data).state == "merged":  # a retried request that had already gone through
                return _pull(data)
            message = _message(response.data)
            pending = data.get("state") == "open" and data.get("mergeable") is None
            if response.status != 405 or not (pending or _computing(message)):
                break
            if not self._await_mergeability(pr.number, deadline):
                break
        raise ProviderError(f"GitHub refused to merge PR #{pr.number}: {message}")

    def _message_fields(
        self, pr: PullRequest, method: MergeMethod, record: MergeRecord | None, title: str, body: str
    ) -> dict[str, str]:
        """GitHub's own default headline and body, plus the trailers; nothing without a record (the
        default stays GitHub's) or for a rebase, which makes no merge commit to carry them."""
        if record is None or method == "rebase":
            return {}
        if method == "merge":  # "Merge pull request #N from owner/branch", then the PR title
            headline = f"Merge pull request #{pr.number} from {self.owner}/{pr.head_branch}"
            return {title: headline, body: with_trailers(pr.title, record)}
        return {title: f"{pr.title} (#{pr.number})", body: with_trailers("", record)}

    def merged_pull_request_for(self, commit: str) -> PullRequest | None:
        for item in self.client.paginate(f"{self._repo}/commits/{commit}/pulls", {}, "pulls of commit"):
            pr = _pull(item)
            if pr.state == "merged" and pr.merge_commit_sha == commit:
                return pr
        return None

    def reviews(self, number: int, teams: Sequence[str] = ()) -> Reviews:
        """Standing approvals: each reviewer's last review that approves, requests changes or was
        dismissed decides; a comment changes nothing (docs.github.com/rest/pulls/reviews lists them oldest
        first). Teams are `org/team-slug`, checked with the team-membership API (active members only)."""
        author = _object(_object(self._pull_data(number)).get("user")).get("login")
        standing: dict[str, Review] = {}
        for item in self.client.paginate(f"{self._repo}/pulls/{number}/reviews", {}, "list reviews"):
            data = _object(item)
            login, state, commit = (
                _object(data.get("user")).get("login"),
                data.get("state"),
                data.get("commit_id"),
            )
            if not isinstance(login, str) or state not in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                continue
            standing.pop(login.lower(), None)
            if state == "APPROVED" and isinstance(commit, str):
                standing[login.lower()] = Review(login=login, commit=commit)
        approvals = tuple(
            review.model_copy(update={"teams": self.teams_of(review.login, teams)})
            for review in standing.values()
        )
        return Reviews(author=author if isinstance(author, str) else None, approvals=approvals)

    def teams_of(self, login: str, teams: Sequence[str]) -> tuple[str, ...]:
        return tuple(team for team in teams if self._member(team, login))

    def _member(self, team: str, login: str) -> bool:
        org, slash, slug = team.partition("/")
        if not slash or not org or not slug or "/" in slug:
            raise ProviderError(
                f"GitHub team {team!r} is not '@org/team-slug': write it as in the team's URL"
            )
        path = f"/orgs/{quote(org, safe='')}/teams/{quote(slug, safe='')}/memberships/{quote(login, safe='')}"
        try:
            response = self.client.request("GET", path, route="team membership", ok=(200, 404))
        except ProviderAuthError:
            raise ProviderAuthError(
                f"GitHub refused to say who is in @{team}: the token needs the 'read:org' scope (a "
                "fine-grained token or app: 'Members: read' on the organization)"
            ) from None
        return response.status == 200 and _object(response.data).get("state") == "active"

    # -- statuses and ancestry ----------------------------------------------------------------------

    def commit_statuses(self, sha: str) -> list[CommitStatus]:
        statuses = [
            CommitStatus(
                context=str(item.get("context") or ""),
                state=str(item.get("state") or ""),
                description=str(item.get("description") or ""),
                created_at=str(item.get("created_at") or ""),
                target_url=item["target_url"] if isinstance(item.get("target_url"), str) else None,
            )
            for item in self.client.paginate(f"{self._repo}/commits/{sha}/statuses", {}, "list statuses")
            if isinstance(item, dict)
        ]
        return sorted(statuses, key=lambda status: status.created_at, reverse=True)

    def set_commit_status(
        self, sha: str, context: str, state: StatusState, description: str, target_url: str | None = None
    ) -> None:
        body: dict[str, Any] = {"state": state, "context": context, "description": description[:140]}
        if target_url:
            body["target_url"] = target_url
        self.client.request("POST", f"{self._repo}/statuses/{sha}", json_body=body, route="create status")

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        if ancestor == descendant:
            return True
        data = self.client.request(
            "GET", f"{self._repo}/compare/{ancestor}...{descendant}", route="compare"
        ).data
        return isinstance(data, dict) and data.get("status") in ("ahead", "identical")


def _pull(item: Any) -> PullRequest:
    number = item.get("number") if isinstance(item, dict) else None
    if not isinstance(number, int) or isinstance(number, bool):
        raise ProviderError("GitHub answered a pull request without a number; is this a GitHub API?")
    head, base = _object(item.get("head")), _object(item.get("base"))
    merged = bool(item.get("merged") or item.get("merged_at"))
    state: Literal["open", "merged", "closed"] = (
        "merged" if merged else ("open" if item.get("state") == "open" else "closed")
    )
    login = _object(item.get("merged_by")).get("login")
    merge_commit = item.get("merge_commit_sha")
    node_id = item.get("node_id")
    return PullRequest(
        number=number,
        title=str(item.get("title") or ""),
        body=str(item.get("body") or ""),
        head_branch=str(head.get("ref") or ""),
        base_branch=str(base.get("ref") or ""),
        head_sha=str(head.get("sha") or ""),
        state=state,
        url=str(item.get("html_url") or ""),
        merge_commit_sha=merge_commit if merged and isinstance(merge_commit, str) else None,
        merged_by=login if isinstance(login, str) else None,
        auto_merge=item.get("auto_merge") is not None,
        node_id=node_id if isinstance(node_id, str) else None,
    )


def _object(value: Any) -> dict[str, Any]:
    """A nested object of a response, or {} when the forge (or something posing as it) sent another type."""
    return value if isinstance(value, dict) else {}


def _computing(text: str) -> bool:
    """Whether GitHub's refusal means "not computed yet" rather than "no"."""
    return any(sign in text for sign in _COMPUTING)


def _message(data: Any) -> str:
    """GitHub's `message` with its `errors`, which say what was wrong ("Validation Failed" alone does not):
    a list of objects (`{"resource": "PullRequest", "field": "head", "code": "invalid"}`) or a string."""
    if not isinstance(data, dict):
        return "no details"
    message = str(data.get("message") or "")
    errors = data.get("errors")
    if isinstance(errors, str):
        details = [errors]
    elif isinstance(errors, list):
        details = [
            str(e.get("message") or " ".join(str(e[k]) for k in ("field", "code") if e.get(k)))
            if isinstance(e, dict)
            else str(e)
            for e in errors
        ]
    else:
        details = []
    text = ": ".join(part for part in [message, "; ".join(d for d in details if d)] if part)
    return " ".join(text.split())[:500] or "no details"
