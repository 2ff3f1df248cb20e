"""A GitOps repository laid out as gitops-promotion expects, for the demo, the tests and the benchmarks.

`<group>/<env>/<app>.yaml` holds a Deployment whose image line carries a whole-value setter marker, and
`gitops-promotion.yaml` lists the environments.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_ENVIRONMENTS = (("dev", True), ("qa", True), ("prod", False))

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  namespace: {group}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {app}
  template:
    metadata:
      labels:
        app: {app}
    spec:
      containers:
        - name: {app}
          image: {registry}/{app}:{tag} # {{"$imagepolicy": "{group}:{app}"}}
          ports:
            - containerPort: 9898
"""


def config_text(
    environments: tuple[tuple[str, bool], ...] = DEFAULT_ENVIRONMENTS, prflow: str = "per-app"
) -> str:
    lines = [f"prflow: {prflow}", "status_timeout_minutes: 5", "environments:"]
    for name, auto in environments:
        lines += [f"  - name: {name}", f"    auto: {'true' if auto else 'false'}"]
    return "\n".join(lines) + "\n"


def write_gitops_tree(
    root: Path,
    apps: dict[str, list[str]],
    *,
    environments: tuple[tuple[str, bool], ...] = DEFAULT_ENVIRONMENTS,
    prflow: str = "per-app",
    registry: str = "ghcr.io/acme",
    tag: str = "6.5.0",
) -> list[Path]:
    """Write the config and one manifest per group, environment and app; return the files written."""
    root.mkdir(parents=True, exist_ok=True)
    written = [root / "gitops-promotion.yaml"]
    written[0].write_text(config_text(environments, prflow))
    for group, names in apps.items():
        for env, _ in environments:
            directory = root / group / env
            directory.mkdir(parents=True, exist_ok=True)
            for app in names:
                path = directory / f"{app}.yaml"
                path.write_text(DEPLOYMENT.format(group=group, app=app, registry=registry, tag=tag))
                written.append(path)
    return written
