"""A bump as a git edit: rewrite one environment's markers in a commit read from the cached clone."""

from __future__ import annotations

from promoter.errors import ManifestError
from promoter.manifests import plan_rewrite, policies
from promoter.names import check_release
from promoter.workspace import Edit, Snapshot


def bump_edit(group: str, app: str, env: str, tag: str, digest: str | None = None) -> Edit:
    """An `Edit` for `Workspace.publish` that points `group:app` in `<group>/<env>/` at `tag`."""
    check_release(group, app, env, tag, digest)
    directory = f"{group}/{env}"

    def edit(snapshot: Snapshot) -> dict[str, bytes]:
        if not snapshot.is_dir(directory):
            raise ManifestError(
                f"{directory}/ does not exist on the base branch; each group needs one directory per environment"
            )
        candidates = snapshot.index(directory, policies).get(f"{group}:{app}", [])
        plan = plan_rewrite(snapshot.read(candidates), group, app, env, tag, digest)
        return {path: text.encode("utf-8") for path, text in plan.updates.items()}

    return edit
