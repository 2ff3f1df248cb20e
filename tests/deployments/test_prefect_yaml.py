"""prefect.yaml declares the same deployments `promoter serve` serves, pointing at real flows."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import yaml

from deployments.serve import EVENT, TRIGGER_PARAMETERS

ROOT = Path(__file__).resolve().parents[2]


def test_prefect_yaml_entrypoints_exist_and_the_trigger_matches_serve() -> None:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in config["deployments"]}
    assert set(deployments) == {"promote-release", "approval-sweeper"}
    for deployment in deployments.values():
        path, _, function = deployment["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert callable(getattr(module, function))
    (trigger,) = deployments["promote-release"]["triggers"]
    assert trigger["expect"] == [EVENT] and trigger["parameters"] == TRIGGER_PARAMETERS
    flow = importlib.import_module("flows.promotion").promote_release
    assert set(trigger["parameters"]) <= set(inspect.signature(flow.fn).parameters)
    assert deployments["approval-sweeper"]["schedules"][0]["interval"] > 0
