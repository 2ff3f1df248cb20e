"""The GitHub personality: REST v3 under `/api/v3`, as GitHub Enterprise Server serves it.

Only the calls a promoter makes (REFERENCE.md section 3), each with GitHub's status codes and messages for
the cases a client must handle: 404 unknown repository, 422 duplicate pull request or invalid state,
405 not mergeable, 409 head moved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

import anyio.to_thread

from promoter.sandbox.forge import Forge, ForgeError, MergeMethod, PullRequest, Repository
from promoter.sandbox.github_json import Shapes, error, validation_failed
from promoter.sandbox.gitrepo import is_branch_name
from promoter.sandbox.routing import BadRequest, Call, Reply, Router

PREFIX = "/api/v3"
STATUS_STATES = ("error", "failure", "pending", "success")
T = TypeVar("T")


async def blocking(function: Callable[[], T]) -> T:
    """Run forge work that shells out to git off the event loop."""
    return await anyio.to_thread.run_sync(function)


def error_reply(exc: ForgeError | BadRequest, template: str) -> Reply:
    """GitHub's error bodies: `message` and `documentation_url`, plus `errors` on 422."""
    if isinstance(exc, BadRequest):
        if exc.code == "malformed":
            return Reply(400, error(exc.message))
        return Reply(422, validation_failed(_resource(template), exc.code, exc.field, exc.message))
    if exc.kind == "not_found":
        return Reply(404, error(exc.message))
    if exc.kind in ("invalid", "exists"):
        code = "already_exists" if exc.kind == "exists" and exc.field == "name" else "custom"
        return Reply(422, validation_failed(_resource(template), code, exc.field, exc.message))
    if exc.kind == "not_mergeable":
        return Reply(405, error(exc.message))
    return Reply(409, error(exc.message))


def _resource(template: str) -> str:
    for part, name in (("/statuses", "Status"), ("/pulls", "PullRequest"), ("/protection", "Branch")):
        if part in template:
            return name
    return "Repository"


def _string(data: dict[str, Any], key: str, *, required: bool = False, allow_none: bool = True) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise BadRequest(f"{key} is missing", field=key, code="missing_field")
        if key in data and not allow_none:
            raise BadRequest(f"{key} must be a string", field=key)
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string", field=key)
    return value


def _page(call: Call, items: list[T]) -> tuple[list[T], dict[str, str]]:
    """GitHub pagination: `per_page` (default 30, at most 100) and `page`, with a `Link` header."""
    try:
        per_page = min(max(int(call.query.get("per_page", "30")), 1), 100)
        page = max(int(call.query.get("page", "1")), 1)
    except ValueError:
        raise BadRequest("per_page and page must be integers", field="per_page") from None
    last = max((len(items) + per_page - 1) // per_page, 1)
    chunk = items[(page - 1) * per_page : page * per_page]
    links = []

    def link(number: int, rel: str) -> str:
        query = {k: v for k, v in call.query.items() if k not in ("page", "per_page")}
        query.update(per_page=str(per_page), page=str(number))
        return f'<{call.base_url}{call.path}?{urlencode(query)}>; rel="{rel}"'

    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links += [link(1, "first"), link(page - 1, "prev")]
    return chunk, ({"Link": ", ".join(links)} if links else {})


class GitHub:
    """Routes of the GitHub personality, bound to one forge."""

    def __init__(self, forge: Forge) -> None:
        self.forge = forge

    def register(self, router: Router) -> None:
        routes: list[tuple[str, str, Any]] = [
            ("GET", "/user", self.get_user),
            ("POST", "/user/repos", self.create_user_repo),
            ("POST", "/orgs/{org}/repos", self.create_org_repo),
            ("GET", "/repos/{owner}/{repo}", self.get_repo),
            ("GET", "/repos/{owner}/{repo}/pulls", self.list_pulls),
            ("POST", "/repos/{owner}/{repo}/pulls", self.create_pull),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", self.get_pull),
            ("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}", self.update_pull),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", self.check_merged),
            ("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", self.merge_pull),
            ("POST", "/repos/{owner}/{repo}/statuses/{sha}", self.create_status),
            ("GET", "/repos/{owner}/{repo}/statuses/{sha}", self.list_statuses),
            ("GET", "/repos/{owner}/{repo}/commits/{ref:path}/statuses", self.list_statuses),
            ("GET", "/repos/{owner}/{repo}/commits/{ref:path}/status", self.combined_status),
            ("GET", "/repos/{owner}/{repo}/commits/{ref}", self.get_commit),
            ("GET", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls", self.commit_pulls),
            ("GET", "/repos/{owner}/{repo}/compare/{basehead:path}", self.compare),
            ("GET", "/repos/{owner}/{repo}/git/ref/{ref:path}", self.get_ref),
            ("GET", "/repos/{owner}/{repo}/branches/{branch:path}/protection", self.get_protection),
            ("PUT", "/repos/{owner}/{repo}/branches/{branch:path}/protection", self.put_protection),
            ("DELETE", "/repos/{owner}/{repo}/branches/{branch:path}/protection", self.delete_protection),
        ]
        for method, template, handler in routes:
            router.add(method, template, handler, "github", prefix=PREFIX)

    def _repo(self, call: Call) -> Repository:
        return self.forge.repo("github", call.params["owner"], call.params["repo"])

    def _pull(self, call: Call) -> tuple[Repository, PullRequest]:
        repo = self._repo(call)
        try:
            number = int(call.params["pull_number"])
        except ValueError:
            raise ForgeError("not_found", "Not Found") from None
        return repo, self.forge.pull(repo, number)

    async def _pull_json(self, call: Call, repo: Repository, pr: PullRequest, status: int = 200) -> Reply:
        shapes = Shapes(call.base_url)
        return Reply(status, await blocking(lambda: shapes.pull_request(self.forge, repo, pr)))

    # -- users and repositories -------------------------------------------------------------------------

    async def get_user(self, call: Call) -> Reply:
        return Reply(200, Shapes(call.base_url).public_user(call.user.login))

    async def create_user_repo(self, call: Call) -> Reply:
        return await self._create_repo(call, call.user.login)

    async def create_org_repo(self, call: Call) -> Reply:
        return await self._create_repo(call, call.params["org"])

    async def _create_repo(self, call: Call, owner: str) -> Reply:
        data = call.object()
        name = _string(data, "name", required=True)
        assert name is not None
        description = _string(data, "description")
        auto_init = data.get("auto_init", False)
        if not isinstance(auto_init, bool):
            raise BadRequest("auto_init must be a boolean", field="auto_init")

        def create() -> Repository:
            repo = self.forge.create_repo(
                "github", owner, name, created_by=call.user.login, description=description
            )
            if auto_init:
                self.forge.commit_files(
                    repo, "main", {"README.md": f"# {name}\n".encode()}, "Initial commit", call.user.login
                )
            return repo

        repo = await blocking(create)
        return Reply(201, Shapes(call.base_url).full_repository(repo))

    async def get_repo(self, call: Call) -> Reply:
        return Reply(200, Shapes(call.base_url).full_repository(self._repo(call)))

    # -- pull requests ----------------------------------------------------------------------------------

    async def list_pulls(self, call: Call) -> Reply:
        repo = self._repo(call)
        state = call.query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise BadRequest("state must be one of open, closed, all", field="state")
        head = call.query.get("head")
        base = call.query.get("base")
        pulls = [pr for pr in self.forge.pulls(repo) if state == "all" or pr.state == state]
        if head:
            owner, _, branch = head.rpartition(":")
            pulls = [
                pr
                for pr in pulls
                if pr.head_ref == branch and (not owner or owner.lower() == repo.owner.lower())
            ]
        if base:
            pulls = [pr for pr in pulls if pr.base_ref == base]
        sort = call.query.get("sort", "created")
        direction = call.query.get("direction", "desc" if sort == "created" else "asc")
        if sort not in ("created", "updated", "popularity", "long-running") or direction not in (
            "asc",
            "desc",
        ):
            raise BadRequest("sort or direction is invalid", field="sort")
        key: Callable[[PullRequest], float] = (
            (lambda p: p.updated_at) if sort == "updated" else (lambda p: p.number)
        )
        pulls.sort(key=key, reverse=direction == "desc")
        chunk, headers = _page(call, pulls)
        shapes = Shapes(call.base_url)
        return Reply(200, [shapes.pull_request(self.forge, repo, pr, full=False) for pr in chunk], headers)

    async def create_pull(self, call: Call) -> Reply:
        repo = self._repo(call)
        data = call.object()
        head = _string(data, "head", required=True)
        base = _string(data, "base", required=True)
        title = _string(data, "title", required=True)
        body = _string(data, "body") or ""
        assert head is not None and base is not None and title is not None
        owner, _, branch = head.rpartition(":")
        if owner and owner.lower() != repo.owner.lower():
            raise BadRequest(
                f"head {head!r} must be a branch of {repo.full_name} (forks are not emulated)", field="head"
            )
        for what, value in (("head", branch), ("base", base)):
            if not is_branch_name(value):
                raise BadRequest(f"{what} {value[:100]!r} is not a valid branch name", field=what)
        pr = await blocking(lambda: self.forge.create_pull(repo, call.user.login, branch, base, title, body))
        return await self._pull_json(call, repo, pr, 201)

    async def get_pull(self, call: Call) -> Reply:
        repo, pr = self._pull(call)
        return await self._pull_json(call, repo, pr)

    async def update_pull(self, call: Call) -> Reply:
        repo, pr = self._pull(call)
        data = call.object()
        state = _string(data, "state", allow_none=False)
        if state not in (None, "open", "closed"):
            raise BadRequest("state is not included in the list", field="state")
        base = _string(data, "base", allow_none=False)
        self.forge.update_pull(
            repo,
            pr.number,
            call.user.login,
            title=_string(data, "title", allow_none=False),
            body=_string(data, "body"),
            state=state,  # type: ignore[arg-type]
            base=base,
        )
        return await self._pull_json(call, repo, pr)

    async def check_merged(self, call: Call) -> Reply:
        _, pr = self._pull(call)
        return Reply(204) if pr.merged else Reply(404, error("Not Found"))

    async def merge_pull(self, call: Call) -> Reply:
        repo, pr = self._pull(call)
        data = call.object()
        method = _string(data, "merge_method", allow_none=False) or "merge"
        if method not in ("merge", "squash", "rebase"):
            raise BadRequest("merge_method is not included in the list", field="merge_method")
        sha = _string(data, "sha", allow_none=False)
        title = _string(data, "commit_title")
        message = _string(data, "commit_message")
        merge_method: MergeMethod = method  # type: ignore[assignment]
        merged = await blocking(
            lambda: self.forge.merge(repo, pr.number, call.user.login, merge_method, sha, title, message)
        )
        return Reply(
            200,
            {"sha": merged.merge_commit_sha, "merged": True, "message": "Pull Request successfully merged"},
        )

    # -- statuses ---------------------------------------------------------------------------------------

    async def create_status(self, call: Call) -> Reply:
        repo = self._repo(call)
        data = call.object()
        state = _string(data, "state", required=True)
        if state not in STATUS_STATES:
            raise BadRequest("state is not included in the list", field="state", code="custom")
        context = _string(data, "context", allow_none=False) or "default"
        description = _string(data, "description")
        if description is not None and len(description) > 140:
            raise BadRequest("description is too long (maximum is 140 characters)", field="description")
        target_url = _string(data, "target_url")
        sha = call.params["sha"]
        resolved = await blocking(lambda: self.forge.resolve(repo, sha))
        if resolved is None or (len(sha) != 40 and not resolved.startswith(sha)):
            raise ForgeError("invalid", f"No commit found for SHA: {sha}", field="sha")
        status = await blocking(
            lambda: self.forge.add_status(
                repo, resolved, call.user.login, state, context, description, target_url
            )
        )
        return Reply(
            201,
            Shapes(call.base_url).status(repo, status),
            {"Location": Shapes(call.base_url).status(repo, status)["url"]},
        )

    async def _ref_sha(self, repo: Repository, ref: str) -> str:
        sha = self.forge.resolve_known(repo, ref) or await blocking(lambda: self.forge.resolve(repo, ref))
        if sha is None:
            raise ForgeError("not_found", f"No commit found for SHA: {ref}")
        return sha

    async def list_statuses(self, call: Call) -> Reply:
        """Also served at the legacy `GET /statuses/{sha}`, which PyGithub's `Commit.get_statuses` uses."""
        repo = self._repo(call)
        sha = await self._ref_sha(repo, call.params.get("ref") or call.params["sha"])
        chunk, headers = _page(call, self.forge.statuses(repo, sha))
        shapes = Shapes(call.base_url)
        return Reply(200, [shapes.status(repo, s) for s in chunk], headers)

    async def combined_status(self, call: Call) -> Reply:
        repo = self._repo(call)
        sha = await self._ref_sha(repo, call.params["ref"])
        chunk, headers = _page(call, self.forge.latest_statuses(repo, sha))
        return Reply(200, Shapes(call.base_url).combined(repo, sha, chunk), headers)

    async def get_commit(self, call: Call) -> Reply:
        repo = self._repo(call)
        sha = await self._ref_sha(repo, call.params["ref"])
        shapes = Shapes(call.base_url)
        return Reply(200, await blocking(lambda: shapes.commit(repo, self.forge.commit(repo, sha))))

    async def commit_pulls(self, call: Call) -> Reply:
        repo = self._repo(call)
        sha = await self._ref_sha(repo, call.params["commit_sha"])
        pulls = [pr for pr in self.forge.pulls(repo) if sha in (pr.merge_commit_sha, pr.head_sha)]
        chunk, headers = _page(call, sorted(pulls, key=lambda p: p.number, reverse=True))
        shapes = Shapes(call.base_url)
        return Reply(200, [shapes.pull_request(self.forge, repo, pr, full=False) for pr in chunk], headers)

    async def compare(self, call: Call) -> Reply:
        repo = self._repo(call)
        base_ref, dots, head_ref = call.params["basehead"].partition("...")
        if not dots:
            raise ForgeError("not_found", "Not Found")
        base = await self._ref_sha(repo, base_ref)
        head = await self._ref_sha(repo, head_ref)
        shapes = Shapes(call.base_url)

        def build() -> dict[str, Any]:
            git = self.forge.git(repo)
            merge_base = git.merge_base(base, head) or base
            ahead, behind = git.ahead_behind(base, head)
            status = (
                "identical"
                if base == head
                else "ahead"
                if not behind
                else "behind"
                if not ahead
                else "diverged"
            )
            url = f"{shapes.api}/repos/{repo.owner}/{repo.name}/compare/{base_ref}...{head_ref}"
            html = f"{shapes.web}/{repo.owner}/{repo.name}/compare/{base_ref}...{head_ref}"
            files = []
            for letter, path, added, deleted in git.changed_files(merge_base, head):
                raw = f"{shapes.web}/{repo.owner}/{repo.name}/raw/{head}/{path}"
                files.append(
                    {
                        "sha": None,
                        "filename": path,
                        "status": {"A": "added", "D": "removed", "M": "modified"}.get(letter[0], "changed"),
                        "additions": added,
                        "deletions": deleted,
                        "changes": added + deleted,
                        "blob_url": f"{shapes.web}/{repo.owner}/{repo.name}/blob/{head}/{path}",
                        "raw_url": raw,
                        "contents_url": f"{shapes.api}/repos/{repo.owner}/{repo.name}/contents/{path}?ref={head}",
                    }
                )
            return {
                "url": url,
                "html_url": html,
                "permalink_url": f"{shapes.web}/{repo.owner}/{repo.name}/compare/{base}...{head}",
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "base_commit": shapes.commit(repo, git.commit_info(base)),
                "merge_base_commit": shapes.commit(repo, git.commit_info(merge_base)),
                "status": status,
                "ahead_by": ahead,
                "behind_by": behind,
                "total_commits": ahead,
                "commits": [shapes.commit(repo, git.commit_info(sha)) for sha in git.log(base, head)],
                "files": files,
            }

        return Reply(200, await blocking(build))

    async def get_ref(self, call: Call) -> Reply:
        repo = self._repo(call)
        ref = call.params["ref"]
        branch = ref.removeprefix("heads/")
        sha = repo.branches.get(branch) if ref.startswith("heads/") else None
        if sha is None:
            raise ForgeError("not_found", "Not Found")
        return Reply(200, Shapes(call.base_url).git_ref(repo, branch, sha))

    # -- protection -------------------------------------------------------------------------------------

    async def get_protection(self, call: Call) -> Reply:
        repo = self._repo(call)
        branch = call.params["branch"]
        if branch not in repo.protection:
            raise ForgeError("not_found", "Branch not protected")
        return Reply(200, Shapes(call.base_url).protection(repo, branch, repo.protection[branch]))

    async def put_protection(self, call: Call) -> Reply:
        repo = self._repo(call)
        branch = call.params["branch"]
        if branch not in repo.branches:
            raise ForgeError("not_found", "Branch not found")
        data = call.object()
        if "required_status_checks" not in data:
            raise BadRequest(
                "required_status_checks is missing", field="required_status_checks", code="missing_field"
            )
        checks = data["required_status_checks"]
        contexts: list[str] = []
        if checks is not None:
            if not isinstance(checks, dict):
                raise BadRequest(
                    "required_status_checks must be an object or null", field="required_status_checks"
                )
            listed, objects = checks.get("contexts") or [], checks.get("checks") or []
            if not isinstance(listed, list) or not isinstance(objects, list):
                raise BadRequest("contexts and checks must be lists", field="required_status_checks")
            listed = listed + [c.get("context") for c in objects if isinstance(c, dict)]
            if not all(isinstance(c, str) and c for c in listed):
                raise BadRequest("contexts must be non-empty strings", field="required_status_checks")
            contexts = listed
        await blocking(lambda: self.forge.protect(repo, branch, contexts))
        return Reply(200, Shapes(call.base_url).protection(repo, branch, repo.protection[branch]))

    async def delete_protection(self, call: Call) -> Reply:
        repo = self._repo(call)
        await blocking(lambda: self.forge.protect(repo, call.params["branch"], None))
        return Reply(204)
