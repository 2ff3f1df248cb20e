"""GitHub's JSON shapes, built field by field from the schemas in GitHub's OpenAPI description.

Each function names the component it builds (`simple-user`, `repository`, `pull-request`, ...) and fills
every property that component lists as required, with URLs that point back at this sandbox.

The shapes follow the API version the request selected: GitHub's description marks what version
2026-03-10 removes (`x-github-breaking-changes`), and these shapes drop the same members for it:
`merge_commit_sha` and `assignee` of pull requests (`remove_pull_request_merge_commit_sha`,
`remove_singular_assignee_from_issues_and_pull_requests`), `has_downloads` of repositories
(`remove_has_downloads`) and `rate` of `GET /rate_limit` (`remove_rate_limit_rate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sandbox.accounting import RateLimits
from sandbox.forge import WEB_COMMITTER, Account, Forge, PullRequest, Repository, Review, Status
from sandbox.gitrepo import CommitInfo

DOCS = "https://docs.github.com/rest"
V2026 = "2026-03-10"
SEARCH_LIMIT = 30  # per minute for a token (docs.github.com/rest/search/search#rate-limit)
Computing = Callable[[Repository, PullRequest], bool]
# What GitHub reports for a commit nobody signed (PyGithub's recorded compare, tests/ReplayData/
# Repository.testCompare.txt; `verified_at` is required by the description since 2024).
UNSIGNED = {"verified": False, "reason": "unsigned", "signature": None, "payload": None, "verified_at": None}


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def error(message: str, documentation_url: str = DOCS, **extra: Any) -> dict[str, Any]:
    return {"message": message, "documentation_url": documentation_url, **extra}


def validation_failed(
    resource: str, code: str, field: str | None, message: str | None, documentation_url: str = DOCS
) -> dict[str, Any]:
    item: dict[str, Any] = {"resource": resource, "code": code}
    if field:
        item["field"] = field
    if message:
        item["message"] = message
    return error("Validation Failed", documentation_url, errors=[item])


class Shapes:
    """Builds JSON for one base URL (the sandbox's address as the client used it) and API version.

    `computing` says whether GitHub would still be computing a pull request's mergeability."""

    def __init__(
        self, base_url: str, version: str = "2022-11-28", computing: Computing | None = None
    ) -> None:
        self.web = base_url
        self.api = f"{base_url}/api/v3"
        self.version = version
        self.computing = computing or (lambda _repo, _pr: False)

    def simple_user(self, login: str) -> dict[str, Any]:
        account = Account(login)
        url = f"{self.api}/users/{login}"
        return {
            "login": login,
            "id": account.id,
            "node_id": f"U_{account.id:x}",
            "avatar_url": f"{self.web}/avatars/{login}",
            "gravatar_id": "",
            "url": url,
            "html_url": f"{self.web}/{login}",
            "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events",
            "type": "Bot" if login.endswith("-bot") else "User",
            "site_admin": False,
        }

    def review(self, repo: Repository, pr: PullRequest, review: Review) -> dict[str, Any]:
        """`pull-request-review`: `commit_id` is the head the review was made on, kept when the head moves."""
        html = f"{self.web}/{repo.owner}/{repo.name}/pull/{pr.number}#pullrequestreview-{review.id}"
        pull = f"{self.api}/repos/{repo.owner}/{repo.name}/pulls/{pr.number}"
        return {
            "id": review.id,
            "node_id": f"PRR_{review.id:x}",
            "user": self.simple_user(review.login),
            "body": review.body,
            "state": review.state,
            "html_url": html,
            "pull_request_url": pull,
            "_links": {"html": {"href": html}, "pull_request": {"href": pull}},
            "submitted_at": iso(review.submitted_at),
            "commit_id": review.commit_id,
            "author_association": "OWNER" if review.login == repo.owner else "COLLABORATOR",
        }

    def team_membership(self, org: str, slug: str, login: str, state: str) -> dict[str, Any]:
        return {
            "url": f"{self.api}/organizations/{Account(org).id}/team/{Account(slug).id}/memberships/{login}",
            "role": "member",
            "state": state,
        }

    def public_user(self, login: str) -> dict[str, Any]:
        return {
            **self.simple_user(login),
            "name": login,
            "company": None,
            "blog": None,
            "location": None,
            "email": None,
            "hireable": None,
            "bio": None,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": iso(0),
            "updated_at": iso(0),
        }

    def _repo_urls(self, repo: Repository) -> dict[str, Any]:
        url = f"{self.api}/repos/{repo.owner}/{repo.name}"
        return {
            "url": url,
            "html_url": f"{self.web}/{repo.owner}/{repo.name}",
            "archive_url": f"{url}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{url}/assignees{{/user}}",
            "blobs_url": f"{url}/git/blobs{{/sha}}",
            "branches_url": f"{url}/branches{{/branch}}",
            "collaborators_url": f"{url}/collaborators{{/collaborator}}",
            "comments_url": f"{url}/comments{{/number}}",
            "commits_url": f"{url}/commits{{/sha}}",
            "compare_url": f"{url}/compare/{{base}}...{{head}}",
            "contents_url": f"{url}/contents/{{+path}}",
            "contributors_url": f"{url}/contributors",
            "deployments_url": f"{url}/deployments",
            "downloads_url": f"{url}/downloads",
            "events_url": f"{url}/events",
            "forks_url": f"{url}/forks",
            "git_commits_url": f"{url}/git/commits{{/sha}}",
            "git_refs_url": f"{url}/git/refs{{/sha}}",
            "git_tags_url": f"{url}/git/tags{{/sha}}",
            "hooks_url": f"{url}/hooks",
            "issue_comment_url": f"{url}/issues/comments{{/number}}",
            "issue_events_url": f"{url}/issues/events{{/number}}",
            "issues_url": f"{url}/issues{{/number}}",
            "keys_url": f"{url}/keys{{/key_id}}",
            "labels_url": f"{url}/labels{{/name}}",
            "languages_url": f"{url}/languages",
            "merges_url": f"{url}/merges",
            "milestones_url": f"{url}/milestones{{/number}}",
            "notifications_url": f"{url}/notifications{{?since,all,participating}}",
            "pulls_url": f"{url}/pulls{{/number}}",
            "releases_url": f"{url}/releases{{/id}}",
            "stargazers_url": f"{url}/stargazers",
            "statuses_url": f"{url}/statuses/{{sha}}",
            "subscribers_url": f"{url}/subscribers",
            "subscription_url": f"{url}/subscription",
            "tags_url": f"{url}/tags",
            "teams_url": f"{url}/teams",
            "trees_url": f"{url}/git/trees{{/sha}}",
        }

    def minimal_repository(self, repo: Repository) -> dict[str, Any]:
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id:x}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self.simple_user(repo.owner),
            "private": True,
            "description": repo.description,
            "fork": False,
            **self._repo_urls(repo),
        }

    def repository(self, repo: Repository) -> dict[str, Any]:
        clone = f"{self.web}/{repo.owner}/{repo.name}.git"
        data = {
            **self.minimal_repository(repo),
            "clone_url": clone,
            "git_url": clone,
            "ssh_url": clone,
            "svn_url": f"{self.web}/{repo.owner}/{repo.name}",
            "mirror_url": None,
            "homepage": None,
            "language": None,
            "license": None,
            "default_branch": repo.default_branch,
            "forks": 0,
            "forks_count": 0,
            "open_issues": 0,
            "open_issues_count": 0,
            "stargazers_count": 0,
            "watchers": 0,
            "watchers_count": 0,
            "size": 0,
            "has_downloads": False,
            "has_issues": False,
            "has_pages": False,
            "has_projects": False,
            "has_wiki": False,
            "archived": False,
            "disabled": False,
            "visibility": "private",
            "allow_merge_commit": True,
            "allow_squash_merge": True,
            "allow_rebase_merge": False,
            "allow_auto_merge": True,
            "pushed_at": iso(repo.created_at),
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.created_at),
        }
        if self.version >= V2026:
            data.pop("has_downloads")
        return data

    def full_repository(self, repo: Repository) -> dict[str, Any]:
        return {
            **self.repository(repo),
            "has_discussions": False,
            "network_count": 0,
            "subscribers_count": 0,
        }

    def pull_request(
        self, forge: Forge, repo: Repository, pr: PullRequest, full: bool = True
    ) -> dict[str, Any]:
        """`pull-request` when full, else `pull-request-simple` (the list shape, without merge details)."""
        url = f"{self.api}/repos/{repo.owner}/{repo.name}/pulls/{pr.number}"
        issue = f"{self.api}/repos/{repo.owner}/{repo.name}/issues/{pr.number}"
        html = f"{self.web}/{repo.owner}/{repo.name}/pull/{pr.number}"
        statuses = f"{self.api}/repos/{repo.owner}/{repo.name}/statuses/{pr.head_sha}"
        repo_json = self.repository(repo)
        base_sha = pr.base_sha_at_merge if pr.merged else repo.branches.get(pr.base_ref, "")
        data: dict[str, Any] = {
            "url": url,
            "id": repo.pull_id(pr.number),
            "node_id": repo.node_id(pr.number),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue,
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{self.api}/repos/{repo.owner}/{repo.name}/pulls/comments{{/number}}",
            "comments_url": f"{issue}/comments",
            "statuses_url": statuses,
            "number": pr.number,
            "state": pr.state,
            "locked": False,
            "title": pr.title,
            "user": self.simple_user(pr.created_by),
            "body": pr.body or None,
            "labels": [],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": iso(pr.created_at),
            "updated_at": iso(pr.updated_at),
            "closed_at": iso(pr.closed_at),
            "merged_at": iso(pr.merged_at),
            "merge_commit_sha": pr.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": {
                "label": f"{repo.owner}:{pr.head_ref}",
                "ref": pr.head_ref,
                "sha": pr.head_sha,
                "user": self.simple_user(repo.owner),
                "repo": repo_json,
            },
            "base": {
                "label": f"{repo.owner}:{pr.base_ref}",
                "ref": pr.base_ref,
                "sha": base_sha,
                "user": self.simple_user(repo.owner),
                "repo": repo_json,
            },
            "_links": {
                "self": {"href": url},
                "html": {"href": html},
                "issue": {"href": issue},
                "comments": {"href": f"{issue}/comments"},
                "review_comments": {"href": f"{url}/comments"},
                "review_comment": {
                    "href": f"{self.api}/repos/{repo.owner}/{repo.name}/pulls/comments{{/number}}"
                },
                "commits": {"href": f"{url}/commits"},
                "statuses": {"href": statuses},
            },
            "author_association": "OWNER" if pr.created_by == repo.owner else "COLLABORATOR",
            "auto_merge": self.auto_merge(pr),
            "draft": False,
        }
        if self.version >= V2026:
            data.pop("merge_commit_sha")
            data.pop("assignee")
        if not full:
            return data
        computing = self.computing(repo, pr)
        mergeable = None if computing else forge.mergeable(repo, pr)
        if pr.state != "open" or computing:
            state = "unknown"
        elif mergeable is False:
            state = "dirty"
        else:
            state = "clean" if forge.checks(repo, pr.base_ref, pr.head_sha) == ([], []) else "blocked"
        return {
            **data,
            "merged": pr.merged,
            "mergeable": mergeable,
            "rebaseable": False if pr.state == "open" and not computing else None,
            "mergeable_state": state,
            "merged_by": self.simple_user(pr.merged_by) if pr.merged_by else None,
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": 1,
            "additions": 0,
            "deletions": 0,
            "changed_files": 0,
        }

    def rate_limit(self, rates: RateLimits, login: str) -> dict[str, Any]:
        """`rate-limit-overview`: the budgets this sandbox keeps (core, graphql) and search's fixed one."""

        def budget(resource: str) -> dict[str, int]:
            headers = rates.headers(login, resource)
            return {
                key: int(headers[f"x-ratelimit-{key}"]) for key in ("limit", "used", "remaining", "reset")
            }

        search = {"limit": SEARCH_LIMIT, "used": 0, "remaining": SEARCH_LIMIT, "reset": int(time.time()) + 60}
        resources = {"core": budget("core"), "graphql": budget("graphql"), "search": search}
        data: dict[str, Any] = {"resources": resources, "rate": resources["core"]}
        if self.version >= V2026:
            data.pop("rate")
        return data

    def auto_merge(self, pr: PullRequest) -> dict[str, Any] | None:
        auto = pr.auto_merge
        if auto is None:
            return None
        return {
            "enabled_by": self.simple_user(auto.enabled_by),
            "merge_method": auto.method,
            "commit_title": auto.commit_title,
            "commit_message": auto.commit_message,
        }

    def status(self, repo: Repository, status: Status) -> dict[str, Any]:
        """`status` (what creating one returns, and the list items)."""
        return {
            "url": f"{self.api}/repos/{repo.owner}/{repo.name}/statuses/{status.sha}",
            "avatar_url": f"{self.web}/avatars/{status.creator}",
            "id": status.id,
            "node_id": f"SC_{status.id:x}",
            "state": status.state,
            "description": status.description,
            "target_url": status.target_url,
            "context": status.context,
            "created_at": iso(status.created_at),
            "updated_at": iso(status.created_at),
            "creator": self.simple_user(status.creator),
        }

    def simple_status(self, repo: Repository, status: Status) -> dict[str, Any]:
        data = self.status(repo, status)
        data.pop("creator")
        return data

    def combined(self, repo: Repository, sha: str, statuses: list[Status]) -> dict[str, Any]:
        """GitHub's rule: failure if any is failure/error, pending if any pending or none at all, else success."""
        states = {s.state for s in statuses}
        if states & {"failure", "error"}:
            state = "failure"
        elif not statuses or "pending" in states:
            state = "pending"
        else:
            state = "success"
        return {
            "state": state,
            "statuses": [self.simple_status(repo, s) for s in statuses],
            "sha": sha,
            "total_count": len(statuses),
            "repository": self.minimal_repository(repo),
            "commit_url": f"{self.api}/repos/{repo.owner}/{repo.name}/commits/{sha}",
            "url": f"{self.api}/repos/{repo.owner}/{repo.name}/commits/{sha}/status",
        }

    def commit(self, repo: Repository, info: CommitInfo) -> dict[str, Any]:
        url = f"{self.api}/repos/{repo.owner}/{repo.name}/commits/{info.sha}"
        git_url = f"{self.api}/repos/{repo.owner}/{repo.name}/git/commits/{info.sha}"

        def person(name: str, email: str, when: int) -> dict[str, Any]:
            return {"name": name, "email": email, "date": iso(when)}

        return {
            "url": url,
            "sha": info.sha,
            "node_id": f"C_{info.sha[:20]}",
            "html_url": f"{self.web}/{repo.owner}/{repo.name}/commit/{info.sha}",
            "comments_url": f"{url}/comments",
            "commit": {
                "url": git_url,
                "author": person(info.author.name, info.author.email, info.author_date),
                "committer": person(info.committer.name, info.committer.email, info.committer_date),
                "message": info.message.rstrip("\n"),
                "comment_count": 0,
                "verification": UNSIGNED,
                "tree": {
                    "sha": info.tree,
                    "url": f"{self.api}/repos/{repo.owner}/{repo.name}/git/trees/{info.tree}",
                },
            },
            "author": self._account_of(info.author.email),
            "committer": self._account_of(info.committer.email),
            "parents": [
                {
                    "sha": p,
                    "url": f"{self.api}/repos/{repo.owner}/{repo.name}/commits/{p}",
                    "html_url": f"{self.web}/{repo.owner}/{repo.name}/commit/{p}",
                }
                for p in info.parents
            ],
        }

    def _account_of(self, email: str) -> dict[str, Any]:
        """The account a commit e-mail belongs to, as GitHub links them: a sandbox user, `web-flow` for
        commits GitHub makes itself (merges). For an e-mail no account claims GitHub answers null; this
        sends the description's other allowed form, `empty-object`, because openapi-core rejects null
        under `nullable` with `oneOf`."""
        if email == WEB_COMMITTER.email:
            return self.simple_user("web-flow")
        login, _, domain = email.partition("@")
        return self.simple_user(login) if domain == "users.noreply.sandbox.local" else {}

    def git_ref(self, repo: Repository, branch: str, sha: str) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.owner}/{repo.name}"
        return {
            "ref": f"refs/heads/{branch}",
            "node_id": f"REF_{repo.id:x}_{branch}",
            "url": f"{api}/git/refs/heads/{branch}",
            "object": {"type": "commit", "sha": sha, "url": f"{api}/git/commits/{sha}"},
        }

    def protection(self, repo: Repository, branch: str, contexts: list[str]) -> dict[str, Any]:
        url = f"{self.api}/repos/{repo.owner}/{repo.name}/branches/{branch}/protection"
        return {
            "url": url,
            "required_status_checks": {
                "url": f"{url}/required_status_checks",
                "strict": False,
                "contexts": contexts,
                "checks": [{"context": c, "app_id": None} for c in contexts],
                "contexts_url": f"{url}/required_status_checks/contexts",
            },
            "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": False},
            "required_linear_history": {"enabled": False},
            "allow_force_pushes": {"enabled": False},
            "allow_deletions": {"enabled": False},
        }
