"""The demo repository of the acceptance story, created idempotently.

`acme/gitops` on the GitHub personality and `acme/gitops/_git/gitops` (organization `acme`, project
`gitops`, repository `gitops`) on the Azure DevOps personality, each with `gitops-promotion.yaml`
(prflow per-app; dev and qa auto, prod manual), `apps/{dev,qa,prod}/podinfo.yaml` carrying a setter
marker, and `main` protected with the required status `promoter`. Re-running leaves existing content as it
is and only re-asserts the protection.
"""

from __future__ import annotations

from sandbox.forge import Forge, Repository

DEMO_OWNER = "acme"
DEMO_NAME = "gitops"
DEMO_PROJECT = "gitops"
REQUIRED_CONTEXT = "promoter"
DEMO_TAG = "6.5.0"

CONFIG = """\
# Environments in promotion order; a release walks dev -> qa -> prod.
prflow: per-app
status_timeout_minutes: 5
environments:
  - name: dev
    auto: true
  - name: qa
    auto: true
  - name: prod
    auto: false
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: apps
  labels:
    environment: {env}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
    spec:
      containers:
        - name: podinfo
          image: ghcr.io/acme/podinfo:{tag} # {{"$imagepolicy": "apps:podinfo"}}
          ports:
            - containerPort: 9898
"""


def demo_files() -> dict[str, bytes]:
    files = {"gitops-promotion.yaml": CONFIG.encode()}
    for env in ("dev", "qa", "prod"):
        files[f"apps/{env}/podinfo.yaml"] = DEPLOYMENT.format(env=env, tag=DEMO_TAG).encode()
    return files


def seed_demo(forge: Forge) -> list[Repository]:
    """Create (or find) both demo repositories; returns [GitHub repository, Azure DevOps repository]."""
    repos = [
        forge.create_repo("github", DEMO_OWNER, DEMO_NAME, exist_ok=True),
        forge.create_repo("azure", DEMO_OWNER, DEMO_NAME, DEMO_PROJECT, exist_ok=True),
    ]
    for repo in repos:
        if repo.default_branch not in repo.branches:
            forge.commit_files(repo, repo.default_branch, demo_files(), "Seed the demo GitOps repository")
        if repo.protection.get(repo.default_branch) != [REQUIRED_CONTEXT]:
            forge.protect(repo, repo.default_branch, [REQUIRED_CONTEXT])
    return repos
