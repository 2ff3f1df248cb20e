from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from promoter.config import load_config
from promoter.release import Release, resolve_apps

DIGEST = "sha256:" + "c" * 64


def test_release_checks_every_part() -> None:
    release = Release(image="ghcr.io/acme/podinfo", tag="a8b91c33", digest=DIGEST)
    assert str(release) == f"ghcr.io/acme/podinfo:a8b91c33@{DIGEST}"
    for bad in [
        {"image": "ghcr.io/acme/podinfo", "tag": "../../x"},
        {"image": "ghcr.io/ACME/podinfo", "tag": "1"},
        {"image": "ghcr.io/acme/podinfo", "tag": "1", "digest": "md5:00"},
        {"image": "/etc/passwd", "tag": "1"},
    ]:
        with pytest.raises(ValidationError):
            Release.model_validate(bad)


def test_image_resolves_to_the_apps_whose_markers_use_it(gitops_tree: Path) -> None:
    config = load_config(gitops_tree)
    assert resolve_apps(gitops_tree, config, "ghcr.io/acme/podinfo") == [("apps", "podinfo")]
    assert resolve_apps(gitops_tree, config, "ghcr.io/acme/frontend") == [("apps", "frontend")]
    assert resolve_apps(gitops_tree, config, "ghcr.io/acme/unused") == []


def test_one_image_can_feed_apps_in_several_groups_through_any_marker_form(gitops_tree: Path) -> None:
    (gitops_tree / "edge/qa").mkdir(parents=True)
    (gitops_tree / "edge/qa/kustomization.yaml").write_text(
        "images:\n"
        "  - name: podinfo\n"
        "    newName: ghcr.io/acme/podinfo\n"
        '    newTag: "1" # {"$imagepolicy": "edge:proxy:tag"}\n'
    )
    (gitops_tree / "hub/dev").mkdir(parents=True)
    (gitops_tree / "hub/dev/nginx.yaml").write_text('image: nginx:1.25 # {"$imagepolicy": "hub:nginx"}\n')
    config = load_config(gitops_tree)
    assert resolve_apps(gitops_tree, config, "ghcr.io/acme/podinfo") == [
        ("apps", "podinfo"),
        ("edge", "proxy"),
    ]
    assert resolve_apps(gitops_tree, config, "docker.io/library/nginx") == [("hub", "nginx")]
