"""pydantic's validation errors as the one-line sentences the rest of the promoter speaks.

pydantic says "Input should be 'per-app' or 'per-env'": right, but it does not say what was given, nor
what to write instead. Every model that reads outside input (the config, PR metadata, the sandbox's
scenario and fault files) reports its errors through `explain`, so a user reads "prflow is 'per-team';
use 'per-app' or 'per-env'" whatever the model.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

_KINDS = {
    bool: "true/false",
    int: "a number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "a mapping",
    type(None): "nothing (null)",
}


def location(loc: tuple[int | str, ...]) -> str:
    """`environments[0].auto`, as a person would point at it."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def given(value: Any) -> str:
    """What was given, short and escaped: one line, harmless to a terminal."""
    if isinstance(value, str):
        return ascii(value) if len(value) <= 40 else ascii(value[:37] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _KINDS.get(type(value), type(value).__name__)


def explain(item: ErrorDetails) -> str:
    """The problem of one error item, without its location: "is 'x'; use 'a' or 'b'"."""
    kind, ctx, value = item["type"], item.get("ctx") or {}, item.get("input")
    if kind == "literal_error":
        return f"is {given(value)}; use {ctx.get('expected', 'one of the documented values')}"
    if kind in ("bool_parsing", "bool_type"):
        return f"is {given(value)}; use true or false"
    if kind in ("int_parsing", "int_type", "float_parsing", "float_type", "int_from_float"):
        return f"is {given(value)}; use a number"
    if kind == "string_type":
        return f"is {given(value)}; use text (quote it if YAML reads it as another type)"
    if kind in ("list_type", "tuple_type"):
        return f"is {given(value)}; use a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"is {given(value)}; use a mapping of keys to values"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return f"needs at least {least} {'entry' if least == 1 else 'entries'}"
    if kind == "too_long":
        return f"has more than the {ctx.get('max_length')} entries allowed"
    if kind == "missing":
        return "is missing; add it"
    if kind == "extra_forbidden":
        return "is not a known key; remove it or check its spelling"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = next(iter(ctx.values()), "?")
        words = {
            "greater_than": "greater than",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "less_than_equal": "at most",
        }
        return f"is {given(value)}; it must be {words[kind]} {bound}"
    return f"is {given(value)}: {item.get('msg', 'not valid')}"


def describe(item: ErrorDetails) -> str:
    """One error with its location: "prflow is 'per-team'; use ..." or "environments: <validator's words>"."""
    where = location(tuple(item["loc"]))
    if item["type"] == "value_error":
        return f"{where}: {str(item.get('msg', '')).removeprefix('Value error, ')}"
    return f"{where} {explain(item)}"


def first_problem(error: ValidationError) -> str:
    """The first error, described: most callers say one thing and stop."""
    return describe(error.errors()[0])
