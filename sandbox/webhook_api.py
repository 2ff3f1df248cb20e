"""Webhook subscriptions over each personality's API (the deliveries themselves: sandbox/webhooks.py).

- GitHub `POST|GET /repos/{owner}/{repo}/hooks`, `DELETE /repos/{owner}/{repo}/hooks/{hook_id}`, in the
  OpenAPI description, so the app validates requests and responses against it;
- Azure DevOps `POST|GET /{organization}/_apis/hooks/subscriptions`,
  `DELETE /{organization}/_apis/hooks/subscriptions/{subscriptionId}`
  (https://learn.microsoft.com/en-us/rest/api/azure/devops/hooks/subscriptions), checked here.
"""

from __future__ import annotations

from typing import Any

from sandbox.forge import Forge, Repository
from sandbox.github_rest import PREFIX
from sandbox.github_rest import blocking as _blocking
from sandbox.routing import BadRequest, Call, Reply, Router
from sandbox.webhook_payloads import github_hook
from sandbox.webhooks import Hook, HookError, Webhooks, azure_headers

AZURE_PREFIX = "/{organization}/_apis/hooks"


class WebhookApi:
    def __init__(self, forge: Forge, webhooks: Webhooks) -> None:
        self.forge, self.webhooks = forge, webhooks

    def register(self, router: Router) -> None:
        hooks = "/repos/{owner}/{repo}/hooks"
        router.add("POST", hooks, self.create_github, "github", prefix=PREFIX)
        router.add("GET", hooks, self.list_github, "github", prefix=PREFIX)
        router.add("DELETE", hooks + "/{hook_id}", self.delete_github, "github", prefix=PREFIX)
        subscriptions = "/subscriptions"
        router.add(
            "POST", subscriptions, self.create_azure, "azure", AZURE_PREFIX, AZURE_PREFIX, ignore_case=True
        )
        router.add(
            "GET", subscriptions, self.list_azure, "azure", AZURE_PREFIX, AZURE_PREFIX, ignore_case=True
        )
        router.add(
            "DELETE",
            subscriptions + "/{subscriptionId}",
            self.delete_azure,
            "azure",
            AZURE_PREFIX,
            AZURE_PREFIX,
            ignore_case=True,
        )

    # -- GitHub -----------------------------------------------------------------------------------------

    def _github_repo(self, call: Call) -> Repository:
        return self.forge.repo("github", call.params["owner"], call.params["repo"])

    async def create_github(self, call: Call) -> Reply:
        repo = self._github_repo(call)
        data = call.object()
        config = data.get("config")
        if data.get("name", "web") != "web" or not isinstance(config, dict) or not config.get("url"):
            raise BadRequest("Validation Failed: config.url is required and name must be web", field="config")
        if config.get("content_type", "form") != "json":
            raise BadRequest("the sandbox sends JSON only: set config.content_type to json", field="config")
        events = data.get("events", ["push"])
        secret = config.get("secret")
        hook = Hook(
            0, repo.key, "github", str(config["url"]), list(events), call.base_url, secret=secret or None
        )
        hook.active = bool(data.get("active", True))
        try:
            await _blocking(lambda: self.webhooks.add(hook, repo))
        except HookError as error:
            raise BadRequest(str(error), field="config") from None
        return Reply(201, github_hook(hook, repo, f"{call.base_url}{PREFIX}"))

    async def list_github(self, call: Call) -> Reply:
        repo = self._github_repo(call)
        api = f"{call.base_url}{PREFIX}"
        return Reply(200, [github_hook(h, repo, api) for h in self.webhooks.hooks(repo, "github")])

    async def delete_github(self, call: Call) -> Reply:
        repo = self._github_repo(call)
        number = call.params["hook_id"]
        owned = {h.id for h in self.webhooks.hooks(repo, "github")}
        if not number.isdigit() or int(number) not in owned or not self.webhooks.remove(int(number)):
            return Reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        return Reply(204)

    # -- Azure DevOps -----------------------------------------------------------------------------------

    async def create_azure(self, call: Call) -> Reply:
        data = call.object()
        if data.get("publisherId") != "tfs" or data.get("consumerId") != "webHooks":
            raise BadRequest("the sandbox serves publisherId tfs with consumerId webHooks only")
        if data.get("consumerActionId") != "httpRequest":
            raise BadRequest("consumerActionId must be httpRequest")
        publisher, consumer = data.get("publisherInputs") or {}, data.get("consumerInputs") or {}
        if not isinstance(publisher, dict) or not isinstance(consumer, dict) or not consumer.get("url"):
            raise BadRequest("consumerInputs.url is required")
        repo = self._azure_repo(call.params["organization"], str(publisher.get("repository", "")))
        try:
            headers = azure_headers(str(consumer.get("httpHeaders", "")))
            hook = Hook(
                0,
                repo.key,
                "azure",
                str(consumer["url"]),
                [str(data.get("eventType", ""))],
                call.base_url,
                username=str(consumer.get("basicAuthUsername", "")) or None,
                password=str(consumer.get("basicAuthPassword", "")) or None,
                headers=headers,
            )
            await _blocking(lambda: self.webhooks.add(hook, repo))
        except HookError as error:
            raise BadRequest(str(error)) from None
        return Reply(200, _subscription(hook, repo))

    def _azure_repo(self, organization: str, repository: str) -> Repository:
        for repo in self.forge.repos():
            if (
                repo.kind == "azure"
                and repo.owner.lower() == organization.lower()
                and repository
                in (
                    repo.uuid,
                    repo.name,
                )
            ):
                return repo
        raise BadRequest(f"publisherInputs.repository {repository!r}: no such repository in {organization}")

    async def list_azure(self, call: Call) -> Reply:
        organization = call.params["organization"].lower()
        found = [
            _subscription(h, repo)
            for repo in self.forge.repos()
            if repo.kind == "azure" and repo.owner.lower() == organization
            for h in self.webhooks.hooks(repo, "azure")
        ]
        return Reply(200, {"count": len(found), "value": found})

    async def delete_azure(self, call: Call) -> Reply:
        wanted = call.params["subscriptionId"]
        for hook in self.webhooks.hooks(kind="azure"):
            if hook.uuid == wanted:
                self.webhooks.remove(hook.id)
                return Reply(204)
        return Reply(
            404, {"message": f"subscription {wanted} not found", "typeKey": "SubscriptionNotFoundException"}
        )


def _subscription(hook: Hook, repo: Repository) -> dict[str, Any]:
    """The subscription as Azure DevOps returns it; `status` `disabledBySystem` after a 410."""
    consumer: dict[str, Any] = {"url": hook.url}
    if hook.username:
        consumer["basicAuthUsername"] = hook.username
        consumer["basicAuthPassword"] = "********"  # Azure DevOps masks it too
    return {
        "id": hook.uuid,
        "status": "enabled" if hook.active else "disabledBySystem",
        "publisherId": "tfs",
        "eventType": hook.events[0],
        "publisherInputs": {"repository": repo.uuid, "projectId": repo.project_uuid},
        "consumerId": "webHooks",
        "consumerActionId": "httpRequest",
        "consumerInputs": consumer,
    }
