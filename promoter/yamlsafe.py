"""Reading YAML from outside without letting it hurt us.

PyYAML's safe loader builds no objects, but aliases still let a small file expand into a huge structure
(billion laughs), and a large file is parsed whole. Our inputs are configuration and manifests written by
people, so both are refused: aliases are not needed in either, and no such file is megabytes long.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml

MAX_YAML_BYTES = 1024 * 1024


class YAMLInputError(ValueError):
    """The text is not valid YAML, too large, or uses aliases; `line` says where (1-based)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def compose_all(text: str) -> list[yaml.Node]:
    """Compose every document of `text`, refusing aliases and oversized input."""
    if len(text) > MAX_YAML_BYTES:
        raise YAMLInputError(f"file is larger than {MAX_YAML_BYTES // 1024} KiB; split it")
    try:
        nodes = [node for node in yaml.compose_all(text, Loader=yaml.SafeLoader) if node is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise YAMLInputError(f"{problem}; fix the YAML syntax", mark.line + 1 if mark else None) from None
    except RecursionError:
        # PyYAML composes nested collections recursively: thousands of `[` exhaust the stack.
        raise YAMLInputError("collections are nested too deeply; flatten the YAML") from None
    for root in nodes:
        _refuse_aliases(root)
    return nodes


def _refuse_aliases(root: yaml.Node) -> None:
    seen: set[int] = set()
    for node in walk(root):
        if isinstance(node, yaml.ScalarNode):
            continue
        if id(node) in seen:
            raise YAMLInputError(
                "YAML aliases (*name) are not supported here; write the value out", node.start_mark.line + 1
            )
        seen.add(id(node))


def walk(node: yaml.Node) -> Iterator[yaml.Node]:
    """Every node below `node`, depth first, stopping at repeats so that cycles cannot loop forever."""
    stack = [node]
    visited: set[int] = set()
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, yaml.ScalarNode) or id(current) in visited:
            continue
        visited.add(id(current))
        if isinstance(current, yaml.MappingNode):
            for key, value in reversed(current.value):
                stack.extend((value, key))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(reversed(current.value))
