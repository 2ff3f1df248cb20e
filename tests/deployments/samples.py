"""Realistic registry notifications, written from the vendors' documented formats (REFERENCE.md section 7).

Each builder returns the JSON a registry sends for one push of `acme/podinfo`; keyword arguments change the
few fields a test is about.
"""

from __future__ import annotations

from typing import Any

DIGEST = "sha256:6a3f9d0c1b8e2d4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b"
OTHER_DIGEST = "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"

_USER = {
    "login": "acme",
    "id": 9919,
    "node_id": "MDEyOk9yZ2FuaXphdGlvbjk5MTk=",
    "avatar_url": "https://avatars.githubusercontent.com/u/9919?v=4",
    "gravatar_id": "",
    "url": "https://api.github.com/users/acme",
    "html_url": "https://github.com/acme",
    "followers_url": "https://api.github.com/users/acme/followers",
    "following_url": "https://api.github.com/users/acme/following{/other_user}",
    "gists_url": "https://api.github.com/users/acme/gists{/gist_id}",
    "starred_url": "https://api.github.com/users/acme/starred{/owner}{/repo}",
    "subscriptions_url": "https://api.github.com/users/acme/subscriptions",
    "organizations_url": "https://api.github.com/users/acme/orgs",
    "repos_url": "https://api.github.com/users/acme/repos",
    "events_url": "https://api.github.com/users/acme/events{/privacy}",
    "received_events_url": "https://api.github.com/users/acme/received_events",
    "type": "Organization",
    "site_admin": False,
}


def github_package(
    *,
    event: str = "registry_package",
    action: str = "published",
    tag: str = "1.2.3",
    digest: str = DIGEST,
    package_type: str = "CONTAINER",
    name: str = "podinfo",
    namespace: str = "acme",
) -> dict[str, Any]:
    """A `package` or `registry_package` delivery as GHCR sends it; `tag=""` is an untagged manifest."""
    return {
        "action": action,
        event: {
            "id": 2203651,
            "name": name,
            "namespace": namespace,
            "description": "",
            "ecosystem": "CONTAINER",
            "package_type": package_type,
            "html_url": f"https://github.com/orgs/{namespace}/packages/container/package/{name}",
            "created_at": "2024-05-02T09:12:41Z",
            "updated_at": "2024-05-02T09:12:41Z",
            "owner": _USER,
            "package_version": {
                "id": 211563914,
                "version": digest,
                "name": digest,
                "summary": "",
                "description": "",
                "body": "",
                "body_html": "",
                "html_url": f"https://github.com/orgs/{namespace}/packages/container/{name}/211563914",
                "metadata": [],
                "package_files": [],
                "installation_command": f"docker pull ghcr.io/{namespace}/{name}:{tag}",
                "package_url": f"ghcr.io/{namespace}/{name}:{tag}",
                "author": _USER,
                "created_at": "2024-05-02T09:12:41Z",
                "updated_at": "2024-05-02T09:12:41Z",
                "container_metadata": {
                    "tag": {"name": tag, "digest": digest},
                    "labels": {
                        "description": "",
                        "source": f"https://github.com/{namespace}/{name}",
                        "revision": "4fd3fd1d4e4b3c8f6d0d0d3e9b6a3c1a6c4e2b10",
                        "image_url": f"https://github.com/{namespace}/{name}",
                        "licenses": "Apache-2.0",
                        "all_labels": {
                            "org.opencontainers.image.source": f"https://github.com/{namespace}/{name}"
                        },
                    },
                    "manifest": {
                        "digest": digest,
                        "media_type": "application/vnd.oci.image.index.v1+json",
                        "uri": f"repositories/{namespace}/{name}/manifests/{digest}",
                        "size": 1609,
                    },
                },
            },
            "registry": {
                "about_url": "https://docs.github.com/packages/learn-github-packages/introduction-to-github-packages",
                "name": "GitHub CONTAINER registry",
                "type": "CONTAINER",
                # What real deliveries carry (tests/deployments/captured.py): not a host any image uses.
                "url": f"https://CONTAINER.pkg.github.com/{namespace}",
                "vendor": "GitHub Inc",
            },
        },
        "repository": {
            "id": 35129377,
            "node_id": "MDEwOlJlcG9zaXRvcnkzNTEyOTM3Nw==",
            "name": name,
            "full_name": f"{namespace}/{name}",
            "private": False,
            "owner": _USER,
        },
        "organization": {"login": namespace, "id": 9919},
        "sender": _USER,
    }


def github_ping() -> dict[str, Any]:
    return {
        "zen": "Design for failure.",
        "hook_id": 109948940,
        "hook": {
            "type": "Organization",
            "id": 109948940,
            "name": "web",
            "active": True,
            "events": ["package"],
        },
        "sender": _USER,
    }


def dockerhub(*, tag: str = "1.2.3", repo_name: str = "acme/podinfo") -> dict[str, Any]:
    namespace, _, name = repo_name.rpartition("/")
    return {
        "callback_url": "https://registry.hub.docker.com/u/acme/podinfo/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
        "push_data": {"pushed_at": 1714641161, "pusher": "acmebuild", "tag": tag},
        "repository": {
            "comment_count": 0,
            "date_created": 1714640000,
            "description": "",
            "dockerfile": "",
            "full_description": "",
            "is_official": False,
            "is_private": True,
            "is_trusted": False,
            "name": name,
            "namespace": namespace,
            "owner": namespace,
            "repo_name": repo_name,
            "repo_url": f"https://hub.docker.com/r/{repo_name}",
            "star_count": 0,
            "status": "Active",
        },
    }


def acr(
    *, action: str = "push", tag: str | None = "1.2.3", digest: str = DIGEST, repository: str = "acme/podinfo"
) -> dict[str, Any]:
    target: dict[str, Any] = {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "size": 1788,
        "digest": digest,
        "length": 1788,
        "repository": repository,
    }
    if tag is not None:
        target["tag"] = tag
    return {
        "id": "cb8c3971-9adc-488b-bdd8-43cbb4974ff5",
        "timestamp": "2024-05-02T09:12:41.343145347Z",
        "action": action,
        "target": target,
        "request": {
            "id": "3cbb6949-7549-4fa1-86cd-a6d5451dffc7",
            "host": "acmeregistry.azurecr.io",
            "method": "PUT",
            "useragent": "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.5.0 os/linux arch/amd64",
        },
    }


def harbor(
    *,
    kind: str = "PUSH_ARTIFACT",
    operator: str = "robot$acme+ci",
    resources: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "type": kind,
        "occur_at": 1714641161,
        "operator": operator,
        "event_data": {
            "resources": resources if resources is not None else [harbor_resource()],
            "repository": {
                "date_created": 1714640000,
                "name": "podinfo",
                "namespace": "acme",
                "repo_full_name": "acme/podinfo",
                "repo_type": "private",
            },
        },
    }


def harbor_resource(tag: str = "1.2.3", digest: str = DIGEST) -> dict[str, Any]:
    return {"digest": digest, "tag": tag, "resource_url": f"harbor.example.com/acme/podinfo:{tag}"}


def harbor_cloudevent(*, operator: str = "robot$acme+ci", tag: str = "1.2.3") -> dict[str, Any]:
    default = harbor(resources=[harbor_resource(tag)])
    return {
        "specversion": "1.0",
        "requestid": "e4ab5df7-54d0-4d86-8a5a-3f5a16d8e4a1",
        "id": "fd2b8b8b-1a70-4a3a-9f0f-b36e2ec8d1f0",
        "source": "/projects/2/webhook/policies/3",
        "type": "harbor.artifact.pushed",
        "datacontenttype": "application/json",
        "time": "2024-05-02T09:12:41Z",
        "data": default["event_data"],
        "operator": operator,
    }


def quay(*, tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": "podinfo",
        "repository": "acme/podinfo",
        "namespace": "acme",
        "docker_url": "quay.io/acme/podinfo",
        "homepage": "https://quay.io/repository/acme/podinfo",
        "updated_tags": tags if tags is not None else ["1.2.3"],
    }


def distribution_event(
    *,
    action: str = "push",
    media_type: str = "application/vnd.oci.image.index.v1+json",
    tag: str | None = "1.2.3",
    digest: str = DIGEST,
    event_id: str = "asdf-asdf-asdf-asdf-0",
) -> dict[str, Any]:
    target: dict[str, Any] = {
        "mediaType": media_type,
        "size": 1609,
        "digest": digest,
        "length": 1609,
        "repository": "acme/podinfo",
        "url": f"https://registry.example.com:5000/v2/acme/podinfo/manifests/{digest}",
    }
    if tag is not None:
        target["tag"] = tag
    return {
        "id": event_id,
        "timestamp": "2024-05-02T09:12:41.343145347Z",
        "action": action,
        "target": target,
        "request": {
            "id": "8f5d1c0e-3d35-4b85-9c4a-1b0d5e5c1f2a",
            "addr": "10.0.0.7:51234",
            "host": "registry.example.com:5000",
            "method": "PUT",
            "useragent": "containerd/1.7.13",
        },
        "actor": {"name": "ci"},
        "source": {"addr": "registry-0:5000", "instanceID": "d4f2b1c0-9a8e-4f7d-b6c5-a4b3c2d1e0f9"},
    }


def distribution(*events: dict[str, Any]) -> dict[str, Any]:
    return {"events": list(events) if events else [distribution_event()]}


def generic(*, repository: str = "registry.example.com/acme/podinfo", tag: str = "1.2.3") -> dict[str, Any]:
    return {"repository": repository, "tag": tag, "digest": DIGEST}
