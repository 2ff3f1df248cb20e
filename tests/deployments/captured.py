"""Real registry notifications, each copied from the public source named in the comment above it.

`samples.py` builds payloads from the documented formats for the tests that vary one field; these are what
senders were seen to send (captured deliveries kept as test fixtures, or the vendor's own documented
example), so that a parser is held to reality and not to our reading of a format. Where a sample was trimmed
(long user objects, URL templates) or completed, the comment says what changed.
"""

from __future__ import annotations

import base64
import json
from typing import Any

# -- GitHub Packages (GHCR) ---------------------------------------------------------------------------

# A captured `package` / `published` delivery for ghcr.io/theryangeary/www:0e2a89b, kept as the test fixture
# of a webhook receiver: github.com/theryangeary/homelab, image_update_webhook/src/main.rs
# (test_form_deserialization). Note `registry.url`: https://CONTAINER.pkg.github.com/<owner>.
# Trimmed: the owner/author/sender user objects and the repository object keep their identifying fields only.
_RYAN = {"login": "theryangeary", "id": 7076013, "node_id": "MDQ6VXNlcjcwNzYwMTM=", "type": "User"}
GHCR_PACKAGE_PUBLISHED: dict[str, Any] = {
    "action": "published",
    "package": {
        "id": 9056324,
        "name": "www",
        "namespace": "theryangeary",
        "description": "",
        "ecosystem": "CONTAINER",
        "package_type": "CONTAINER",
        "html_url": "https://github.com/theryangeary/packages/9056324",
        "created_at": "2025-09-19T19:21:05Z",
        "updated_at": "2025-11-03T13:50:26Z",
        "owner": _RYAN,
        "package_version": {
            "id": 564296960,
            "version": "sha256:89160c587d0c36bf54090497a465445c14980ba48efbcf3b0d03c49b76f3feb8",
            "name": "sha256:89160c587d0c36bf54090497a465445c14980ba48efbcf3b0d03c49b76f3feb8",
            "description": "",
            "summary": "",
            "manifest": "",
            "html_url": "https://github.com/users/theryangeary/packages/container/www/564296960",
            "target_commitish": "main",
            "target_oid": "0e2a89b191332bb87b4f2fefef2f597eba2197b3",
            "created_at": "0001-01-01T00:00:00Z",
            "updated_at": "0001-01-01T00:00:00Z",
            "metadata": [],
            "container_metadata": {
                "tag": {
                    "name": "0e2a89b",
                    "digest": "sha256:89160c587d0c36bf54090497a465445c14980ba48efbcf3b0d03c49b76f3feb8",
                },
                "labels": {
                    "description": "",
                    "source": "",
                    "revision": "",
                    "image_url": "",
                    "licenses": "",
                    "all_labels": {
                        "github.internal.platforms": '[{"digest":"sha256:e312a84da724b2de60d64c3241b69e6c89c3ce7ec82e55cd9793ddc1978008c1","architecture":"amd64","os":"linux"},{"digest":"sha256:184b604b46eb2c6a21d80f89471a3f562dd42a8c9d1ba45021bc9f3a4b10f0e9","architecture":"arm64","os":"linux"}]'
                    },
                },
                "manifest": {
                    "digest": "sha256:89160c587d0c36bf54090497a465445c14980ba48efbcf3b0d03c49b76f3feb8",
                    "media_type": "application/vnd.docker.distribution.manifest.list.v2+json",
                    "uri": "repositories/theryangeary/www/manifests/sha256:89160c587d0c36bf54090497a465445c14980ba48efbcf3b0d03c49b76f3feb8",
                    "size": 685,
                    "config": {"digest": "", "media_type": "", "size": 0},
                    "layers": [],
                },
            },
            "package_files": [],
            "author": _RYAN,
            "installation_command": "docker pull ghcr.io/theryangeary/www:0e2a89b",
            "package_url": "ghcr.io/theryangeary/www:0e2a89b",
        },
        "registry": {
            "about_url": "https://docs.github.com/packages/learn-github-packages/introduction-to-github-packages",
            "name": "GitHub CONTAINER registry",
            "type": "CONTAINER",
            "url": "https://CONTAINER.pkg.github.com/theryangeary",
            "vendor": "GitHub Inc",
        },
    },
    "repository": {
        "id": 1060841726,
        "node_id": "R_kgDOPzso_g",
        "name": "www",
        "full_name": "theryangeary/www",
        "private": False,
        "owner": _RYAN,
    },
    "sender": _RYAN,
}
GHCR_REPOSITORY = "ghcr.io/theryangeary/www"
GHCR_TAG = "0e2a89b"
GHCR_DIGEST = "sha256:89160c587d0c36bf54090497a465445c14980ba48efbcf3b0d03c49b76f3feb8"

# GitHub's own example of `registry_package` / `published`: github.com/octokit/webhooks,
# payload-examples/api.github.com/registry_package/published.docker.payload.json. An untagged manifest
# (tag name ""), `package_type` "npm" beside `ecosystem` "docker", and the same CONTAINER.pkg.github.com URL.
# Its digest has 40 hex digits, as printed there. Trimmed: `package_version.body` (a repository object),
# the user objects, and the layer list of the manifest.
_CODERTOCAT = {"login": "Codertocat", "id": 21031067, "node_id": "MDQ6VXNlcjIxMDMxMDY3", "type": "User"}
OCTOKIT_REGISTRY_PACKAGE_PUBLISHED: dict[str, Any] = {
    "action": "published",
    "registry_package": {
        "id": 10696,
        "name": "hello-world-npm",
        "namespace": "Codertocat/hello-world",
        "description": None,
        "ecosystem": "docker",
        "package_type": "npm",
        "html_url": "https://github.com/Codertocat/hello-world/packages/10696",
        "created_at": "2019-05-09T23:28:29Z",
        "updated_at": "2019-05-09T23:28:29Z",
        "owner": _CODERTOCAT,
        "package_version": {
            "id": 57755791,
            "version": "sha256:3da1996a8115d7616457760d9920b815241d0a03b34cf5f04e9a0e9d8de37498",
            "name": "sha256:3da1996a8115d7616457760d9920b815241d0a03b34cf5f04e9a0e9d8de37498",
            "description": "Hello-World in a docker container",
            "summary": "Hello-World in a docker container",
            "manifest": "",
            "html_url": "https://github.com/orgs/Codertocat/packages/container/hello-world/57755791",
            "target_commitish": "master",
            "target_oid": "3da1996a8115d7616457760d9920b815241d0a03b34cf5f04e9a0e9d8de37498",
            "created_at": "0001-01-01T00:00:00Z",
            "updated_at": "0001-01-01T00:00:00Z",
            "metadata": [],
            "container_metadata": {
                "tag": {"name": "", "digest": "sha256:6c62fb45fe66bfb1ea9a66abc38f6a0cc974292b"},
                "manifest": {
                    "digest": "sha256:6c62fb45fe66bfb1ea9a66abc38f6a0cc974292b",
                    "media_type": "application/vnd.docker.distribution.manifest.v2+json",
                    "uri": "repositories/Codertocat/hello-world/manifests/sha256:6c62fb45fe66bfb1ea9a66abc38f6a0cc974292b",
                    "size": 1782,
                },
            },
            "package_files": [],
            "installation_command": "docker pull ghcr.io/Codertocat/hello-world:",
            "package_url": "ghcr.io/Codertocat/hello-world:",
        },
        "registry": {
            "about_url": "https://docs.github.com/packages/learn-github-packages/introduction-to-github-packages",
            "name": "GitHub CONTAINER registry",
            "type": "CONTAINER",
            "url": "https://CONTAINER.pkg.github.com/Codertocat",
            "vendor": "GitHub Inc",
        },
    },
    "repository": {"id": 185882436, "name": "hello-world-npm", "full_name": "Codertocat/hello-world-npm"},
    "sender": _CODERTOCAT,
}

# -- Docker Hub --------------------------------------------------------------------------------------

# Docker's documented example payload: https://docs.docker.com/docker-hub/repos/manage/webhooks/
# ("Example webhook payload"). Trimmed: the `dockerfile` and `full_description` texts.
DOCKERHUB_DOCUMENTED: dict[str, Any] = {
    "callback_url": "https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
    "push_data": {"pushed_at": 1417566161, "pusher": "trustedbuilder", "tag": "latest"},
    "repository": {
        "comment_count": 0,
        "date_created": 1417494799,
        "description": "",
        "dockerfile": "#\n# BUILD\t\tdocker build -t svendowideit/apt-cacher .\n",
        "full_description": "Docker Hub based automated build from a GitHub repo",
        "is_official": False,
        "is_private": True,
        "is_trusted": True,
        "name": "testhook",
        "namespace": "svendowideit",
        "owner": "svendowideit",
        "repo_name": "svendowideit/testhook",
        "repo_url": "https://registry.hub.docker.com/u/svendowideit/testhook/",
        "star_count": 0,
        "status": "Active",
    },
}

# -- Quay --------------------------------------------------------------------------------------------

# Quay's documented `repo_push` notification data:
# https://docs.quay.io/guides/notifications.html ("Repository Push"). No digest, no time, no delivery id.
QUAY_DOCUMENTED: dict[str, Any] = {
    "name": "repository",
    "repository": "mynamespace/repository",
    "namespace": "mynamespace",
    "docker_url": "quay.io/mynamespace/repository",
    "homepage": "https://quay.io/repository/mynamespace/repository",
    "updated_tags": ["latest"],
}

# -- CNCF distribution and GitLab --------------------------------------------------------------------

# distribution's documented example event, in the envelope it documents:
# https://distribution.github.io/distribution/about/notifications/ ("Events", "Envelope"). GitLab's
# registry is this code (gitlab-org/container-registry); GitLab's own receiver takes the same envelope
# with the same media type and an `Authorization` header from the registry's `notifications.endpoints`
# config: github.com/gitlabhq/gitlabhq, lib/api/container_registry_event.rb and
# spec/requests/api/container_registry_event_spec.rb, and
# https://docs.gitlab.com/administration/packages/container_registry/#configure-container-registry-notifications
DISTRIBUTION_DOCUMENTED_EVENT: dict[str, Any] = {
    "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7",
    "timestamp": "2016-03-09T14:44:26.402973972-08:00",
    "action": "pull",
    "target": {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "size": 708,
        "digest": "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
        "length": 708,
        "repository": "hello-world",
        "url": "http://192.168.100.227:5000/v2/hello-world/manifests/sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
        "tag": "latest",
    },
    "request": {
        "id": "6df24a34-0959-4923-81ca-14f09767db19",
        "addr": "192.168.64.11:42961",
        "host": "192.168.100.227:5000",
        "method": "GET",
        "useragent": "curl/7.38.0",
    },
    "actor": {},
    "source": {"addr": "xtal.local:5000", "instanceID": "a53db899-3b4b-4a62-a067-8dd013beaca4"},
}
# The same event as the push of that manifest (action `push`, method PUT): what GitLab's registry sends.
DISTRIBUTION_DOCUMENTED_PUSH: dict[str, Any] = {
    **DISTRIBUTION_DOCUMENTED_EVENT,
    "action": "push",
    "request": {**DISTRIBUTION_DOCUMENTED_EVENT["request"], "method": "PUT"},
}
DISTRIBUTION_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"

# -- Google Artifact Registry (Pub/Sub push) ---------------------------------------------------------

# A captured Artifact Registry/Container Registry message from the `gcr` topic, kept in a comment of the
# subscriber of github.com/freshly/tuber (Go package github.com/freshly/tuber/pkg/pubsub). Its shape is
# Google's: https://cloud.google.com/artifact-registry/docs/configure-notifications ("action" INSERT or
# DELETE, "digest" and "tag" as full references).
GAR_MESSAGE: dict[str, Any] = {
    "action": "INSERT",
    "digest": "gcr.io/freshly-docker/freshly@sha256:17f4431497a07da98bc16e599ef9d38afb9817049b6e98b71b7e321b946a24d4",
    "tag": "gcr.io/freshly-docker/freshly:PIG-267-refactor-email-service",
}
GAR_REPOSITORY = "gcr.io/freshly-docker/freshly"
GAR_TAG = "PIG-267-refactor-email-service"
GAR_DIGEST = "sha256:17f4431497a07da98bc16e599ef9d38afb9817049b6e98b71b7e321b946a24d4"


def pubsub_push(message: dict[str, Any], message_id: str = "2070443601311540") -> dict[str, Any]:
    """`message` as a Pub/Sub push subscription delivers it: Google's documented push envelope,
    https://cloud.google.com/pubsub/docs/push ("Receive messages": the JSON body of a push request),
    with its `data` (base64) replaced by `message`."""
    data = base64.b64encode(json.dumps(message).encode()).decode()
    return {
        "message": {
            "attributes": {"key": "value"},
            "data": data,
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": "2021-02-26T19:13:55.749Z",
            "publish_time": "2021-02-26T19:13:55.749Z",
        },
        "subscription": "projects/myproject/subscriptions/mysubscription",
    }


# -- AWS ECR through EventBridge ---------------------------------------------------------------------

# AWS's documented "Event for a completed image push":
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html
# As printed there, its digest has 60 hex digits, four short of a sha256.
ECR_DOCUMENTED_PUSH: dict[str, Any] = {
    "version": "0",
    "id": "13cde686-328b-6117-af20-0e5566167482",
    "detail-type": "ECR Image Action",
    "source": "aws.ecr",
    "account": "123456789012",
    "time": "2019-11-16T01:54:34Z",
    "region": "us-west-2",
    "resources": [],
    "detail": {
        "result": "SUCCESS",
        "repository-name": "my-repository-name",
        "image-digest": "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
        "action-type": "PUSH",
        "image-tag": "latest",
    },
}
# The documented push with its digest completed to the 64 hex digits a real push carries.
ECR_DIGEST = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678"
ECR_PUSH: dict[str, Any] = {
    **ECR_DOCUMENTED_PUSH,
    "detail": {**ECR_DOCUMENTED_PUSH["detail"], "image-digest": ECR_DIGEST},
}
ECR_REPOSITORY = "123456789012.dkr.ecr.us-west-2.amazonaws.com/my-repository-name"

# -- CDEvents ----------------------------------------------------------------------------------------

# Harbor's CDEvents format, a structured CloudEvent whose data is `dev.cdevents.artifact.published`, as the
# comment of its formatter prints it: github.com/goharbor/harbor, src/pkg/notifier/formats/cdevents.go.
# The purl's repository_url holds Harbor's whole resource URL, tag and digest included.
HARBOR_CDEVENT: dict[str, Any] = {
    "specversion": "1.0",
    "requestid": "2eedfab8-61d3-4f3c-8ec3-8f82d1ec4c84",
    "id": "4b2f89a6-548d-4c12-9993-a1f5790b97d2",
    "source": "/projects/1/webhook/policies/3",
    "type": "harbor.artifact.pushed",
    "datacontenttype": "application/json",
    "time": "2023-03-06T06:08:43Z",
    "data": {
        "context": {
            "version": "0.3.0",
            "id": "2d47734c-83e2-41dc-bcbf-23bd2a3734a2",
            "source": "/projects/1/webhook/policies/3",
            "type": "dev.cdevents.artifact.published.0.1.1",
            "timestamp": "2023-03-06T00:08:43-06:00",
        },
        "subject": {
            "id": "pkg:oci/busybox@sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c?repository_url=harbor.dev%2Flibrary%2Fbusybox:v1.0@sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c&tag=v1.0",
            "source": "/projects/1/webhook/policies/3",
            "type": "artifact",
            "content": {},
        },
        "customData": {
            "resources": [
                {
                    "digest": "sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c",
                    "tag": "v1.0",
                    "resource_url": "harbor.dev/library/busybox:v1.0@sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c",
                }
            ],
            "repository": {
                "date_created": 1677053165,
                "name": "busybox",
                "namespace": "library",
                "repo_full_name": "library/busybox",
                "repo_type": "public",
            },
        },
        "customDataContentType": "application/json",
    },
    "operator": "robot$library+scanner-Trivy-51fe4548-bbe5-11ed-9217-0242ac14000d",
}
HARBOR_CDEVENT_DIGEST = "sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c"

# The CDEvents specification's own example: github.com/cdevents/spec, examples/artifact_published.json.
# A Go module, not an OCI image.
CDEVENTS_SPEC_EXAMPLE: dict[str, Any] = {
    "context": {
        "version": "0.2.0",
        "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
        "source": "/event/source/123",
        "type": "dev.cdevents.artifact.published.0.1.1",
        "timestamp": "2023-03-20T14:27:05.315384Z",
    },
    "subject": {
        "id": "pkg:golang/mygit.com/myorg/myapp@234fd47e07d1004f0aed9c",
        "source": "/event/source/123",
        "type": "artifact",
        "content": {},
    },
}

# -- Nexus Repository --------------------------------------------------------------------------------

# Sonatype's documented headers and repository asset payload:
# https://help.sonatype.com/en/example-headers-and-payloads.html
NEXUS_DOCUMENTED_HEADERS = {
    "X-Request-Id": "d535c62b-063e-4ace-90ce-f7b579d6c37c",
    "User-Agent": "Nexus/3.1.0-SNAPSHOT (PRO; Mac OS X; 10.11.1; x86_64; 1.8.0_60)",
    "X-Nexus-Webhook-Id": "rm:repository:asset",
    "X-Nexus-Webhook-Delivery": "7f4a6dde-5c68-4999-bcc0-a62f3fb8ae48",
}
NEXUS_DOCUMENTED_ASSET: dict[str, Any] = {
    "timestamp": "2016-11-10T23:57:49.664+0000",
    "nodeId": "52905B51-085CCABB-CEBBEAAD-16795588-FC927D93",
    "initiator": "admin/127.0.0.1",
    "repositoryName": "npm-proxy",
    "action": "CREATED",
    "asset": {
        "id": "31c950c8eeeab78336308177ae9c441c",
        "assetId": "bnBtLXByb3h5OjMxYzk1MGM4ZWVlYWI3ODMzNjMwODE3N2FlOWM0NDFj",
        "format": "npm",
        "name": "concrete",
    },
}
# The documented `rm:repository:component` payload's shape (same page, "Repository Component Payload")
# for a docker-format repository: a docker component's `name` is the image and its `version` the tag, as
# Nexus' component REST listing shows them and as github.com/argoproj-labs/argocd-image-updater,
# pkg/webhook/nexus.go, reads them. The values are ours.
NEXUS_DOCKER_COMPONENT: dict[str, Any] = {
    "timestamp": "2016-11-14T19:32:13.515+0000",
    "nodeId": "7FFA7361-6ED33978-36997BD4-47095CC4-331356BE",
    "initiator": "ci/10.0.0.7",
    "repositoryName": "docker-hosted",
    "action": "CREATED",
    "component": {
        "id": "08909bf0c86cf6c9600aade89e1c5e25",
        "componentId": "ZG9ja2VyLWhvc3RlZDo2ZGZkYTBhODQzZjQyMDFkN2M4MzE3MzFiMjYwOWFlZQ",
        "format": "docker",
        "name": "acme/podinfo",
        "group": None,
        "version": "1.2.3",
    },
}
NEXUS_COMPONENT_HEADERS = {**NEXUS_DOCUMENTED_HEADERS, "X-Nexus-Webhook-Id": "rm:repository:component"}
