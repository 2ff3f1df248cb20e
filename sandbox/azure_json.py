"""What the Azure DevOps personality reads and writes: JSON shapes, errors, enums and api-version rules.

Shapes follow Microsoft's httpExamples (`tests/sandbox/test_azure_contract.py` replays them): `_links`
on pull requests, repositories and statuses, `reviewers` with `vote`, `isDraft`, identities with
`_links.avatar` and `descriptor`, lists wrapped as `{count, value}`, enums written camelCase.

Requests are read as leniently as the service reads them: it is ASP.NET with Json.NET, whose
StringEnumConverter accepts enum names in any case and their integer values (AllowIntegerValues is true
by default; Microsoft's az CLI sends JSON-patch `op` as 0 and 1), and which turns the strings "true" and
"false" into booleans (Microsoft's auto-complete example sends `"deleteSourceBranch": "true"` and the
answer echoes `true`). Query strings bind the same way (the refs example sends `includeStatuses=True`).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from sandbox.forge import Account, Repository, Status
from sandbox.routing import BadRequest, Call, Reply

# Each enum with its integer values, from git-7.1.json and the azure-devops-extension-api docs.
ENUMS: dict[str, dict[str, int]] = {
    "status": {"notSet": 0, "active": 1, "abandoned": 2, "completed": 3, "all": 4},
    "mergeStrategy": {"noFastForward": 1, "squash": 2, "rebase": 3, "rebaseMerge": 4},
    "state": {"notSet": 0, "pending": 1, "succeeded": 2, "failed": 3, "error": 4, "notApplicable": 5},
    "type": {"notSet": 0, "lastMergeCommit": 1, "commit": 2},
}
BOOLEANS = frozenset(
    {
        "deleteSourceBranch",
        "squashMerge",
        "bypassPolicy",
        "transitionWorkItems",
        "triggeredByAutoComplete",
        "isDraft",
        "isRequired",
        "hasDeclined",
        "isFlagged",
    }
)
API_VERSION = re.compile(r"(\d+)\.(\d+)(-preview(\.(\d+))?)?")
MAX_VERSION = (
    7,
    2,
)  # dev.azure.com's ceiling today: "The latest REST API version this server supports is 7.2."
RELEASED = (7, 1)  # every git resource the sandbox serves is released at 7.1 (git-7.1.json's api-version)
PREVIEW_ONLY = ("/_apis/connectiondata", "/_apis/resourceareas")  # the Location area is still preview


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp * 1000) % 1000:03d}Z"
    )


def iso_seconds(timestamp: int) -> str:
    """A git date as the service writes commit dates: whole seconds, `Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def error_body(message: str, type_key: str, status: int, namespace: str = "SourceControl.WebServer") -> Reply:
    """The service's error shape: `$id`, `innerException`, `message`, `typeName`, `typeKey`, codes."""
    assembly = "Microsoft.TeamFoundation." + namespace
    if namespace == "VisualStudio.Services.WebApi":
        assembly = "Microsoft.VisualStudio.Services.WebApi"
    return Reply(
        status,
        {
            "$id": "1",
            "innerException": None,
            "message": message,
            "typeName": f"{assembly}.{type_key}, {assembly}",
            "typeKey": type_key,
            "errorCode": 0,
            "eventId": 3000,
        },
    )


# -- leniency -------------------------------------------------------------------------------------------


def enum_value(field: str, value: Any) -> Any:
    """An enum as Json.NET reads it: any case, or its integer; anything else is returned unchanged."""
    names = ENUMS[field]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return next((name for name, number in names.items() if number == value), value)
    if isinstance(value, str):
        return next((name for name in names if name.lower() == value.strip().lower()), value)
    return value


def lenient(value: Any, key: str | None = None) -> Any:
    """A request body with enums made canonical and "true"/"false" made booleans, recursively."""
    if isinstance(value, dict):
        return {k: lenient(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [lenient(item, key) for item in value]
    if key in ENUMS:
        return enum_value(key, value)
    if key in BOOLEANS and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def query_flag(call: Call, name: str) -> bool:
    """A boolean query parameter, bound case-insensitively (`True`, `true`); anything else is refused."""
    raw = call.query.get(name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false, not {raw[:20]!r}", field=name)
    return raw.lower() == "true"


def query_int(call: Call, name: str, default: int) -> int:
    raw = call.query.get(name)
    if raw is None:
        return default
    try:
        return max(int(raw), 0)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {raw[:20]!r}", field=name) from None


# -- api-version ----------------------------------------------------------------------------------------


def requested_version(call: Call) -> str | None:
    """`api-version` from the query, else from the Accept header (`application/json;api-version=7.1`)."""
    version = call.query.get("api-version")
    if version is None:
        match = re.search(r"api-version=([\w.-]+)", call.headers.get("accept", ""))
        version = match[1] if match else None
    return version


def check_api_version(call: Call) -> Reply | None:
    """The service's api-version rules: required, well formed, at most 7.2, `-preview` for preview APIs.

    OPTIONS (route discovery) needs none, as Microsoft's Python client sends none.
    """
    if call.method == "OPTIONS":
        return None
    version = requested_version(call)
    if version is None:
        return error_body(
            f'No api-version was supplied for the "{call.method}" request. The version must be supplied either as '
            'part of the Accept header (e.g. "application/json; api-version=1.0") or as a query parameter '
            "(e.g. '?api-version=1.0').",
            "VssVersionNotSpecifiedException",
            400,
            "VisualStudio.Services.WebApi",
        )
    match = API_VERSION.fullmatch(version)
    if match is None:
        return error_body(
            f"The version '{version[:40]}' is not a valid api-version: use e.g. 7.1 or 7.1-preview.1",
            "VssInvalidApiVersionException",
            400,
            "VisualStudio.Services.WebApi",
        )
    number = (int(match[1]), int(match[2]))
    if number > MAX_VERSION:
        return error_body(
            f"The requested REST API version of {version} is out of range for this server. The latest REST API "
            f"version this server supports is {MAX_VERSION[0]}.{MAX_VERSION[1]}.",
            "VssVersionOutOfRangeException",
            400,
            "VisualStudio.Services.WebApi",
        )
    preview_only = call.path.lower().endswith(PREVIEW_ONLY) or number > RELEASED
    if preview_only and not match[3]:
        plain = f"{number[0]}.{number[1]}"
        return error_body(
            f'The requested version "{plain}" of the resource is under preview. The -preview flag must be '
            f'supplied in the api-version for such requests. For example: "{plain}-preview"',
            "VssInvalidPreviewVersionException",
            400,
            "VisualStudio.Services.WebApi",
        )
    return None


# -- shapes ---------------------------------------------------------------------------------------------


def link(href: str) -> dict[str, str]:
    return {"href": href}


class Shapes:
    """JSON for one repository, with URLs at the organisation level as the service writes them."""

    def __init__(self, base_url: str, repo: Repository) -> None:
        self.base = base_url
        self.repo = repo
        self.org = f"{base_url}/{repo.owner}"
        self.api = f"{self.org}/_apis/git/repositories/{repo.uuid}"

    def identity(self, login: str) -> dict[str, Any]:
        account = Account(login)
        descriptor = f"aad.{account.uuid}"
        return {
            "displayName": login,
            "url": f"{self.org}/_apis/Identities/{account.uuid}",
            "_links": {"avatar": link(f"{self.org}/_apis/GraphProfile/MemberAvatars/{descriptor}")},
            "id": account.uuid,
            "uniqueName": f"{login}@sandbox.local",
            "imageUrl": f"{self.org}/_api/_common/identityImage?id={account.uuid}",
            "descriptor": descriptor,
        }

    def project(self) -> dict[str, Any]:
        repo = self.repo
        return {
            "id": repo.project_uuid,
            "name": repo.project,
            "description": f"{repo.project} (sandbox)",
            "url": f"{self.org}/_apis/projects/{repo.project_uuid}",
            "state": "wellFormed",
            "revision": 1,
            "visibility": "private",
            "lastUpdateTime": iso(repo.created_at),
        }

    def repository(self) -> dict[str, Any]:
        repo = self.repo
        remote = f"{self.org}/{repo.project}/_git/{repo.name}"
        return {
            "id": repo.uuid,
            "name": repo.name,
            "url": self.api,
            "project": self.project(),
            "defaultBranch": f"refs/heads/{repo.default_branch}",
            "size": 0,
            "remoteUrl": remote,
            "sshUrl": remote,
            "webUrl": remote,
            "isDisabled": False,
            "isInMaintenance": False,
            "_links": {
                "self": link(self.api),
                "project": link(f"{self.org}/_apis/projects/{repo.project_uuid}"),
                "web": link(remote),
                "commits": link(f"{self.api}/commits"),
                "refs": link(f"{self.api}/refs"),
                "pullRequests": link(f"{self.api}/pullRequests"),
                "items": link(f"{self.api}/items"),
                "pushes": link(f"{self.api}/pushes"),
            },
        }

    def commit_ref(self, sha: str) -> dict[str, Any]:
        return {"commitId": sha, "url": f"{self.api}/commits/{sha}"}

    def group_identity(self, name: str) -> dict[str, Any]:
        """A group or team as a reviewer: a container, named `[project]\\Group` in the web UI."""
        gid = group_id(name)
        return {
            "displayName": name,
            "url": f"{self.org}/_apis/Identities/{gid}",
            "id": gid,
            "uniqueName": name,
            "imageUrl": f"{self.org}/_api/_common/identityImage?id={gid}",
            "isContainer": True,
        }

    def reviewer(
        self, number: int, login: str, vote: int, required: bool, group: bool = False
    ) -> dict[str, Any]:
        identity = self.group_identity(login) if group else self.identity(login)
        data = {
            "reviewerUrl": f"{self.api}/pullRequests/{number}/reviewers/{identity['id']}",
            "vote": vote,
            **identity,
        }
        if required:
            data["isRequired"] = True
        return data

    def pull_links(self, number: int, source: str, target: str | None, creator: str) -> dict[str, Any]:
        url = f"{self.api}/pullRequests/{number}"
        links = {
            "self": link(url),
            "repository": link(self.api),
            "workItems": link(f"{url}/workitems"),
            "sourceBranch": link(f"{self.api}/refs"),
            "targetBranch": link(f"{self.api}/refs"),
            "statuses": link(f"{url}/statuses"),
            "sourceCommit": link(f"{self.api}/commits/{source}"),
            "createdBy": link(f"{self.org}/_apis/Identities/{Account(creator).uuid}"),
            "iterations": link(f"{url}/iterations"),
        }
        if target:
            links["targetCommit"] = link(f"{self.api}/commits/{target}")
        return links

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
            "_links": {
                "self": link(f"{self.api}/commits/{status.sha}/statuses/{status.id}"),
                "repository": link(self.api),
            },
        }
        if status.target_url:
            data["targetUrl"] = status.target_url
        return data


def listing(items: list[Any]) -> dict[str, Any]:
    return {"count": len(items), "value": items}


def group_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"promoter-sandbox:group:{name.lower()}"))
