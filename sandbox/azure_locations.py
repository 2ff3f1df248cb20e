"""Route discovery as Microsoft's Python client (`azure-devops` on PyPI) performs it.

`azure.devops.connection.Connection` first asks `GET /{org}/_apis/ResourceAreas` which host serves each
area (the git area id is `4e080c62-...`), then every client sends `OPTIONS {that host}/_apis` once and
builds each URL from the returned `routeTemplate` of the location id it wants, dropping the
`{project}`-style segments it has no value for (so a call without a project lands on the organisation
level route). The answer is `{count, value: [ApiResourceLocation]}` with the versions as strings
(`"minVersion": "1.0"`), as a captured response of the service shows; the client negotiates its
api-version down to `maxVersion` and adds `-preview` when `releasedVersion` is lower.

Route templates are the paths of `git-7.1.json` written with `{area}` and `{resource}`; location ids are
those in the client's own source (`azure/devops/v7_1/git/git_client_base.py`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sandbox.forge import Account
from sandbox.routing import Call, Reply, Router

GIT_AREA = "4e080c62-fa21-4fbc-8fef-2a10a2b38049"
REPO = "{project}/_apis/{area}/repositories/{repositoryId}"
# (location id, area, resource name, route template, released version)
LOCATIONS: tuple[tuple[str, str, str, str, str], ...] = (
    ("e81700f7-3be2-46de-8624-2eb35882fcaa", "Location", "ResourceAreas", "_apis/{resource}/{areaId}", "0.0"),
    ("00d9565f-ed9c-4a06-9a50-00e7896ccab4", "Location", "ConnectionData", "_apis/{resource}", "0.0"),
    (
        "225f7195-f9c7-4d14-ab28-a83f7ff77e1f",
        "git",
        "repositories",
        "{project}/_apis/{area}/{resource}/{repositoryId}",
        "7.1",
    ),
    (
        "9946fd70-0d40-406e-b686-b4744cbbcc37",
        "git",
        "pullRequests",
        f"{REPO}/{{resource}}/{{pullRequestId}}",
        "7.1",
    ),
    (
        "01a46dea-7d46-4d40-bc84-319e7c260d99",
        "git",
        "pullRequests",
        "{project}/_apis/{area}/{resource}/{pullRequestId}",
        "7.1",
    ),
    (
        "b5f6bb4f-8d1e-4d79-8d11-4c9172c99c35",
        "git",
        "pullRequestStatuses",
        f"{REPO}/pullRequests/{{pullRequestId}}/statuses/{{statusId}}",
        "7.1",
    ),
    ("b3a6eebe-9cf0-49ea-b6cb-1a4c5f5007b0", "git", "pullRequestQuery", f"{REPO}/{{resource}}", "7.1"),
    (
        "428dd4fb-fda5-4722-af02-9313b80305da",
        "git",
        "statuses",
        f"{REPO}/commits/{{commitId}}/{{resource}}",
        "7.1",
    ),
    ("2d874a60-a811-4f62-9c9f-963a6ea0a55b", "git", "refs", f"{REPO}/{{resource}}/{{*filter}}", "7.1"),
    ("615588d5-c0c7-4b88-88f8-e625306446e8", "git", "commitDiffs", f"{REPO}/diffs/commits", "7.1"),
)


def location(entry: tuple[str, str, str, str, str]) -> dict[str, Any]:
    identifier, area, resource, template, released = entry
    return {
        "id": identifier,
        "area": area,
        "resourceName": resource,
        "routeTemplate": template,
        "resourceVersion": 1,
        "minVersion": "1.0",
        "maxVersion": "7.2",
        "releasedVersion": released,
    }


def register(router: Router) -> None:
    def add(method: str, template: str, handler: Any) -> None:
        router.add(method, template, handler, "azure", ignore_case=True)

    async def options(call: Call) -> Reply:
        return Reply(200, {"count": len(LOCATIONS), "value": [location(e) for e in LOCATIONS]})

    async def resource_areas(call: Call) -> Reply:
        org_url = f"{call.base_url}/{call.params['organization']}/"
        areas = [{"id": GIT_AREA, "name": "git", "locationUrl": org_url}]
        wanted = call.params.get("areaId")
        if wanted is not None:
            match = next((a for a in areas if a["id"] == wanted.lower()), None)
            return Reply(200, match) if match else Reply(404, None)
        return Reply(200, {"count": len(areas), "value": areas})

    async def connection_data(call: Call) -> Reply:
        """Who the token belongs to, as `GET {org}/_apis/connectionData` says (`authenticatedUser.id`)."""
        account = Account(call.user.login)
        user = {
            "id": account.uuid,
            "descriptor": f"Microsoft.IdentityModel.Claims.ClaimsIdentity;{account.uuid}",
            "subjectDescriptor": f"aad.{account.uuid}",
            "providerDisplayName": call.user.login,
            "isActive": True,
            "properties": {
                "Account": {"$type": "System.String", "$value": f"{call.user.login}@sandbox.local"}
            },
            "resourceVersion": 2,
            "metaTypeId": 0,
        }
        instance = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"promoter-sandbox:org:{call.params['organization'].lower()}")
        )
        return Reply(
            200,
            {
                "authenticatedUser": user,
                "authorizedUser": user,
                "instanceId": instance,
                "deploymentId": instance,
                "deploymentType": "hosted",
                "locationServiceData": {
                    "serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
                    "defaultAccessMappingMoniker": "PublicAccessMapping",
                    "lastChangeId": 1,
                    "lastChangeId64": 1,
                },
            },
        )

    add("OPTIONS", "/{organization}/_apis", options)
    add("GET", "/{organization}/_apis/resourceAreas", resource_areas)
    add("GET", "/{organization}/_apis/resourceAreas/{areaId}", resource_areas)
    add("GET", "/{organization}/_apis/connectionData", connection_data)
