"""The bodies of the sandbox's webhooks, built from the same shapes its REST API returns.

GitHub's follow @octokit/webhooks-schemas (`status$event`, `pull_request$closed`, `ping$event` in
../shared/specs/github/webhooks-schema.json); tests/sandbox/test_webhooks.py validates each against it.
Azure DevOps' follow the envelope of the samples on https://learn.microsoft.com/en-us/azure/devops/service-hooks/events
(`id`, `eventType`, `publisherId`, `message`, `detailedMessage`, `resource` = the pull request as its REST
API returns it, `resourceVersion`, `resourceContainers`, `createdDate`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sandbox.forge import Forge, PullRequest, Repository, Status
from sandbox.github_json import Shapes, iso
from sandbox.github_rest import DEFAULT_VERSION
from sandbox.webhooks import Hook

# What a webhook's `repository` carries beyond the REST repository (webhooks-schema `repository`).
_REPOSITORY_EXTRAS = {
    "is_template": False,
    "web_commit_signoff_required": False,
    "topics": [],
    "custom_properties": {},
    "has_downloads": False,
}


# `simple-pull-request` in @octokit/webhooks-schemas, which allows no other property: a review event's PR.
SIMPLE_PULL_REQUEST = frozenset(
    [
        "url",
        "id",
        "node_id",
        "html_url",
        "diff_url",
        "patch_url",
        "issue_url",
        "number",
        "state",
        "locked",
        "title",
        "user",
        "body",
        "created_at",
        "updated_at",
        "closed_at",
        "merged_at",
        "merge_commit_sha",
        "assignee",
        "assignees",
        "requested_reviewers",
        "requested_teams",
        "labels",
        "milestone",
        "draft",
        "commits_url",
        "review_comments_url",
        "review_comment_url",
        "comments_url",
        "statuses_url",
        "head",
        "base",
        "_links",
        "author_association",
        "auto_merge",
        "active_lock_reason",
    ]
)


def _shapes(hook: Hook) -> Shapes:
    return Shapes(hook.base_url, DEFAULT_VERSION)


def _repository(shapes: Shapes, repo: Repository) -> dict[str, Any]:
    data = {**shapes.repository(repo), **_REPOSITORY_EXTRAS}
    for key in ("allow_merge_commit", "allow_squash_merge", "allow_rebase_merge", "allow_auto_merge"):
        data.pop(key, None)
    return data


def github_hook(hook: Hook, repo: Repository, api: str) -> dict[str, Any]:
    """The `hook` the REST API returns, and a ping carries."""
    url = f"{api}/repos/{repo.owner}/{repo.name}/hooks/{hook.id}"
    return {
        "type": "Repository",
        "id": hook.id,
        "name": "web",
        "active": hook.active,
        "events": hook.events,
        "config": {"content_type": "json", "insecure_ssl": "0", "url": hook.url},
        "updated_at": iso(int(hook.created_at)),
        "created_at": iso(int(hook.created_at)),
        "url": url,
        "test_url": f"{url}/test",
        "ping_url": f"{url}/pings",
        "deliveries_url": f"{url}/deliveries",
        "last_response": {"code": None, "status": "unused", "message": None},
    }


def github_payload(forge: Forge, event: str, repo: Repository, subject: Any, hook: Hook) -> dict[str, Any]:
    shapes = _shapes(hook)
    sender = shapes.simple_user(repo.owner)
    repository = _repository(shapes, repo)
    if event == "ping":
        return {
            "zen": "Design for failure.",
            "hook_id": hook.id,
            "hook": github_hook(hook, repo, shapes.api),
            "repository": repository,
            "sender": sender,
        }
    if event == "status":
        return _status(forge, shapes, repo, subject, repository)
    if event == "pull_request":
        pr: PullRequest = subject
        pull = shapes.pull_request(forge, repo, pr)
        for side in ("base", "head"):
            if pull.get(side, {}).get("repo"):
                pull[side] = {**pull[side], "repo": repository}
        return {
            "action": "closed",
            "number": pr.number,
            "pull_request": pull,
            "repository": repository,
            "sender": shapes.simple_user(pr.closed_by or pr.merged_by or repo.owner),
        }
    if event == "pull_request_review":
        pr, review = subject
        pull = shapes.pull_request(forge, repo, pr)
        simple = {k: v for k, v in pull.items() if k in SIMPLE_PULL_REQUEST}
        for side in ("base", "head"):
            if simple.get(side, {}).get("repo"):
                simple[side] = {**simple[side], "repo": repository}
        return {
            "action": "submitted",
            "review": {**shapes.review(repo, pr, review), "state": review.state.lower()},
            "pull_request": simple,
            "repository": repository,
            "sender": shapes.simple_user(review.login),
        }
    raise ValueError(f"no GitHub payload for {event!r}")


def _status(
    forge: Forge, shapes: Shapes, repo: Repository, status: Status, repository: dict[str, Any]
) -> dict[str, Any]:
    info = forge.commit(repo, status.sha)
    commit = shapes.commit(repo, info)
    author = shapes.simple_user(repo.owner)
    git_commit = dict(commit["commit"])
    # The event's commit carries the REST shape minus what the schema leaves out (`verified_at`).
    git_commit["verification"] = {k: v for k, v in git_commit["verification"].items() if k != "verified_at"}
    api = f"{shapes.api}/repos/{repo.owner}/{repo.name}"
    git = forge.git(repo)
    branches = [
        {
            "name": name,
            "commit": {"sha": sha, "url": f"{api}/commits/{sha}"},
            "protected": name in repo.protection,
        }
        for name, sha in sorted(repo.branches.items())
        if sha == status.sha or git.is_ancestor(status.sha, sha)
    ][:10]  # "The array includes a maximum of 10 branches."
    return {
        "id": status.id,
        "sha": status.sha,
        "name": repo.full_name,
        "target_url": status.target_url,
        "avatar_url": f"{shapes.web}/avatars/{status.creator}",
        "context": status.context,
        "description": status.description,
        "state": status.state,
        "commit": {
            "sha": commit["sha"],
            "node_id": commit["node_id"],
            "commit": git_commit,
            "url": commit["url"],
            "html_url": commit["html_url"],
            "comments_url": commit["comments_url"],
            "author": author,
            "committer": author,
            "parents": commit["parents"],
        },
        "branches": branches,
        "created_at": iso(int(status.created_at)),
        "updated_at": iso(int(status.created_at)),
        "repository": repository,
        "sender": shapes.simple_user(status.creator),
    }


def azure_payload(pull_json: dict[str, Any], event: str, repo: Repository, pr: PullRequest) -> dict[str, Any]:
    """A service hook delivery; `pull_json` is the PR as the Azure DevOps personality returns it."""
    verb = "completed" if pr.merged else "abandoned"
    text = f"{pr.closed_by or pr.merged_by or 'someone'} {verb} pull request {pr.number} ({pr.title})"
    collection = repo.project_uuid  # the sandbox has one collection per project
    return {
        "subscriptionId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{repo.key}:{event}")),
        "notificationId": pr.number,
        "id": str(uuid.uuid4()),
        "eventType": event,
        "publisherId": "tfs",
        "message": {"text": text, "html": text, "markdown": text},
        "detailedMessage": {"text": text, "html": text, "markdown": text},
        "resource": pull_json,
        "resourceVersion": "1.0",
        "resourceContainers": {
            "collection": {"id": collection},
            "account": {"id": collection},
            "project": {"id": repo.project_uuid},
        },
        "createdDate": iso(int(pr.closed_at or pr.updated_at)),
    }
