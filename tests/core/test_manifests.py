from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from promoter.errors import InvalidInputError, ManifestError
from promoter.manifests import find_markers, rewrite_environment, rewrite_text
from promoter.names import TAG
from tests.helpers import snapshot

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


def test_whole_value_marker_keeps_registry_and_swaps_tag() -> None:
    text = 'image: ghcr.io/acme/podinfo:6.5.0 # {"$imagepolicy": "apps:podinfo"}\n'
    new, count = rewrite_text(text, "apps", "podinfo", "a8b91c33")
    assert count == 1
    assert new == 'image: ghcr.io/acme/podinfo:a8b91c33 # {"$imagepolicy": "apps:podinfo"}\n'


def test_registry_with_port_and_digest_pin_are_rewritten_together() -> None:
    text = f'image: registry:5000/name:1.0@{DIGEST_A} # {{"$imagepolicy": "apps:podinfo"}}\n'
    new, _ = rewrite_text(text, "apps", "podinfo", "2.0", DIGEST_B)
    assert new == f'image: registry:5000/name:2.0@{DIGEST_B} # {{"$imagepolicy": "apps:podinfo"}}\n'


def test_digest_pin_without_a_new_digest_is_refused_rather_than_left_stale() -> None:
    text = f'image: ghcr.io/a/b:1.0@{DIGEST_A} # {{"$imagepolicy": "apps:b"}}\n'
    with pytest.raises(ManifestError, match=r"<text>:1: .*pins a digest; give the release's digest"):
        rewrite_text(text, "apps", "b", "2.0")


def test_tag_name_and_digest_markers_of_a_kustomize_images_entry() -> None:
    text = (
        "images:\n"
        "  - name: podinfo\n"
        '    newName: ghcr.io/acme/podinfo # {"$imagepolicy": "apps:podinfo:name"}\n'
        '    newTag: "6.5.0" # {"$imagepolicy": "apps:podinfo:tag"}\n'
        f'    digest: {DIGEST_A} # {{"$imagepolicy": "apps:podinfo:digest"}}\n'
    )
    new, count = rewrite_text(text, "apps", "podinfo", "7.0.0", DIGEST_B)
    assert count == 2
    assert changed_lines(text, new) == [
        (
            '    newTag: "6.5.0" # {"$imagepolicy": "apps:podinfo:tag"}\n',
            '    newTag: "7.0.0" # {"$imagepolicy": "apps:podinfo:tag"}\n',
        ),
        (
            f'    digest: {DIGEST_A} # {{"$imagepolicy": "apps:podinfo:digest"}}\n',
            f'    digest: {DIGEST_B} # {{"$imagepolicy": "apps:podinfo:digest"}}\n',
        ),
    ]
    markers = find_markers(new)
    assert {m.repository for m in markers} == {"ghcr.io/acme/podinfo"}  # siblings name the image


def test_tag_marker_on_a_full_image_reference_replaces_only_the_tag() -> None:
    # gitops-promotion's README puts `:tag` markers on whole image lines; keep the image name there.
    text = 'image: ghcr.io/my-org/webui:1234567 # {"$imagepolicy": "webshop:webui:tag"}\n'
    new, _ = rewrite_text(text, "webshop", "webui", "26f50d84db02")
    assert new == 'image: ghcr.io/my-org/webui:26f50d84db02 # {"$imagepolicy": "webshop:webui:tag"}\n'


@pytest.mark.parametrize(
    ("line", "tag", "expected"),
    [
        ('tag: "1.0" # {"$imagepolicy": "g:a:tag"}', "1.10", 'tag: "1.10" # {"$imagepolicy": "g:a:tag"}'),
        ('tag: \'1.0\' # {"$imagepolicy": "g:a:tag"}', "2", 'tag: \'2\' # {"$imagepolicy": "g:a:tag"}'),
        ('tag: v1 # {"$imagepolicy": "g:a:tag"}', "1.10", 'tag: "1.10" # {"$imagepolicy": "g:a:tag"}'),
        (
            'tag: v1 # {"$imagepolicy": "g:a:tag"}',
            "20231001",
            'tag: "20231001" # {"$imagepolicy": "g:a:tag"}',
        ),
        ('tag: v1 # {"$imagepolicy": "g:a:tag"}', "true", 'tag: "true" # {"$imagepolicy": "g:a:tag"}'),
        ('tag: v1 # {"$imagepolicy": "g:a:tag"}', "1e3", 'tag: "1e3" # {"$imagepolicy": "g:a:tag"}'),
        ('tag: v1 # {"$imagepolicy": "g:a:tag"}', "v2", 'tag: v2 # {"$imagepolicy": "g:a:tag"}'),
        ('tag: 1.0    #   {"$imagepolicy":"g:a:tag"}', "v2", 'tag: v2    #   {"$imagepolicy":"g:a:tag"}'),
    ],
)
def test_quoting_is_kept_and_numeric_looking_tags_stay_strings(line: str, tag: str, expected: str) -> None:
    new, _ = rewrite_text(line + "\n", "g", "a", tag)
    assert new == expected + "\n"
    import yaml

    assert yaml.safe_load(new)["tag"] == tag


def test_every_other_byte_is_kept_crlf_comments_and_documents() -> None:
    text = (
        "# leading comment\r\n"
        "apiVersion: v1   # trailing\r\n"
        "---\r\n"
        "spec:\r\n"
        "    containers:\r\n"
        "    -   name: x\r\n"
        '        image: "ghcr.io/acme/podinfo:6.5.0"   # {"$imagepolicy": "apps:podinfo"}\r\n'
        '    -   image: ghcr.io/acme/other:1 # {"$imagepolicy": "apps:other"}\r\n'
        "---\r\n"
        "kind: ConfigMap\r\n"
    )
    new, _ = rewrite_text(text, "apps", "podinfo", "cc2b7e0a")
    assert changed_lines(text, new) == [
        (
            '        image: "ghcr.io/acme/podinfo:6.5.0"   # {"$imagepolicy": "apps:podinfo"}\r\n',
            '        image: "ghcr.io/acme/podinfo:cc2b7e0a"   # {"$imagepolicy": "apps:podinfo"}\r\n',
        ),
    ]


def test_commented_out_marker_lines_and_other_apps_are_left_alone() -> None:
    text = (
        '# image: ghcr.io/acme/podinfo:1 # {"$imagepolicy": "apps:podinfo"}\n'
        'image: ghcr.io/acme/podinfo:1 # {"$imagepolicy": "apps:podinfo-canary"}\n'
    )
    new, count = rewrite_text(text, "apps", "podinfo", "2")
    assert (new, count) == (text, 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('image: # {"$imagepolicy": "apps:podinfo"}\n  repository: x\n', "not a single scalar"),
        ('image: [a, b] # {"$imagepolicy": "apps:podinfo"}\n', "non-scalar value"),
        ('image: {a: b} # {"$imagepolicy": "apps:podinfo"}\n', "non-scalar value"),
        ('image: "" # {"$imagepolicy": "apps:podinfo"}\n', "empty value"),
        ('image: not a:valid: ref # {"$imagepolicy": "apps:podinfo"}\n', "fix the YAML"),
        ('image: UPPER CASE # {"$imagepolicy": "apps:podinfo"}\n', "not an image reference"),
        ('a: [\nimage: x:1 # {"$imagepolicy": "apps:podinfo"}\n', "fix the YAML"),
        ('digest: x # {"$imagepolicy": "apps:podinfo:digest"}\n', "give the release's digest"),
    ],
)
def test_bad_markers_and_yaml_are_errors_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        rewrite_text(text, "apps", "podinfo", "2")


# -- a whole environment on disk ---------------------------------------------------------------------


def test_rewrite_environment_touches_only_that_environment(gitops_tree: Path) -> None:
    before = snapshot(gitops_tree)
    result = rewrite_environment(gitops_tree, "apps", "podinfo", "dev", "a8b91c33")
    after = snapshot(gitops_tree)
    assert result.written == ["apps/dev/podinfo.yaml"]
    assert result.markers == 1
    assert {k for k in before if before[k] != after[k]} == {"apps/dev/podinfo.yaml"}
    assert b"ghcr.io/acme/podinfo:a8b91c33" in after["apps/dev/podinfo.yaml"]


def test_rewrite_to_the_current_tag_writes_nothing(gitops_tree: Path) -> None:
    before = os.stat(gitops_tree / "apps/dev/podinfo.yaml").st_mtime_ns
    result = rewrite_environment(gitops_tree, "apps", "podinfo", "dev", "6.5.0")
    assert result.written == [] and result.markers == 1
    assert os.stat(gitops_tree / "apps/dev/podinfo.yaml").st_mtime_ns == before


def test_nested_directories_are_searched_and_file_mode_kept(gitops_tree: Path) -> None:
    nested = gitops_tree / "apps/dev/overlays/eu"
    nested.mkdir(parents=True)
    (nested / "kustomization.yml").write_text(
        'images:\n  - name: x\n    newTag: "1" # {"$imagepolicy": "apps:podinfo:tag"}\n'
    )
    (nested / "kustomization.yml").chmod(0o640)
    result = rewrite_environment(gitops_tree, "apps", "podinfo", "dev", "v9")
    assert result.written == ["apps/dev/overlays/eu/kustomization.yml", "apps/dev/podinfo.yaml"]
    assert (nested / "kustomization.yml").stat().st_mode & 0o777 == 0o640
    assert 'newTag: "v9"' in (nested / "kustomization.yml").read_text()


def test_one_bad_file_means_no_file_is_written(gitops_tree: Path) -> None:
    (gitops_tree / "apps/dev/zz-broken.yaml").write_text('image: [x] # {"$imagepolicy": "apps:podinfo"}\n')
    before = snapshot(gitops_tree)
    with pytest.raises(ManifestError, match=r"apps/dev/zz-broken.yaml:1: .*non-scalar"):
        rewrite_environment(gitops_tree, "apps", "podinfo", "dev", "new")
    assert snapshot(gitops_tree) == before


def test_binary_and_non_utf8_files_are_skipped_not_corrupted(gitops_tree: Path) -> None:
    latin = b'image: ghcr.io/acme/podinfo:1 # {"$imagepolicy": "apps:podinfo"} # caf\xe9\n'
    binary = b'\x00\x01 image: x # {"$imagepolicy": "apps:podinfo"} \xff'
    (gitops_tree / "apps/dev/latin1.yaml").write_bytes(latin)
    (gitops_tree / "apps/dev/blob.yaml").write_bytes(binary)
    result = rewrite_environment(gitops_tree, "apps", "podinfo", "dev", "2")
    assert result.skipped == ["apps/dev/blob.yaml", "apps/dev/latin1.yaml"]
    assert (gitops_tree / "apps/dev/latin1.yaml").read_bytes() == latin
    assert (gitops_tree / "apps/dev/blob.yaml").read_bytes() == binary


def test_symlink_leaving_the_repository_is_refused(gitops_tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text('image: ghcr.io/acme/podinfo:1 # {"$imagepolicy": "apps:podinfo"}\n')
    (gitops_tree / "apps/dev/escape.yaml").symlink_to(outside)
    before = snapshot(gitops_tree)
    with pytest.raises(ManifestError, match=r"escape.yaml is a symlink that leaves the repository"):
        rewrite_environment(gitops_tree, "apps", "podinfo", "dev", "2")
    assert snapshot(gitops_tree) == before
    assert "ghcr.io/acme/podinfo:1 " in outside.read_text()


def test_symlinked_directory_leaving_the_repository_is_refused(gitops_tree: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (gitops_tree / "apps/dev/linked").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ManifestError, match="leaves the repository"):
        rewrite_environment(gitops_tree, "apps", "podinfo", "dev", "2")


def test_missing_marker_missing_env_dir_and_bad_names(gitops_tree: Path) -> None:
    with pytest.raises(ManifestError, match=r'no setter marker \{"\$imagepolicy": "apps:nothere"\}'):
        rewrite_environment(gitops_tree, "apps", "nothere", "dev", "1")
    with pytest.raises(ManifestError, match="apps/staging/ does not exist"):
        rewrite_environment(gitops_tree, "apps", "podinfo", "staging", "1")
    with pytest.raises(InvalidInputError):
        rewrite_environment(gitops_tree, "..", "podinfo", "dev", "1")
    with pytest.raises(InvalidInputError):
        rewrite_environment(gitops_tree, "apps", "podinfo", "../..", "1")
    with pytest.raises(InvalidInputError):
        rewrite_environment(gitops_tree, "apps", "podinfo", "dev", "1;reboot")
    with pytest.raises(InvalidInputError):
        rewrite_environment(gitops_tree, "apps", "podinfo", "dev", "1", "sha256:short")


# -- properties --------------------------------------------------------------------------------------

tags = st.from_regex(TAG, fullmatch=True)
styles = st.sampled_from(["{}", '"{}"', "'{}'"])


@given(old=tags, new=tags, style=styles, crlf=st.booleans(), pad=st.integers(0, 4))
def test_rewrite_changes_exactly_the_marked_scalar(
    old: str, new: str, style: str, crlf: bool, pad: int
) -> None:
    eol = "\r\n" if crlf else "\n"
    marked = f'    newTag: {style.format(old)}{" " * pad} # {{"$imagepolicy": "g:a:tag"}}'
    text = eol.join(["images:", "  - name: ghcr.io/x/a", marked, "other: 1", ""])
    import yaml

    assume(yaml.safe_load(text)["images"][0]["newTag"] == old)  # the unquoted original must be a string
    result, count = rewrite_text(text, "g", "a", new)
    assert count == 1
    diff = changed_lines(text, result)
    assert len(diff) <= 1
    assert yaml.safe_load(result)["images"][0]["newTag"] == new
    again, _ = rewrite_text(result, "g", "a", new)
    assert again == result  # rewriting to the same tag is a no-op


@given(
    tag=tags, registry=st.sampled_from(["ghcr.io/acme", "registry:5000", "docker.io/library", "quay.io/a/b"])
)
def test_whole_value_round_trip_keeps_repository(tag: str, registry: str) -> None:
    text = f'image: {registry}/app:1.0 # {{"$imagepolicy": "g:app"}}\n'
    result, _ = rewrite_text(text, "g", "app", tag)
    (marker,) = find_markers(result)
    assert (marker.repository, marker.tag) == (f"{registry}/app", tag)
    assert rewrite_text(result, "g", "app", tag)[0] == result


@given(st.text(max_size=200))
def test_marker_finder_never_crashes_on_arbitrary_text(text: str) -> None:
    try:
        find_markers(text + ' # {"$imagepolicy": "g:a"}')
    except ManifestError as error:
        assert str(error)
