"""The embedded default: a local GitHub- and Azure-DevOps-compatible forge and a Flux emulator.

`promoter sandbox` serves it on loopback; `sandbox.testing.run_sandbox` runs it inside a test.
See docs/sandbox.md for the URL layout, tokens, scenario and fault formats.
"""

from __future__ import annotations

import importlib.util

from promoter.errors import PromoterError

# What the `sandbox` extra installs: the validators that hold the forge to the official API descriptions.
EXTRA_MODULES = ("openapi_core", "jsonschema", "graphql")


def require_extra(command: str) -> None:
    """Before anything imports the sandbox's validators: say how to get them, in one line."""
    missing = [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise PromoterError(
            f"`promoter {command}` needs the sandbox extra ({', '.join(missing)} not installed): "
            "pip install 'promoter[sandbox]'"
        )
