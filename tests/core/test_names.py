from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promoter.errors import InvalidInputError
from promoter.names import (
    TAG,
    canonical_repository,
    check_app,
    check_digest,
    check_environment,
    check_group,
    check_tag,
    parse_image_reference,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("tag", ["a8b91c33", "6.5.0", "v1.2.3-rc.1", "_x", "1" * 128, "latest"])
def test_valid_tags_are_accepted(tag: str) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize(
    "tag",
    ["", ".hidden", "-dash", "a" * 129, "a/b", "a:b", "a b", "x;rm -rf /", "$(id)", "a\nb", "tag\x00", "ü"],
)
def test_invalid_tags_are_refused_with_the_rule(tag: str) -> None:
    with pytest.raises(InvalidInputError, match="OCI tag"):
        check_tag(tag)


@pytest.mark.parametrize(
    "name", ["..", "../etc", "/abs", "a/b", "Apps", "-a", "a-", "", "a\x00", "a" * 64, "a_b"]
)
def test_group_and_app_names_cannot_escape_or_break_dns_rules(name: str) -> None:
    with pytest.raises(InvalidInputError, match="lowercase"):
        check_group(name)
    with pytest.raises(InvalidInputError, match="invalid app name"):
        check_app(name)


@pytest.mark.parametrize("name", ["..", ".", "a/b", "/", "", ".hidden", "a\\b", "a b"])
def test_environment_names_are_one_plain_path_segment(name: str) -> None:
    with pytest.raises(InvalidInputError):
        check_environment(name)


def test_digest_grammar() -> None:
    assert check_digest(DIGEST) == DIGEST
    for bad in ["sha256:abc", "sha512:" + "a" * 64, DIGEST.upper(), DIGEST + "0"]:
        with pytest.raises(InvalidInputError, match="64 lowercase hex"):
            check_digest(bad)


def test_error_messages_do_not_echo_control_characters() -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_tag("a\x1b[31mred")
    assert "\x1b" not in str(caught.value)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("nginx", ("nginx", None, None)),
        ("ghcr.io/acme/podinfo:6.5.0", ("ghcr.io/acme/podinfo", "6.5.0", None)),
        (f"registry:5000/name:tag@{DIGEST}", ("registry:5000/name", "tag", DIGEST)),
        (f"localhost/x@{DIGEST}", ("localhost/x", None, DIGEST)),
    ],
)
def test_image_references_split_into_repository_tag_and_digest(
    reference: str, expected: tuple[str, str | None, str | None]
) -> None:
    assert tuple(parse_image_reference(reference)) == expected
    assert str(parse_image_reference(reference)) == reference


def test_docker_hub_short_names_share_one_canonical_form() -> None:
    forms = ["nginx", "library/nginx", "docker.io/library/nginx", "index.docker.io/library/nginx"]
    assert {canonical_repository(form) for form in forms} == {"docker.io/library/nginx"}
    assert canonical_repository("ghcr.io/acme/podinfo") == "ghcr.io/acme/podinfo"


@given(st.from_regex(TAG, fullmatch=True))
def test_every_string_of_the_tag_grammar_is_accepted(tag: str) -> None:
    assert check_tag(tag) == tag


@given(st.text(min_size=1, max_size=20))
def test_accepted_tags_never_contain_path_or_shell_characters(tag: str) -> None:
    try:
        check_tag(tag)
    except InvalidInputError:
        return
    assert not set(tag) & set("/\\:;$`'\" \n\x00*?&|<>")
    assert not tag.startswith((".", "-"))
