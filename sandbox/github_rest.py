"""The GitHub personality: REST v3 under `/api/v3`, as GitHub Enterprise Server serves it.

Only the calls a promoter makes (REFERENCE.md section 3), each with GitHub's status codes and messages for
the cases a client must handle: 404 unknown repository, 422 duplicate pull request or invalid state,
405 not mergeable, 409 head moved. Where GitHub is less convenient than its examples suggest, so is this
personality; each such behaviour names its source here or in docs/sandbox.md:

- `X-GitHub-Api-Version` is checked and answered with `X-GitHub-Api-Version-Selected` (`api_version`);
- `GET /pulls?head=<branch>` without `owner:` ignores the filter (`list_pulls`);
- mergeability is unknown for a moment after a pull request or its branches move (github_mergeability.py);
- error bodies carry the operation's `documentation_url` and `status`, as GitHub's do since 2023.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

import anyio.to_thread

from sandbox.accounting import RateLimits
from sandbox.forge import Forge, ForgeError, MergeMethod, PullRequest, Repository
from sandbox.github_json import DOCS, Shapes, error, validation_failed
from sandbox.github_mergeability import DEFAULT_DELAY, Mergeability
from sandbox.gitrepo import is_branch_name
from sandbox.routing import BadRequest, Call, Reply, Router

PREFIX = "/api/v3"
STATUS_STATES = ("error", "failure", "pending", "success")
T = TypeVar("T")

# Newest first. docs.github.com/rest/about-the-rest-api/api-versions: 2026-03-10 was released on
# 10 Mar 2026 (r-lib/gh#230: "The current X-GitHub-Api-Version is 2026-03-10") and the previous version
# stays supported for at least 24 more months; a 2026 capture of api.github.com lists exactly these two.
SUPPORTED_VERSIONS = ("2026-03-10", "2022-11-28")
# "Requests without the X-GitHub-Api-Version header will default to use the 2022-11-28 version."
DEFAULT_VERSION = "2022-11-28"
# docs.github.com/rest/commits/statuses#create-a-commit-status: "a limit of 1000 statuses per sha and
# context within a repository. Attempts to create more than 1000 statuses will result in a validation
# error." The body, a real 422 kept in a public test suite (RepositoryHub): `errors` is a string.
STATUS_CAP = 1000
STATUS_CAP_ERROR = "Validation failed: This SHA and context has reached the maximum number of statuses."
# GitHub's 405 when the base moved under a merge (NixOS/nixpkgs-merge-bot#179, quipper/monorepo-deploy-
# actions#492) or the mergeability is not computed yet (KnpLabs/php-github-api#497, kubernetes/contrib#141).
BASE_MODIFIED = "Base branch was modified. Review and try the merge again."
# docs.github.com/rest/using-the-rest-api/media-types: `diff` and `patch` for pull requests and comparisons.
DIFF_TYPES = {"diff": "application/vnd.github.diff", "patch": "application/vnd.github.patch"}


async def blocking(function: Callable[[], T]) -> T:
    """Run forge work that shells out to git off the event loop."""
    return await anyio.to_thread.run_sync(function)


def error_reply(exc: ForgeError | BadRequest, route: str) -> Reply:
    """GitHub's error bodies: `message`, the operation's `documentation_url`, plus `errors` on 422.

    `route` is the route's name (`PUT /api/v3/repos/{owner}/{repo}/pulls/{pull_number}/merge`); the
    `status` member is added to every GitHub error on the way out (`with_status`)."""
    docs = documentation_url(route)
    if isinstance(exc, BadRequest):
        if exc.code == "malformed":
            return Reply(400, error(exc.message, docs))
        return Reply(422, validation_failed(_resource(route), exc.code, exc.field, exc.message, docs))
    if exc.kind == "not_found":
        return Reply(404, error(exc.message, docs))
    if exc.kind in ("invalid", "exists"):
        code = "already_exists" if exc.kind == "exists" and exc.field == "name" else "custom"
        return Reply(422, validation_failed(_resource(route), code, exc.field, exc.message, docs))
    if exc.kind == "not_mergeable":
        return Reply(405, error(exc.message, docs))
    if exc.kind == "conflict":  # the base kept moving under the merge: GitHub answers 405, not 409
        return Reply(405, error(BASE_MODIFIED, docs))
    return Reply(409, error(exc.message, docs))


def documentation_url(route: str) -> str:
    """The operation's `externalDocs` URL in GitHub's description, which GitHub's own errors carry."""
    method, _, template = route.partition(" ")
    anchor = OPERATION_DOCS.get(f"{method} {template.removeprefix(PREFIX)}")
    return f"{DOCS}/{anchor}" if anchor else DOCS


def with_status(status: int, body: Any) -> Any:
    """GitHub's error bodies repeat the HTTP status as a string (`"status": "422"`), as every capture
    since 2023 shows (e.g. NixOS/nixpkgs-merge-bot#179); `basic-error` in the description lists it."""
    if status >= 400 and isinstance(body, dict) and "documentation_url" in body:
        body.setdefault("status", str(status))
    return body


def api_version(call: Call) -> str | Reply:
    """The version a request selects, or GitHub's 400 for one it does not support.

    The body is GitHub's, where `errors` is a string, not a list. From a 2026 capture of api.github.com:
    `{"message":"Bad Request","errors":"The version you specified in the \\"X-GitHub-API-Version\\"
    request header, \\"1999-01-01\\", is not a supported version. The following versions are currently
    supported: \\"2026-03-10\\" (most recent) and \\"2022-11-28\\".", ... "status":"400"}`;
    expipiplus1/update-nix-fetchgit#79 quotes the same sentence for "v3". The value is compared
    case-insensitively, ignoring white space; an empty header selects the default.
    """
    raw = call.headers.get("x-github-api-version")
    if raw is None or not raw.strip():
        return DEFAULT_VERSION
    wanted = "".join(raw.split()).lower()
    if wanted in SUPPORTED_VERSIONS:
        return wanted
    newest, *others = SUPPORTED_VERSIONS
    listed = " and ".join([f'"{newest}" (most recent)', *(f'"{v}"' for v in others)])
    message = (
        f'The version you specified in the "X-GitHub-API-Version" request header, "{raw}", is not a '
        f"supported version. The following versions are currently supported: {listed}."
    )
    return Reply(400, error("Bad Request", DOCS, errors=message))


def selected_version(call: Call) -> str:
    chosen = api_version(call)
    return chosen if isinstance(chosen, str) else DEFAULT_VERSION


def _wanted_media(call: Call) -> str | None:
    """`diff` or `patch` when the client asked for that media type (also the older `v3.diff` form)."""
    accept = call.headers.get("accept", "")
    for kind in DIFF_TYPES:
        if f"application/vnd.github.{kind}" in accept or f"application/vnd.github.v3.{kind}" in accept:
            return kind
    return None


def _resource(route: str) -> str:
    for part, name in (("/statuses", "Status"), ("/pulls", "PullRequest"), ("/protection", "Branch")):
        if part in route:
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


OPERATION_DOCS = {
    "GET /user": "users/users#get-the-authenticated-user",
    "POST /user/repos": "repos/repos#create-a-repository-for-the-authenticated-user",
    "POST /orgs/{org}/repos": "repos/repos#create-an-organization-repository",
    "GET /rate_limit": "rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user",
    "GET /repos/{owner}/{repo}": "repos/repos#get-a-repository",
    "GET /repos/{owner}/{repo}/pulls": "pulls/pulls#list-pull-requests",
    "POST /repos/{owner}/{repo}/pulls": "pulls/pulls#create-a-pull-request",
    "GET /repos/{owner}/{repo}/pulls/{pull_number}": "pulls/pulls#get-a-pull-request",
    "PATCH /repos/{owner}/{repo}/pulls/{pull_number}": "pulls/pulls#update-a-pull-request",
    "GET /repos/{owner}/{repo}/pulls/{pull_number}/merge": "pulls/pulls#check-if-a-pull-request-has-been-merged",
    "PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge": "pulls/pulls#merge-a-pull-request",
    "POST /repos/{owner}/{repo}/statuses/{sha}": "commits/statuses#create-a-commit-status",
    "GET /repos/{owner}/{repo}/statuses/{sha}": "commits/statuses#list-commit-statuses-for-a-reference",
    "GET /repos/{owner}/{repo}/commits/{ref:path}/statuses": "commits/statuses#list-commit-statuses-for-a-reference",
    "GET /repos/{owner}/{repo}/commits/{ref:path}/status": "commits/statuses#get-the-combined-status-for-a-specific-reference",
    "GET /repos/{owner}/{repo}/commits/{ref}": "commits/commits#get-a-commit",
    "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls": "commits/commits#list-pull-requests-associated-with-a-commit",
    "GET /repos/{owner}/{repo}/compare/{basehead:path}": "commits/commits#compare-two-commits",
    "GET /repos/{owner}/{repo}/git/ref/{ref:path}": "git/refs#get-a-reference",
    "GET /repos/{owner}/{repo}/branches/{branch:path}/protection": "branches/branch-protection#get-branch-protection",
    "PUT /repos/{owner}/{repo}/branches/{branch:path}/protection": "branches/branch-protection#update-branch-protection",
    "DELETE /repos/{owner}/{repo}/branches/{branch:path}/protection": "branches/branch-protection#delete-branch-protection",
}
"""Route name to the anchor of its `externalDocs` URL in GitHub's description (checked by a test)."""


class GitHub:
    """Routes of the GitHub personality, bound to one forge and its rate budgets."""

    def __init__(
        self, forge: Forge, rates: RateLimits | None = None, mergeability_delay: float = DEFAULT_DELAY
    ) -> None:
        self.forge = forge
        self.rates = rates or RateLimits()
        self.mergeability = Mergeability(forge, mergeability_delay)

    def register(self, router: Router) -> None:
        routes: list[tuple[str, str, Any]] = [
            ("GET", "/user", self.get_user),
            ("POST", "/user/repos", self.create_user_repo),
            ("POST", "/orgs/{org}/repos", self.create_org_repo),
            ("GET", "/rate_limit", self.rate_limit),
            ("GET", "/repos/{owner}/{repo}", self.get_repo),
            ("GET", "/repos/{owner}/{repo}/pulls", self.list_pulls),
            ("POST", "/repos/{owner}/{repo}/pulls", self.create_pull),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", self.get_pull),
            ("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}", self.update_pull),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", self.check_merged),
            ("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", self.merge_pull),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", self.list_reviews),
            ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", self.create_review),
            ("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}", self.team_membership),
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

    def _shapes(self, call: Call) -> Shapes:
        return Shapes(call.base_url, selected_version(call), self.mergeability.computing)

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
        shapes = self._shapes(call)
        return Reply(status, await blocking(lambda: shapes.pull_request(self.forge, repo, pr)))

    # -- users and repositories -------------------------------------------------------------------------

    async def get_user(self, call: Call) -> Reply:
        return Reply(200, self._shapes(call).public_user(call.user.login))

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
        return Reply(201, self._shapes(call).full_repository(repo))

    async def rate_limit(self, call: Call) -> Reply:
        """`GET /rate_limit`; the app does not count it ("Accessing this endpoint does not count against
        your REST API rate limit", docs.github.com/rest/rate-limit/rate-limit)."""
        return Reply(200, self._shapes(call).rate_limit(self.rates, call.user.login))

    async def get_repo(self, call: Call) -> Reply:
        return Reply(200, self._shapes(call).full_repository(self._repo(call)))

    # -- pull requests ----------------------------------------------------------------------------------

    async def list_pulls(self, call: Call) -> Reply:
        repo = self._repo(call)
        state = call.query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise BadRequest("state must be one of open, closed, all", field="state")
        head = call.query.get("head")
        base = call.query.get("base")
        pulls = [pr for pr in self.forge.pulls(repo) if state == "all" or pr.state == state]
        # `head` must be `user:ref-name` (docs.github.com/rest/pulls/pulls#list-pull-requests); a bare
        # branch name is ignored and every pull request comes back (PyGithub/PyGithub#1566, github/docs
        # #16647: `?head=whatever` answers 30 PRs, crowdin/github-action#164).
        if head and ":" in head:
            owner, _, branch = head.partition(":")
            pulls = [pr for pr in pulls if pr.head_ref == branch and owner.lower() == repo.owner.lower()]
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
        shapes = self._shapes(call)
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
            if value not in repo.branches:  # GitHub names the field and says no more
                docs = documentation_url(f"POST {PREFIX}/repos/{{owner}}/{{repo}}/pulls")
                return Reply(422, validation_failed("PullRequest", "invalid", what, None, docs))
        pr = await blocking(lambda: self.forge.create_pull(repo, call.user.login, branch, base, title, body))
        return await self._pull_json(call, repo, pr, 201)

    async def get_pull(self, call: Call) -> Reply:
        repo, pr = self._pull(call)
        media = _wanted_media(call)
        if media is not None:
            base = pr.base_sha_at_merge if pr.merged else repo.branches.get(pr.base_ref)
            if base is None:
                raise ForgeError("not_found", "Not Found")
            return await self._diff(repo, media, base, pr.head_sha)
        return await self._pull_json(call, repo, pr)

    async def _diff(self, repo: Repository, media: str, base: str, head: str) -> Reply:
        """A real `git diff` (or `git format-patch`) from the merge base, as GitHub's three-dot view."""

        def run() -> bytes:
            git = self.forge.git(repo)
            start = git.merge_base(base, head) or base
            if media == "patch":
                return git.git("format-patch", "--stdout", f"{start}..{head}").stdout
            return git.git("diff", "--no-renames", start, head).stdout

        text = await blocking(run)
        return Reply(200, text, {"Content-Type": f"{DIFF_TYPES[media]}; charset=utf-8"})

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
        if self.mergeability.computing(repo, pr):
            raise ForgeError("not_mergeable", BASE_MODIFIED)
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
        if sum(s.context == context for s in self.forge.statuses(repo, resolved)) >= STATUS_CAP:
            docs = documentation_url(f"POST {PREFIX}/repos/{{owner}}/{{repo}}/statuses/{{sha}}")
            return Reply(422, error("Validation Failed", docs, errors=STATUS_CAP_ERROR))
        status = await blocking(
            lambda: self.forge.add_status(
                repo, resolved, call.user.login, state, context, description, target_url
            )
        )
        return Reply(
            201,
            self._shapes(call).status(repo, status),
            {"Location": self._shapes(call).status(repo, status)["url"]},
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
        shapes = self._shapes(call)
        return Reply(200, [shapes.status(repo, s) for s in chunk], headers)

    async def combined_status(self, call: Call) -> Reply:
        repo = self._repo(call)
        sha = await self._ref_sha(repo, call.params["ref"])
        chunk, headers = _page(call, self.forge.latest_statuses(repo, sha))
        return Reply(200, self._shapes(call).combined(repo, sha, chunk), headers)

    async def get_commit(self, call: Call) -> Reply:
        repo = self._repo(call)
        sha = await self._ref_sha(repo, call.params["ref"])
        shapes = self._shapes(call)
        return Reply(200, await blocking(lambda: shapes.commit(repo, self.forge.commit(repo, sha))))

    async def commit_pulls(self, call: Call) -> Reply:
        repo = self._repo(call)
        sha = await self._ref_sha(repo, call.params["commit_sha"])
        pulls = [pr for pr in self.forge.pulls(repo) if sha in (pr.merge_commit_sha, pr.head_sha)]
        chunk, headers = _page(call, sorted(pulls, key=lambda p: p.number, reverse=True))
        shapes = self._shapes(call)
        return Reply(200, [shapes.pull_request(self.forge, repo, pr, full=False) for pr in chunk], headers)

    async def compare(self, call: Call) -> Reply:
        repo = self._repo(call)
        base_ref, dots, head_ref = call.params["basehead"].partition("...")
        if not dots:
            raise ForgeError("not_found", "Not Found")
        base = await self._ref_sha(repo, base_ref)
        head = await self._ref_sha(repo, head_ref)
        media = _wanted_media(call)
        if media is not None:
            return await self._diff(repo, media, base, head)
        shapes = self._shapes(call)

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
        return Reply(200, self._shapes(call).git_ref(repo, branch, sha))

    # -- reviews and teams ------------------------------------------------------------------------------

    async def list_reviews(self, call: Call) -> Reply:
        """Oldest first, each with the head it was made on ("List reviews for a pull request ... in
        chronological order", docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request)."""
        repo, pr = self._pull(call)
        chunk, headers = _page(call, list(pr.reviews))
        shapes = self._shapes(call)
        return Reply(200, [shapes.review(repo, pr, review) for review in chunk], headers)

    async def create_review(self, call: Call) -> Reply:
        """`event` APPROVE, REQUEST_CHANGES or COMMENT (a body is required for the last two). GitHub's
        refusals are `validation-error-simple`: `errors` is a list of strings, e.g. "Can not approve your
        own pull request" (hubtty/hubtty#33)."""
        repo, pr = self._pull(call)
        data = call.object()
        event = data.get("event")
        states = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}
        body = _string(data, "body") or ""
        commit_id = _string(data, "commit_id")
        route = "POST /api/v3/repos/{owner}/{repo}/pulls/{pull_number}/reviews"
        refusal: str | None = None
        if event not in states:
            refusal = "a pending review is not supported here: send event APPROVE, REQUEST_CHANGES or COMMENT"
        elif event != "APPROVE" and not body:
            refusal = f"Body is required for {event} reviews"
        elif commit_id is not None and await blocking(lambda: self.forge.resolve(repo, commit_id)) is None:
            refusal = "Commit could not be found"
        if refusal is None:
            try:
                review = self.forge.add_review(
                    repo, pr.number, call.user.login, states[str(event)], commit_id, body
                )
            except ForgeError as exc:
                refusal = exc.message
        if refusal is not None:
            return Reply(422, error("Unprocessable Entity", documentation_url(route), errors=[refusal]))
        return Reply(200, self._shapes(call).review(repo, pr, review))

    async def team_membership(self, call: Call) -> Reply:
        """404 "if user has no team membership" (the operation's own words), whatever the reason."""
        org, slug, login = call.params["org"], call.params["team_slug"], call.params["username"]
        state = self.forge.member(f"{org}/{slug}", login)
        if state is None:
            raise ForgeError("not_found", "Not Found")
        return Reply(200, self._shapes(call).team_membership(org, slug, login, state))

    # -- protection -------------------------------------------------------------------------------------

    async def get_protection(self, call: Call) -> Reply:
        repo = self._repo(call)
        branch = call.params["branch"]
        if branch not in repo.protection:
            raise ForgeError("not_found", "Branch not protected")
        return Reply(200, self._shapes(call).protection(repo, branch, repo.protection[branch]))

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
        return Reply(200, self._shapes(call).protection(repo, branch, repo.protection[branch]))

    async def delete_protection(self, call: Call) -> Reply:
        repo = self._repo(call)
        await blocking(lambda: self.forge.protect(repo, call.params["branch"], None))
        return Reply(204)
