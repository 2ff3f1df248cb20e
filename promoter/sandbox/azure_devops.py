"""The Azure DevOps personality: `/{organization}/{project}/_apis/git/repositories/{repositoryId}/...`.

Pull requests (search, create, update, auto-complete, complete), commit statuses with `context.genre/name`,
refs, commit diffs (ancestry) and the pull request query (find a PR by its merge commit). Every call must
carry `api-version` (query or Accept header), as Azure DevOps requires; errors have its JSON shape with the
TF error codes a client would see. Branch protection is the same as on GitHub: a required status
(`genre/name`, or just the name) on the source commit, without which completion is refused.
"""

from __future__ import annotations

import re
import time
import uuid
from functools import partial
from typing import Any

from promoter.sandbox.forge import (
    Account,
    AutoMerge,
    Forge,
    ForgeError,
    MergeMethod,
    PullRequest,
    Repository,
    Status,
)
from promoter.sandbox.github import blocking
from promoter.sandbox.gitrepo import is_branch_name
from promoter.sandbox.routing import BadRequest, Call, Reply, Router

PREFIX = "/{organization}/{project}/_apis/git"
API_VERSION = re.compile(r"\d+\.\d+(-preview(\.\d+)?)?")
STATES = ("notSet", "pending", "succeeded", "failed", "error", "notApplicable")
STRATEGIES: dict[str, MergeMethod] = {"noFastForward": "merge", "squash": "squash"}
NO_ONE = "00000000-0000-0000-0000-000000000000"


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp * 1000) % 1000:03d}Z"
    )


def error_body(message: str, type_key: str, status: int) -> Reply:
    return Reply(
        status,
        {
            "$id": "1",
            "innerException": None,
            "message": message,
            "typeName": f"Microsoft.TeamFoundation.SourceControl.WebServer.{type_key}, "
            "Microsoft.TeamFoundation.SourceControl.WebServer",
            "typeKey": type_key,
            "errorCode": 0,
            "eventId": 3000,
        },
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


def check_api_version(call: Call) -> Reply | None:
    version = call.query.get("api-version")
    if version is None:
        match = re.search(r"api-version=([\w.-]+)", call.headers.get("accept", ""))
        version = match[1] if match else None
    if version is None:
        return error_body(
            f'No api-version was supplied for the "{call.method}" request. The version must be supplied either as '
            'part of the Accept header (e.g. "application/json; api-version=1.0") or as a query parameter '
            "(e.g. '?api-version=1.0').",
            "VssVersionNotSpecifiedException",
            400,
        )
    if not API_VERSION.fullmatch(version):
        return error_body(
            f"The version '{version[:40]}' is not a valid api-version: use e.g. 7.1 or 7.1-preview.1",
            "VssInvalidApiVersionException",
            400,
        )
    return None


def _ref_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.startswith("refs/heads/") or not is_branch_name(value[11:]):
        raise BadRequest(f"{field} must be a branch ref such as refs/heads/main", field=field)
    return value[11:]


class Shapes:
    def __init__(self, base_url: str, repo: Repository) -> None:
        self.base = base_url
        self.repo = repo
        self.api = f"{base_url}/{repo.owner}/{repo.project}/_apis/git/repositories/{repo.uuid}"

    def identity(self, login: str) -> dict[str, Any]:
        account = Account(login)
        url = f"{self.base}/{self.repo.owner}/_apis/Identities/{account.uuid}"
        return {
            "displayName": login,
            "url": url,
            "_links": {"avatar": {"href": f"{self.base}/avatars/{login}"}},
            "id": account.uuid,
            "uniqueName": f"{login}@sandbox.local",
            "imageUrl": f"{self.base}/avatars/{login}",
            "descriptor": f"aad.{account.uuid}",
        }

    def repository(self) -> dict[str, Any]:
        repo = self.repo
        remote = f"{self.base}/{repo.owner}/{repo.project}/_git/{repo.name}"
        return {
            "id": repo.uuid,
            "name": repo.name,
            "url": self.api,
            "project": {
                "id": repo.project_uuid,
                "name": repo.project,
                "url": f"{self.base}/{repo.owner}/_apis/projects/{repo.project_uuid}",
                "state": "wellFormed",
                "revision": 1,
                "visibility": "private",
                "lastUpdateTime": iso(repo.created_at),
            },
            "defaultBranch": f"refs/heads/{repo.default_branch}",
            "size": 0,
            "remoteUrl": remote,
            "sshUrl": remote,
            "webUrl": remote,
            "isDisabled": False,
            "isInMaintenance": False,
        }

    def commit_ref(self, sha: str) -> dict[str, Any]:
        return {"commitId": sha, "url": f"{self.api}/commits/{sha}"}

    def pull_request(self, forge: Forge, pr: PullRequest) -> dict[str, Any]:
        repo = self.repo
        status = "completed" if pr.merged else "abandoned" if pr.state == "closed" else "active"
        mergeable = forge.mergeable(repo, pr)
        merge_status = (
            "succeeded" if pr.merged or mergeable else "conflicts" if mergeable is False else "notSet"
        )
        data: dict[str, Any] = {
            "repository": self.repository(),
            "pullRequestId": pr.number,
            "codeReviewId": pr.number,
            "status": status,
            "createdBy": self.identity(pr.created_by),
            "creationDate": iso(pr.created_at),
            "title": pr.title,
            "description": pr.body,
            "sourceRefName": f"refs/heads/{pr.head_ref}",
            "targetRefName": f"refs/heads/{pr.base_ref}",
            "mergeStatus": merge_status,
            "isDraft": False,
            "mergeId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{repo.key}#{pr.number}")),
            "lastMergeSourceCommit": self.commit_ref(pr.head_sha),
            "reviewers": [],
            "url": f"{self.api}/pullRequests/{pr.number}",
            "supportsIterations": True,
            "artifactId": f"vstfs:///Git/PullRequestId/{repo.project_uuid}%2f{repo.uuid}%2f{pr.number}",
        }
        target = pr.base_sha_at_merge if pr.merged else repo.branches.get(pr.base_ref)
        if target:
            data["lastMergeTargetCommit"] = self.commit_ref(target)
        if pr.merge_commit_sha:
            data["lastMergeCommit"] = self.commit_ref(pr.merge_commit_sha)
        if pr.closed_at is not None:
            data["closedDate"] = iso(pr.closed_at)
            data["closedBy"] = self.identity(pr.closed_by or pr.created_by)
        if pr.auto_merge is not None:
            data["autoCompleteSetBy"] = self.identity(pr.auto_merge.enabled_by)
        if pr.completion_options:
            data["completionOptions"] = pr.completion_options
        return data

    def status(self, status: Status) -> dict[str, Any]:
        context: dict[str, Any] = {"name": status.context}
        if status.genre is not None:
            context["genre"] = status.genre
        data: dict[str, Any] = {
            "id": status.id,
            "state": status.state,
            "description": status.description or "",
            "context": context,
            "creationDate": iso(status.created_at),
            "updatedDate": iso(status.created_at),
            "createdBy": self.identity(status.creator),
        }
        if status.target_url:
            data["targetUrl"] = status.target_url
        return data


def _shapes(shapes: Shapes, forge: Forge, pulls: list[PullRequest]) -> list[dict[str, Any]]:
    return [shapes.pull_request(forge, pr) for pr in pulls]


def listing(items: list[Any]) -> dict[str, Any]:
    return {"count": len(items), "value": items}


class AzureDevOps:
    def __init__(self, forge: Forge) -> None:
        self.forge = forge

    def register(self, router: Router) -> None:
        repo = "/repositories/{repositoryId}"
        routes: list[tuple[str, str, Any]] = [
            ("POST", "/repositories", self.create_repo),
            ("GET", repo, self.get_repo),
            ("GET", f"{repo}/pullrequests", self.list_pulls),
            ("POST", f"{repo}/pullrequests", self.create_pull),
            ("GET", f"{repo}/pullrequests/{{pullRequestId}}", self.get_pull),
            ("PATCH", f"{repo}/pullrequests/{{pullRequestId}}", self.update_pull),
            ("POST", f"{repo}/pullrequestquery", self.query_pulls),
            ("GET", f"{repo}/commits/{{commitId}}/statuses", self.list_statuses),
            ("POST", f"{repo}/commits/{{commitId}}/statuses", self.create_status),
            ("GET", f"{repo}/refs", self.list_refs),
            ("GET", f"{repo}/diffs/commits", self.diff_commits),
        ]
        for method, template, handler in routes:
            router.add(method, template, handler, "azure", prefix=PREFIX, spec_prefix=PREFIX)

    def _repo(self, call: Call) -> Repository:
        p = call.params
        return self.forge.find_repo("azure", p["organization"], p["repositoryId"], p["project"])

    def _pull(self, call: Call) -> tuple[Repository, PullRequest]:
        repo = self._repo(call)
        try:
            number = int(call.params["pullRequestId"])
        except ValueError:
            raise ForgeError("not_found", "Not Found") from None
        return repo, self.forge.pull(repo, number)

    async def _pull_json(self, call: Call, repo: Repository, pr: PullRequest, status: int = 200) -> Reply:
        shapes = Shapes(call.base_url, repo)
        return Reply(status, await blocking(lambda: shapes.pull_request(self.forge, pr)))

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

    async def get_repo(self, call: Call) -> Reply:
        repo = self._repo(call)
        return Reply(200, Shapes(call.base_url, repo).repository())

    async def list_pulls(self, call: Call) -> Reply:
        repo = self._repo(call)
        q = call.query
        status = q.get("searchCriteria.status", "active")
        if status not in ("active", "abandoned", "completed", "all", "notSet"):
            raise BadRequest(f"searchCriteria.status {status[:40]!r} is not a valid status", field="status")
        source = q.get("searchCriteria.sourceRefName")
        target = q.get("searchCriteria.targetRefName")
        try:
            skip = max(int(q.get("$skip", "0")), 0)
            top = min(max(int(q.get("$top", "101")), 0), 1000)
        except ValueError:
            raise BadRequest("$top and $skip must be integers", field="$top") from None
        pulls = []
        for pr in sorted(self.forge.pulls(repo), key=lambda p: p.number, reverse=True):
            pr_status = "completed" if pr.merged else "abandoned" if pr.state == "closed" else "active"
            if status not in ("all", "notSet") and pr_status != status:
                continue
            if source and f"refs/heads/{pr.head_ref}" != source:
                continue
            if target and f"refs/heads/{pr.base_ref}" != target:
                continue
            pulls.append(pr)
        shapes = Shapes(call.base_url, repo)
        chunk = pulls[skip : skip + top]
        return Reply(
            200, listing(await blocking(lambda: [shapes.pull_request(self.forge, pr) for pr in chunk]))
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
        pr = await blocking(
            lambda: self.forge.create_pull(repo, call.user.login, source, target, title, description)
        )
        return await self._pull_json(call, repo, pr, 201)

    async def get_pull(self, call: Call) -> Reply:
        repo, pr = self._pull(call)
        return await self._pull_json(call, repo, pr)

    async def update_pull(self, call: Call) -> Reply:
        """Update, auto-complete, abandon, reactivate or complete (`status: completed`) a pull request."""
        repo, pr = self._pull(call)
        data = call.object()
        options = data.get("completionOptions")
        if options is not None:
            if not isinstance(options, dict):
                raise BadRequest("completionOptions must be an object", field="completionOptions")
            strategy = options.get("mergeStrategy", "noFastForward")
            if strategy not in STRATEGIES:
                raise BadRequest(
                    f"mergeStrategy {str(strategy)[:40]!r} is not supported by the sandbox: use noFastForward or squash",
                    field="mergeStrategy",
                )
            pr.completion_options = options
        for key in ("title", "description"):
            if key in data and not isinstance(data[key], str):
                raise BadRequest(f"{key} must be a string", field=key)
        target = _ref_name(data["targetRefName"], "targetRefName") if "targetRefName" in data else None
        status = data.get("status")
        if status not in (None, "active", "abandoned", "completed"):
            raise BadRequest("status must be active, abandoned or completed", field="status")
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
        elif options is not None and pr.auto_merge is not None:
            self._auto_complete(repo, pr, {"id": Account(pr.auto_merge.enabled_by).uuid})
        if status == "completed":
            await self._complete(call, repo, pr, data)
        return await self._pull_json(call, repo, pr)

    def _auto_complete(self, repo: Repository, pr: PullRequest, setter: Any) -> None:
        if setter is not None and not isinstance(setter, dict):
            raise BadRequest(
                "autoCompleteSetBy must be an identity reference with an id", field="autoCompleteSetBy"
            )
        who = (setter or {}).get("id") or NO_ONE
        if who == NO_ONE:
            self.forge.set_auto_merge(repo, pr.number, None)
            return
        login = next((u for u in self.forge.tokens.values() if Account(u).uuid == who), None)
        if login is None:
            raise BadRequest(
                f"autoCompleteSetBy.id {str(who)[:40]!r} is not a known identity", field="autoCompleteSetBy"
            )
        options = pr.completion_options
        auto = AutoMerge(
            enabled_by=login,
            method=STRATEGIES[options.get("mergeStrategy", "noFastForward")],
            commit_title=options.get("mergeCommitMessage") or "",
            delete_source_branch=bool(options.get("deleteSourceBranch", False)),
        )
        self.forge.set_auto_merge(repo, pr.number, auto)

    async def _complete(self, call: Call, repo: Repository, pr: PullRequest, data: dict[str, Any]) -> None:
        source = data.get("lastMergeSourceCommit")
        sha = source.get("commitId") if isinstance(source, dict) else None
        if not isinstance(sha, str):
            raise BadRequest(
                "lastMergeSourceCommit.commitId is required to complete a pull request",
                field="lastMergeSourceCommit",
            )
        if pr.state == "open" and sha != pr.head_sha:
            raise ForgeError(
                "head_moved",
                "TF401192: The pull request's source branch has been updated since lastMergeSourceCommit; "
                "read the pull request again and retry.",
            )
        options = pr.completion_options
        message = options.get("mergeCommitMessage")
        await blocking(
            lambda: self.forge.merge(
                repo,
                pr.number,
                call.user.login,
                STRATEGIES[options.get("mergeStrategy", "noFastForward")],
                sha,
                title=message if isinstance(message, str) and message else None,
                delete_source_branch=bool(options.get("deleteSourceBranch", False)),
            )
        )

    async def query_pulls(self, call: Call) -> Reply:
        repo = self._repo(call)
        data = call.object()
        queries = data.get("queries")
        if not isinstance(queries, list) or not all(isinstance(q, dict) for q in queries):
            raise BadRequest("queries must be a list of {type, items}", field="queries")
        shapes = Shapes(call.base_url, repo)
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
                    found[sha] = await blocking(partial(_shapes, shapes, self.forge, matches))
            results.append(found)
        return Reply(200, {"queries": queries, "results": results})

    async def list_statuses(self, call: Call) -> Reply:
        repo = self._repo(call)
        sha = await blocking(lambda: self.forge.resolve(repo, call.params["commitId"]))
        if sha is None:
            raise ForgeError(
                "invalid",
                f"TF401175: The version descriptor {call.params['commitId'][:60]} could not be resolved",
            )
        latest_only = call.query.get("latestOnly", "false").lower() == "true"
        statuses = self.forge.latest_statuses(repo, sha) if latest_only else self.forge.statuses(repo, sha)
        try:
            skip = max(int(call.query.get("skip", "0")), 0)
            top = max(int(call.query.get("top", "1000")), 0)
        except ValueError:
            raise BadRequest("top and skip must be integers", field="top") from None
        shapes = Shapes(call.base_url, repo)
        return Reply(200, listing([shapes.status(s) for s in statuses[skip : skip + top]]))

    async def create_status(self, call: Call) -> Reply:
        repo = self._repo(call)
        data = call.object()
        state = data.get("state")
        if state not in STATES:
            raise BadRequest(f"state must be one of {', '.join(STATES)}", field="state")
        context = data.get("context")
        if not isinstance(context, dict) or not isinstance(context.get("name"), str) or not context["name"]:
            raise BadRequest("context.name is required", field="context")
        genre = context.get("genre")
        description = data.get("description")
        target_url = data.get("targetUrl")
        if (
            not isinstance(genre, str | None)
            or not isinstance(description, str | None)
            or not isinstance(target_url, str | None)
        ):
            raise BadRequest("context.genre, description and targetUrl must be strings", field="context")
        sha = call.params["commitId"]
        resolved = await blocking(lambda: self.forge.resolve(repo, sha))
        if resolved is None or resolved != sha.lower():
            raise ForgeError("invalid", f"TF401175: The version descriptor {sha[:60]} could not be resolved")
        status = await blocking(
            lambda: self.forge.add_status(
                repo,
                resolved,
                call.user.login,
                state,
                context["name"],
                description,
                target_url,
                genre or None,
            )
        )
        return Reply(201, Shapes(call.base_url, repo).status(status))

    async def list_refs(self, call: Call) -> Reply:
        repo = self._repo(call)
        prefix = "refs/" + call.query.get("filter", "")
        shapes = Shapes(call.base_url, repo)
        refs = [
            {
                "name": f"refs/heads/{branch}",
                "objectId": sha,
                "creator": shapes.identity(repo.created_by),
                "url": f"{shapes.api}/refs?filter=heads%2F{branch}",
            }
            for branch, sha in sorted(repo.branches.items())
            if f"refs/heads/{branch}".startswith(prefix)
        ]
        return Reply(200, listing(refs))

    async def diff_commits(self, call: Call) -> Reply:
        repo = self._repo(call)
        shas = []
        for side in ("base", "target"):
            version = call.query.get(f"{side}Version")
            kind = call.query.get(f"{side}VersionType", "branch")
            if not version:
                raise BadRequest(f"{side}Version is required", field=f"{side}Version")
            if kind not in ("branch", "commit"):
                raise BadRequest(f"{side}VersionType must be branch or commit", field=f"{side}VersionType")
            sha = (
                repo.branches.get(version)
                if kind == "branch"
                else await blocking(partial(self.forge.resolve, repo, version))
            )
            if sha is None:
                raise ForgeError(
                    "invalid",
                    f"TF401175: The version descriptor <{kind}: {version[:60]}> could not be resolved",
                )
            shas.append(sha)
        base, target = shas

        def build() -> dict[str, Any]:
            git = self.forge.git(repo)
            ahead, behind = git.ahead_behind(base, target)
            common = git.merge_base(base, target)
            changes = git.changed_files(common or base, target)
            counts: dict[str, int] = {}
            for letter, *_ in changes:
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

        return Reply(200, await blocking(build))
