"""The Azure DevOps personality: the Git REST API 7.1 as the service serves it (docs/sandbox.md).

Every call exists twice, as on the service: `/{organization}/{project}/_apis/git/repositories/{repo}/...`
(repository by name or id, project by name or id) and `/{organization}/_apis/git/repositories/{id}/...`
(repository by GUID only; the description marks `project` `x-ms-required: false`). Route words are
case-insensitive (Microsoft's own URLs say `pullRequests`), and so are organisation, project and
repository names. Merges and completions are asynchronous (`azure_merges.py`); route discovery for
Microsoft's Python client is in `azure_locations.py`; shapes, leniency and api-version rules in
`azure_json.py`. Branch protection is the forge's: a required status (`genre/name`, or just the name) on
the source commit, without which completion is `rejectedByPolicy`.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sandbox import azure_locations
from sandbox.azure_json import (
    ENUMS,
    Shapes,
    check_api_version,
    enum_value,
    error_body,
    group_id,
    iso,
    iso_seconds,
    lenient,
    listing,
    query_flag,
    query_int,
)
from sandbox.azure_merges import DEFAULT_DELAY, Completion, MergeQueue
from sandbox.forge import (
    Account,
    AutoMerge,
    Forge,
    ForgeError,
    MergeMethod,
    PullRequest,
    Repository,
    Status,
)
from sandbox.github_rest import blocking
from sandbox.gitrepo import is_branch_name
from sandbox.routing import BadRequest, Call, Reply, Router

__all__ = ["check_api_version", "error_body", "error_reply", "lenient"]

PREFIX = "/{organization}/{project}/_apis/git"
ORG_PREFIX = "/{organization}/_apis/git"
STRATEGIES: dict[str, MergeMethod] = {
    "noFastForward": "merge",
    "squash": "squash",
    "rebase": "rebase",
    "rebaseMerge": "rebaseMerge",
}
NO_ONE = "00000000-0000-0000-0000-000000000000"
LAST_MERGE_SOURCE = (
    "Invalid argument value.\r\nParameter name: You must specify a valid LastMergeSourceCommit to perform "
    "this operation."
)


def error_reply(exc: ForgeError | BadRequest, template: str) -> Reply:
    if isinstance(exc, BadRequest):
        return error_body(exc.message, "InvalidArgumentValueException", 400)
    if exc.kind == "not_found":
        if "{pullRequestId}" in template:
            return error_body(
                "TF401180: The requested pull request was not found.", "GitPullRequestNotFoundException", 404
            )
        return error_body(
            "TF401019: The Git repository with name or identifier does not exist or you do not have permissions "
            "for the operation you are attempting.",
            "GitRepositoryNotFoundException",
            404,
        )
    if exc.kind == "exists":
        if "pullrequests" in template:
            return error_body(
                "TF401179: An active pull request for the source and target branch already exists.",
                "GitPullRequestExistsException",
                409,
            )
        return error_body(exc.message, "GitRepositoryNameAlreadyExistsException", 409)
    if exc.kind == "invalid":
        return error_body(exc.message, "InvalidArgumentValueException", 400)
    if exc.kind == "not_mergeable":
        return error_body(
            f"The pull request cannot be completed: {exc.message}",
            "GitPullRequestCannotBeCompletedException",
            409,
        )
    return error_body(exc.message, "GitPullRequestStaleException", 409)


def _ref_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.startswith("refs/heads/") or not is_branch_name(value[11:]):
        raise BadRequest(f"{field} must be a branch ref such as refs/heads/main", field=field)
    return value[11:]


def _pr_status(pr: PullRequest) -> str:
    return "completed" if pr.merged else "abandoned" if pr.state == "closed" else "active"


@dataclass
class Extras:
    """What the forge does not keep for a pull request: reviewers with votes, draft, its own statuses."""

    reviewers: dict[str, tuple[int, bool]] = field(default_factory=dict)  # login -> (vote, required)
    draft: bool = False
    statuses: list[tuple[Status, dict[str, Any]]] = field(
        default_factory=list
    )  # with iterationId, properties


class AzureDevOps:
    def __init__(self, forge: Forge, merge_delay: float = DEFAULT_DELAY) -> None:
        self.forge = forge
        self.merges = MergeQueue(forge, merge_delay)
        self._extras: dict[tuple[str, int], Extras] = {}
        self._lock = threading.Lock()
        self._status_ids = 0
        self._commits: dict[tuple[str, str], dict[str, Any]] = {}

    def close(self) -> None:
        self.merges.close()

    def register(self, router: Router) -> None:
        repo = "/repositories/{repositoryId}"
        pull = f"{repo}/pullrequests/{{pullRequestId}}"
        routes: list[tuple[str, str, Any]] = [
            ("GET", repo, self.get_repo),
            ("GET", f"{repo}/pullrequests", self.list_pulls),
            ("POST", f"{repo}/pullrequests", self.create_pull),
            ("GET", pull, self.get_pull),
            ("PATCH", pull, self.update_pull),
            ("GET", f"{pull}/reviewers", self.list_reviewers),
            ("PUT", f"{pull}/reviewers/{{reviewerId}}", self.put_reviewer),
            ("GET", f"{pull}/statuses", self.list_pull_statuses),
            ("POST", f"{pull}/statuses", self.create_pull_status),
            ("GET", "/pullrequests/{pullRequestId}", self.get_pull_by_id),
            ("POST", f"{repo}/pullrequestquery", self.query_pulls),
            ("GET", f"{repo}/commits/{{commitId}}/statuses", self.list_statuses),
            ("POST", f"{repo}/commits/{{commitId}}/statuses", self.create_status),
            ("GET", f"{repo}/refs", self.list_refs),
            ("GET", f"{repo}/diffs/commits", self.diff_commits),
        ]
        router.add("POST", "/repositories", self.create_repo, "azure", PREFIX, PREFIX, ignore_case=True)
        router.add("GET", "/repositories", self.list_repos, "azure", PREFIX, PREFIX, ignore_case=True)
        router.add("GET", "/pullrequests", self.list_project_pulls, "azure", PREFIX, PREFIX, ignore_case=True)
        for method, template, handler in routes:
            router.add(method, template, handler, "azure", PREFIX, PREFIX, ignore_case=True)
            router.add(method, template, handler, "azure", ORG_PREFIX, PREFIX, ignore_case=True)
        azure_locations.register(router)

    # -- lookups -----------------------------------------------------------------------------------------

    def _repo(self, call: Call) -> Repository:
        """The repository a URL names: by name or id under a project, by GUID only at the organisation level."""
        p = call.params
        org, wanted, project = p["organization"].lower(), p["repositoryId"].lower(), p.get("project")
        for repo in self.forge.repos():
            if repo.kind != "azure" or repo.owner.lower() != org:
                continue
            if project is None:
                if repo.uuid == wanted:
                    return repo
            elif project.lower() in (str(repo.project).lower(), repo.project_uuid) and wanted in (
                repo.name.lower(),
                repo.uuid,
            ):
                return repo
        raise ForgeError("not_found", "Not Found")

    def _pull(self, call: Call) -> tuple[Repository, PullRequest]:
        repo = self._repo(call)
        return repo, self.forge.pull(repo, _number(call))

    def _extra(self, repo: Repository, number: int) -> Extras:
        with self._lock:
            return self._extras.setdefault((repo.key, number), Extras())

    # -- shapes ------------------------------------------------------------------------------------------

    def pull_json(self, base_url: str, repo: Repository, pr: PullRequest) -> dict[str, Any]:
        """A pull request as the service shows it now (merge status, merge commit, queue time)."""
        shapes = Shapes(base_url, repo)
        extra = self._extra(repo, pr.number)
        target = pr.base_sha_at_merge if pr.merged else repo.branches.get(pr.base_ref)
        data: dict[str, Any] = {
            "repository": shapes.repository(),
            "pullRequestId": pr.number,
            "codeReviewId": pr.number,
            "status": _pr_status(pr),
            "createdBy": shapes.identity(pr.created_by),
            "creationDate": iso(pr.created_at),
            "title": pr.title,
            "description": pr.body,
            "sourceRefName": f"refs/heads/{pr.head_ref}",
            "targetRefName": f"refs/heads/{pr.base_ref}",
            "mergeStatus": self.merges.merge_status(repo, pr),
            "isDraft": extra.draft,
            "mergeId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{repo.key}#{pr.number}")),
            "lastMergeSourceCommit": shapes.commit_ref(pr.head_sha),
            "reviewers": self._reviewers_json(shapes, pr.number, extra),
            "url": f"{shapes.api}/pullRequests/{pr.number}",
            "_links": shapes.pull_links(pr.number, pr.head_sha, target, pr.created_by),
            "supportsIterations": True,
            "artifactId": f"vstfs:///Git/PullRequestId/{repo.project_uuid}%2f{repo.uuid}%2f{pr.number}",
        }
        if target:
            data["lastMergeTargetCommit"] = shapes.commit_ref(target)
        merge_commit = pr.merge_commit_sha if pr.merged else self.merges.preview_commit(repo, pr)
        if merge_commit:
            data["lastMergeCommit"] = self._commit_json(shapes, repo, merge_commit)
        queued = self.merges.queued_at(repo, pr)
        if queued is not None:
            data["completionQueueTime"] = iso(queued)
        failure = self.merges.failure_message(repo, pr)
        if failure:
            data["mergeFailureMessage"] = failure
        if pr.closed_at is not None:
            data["closedDate"] = iso(pr.closed_at)
            data["closedBy"] = shapes.identity(pr.closed_by or pr.created_by)
        if pr.auto_merge is not None:
            data["autoCompleteSetBy"] = shapes.identity(pr.auto_merge.enabled_by)
        if pr.completion_options:
            data["completionOptions"] = pr.completion_options
        return data

    def _commit_json(self, shapes: Shapes, repo: Repository, sha: str) -> dict[str, Any]:
        """A GitCommitRef with author, committer and comment, as `lastMergeCommit` is written."""
        with self._lock:
            cached = self._commits.get((repo.key, sha))
        if cached is None:
            cached = self._commit_fields(repo, sha)
            with self._lock:
                self._commits[(repo.key, sha)] = cached
        return {**cached, "url": f"{shapes.api}/commits/{sha}"}

    def _commit_fields(self, repo: Repository, sha: str) -> dict[str, Any]:
        info = self.forge.commit(repo, sha)  # commits never change: read each once
        return {
            "commitId": sha,
            "author": {
                "name": info.author.name,
                "email": info.author.email,
                "date": iso_seconds(info.author_date),
            },
            "committer": {
                "name": info.committer.name,
                "email": info.committer.email,
                "date": iso_seconds(info.committer_date),
            },
            "comment": info.message.strip(),
        }

    def _pulls_json(self, base_url: str, repo: Repository, pulls: list[PullRequest]) -> list[dict[str, Any]]:
        return [self.pull_json(base_url, repo, pr) for pr in pulls]

    async def _pull_reply(self, call: Call, repo: Repository, pr: PullRequest, status: int = 200) -> Reply:
        return Reply(status, await blocking(partial(self.pull_json, call.base_url, repo, pr)))

    # -- repositories --------------------------------------------------------------------------------------

    async def create_repo(self, call: Call) -> Reply:
        data = call.object()
        name = data.get("name")
        if not isinstance(name, str):
            raise BadRequest("name is required", field="name")
        p = call.params
        repo = await blocking(
            lambda: self.forge.create_repo(
                "azure", p["organization"], name, p["project"], created_by=call.user.login
            )
        )
        return Reply(201, Shapes(call.base_url, repo).repository())

    async def list_repos(self, call: Call) -> Reply:
        org, project = call.params["organization"].lower(), call.params["project"].lower()
        repos = [
            r
            for r in self.forge.repos()
            if r.kind == "azure"
            and r.owner.lower() == org
            and project in (str(r.project).lower(), r.project_uuid)
        ]
        return Reply(200, listing([Shapes(call.base_url, r).repository() for r in repos]))

    async def get_repo(self, call: Call) -> Reply:
        return Reply(200, Shapes(call.base_url, self._repo(call)).repository())

    # -- pull requests -------------------------------------------------------------------------------------

    async def list_pulls(self, call: Call) -> Reply:
        repo = self._repo(call)
        q = call.query
        status = enum_value("status", q.get("searchCriteria.status", "active"))
        if status not in ENUMS["status"]:
            raise BadRequest(
                f"searchCriteria.status {str(status)[:40]!r} is not a valid status", field="status"
            )
        source = q.get("searchCriteria.sourceRefName")
        target = q.get("searchCriteria.targetRefName")
        skip, top = query_int(call, "$skip", 0), min(query_int(call, "$top", 101), 1000)
        pulls = [
            pr
            for pr in sorted(self.forge.pulls(repo), key=lambda p: p.number, reverse=True)
            if (status in ("all", "notSet") or _pr_status(pr) == status)
            and (not source or f"refs/heads/{pr.head_ref}".lower() == source.lower())
            and (not target or f"refs/heads/{pr.base_ref}".lower() == target.lower())
        ]
        chunk = pulls[skip : skip + top]
        return Reply(
            200,
            listing(await blocking(partial(self._pulls_json, call.base_url, repo, chunk))),
        )

    async def list_project_pulls(self, call: Call) -> Reply:
        """`GET /{org}/{project}/_apis/git/pullrequests`: active pull requests of every repository."""
        org, project = call.params["organization"].lower(), call.params["project"].lower()
        found = [
            (repo, pr)
            for repo in self.forge.repos()
            if repo.kind == "azure"
            and repo.owner.lower() == org
            and project in (str(repo.project).lower(), repo.project_uuid)
            for pr in self.forge.pulls(repo)
            if _pr_status(pr) == "active"
        ]
        skip, top = query_int(call, "$skip", 0), min(query_int(call, "$top", 101), 1000)
        chunk = found[skip : skip + top]
        return Reply(
            200,
            listing(await blocking(lambda: [self.pull_json(call.base_url, r, pr) for r, pr in chunk])),
        )

    async def create_pull(self, call: Call) -> Reply:
        repo = self._repo(call)
        data = call.object()
        source = _ref_name(data.get("sourceRefName"), "sourceRefName")
        target = _ref_name(data.get("targetRefName"), "targetRefName")
        title = data.get("title")
        description = data.get("description") or ""
        if not isinstance(title, str) or not isinstance(description, str):
            raise BadRequest("title and description must be strings", field="title")
        reviewers = self._reviewers(data.get("reviewers"))
        draft = data.get("isDraft", False)
        if not isinstance(draft, bool):
            raise BadRequest("isDraft must be true or false", field="isDraft")
        pr = await blocking(
            lambda: self.forge.create_pull(repo, call.user.login, source, target, title, description)
        )
        extra = self._extra(repo, pr.number)
        extra.reviewers, extra.draft = reviewers, draft
        # autoCompleteSetBy is ignored on create: "auto-complete will not get set on create, so a
        # subsequent update is required" (Azure/azure-devops-cli-extension, pull_request.py).
        return await self._pull_reply(call, repo, pr, 201)

    def _reviewers(self, value: Any) -> dict[str, tuple[int, bool]]:
        if value is None:
            return {}
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            raise BadRequest("reviewers must be a list of identity references with an id", field="reviewers")
        found: dict[str, tuple[int, bool]] = {}
        for reviewer in value:
            login = self._login(reviewer.get("id"))
            if login is None:
                raise BadRequest(
                    f"reviewer {str(reviewer.get('id'))[:40]!r} is not a known identity", field="reviewers"
                )
            vote = reviewer.get("vote", 0)
            if vote not in (-10, -5, 0, 5, 10):
                raise BadRequest("a reviewer's vote must be one of 10, 5, 0, -5, -10", field="vote")
            found[login] = (vote, reviewer.get("isRequired") is True)
        return found

    def _reviewers_json(self, shapes: Shapes, number: int, extra: Extras) -> list[dict[str, Any]]:
        """Votes roll up into the groups on the PR: "Groups and teams can be reviewers on pull requests but
        can not vote directly. When a member of the group or team votes, that vote is rolled up into the
        group or team vote. VotedFor is a list of such votes." (`IdentityRefWithVote`, git-7.1.json)"""
        with self._lock:
            reviewers = dict(extra.reviewers)
        groups = {name for name in reviewers if name.lower() in self.forge.teams}
        people = {login: vote for login, (vote, _) in reviewers.items() if login not in groups}

        def rolled_up(group: str) -> int:
            votes = [v for login, v in people.items() if v and self.forge.member(group, login) == "active"]
            return min(votes) if any(v < 0 for v in votes) else max(votes, default=0)

        shown = []
        for name, (vote, required) in reviewers.items():
            if name in groups:
                shown.append(shapes.reviewer(number, name, rolled_up(name), required, group=True))
                continue
            entry = shapes.reviewer(number, name, vote, required)
            voted_for = [
                shapes.reviewer(number, g, rolled_up(g), reviewers[g][1], group=True)
                for g in sorted(groups)
                if vote and self.forge.member(g, name) == "active"
            ]
            if voted_for:
                entry["votedFor"] = voted_for
            shown.append(entry)
        return shown

    async def list_reviewers(self, call: Call) -> Reply:
        repo, pr = self._pull(call)
        shown = self._reviewers_json(Shapes(call.base_url, repo), pr.number, self._extra(repo, pr.number))
        return Reply(200, {"count": len(shown), "value": shown})

    async def put_reviewer(self, call: Call) -> Reply:
        """Add a reviewer, or cast the caller's own vote. Only the token's owner votes: "You cannot vote
        for another user." (microsoft/azure-devops-dotnet-samples#303; the PAT owner "can reset their own
        vote", microsoft/azure-devops-node-api#611); an unknown id is "The identity  is not recognized."
        (shayki5/azure-devops-create-pr-task#149). A group cannot vote at all."""
        repo, pr = self._pull(call)
        data = call.object()
        reviewer_id = call.params["reviewerId"].lower()
        name = self._login(reviewer_id) or next(
            (team for team in self.forge.teams if group_id(team) == reviewer_id), None
        )
        if name is None:
            raise BadRequest("Invalid argument value.\r\nParameter name: The identity  is not recognized.")
        vote = data.get("vote", 0)
        if vote not in (-10, -5, 0, 5, 10):
            raise BadRequest("a reviewer's vote must be one of 10, 5, 0, -5, -10", field="vote")
        if vote and name.lower() != call.user.login.lower():
            raise BadRequest(
                "Invalid argument value.\r\nParameter name: You can only reset votes to zero (NoVote) "
                "using this REST call. You cannot vote for another user."
            )
        if pr.state != "open":
            raise ForgeError("invalid", "TF401181: The pull request cannot be edited due to its state.")
        extra = self._extra(repo, pr.number)
        with self._lock:
            required = data.get("isRequired") is True or extra.reviewers.get(name, (0, False))[1]
            extra.reviewers[name] = (vote, required)
        shown = self._reviewers_json(Shapes(call.base_url, repo), pr.number, extra)
        return Reply(200, next(r for r in shown if r["displayName"] == name))

    def _login(self, identity: Any) -> str | None:
        return next(
            (login for login in self.forge.tokens.values() if Account(login).uuid == str(identity).lower()),
            None,
        )

    async def get_pull(self, call: Call) -> Reply:
        repo, pr = self._pull(call)
        return await self._pull_reply(call, repo, pr)

    async def get_pull_by_id(self, call: Call) -> Reply:
        """`GET /{org}[/{project}]/_apis/git/pullrequests/{id}`: a pull request without its repository."""
        number, org = _number(call), call.params["organization"].lower()
        project = call.params.get("project")
        for repo in self.forge.repos():
            if repo.kind != "azure" or repo.owner.lower() != org:
                continue
            if project is not None and project.lower() not in (str(repo.project).lower(), repo.project_uuid):
                continue
            if number in repo.pulls:
                return await self._pull_reply(call, repo, repo.pulls[number])
        raise ForgeError("not_found", "Not Found")

    async def update_pull(self, call: Call) -> Reply:
        """Update, auto-complete, abandon, reactivate or complete (`status: completed`) a pull request."""
        repo, pr = self._pull(call)
        data = call.object()
        self._completion_options(pr, data.get("completionOptions"))
        for key in ("title", "description"):
            if key in data and not isinstance(data[key], str):
                raise BadRequest(f"{key} must be a string", field=key)
        target = _ref_name(data["targetRefName"], "targetRefName") if "targetRefName" in data else None
        status = data.get("status")
        if status not in (None, "active", "abandoned", "completed"):
            raise BadRequest("status must be active, abandoned or completed", field="status")
        if "isDraft" in data:
            if not isinstance(data["isDraft"], bool):
                raise BadRequest("isDraft must be true or false", field="isDraft")
            self._extra(repo, pr.number).draft = data["isDraft"]
        if "title" in data or "description" in data or target or status in ("active", "abandoned"):
            self.forge.update_pull(
                repo,
                pr.number,
                call.user.login,
                title=data.get("title"),
                body=data.get("description"),
                base=target,
                state={"active": "open", "abandoned": "closed"}.get(status or ""),  # type: ignore[arg-type]
            )
        if "autoCompleteSetBy" in data:
            self._auto_complete(repo, pr, data["autoCompleteSetBy"])
        elif data.get("completionOptions") is not None and pr.auto_merge is not None:
            self._auto_complete(repo, pr, {"id": Account(pr.auto_merge.enabled_by).uuid})
        if status == "completed":
            self._complete(call, repo, pr, data)
        return await self._pull_reply(call, repo, pr)

    def _completion_options(self, pr: PullRequest, options: Any) -> None:
        if options is None:
            return
        if not isinstance(options, dict):
            raise BadRequest("completionOptions must be an object", field="completionOptions")
        strategy = options.get("mergeStrategy")
        if strategy is not None and strategy not in STRATEGIES:
            raise BadRequest(
                f"mergeStrategy {str(strategy)[:40]!r} is not one of {', '.join(STRATEGIES)}",
                field="mergeStrategy",
            )
        # What the service keeps: the options sent, defaults (false) left out, as in its example answer.
        pr.completion_options = {k: v for k, v in options.items() if v is not False}

    def _strategy(self, pr: PullRequest) -> MergeMethod:
        """mergeStrategy, else the deprecated squashMerge flag, else a no-fast-forward merge (git-7.1.json)."""
        options = pr.completion_options
        default = "squash" if options.get("squashMerge") is True else "noFastForward"
        return STRATEGIES[options.get("mergeStrategy") or default]

    def _auto_complete(self, repo: Repository, pr: PullRequest, setter: Any) -> None:
        if setter is not None and not isinstance(setter, dict):
            raise BadRequest(
                "autoCompleteSetBy must be an identity reference with an id", field="autoCompleteSetBy"
            )
        who = str((setter or {}).get("id") or NO_ONE).lower()
        if who == NO_ONE:
            self.forge.set_auto_merge(repo, pr.number, None)
            return
        login = self._login(who)
        if login is None:
            raise BadRequest(
                f"autoCompleteSetBy.id {who[:40]!r} is not a known identity", field="autoCompleteSetBy"
            )
        options = pr.completion_options
        auto = AutoMerge(
            enabled_by=login,
            method=self._strategy(pr),
            commit_title=options.get("mergeCommitMessage") or "",
            delete_source_branch=options.get("deleteSourceBranch") is True,
        )
        self.forge.set_auto_merge(repo, pr.number, auto)

    def _complete(self, call: Call, repo: Repository, pr: PullRequest, data: dict[str, Any]) -> None:
        """What the service checks before it queues a completion; the merge itself comes later."""
        source = data.get("lastMergeSourceCommit")
        sha = source.get("commitId") if isinstance(source, dict) else None
        if not isinstance(sha, str) or not sha:
            raise BadRequest(LAST_MERGE_SOURCE, field="lastMergeSourceCommit")
        if pr.merged:
            return
        if pr.state != "open":
            raise ForgeError("not_mergeable", "the pull request is abandoned; reactivate it first")
        if self._extra(repo, pr.number).draft:
            raise ForgeError("not_mergeable", "the pull request is a draft; publish it first")
        if sha.lower() != pr.head_sha:
            raise ForgeError(
                "head_moved",
                "TF401192: The pull request's source branch has been updated since lastMergeSourceCommit; "
                "read the pull request again and retry.",
            )
        options = pr.completion_options
        message = options.get("mergeCommitMessage")
        self.merges.request(
            repo,
            pr,
            Completion(
                time.time(),
                call.user.login,
                self._strategy(pr),
                pr.head_sha,
                message if isinstance(message, str) and message else None,
                options.get("deleteSourceBranch") is True,
                auto=False,
            ),
        )

    async def query_pulls(self, call: Call) -> Reply:
        repo = self._repo(call)
        queries = call.object().get("queries")
        if not isinstance(queries, list) or not all(isinstance(q, dict) for q in queries):
            raise BadRequest("queries must be a list of {type, items}", field="queries")
        pulls = self.forge.pulls(repo)
        results = []
        for query in queries:
            kind, items = query.get("type"), query.get("items")
            if kind not in ("lastMergeCommit", "commit") or not isinstance(items, list):
                raise BadRequest(
                    "each query needs type lastMergeCommit or commit and a list of items", field="queries"
                )
            found: dict[str, list[dict[str, Any]]] = {}
            for sha in items:
                if not isinstance(sha, str):
                    raise BadRequest("query items must be commit ids", field="items")
                matches = [
                    pr
                    for pr in pulls
                    if sha == pr.merge_commit_sha or (kind == "commit" and sha == pr.head_sha)
                ]
                if matches:
                    found[sha] = await blocking(partial(self._pulls_json, call.base_url, repo, matches))
            results.append(found)
        return Reply(200, {"queries": queries, "results": results})

    # -- statuses ------------------------------------------------------------------------------------------

    async def list_statuses(self, call: Call) -> Reply:
        repo = self._repo(call)
        sha = await blocking(lambda: self.forge.resolve(repo, call.params["commitId"]))
        if sha is None:
            raise ForgeError(
                "invalid",
                f"TF401175: The version descriptor {call.params['commitId'][:60]} could not be resolved",
            )
        latest = query_flag(call, "latestOnly")
        statuses = self.forge.latest_statuses(repo, sha) if latest else self.forge.statuses(repo, sha)
        skip, top = query_int(call, "skip", 0), query_int(call, "top", 1000)
        shapes = Shapes(call.base_url, repo)
        return Reply(200, listing([shapes.status(s) for s in statuses[skip : skip + top]]))

    def _status_fields(self, data: dict[str, Any]) -> tuple[str, str, str | None, str | None, str | None]:
        state = data.get("state")
        if state not in ENUMS["state"]:
            raise BadRequest(f"state must be one of {', '.join(ENUMS['state'])}", field="state")
        context = data.get("context")
        if not isinstance(context, dict) or not isinstance(context.get("name"), str) or not context["name"]:
            raise BadRequest("context.name is required", field="context")
        genre, description, target_url = context.get("genre"), data.get("description"), data.get("targetUrl")
        if not all(isinstance(v, str | None) for v in (genre, description, target_url)):
            raise BadRequest("context.genre, description and targetUrl must be strings", field="context")
        return state, context["name"], genre or None, description, target_url

    async def create_status(self, call: Call) -> Reply:
        repo = self._repo(call)
        state, name, genre, description, target_url = self._status_fields(call.object())
        sha = call.params["commitId"]
        resolved = await blocking(lambda: self.forge.resolve(repo, sha.lower()))
        if resolved is None or resolved != sha.lower():
            raise ForgeError("invalid", f"TF401175: The version descriptor {sha[:60]} could not be resolved")
        status = await blocking(
            lambda: self.forge.add_status(
                repo, resolved, call.user.login, state, name, description, target_url, genre
            )
        )
        return Reply(201, Shapes(call.base_url, repo).status(status))

    async def list_pull_statuses(self, call: Call) -> Reply:
        repo, pr = self._pull(call)
        shapes = Shapes(call.base_url, repo)
        statuses = self._extra(repo, pr.number).statuses
        return Reply(200, listing([self._pull_status(shapes, pr, s, more) for s, more in statuses]))

    async def create_pull_status(self, call: Call) -> Reply:
        """A status on the pull request itself (not on a commit): stored, listed, not a policy input."""
        repo, pr = self._pull(call)
        data = call.object()
        state, name, genre, description, target_url = self._status_fields(data)
        with self._lock:
            self._status_ids += 1
            status = Status(
                self._status_ids,
                pr.head_sha,
                state,
                name,
                description,
                target_url,
                call.user.login,
                time.time(),
                genre,
            )
        more = _status_extras(data)
        self._extra(repo, pr.number).statuses.append((status, more))
        return Reply(200, self._pull_status(Shapes(call.base_url, repo), pr, status, more))

    def _pull_status(
        self, shapes: Shapes, pr: PullRequest, status: Status, more: dict[str, Any]
    ) -> dict[str, Any]:
        data = {**more, **shapes.status(status)}
        data["_links"] = {
            "self": {"href": f"{shapes.api}/pullRequests/{pr.number}/statuses/{status.id}"},
            "repository": {"href": shapes.api},
        }
        return data

    # -- refs and diffs ------------------------------------------------------------------------------------

    async def list_refs(self, call: Call) -> Reply:
        """`filter` is a prefix after `refs/` (`heads/`, `tags/`); `filterContains` a substring of the
        name; `includeStatuses` adds each ref's commit statuses (the refs examples)."""
        repo = self._repo(call)
        prefix = "refs/" + call.query.get("filter", "")
        contains = call.query.get("filterContains", "").lower()
        with_statuses = query_flag(call, "includeStatuses")
        latest_only = query_flag(call, "latestStatusesOnly")
        shapes = Shapes(call.base_url, repo)
        tags = await blocking(self.forge.git(repo).tags)
        refs: list[tuple[str, str, str | None]] = [
            (f"refs/heads/{branch}", sha, None) for branch, sha in repo.branches.items()
        ]
        refs += [(f"refs/tags/{tag}", sha, peeled) for tag, (sha, peeled) in tags.items()]
        value = []
        for name, sha, peeled in sorted(refs):
            if not name.startswith(prefix) or contains not in name.lower():
                continue
            item: dict[str, Any] = {
                "name": name,
                "objectId": sha,
                "creator": shapes.identity(repo.created_by),
                "url": f"{shapes.api}/refs?filter={name[5:].replace('/', '%2F')}",
            }
            if peeled:
                item["peeledObjectId"] = peeled
            if with_statuses:
                commit = peeled or sha
                found = (
                    self.forge.latest_statuses(repo, commit)
                    if latest_only
                    else self.forge.statuses(repo, commit)
                )
                item["statuses"] = [shapes.status(s) for s in found]
            value.append(item)
        return Reply(200, listing(value))

    async def diff_commits(self, call: Call) -> Reply:
        repo = self._repo(call)
        shas = []
        for side in ("base", "target"):
            version = call.query.get(f"{side}Version")
            kind = call.query.get(f"{side}VersionType", "branch").lower()
            if not version:
                raise BadRequest(f"{side}Version is required", field=f"{side}Version")
            if kind not in ("branch", "commit"):
                raise BadRequest(f"{side}VersionType must be branch or commit", field=f"{side}VersionType")
            sha = (
                repo.branches.get(version)
                if kind == "branch"
                else await blocking(partial(self.forge.resolve, repo, version.lower()))
            )
            if sha is None:
                raise ForgeError(
                    "invalid",
                    f"TF401175: The version descriptor <{kind}: {version[:60]}> could not be resolved",
                )
            shas.append(sha)
        return Reply(200, await blocking(partial(self._diff, repo, shas[0], shas[1])))

    def _diff(self, repo: Repository, base: str, target: str) -> dict[str, Any]:
        git = self.forge.git(repo)
        ahead, behind = git.ahead_behind(base, target)
        common = git.merge_base(base, target)
        counts: dict[str, int] = {}
        for letter, *_ in git.changed_files(common or base, target):
            kind = {"A": "Add", "D": "Delete"}.get(letter[0], "Edit")
            counts[kind] = counts.get(kind, 0) + 1
        data: dict[str, Any] = {
            "allChangesIncluded": False,  # counts only: the spec types `changes[].item` as a string
            "changeCounts": counts,
            "baseCommit": base,
            "targetCommit": target,
            "aheadCount": ahead,
            "behindCount": behind,
        }
        if common:
            data["commonCommit"] = common
        return data


_PROPERTY_TYPES = (
    (bool, "System.Boolean"),
    (int, "System.Int32"),
    (float, "System.Double"),
    (str, "System.String"),
)


def _status_extras(data: dict[str, Any]) -> dict[str, Any]:
    """`iterationId` and `properties` of a pull request status, properties typed as the service stores them."""
    more: dict[str, Any] = {}
    iteration = data.get("iterationId")
    if iteration is not None:
        if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 1:
            raise BadRequest("iterationId must be a positive whole number", field="iterationId")
        more["iterationId"] = iteration
    properties = data.get("properties")
    if properties is not None:
        if not isinstance(properties, dict):
            raise BadRequest("properties must be an object", field="properties")
        typed = {}
        for name, value in properties.items():
            if isinstance(value, dict) and "$type" in value and "$value" in value:
                typed[name] = value
                continue
            kind = next((label for t, label in _PROPERTY_TYPES if isinstance(value, t)), None)
            if kind is None:
                raise BadRequest(
                    f"property {name[:40]!r} must be a string, number, boolean or {{$type, $value}}",
                    field="properties",
                )
            typed[name] = {"$type": kind, "$value": value}
        more["properties"] = typed
    return more


def _number(call: Call) -> int:
    try:
        return int(call.params["pullRequestId"])
    except ValueError:
        raise ForgeError("not_found", "Not Found") from None
