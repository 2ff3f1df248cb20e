"""Fuzzing what tests/core and tests/deployments leave out: wrong structure rather than wrong text.

- the config loader on well-formed YAML of the wrong shape (every key, any type), and on YAML-ish text;
- the manifest rewriter on YAML-ish text around a marker: only its documented errors, and no byte outside
  the marked scalar ever changes;
- the registry parsers on real payloads made huge, nested deep, or corrupted byte by byte.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployments.registries import PARSERS, Ignored, ImagePush, Sender
from promoter.config import Config, parse_config
from promoter.errors import ConfigError, InvalidInputError, ManifestError
from promoter.manifests import find_markers, rewrite_text
from promoter.yamlsafe import MAX_YAML_BYTES
from tests.deployments.test_registries import SAMPLES

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["dev", "../prod", "per-env", "5m", "-1", "1e999", "0", "true", "Dev", ".", "a/b"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KEYS = ["prflow", "status_timeout_minutes", "environments", "groups", "name", "auto", "applications"]
environment = st.dictionaries(st.sampled_from(["name", "auto", "extra"]), values, max_size=3)
group = st.dictionaries(
    st.sampled_from(["applications", "other"]),
    st.dictionaries(st.text(max_size=8), st.dictionaries(st.sampled_from(["featureLabelSelector"]), values)),
    max_size=2,
)
wrong_configs = st.fixed_dictionaries(
    {},
    optional={
        "prflow": values,
        "status_timeout_minutes": values,
        "environments": st.one_of(values, st.lists(st.one_of(environment, values), max_size=4)),
        "groups": st.one_of(values, st.dictionaries(st.text(max_size=8), group, max_size=3)),
        "unknown": values,
    },
)


@FUZZ
@given(wrong_configs)
def test_config_of_the_wrong_shape_is_a_config_error_or_a_valid_config(data: dict[str, Any]) -> None:
    text = yaml.safe_dump(data, allow_unicode=True)
    try:
        config = parse_config(text)
    except ConfigError as error:
        assert str(error).startswith("gitops-promotion.yaml")
        return
    assert isinstance(config, Config) and config.environments


yamlish = st.text(alphabet=st.sampled_from(list("ab1 :-#{}[]\"'\n|>&*!?,.\t%@`\\\r~")), max_size=300)


@FUZZ
@given(yamlish)
def test_config_loader_on_yamlish_text_only_raises_config_error(text: str) -> None:
    try:
        parse_config(text)
    except ConfigError as error:
        assert str(error)


@FEW
@given(
    depth=st.integers(min_value=400, max_value=1500),
    opener=st.sampled_from(["[", "{a: ", "- ", "? ", "a:\n  "]),
    padding=st.integers(min_value=1, max_value=64),
)
def test_config_nested_deep_or_past_the_size_limit_is_a_config_error(
    depth: int, opener: str, padding: int
) -> None:
    # Sizes stay just past the 1 MiB limit: PyYAML is pure Python, and a valid 1 MiB file takes minutes here.
    oversized = "environments:\n  - name: dev\n" + "#" * (MAX_YAML_BYTES + padding)
    for text in (opener * depth, oversized):
        try:
            parse_config(text)
        except ConfigError as error:
            assert str(error).startswith("gitops-promotion.yaml")
        else:
            raise AssertionError("accepted")


# -- the manifest rewriter -----------------------------------------------------------------------

MARKERS = ['{"$imagepolicy": "g:a"}', '{"$imagepolicy": "g:a:tag"}', '{"$imagepolicy": "g:a:digest"}']
values_on_the_line = st.sampled_from(
    [
        "ghcr.io/acme/a:1.0",
        '"ghcr.io/acme/a:1.0"',
        "'1.0'",
        "1.0",
        "&anchor ghcr.io/acme/a:1",
        "!!str 1.0",
        "[a, b]",
        "{a: b}",
        "|",
        "",
        "*alias",
        "sha256:" + "b" * 64,
        "ghcr.io/acme/a:1@sha256:" + "c" * 64,
    ]
)


documents = st.builds(
    lambda data, flow: yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True, width=10**6),
    st.dictionaries(st.text(min_size=1, max_size=6), values, min_size=1, max_size=4),
    st.booleans(),
)
comments = st.lists(st.text(max_size=20).map(lambda t: "# " + " ".join(t.split()) + "\n"), max_size=2).map(
    "".join
)
siblings = st.lists(
    st.sampled_from(["name: ghcr.io/acme/a\n", "newName: x/y\n", "other: 1\n", "# note\n", "t: 'q'\n"]),
    max_size=3,
).map("".join)
one_line = yamlish.map(lambda t: " ".join(t.split()))


@FUZZ
@given(
    before=documents | comments | yamlish,
    after=documents | comments,
    context=st.sampled_from(["image: ", "newTag: ", '"image": ', "- ", ""]),
    above=siblings,
    below=siblings,
    value=values_on_the_line | one_line,
    marker=st.sampled_from(MARKERS),
    tag=st.sampled_from(["2.0", "20231001", "true", "v1-rc.2"]),
    digest=st.none() | st.just("sha256:" + "d" * 64),
    crlf=st.booleans(),
)
def test_rewriter_raises_only_its_errors_and_changes_only_the_marked_scalar(
    before: str,
    after: str,
    context: str,
    above: str,
    below: str,
    value: str,
    marker: str,
    tag: str,
    digest: str | None,
    crlf: bool,
) -> None:
    mapping = context.endswith(": ")
    document = f"{above if mapping else ''}{context}{value} # {marker}\n{below if mapping else ''}"
    text = f"{before}\n---\n{document}---\n{after}"
    if crlf:
        text = text.replace("\n", "\r\n")
    try:
        found = [m for m in find_markers(text) if (m.group, m.app) == ("g", "a")]
        result, _ = rewrite_text(text, "g", "a", tag, digest)
    except (ManifestError, InvalidInputError) as error:
        assert str(error)
        return
    if not found:
        assert result == text
        return
    (mark,) = found  # the generated text has one marker line
    head, tail = text[: mark.start], text[mark.end :]
    assert result.startswith(head) and result.endswith(tail), (text, result)
    replaced = result[len(head) : len(result) - len(tail)]
    assert "\n" not in replaced and "\r" not in replaced and "#" not in replaced, replaced
    assert find_markers(result)  # still valid YAML with the marker in place


# -- the registry parsers (arbitrary bytes, JSON and mutated samples are in tests/deployments) -------------------------------------------------------------------------


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


def _headers(sender: Sender, sample: Any) -> dict[str, str]:
    if sender == "github":
        return {"X-GitHub-Event": "package" if "package" in sample else "registry_package"}
    return {}


def _only_documented_errors(sender: Sender, headers: dict[str, str], body: bytes) -> None:
    try:
        notes = PARSERS[sender](headers, body)
    except InvalidInputError as error:
        message = str(error)
        assert "\n" not in message and len(message) < 400, message
        return
    assert all(isinstance(note, ImagePush | Ignored) for note in notes)
    assert all(len(str(note)) < 600 for note in notes)


def _spliced(sender: Sender, sample: Any, path: tuple[Any, ...], raw: str) -> tuple[dict[str, str], bytes]:
    """`sample` with the node at `path` replaced by the raw JSON text `raw`."""
    copy = json.loads(json.dumps(sample))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "__SPLICE__"
    return _headers(sender, copy), json.dumps(copy).replace('"__SPLICE__"', raw, 1).encode()


huge = st.one_of(
    st.integers(min_value=1, max_value=200_000).map(lambda n: json.dumps("x" * n)),
    st.integers(min_value=1, max_value=200_000).map(lambda n: json.dumps("ghcr.io/" + "a" * n)),
    st.integers(min_value=1, max_value=20_000).map(lambda n: json.dumps(["1.0"] * n)),
    st.integers(min_value=1, max_value=2_000).map(lambda n: json.dumps([{"tag": str(i)} for i in range(n)])),
    st.integers(min_value=4_300, max_value=6_000).map(lambda n: "9" * n),  # past Python's digit limit
    st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "-0"]),
)
deep = st.builds(
    lambda depth, pair: pair[0] * depth + "1" + pair[1] * depth,
    st.integers(min_value=500, max_value=50_000),
    st.sampled_from([("[", "]"), ('{"a":', "}")]),
)


@st.composite
def swollen(draw: st.DrawFn, sender: Sender) -> tuple[dict[str, str], bytes]:
    """A real sample with one node, anywhere, made huge, nested thousands deep, or an impossible number."""
    sample = draw(st.sampled_from(SAMPLES[sender]))
    path = draw(st.sampled_from([p for p in _paths(sample) if p]))
    return _spliced(sender, sample, path, draw(huge | deep))


@st.composite
def corrupted(draw: st.DrawFn, sender: Sender) -> tuple[dict[str, str], bytes]:
    """A real sample's bytes with a few bytes overwritten, inserted or deleted (invalid UTF-8 included)."""
    sample = draw(st.sampled_from(SAMPLES[sender]))
    body = bytearray(json.dumps(sample).encode())
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=max(0, len(body) - 1)))
        action = draw(st.sampled_from(["set", "insert", "delete"]))
        byte = draw(st.sampled_from([0x00, 0x22, 0x5C, 0x7B, 0x5D, 0xFF, 0xC3, 0xED, 0x0A, 0x2C]))
        if action == "set" and body:
            body[at] = byte
        elif action == "insert":
            body.insert(at, byte)
        elif body:
            del body[at]
    return _headers(sender, sample), bytes(body)


SENDERS = list(PARSERS)


@FEW
@given(data=st.data())
def test_real_payloads_made_huge_or_deep_only_raise_invalid_input(data: st.DataObject) -> None:
    sender = data.draw(st.sampled_from(SENDERS))
    headers, body = data.draw(swollen(sender))
    _only_documented_errors(sender, headers, body)


@FUZZ
@given(data=st.data())
def test_real_payloads_corrupted_byte_by_byte_only_raise_invalid_input(data: st.DataObject) -> None:
    sender = data.draw(st.sampled_from(SENDERS))
    headers, body = data.draw(corrupted(sender))
    _only_documented_errors(sender, headers, body)
