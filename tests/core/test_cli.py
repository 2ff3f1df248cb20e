from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from promoter.cli import main
from tests.helpers import snapshot


def test_bump_prints_changed_paths_and_exits_0(gitops_tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bump",
            "--sourcedir",
            str(gitops_tree),
            "--group",
            "apps",
            "--app",
            "podinfo",
            "--tag",
            "a8b91c33",
            "--env",
            "qa",
        ]
    )
    assert code == 0
    assert capsys.readouterr().out == "apps/qa/podinfo.yaml\n"
    assert "podinfo:a8b91c33" in (gitops_tree / "apps/qa/podinfo.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "staging"], "unknown environment 'staging'"),
        (["--tag", "1;rm -rf /"], "invalid image tag"),
        (["--tag", "1", "--digest", "sha256:xyz"], "invalid image digest"),
        (["--group", "../etc"], "invalid group name"),
        (["--app", "nothere"], "no setter marker"),
    ],
)
def test_bump_bad_input_exits_2_with_one_line_and_writes_nothing(
    gitops_tree: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    defaults = {"--group": "apps", "--app": "podinfo", "--tag": "v2", "--env": "dev"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        defaults[flag] = value
    argv = ["bump", "--sourcedir", str(gitops_tree)] + [part for item in defaults.items() for part in item]
    if "--digest" in args:
        argv += ["--digest", args[args.index("--digest") + 1]]
    before = snapshot(gitops_tree)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err and captured.err.startswith("promoter bump: error: ")
    assert "Traceback" not in captured.err
    assert snapshot(gitops_tree) == before


def test_bump_without_config_says_what_to_create(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["bump", "--sourcedir", str(tmp_path), "--group", "a", "--app", "b", "--tag", "1", "--env", "dev"]
        )
        == 2
    )
    assert "create gitops-promotion.yaml" in capsys.readouterr().err


def test_console_script_lists_its_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "promoter.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "bump" in result.stdout
    missing = subprocess.run([sys.executable, "-m", "promoter.cli", "bump"], capture_output=True, text=True)
    assert missing.returncode == 2 and "required" in missing.stderr
