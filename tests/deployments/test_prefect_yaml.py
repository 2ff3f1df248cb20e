"""prefect.yaml declares exactly the deployments `promoter serve` serves, pointing at real flows."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import yaml

from deployments.serve import deployments

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return {d["name"]: d for d in config["deployments"]}


def test_prefect_yaml_entrypoints_are_the_served_flows() -> None:
    declared = _declared()
    served = {options["name"]: flow for flow, options in deployments()}
    assert set(declared) == set(served)
    for name, deployment in declared.items():
        path, _, function = deployment["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert getattr(module, function) is served[name]


def test_prefect_yaml_says_what_serve_says() -> None:
    declared = _declared()
    for flow, options in deployments(sweep_seconds=60):
        mine = declared[options["name"]]
        assert mine["tags"] == options["tags"] and mine["description"] == options["description"]
        triggers = [
            {
                "expect": sorted(t.expect),
                "match": t.match.model_dump(),
                "parameters": t.parameters,
            }
            for t in options.get("triggers", [])
        ]
        assert [
            {"expect": sorted(t["expect"]), "match": t["match"], "parameters": t["parameters"]}
            for t in mine.get("triggers", [])
        ] == triggers
        for trigger in triggers:
            assert set(trigger["parameters"] or {}) <= set(inspect.signature(flow.fn).parameters)
        schedules = [{kind: options[kind]} for kind in ("interval", "cron") if options.get(kind)]
        assert mine.get("schedules", []) == schedules
        limit = options.get("concurrency_limit")
        expected = (
            {"limit": limit.limit, "collision_strategy": limit.collision_strategy.value} if limit else None
        )
        assert mine.get("concurrency_limit") == expected
