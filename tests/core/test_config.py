from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promoter.config import CONFIG_FILE, load_config, parse_config, parse_duration
from promoter.errors import ConfigError

ORIGINAL = """\
prflow: per-app
status_timeout_minutes: 5
environments:
  - name: dev
    auto: true
  - name: qa
    auto: true
  - name: prod
    auto: false
groups:
  apps:
    applications:
      podinfo:
        featureLabelSelector:
          app: podinfo
"""


def test_gitops_promotion_file_loads_with_order_and_helpers() -> None:
    config = parse_config(ORIGINAL)
    assert config.environment_names == ["dev", "qa", "prod"]
    assert config.first_environment().name == "dev"
    assert config.next_environment("dev") is not None
    assert config.next_environment("qa").name == "prod"  # type: ignore[union-attr]
    assert config.next_environment("prod") is None
    assert config.previous_environment("dev") is None
    assert config.previous_environment("prod").name == "qa"  # type: ignore[union-attr]
    assert config.environment("prod").auto is False
    assert config.groups["apps"].applications["podinfo"].feature_label_selector == {"app": "podinfo"}


def test_defaults_match_gitops_promotion() -> None:
    config = parse_config("environments:\n  - name: dev\n")
    assert config.prflow == "per-app"
    assert config.status_timeout == timedelta(minutes=5)
    assert config.environment("dev").auto is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", timedelta(minutes=5)),
        ("'10m'", timedelta(minutes=10)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(minutes=90)),
        ("2.5", timedelta(minutes=2.5)),
        ("0", timedelta(minutes=5)),
    ],
)
def test_integer_timeout_means_minutes_and_durations_are_accepted(value: str, expected: timedelta) -> None:
    config = parse_config(f"status_timeout_minutes: {value}\nenvironments:\n  - name: dev\n")
    assert config.status_timeout == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "enviroments:\n  - name: dev\n",
            r"gitops-promotion.yaml:1: unknown key 'enviroments'; did you mean 'environments'\?",
        ),
        ("environments:\n  - name: dev\n    autp: true\n", r":3: unknown key 'autp'; did you mean 'auto'\?"),
        (
            "environments:\n  - name: dev\ngroups:\n  apps:\n    applications:\n      web:\n        selector: {}\n",
            r":7: unknown key 'selector'; did you mean 'featureLabelSelector'\?",
        ),
        ("environments: []\n", "environments needs at least 1 entry"),
        ("prflow: per-app\n", "missing required key 'environments'"),
        ("environments:\n  - name: dev\n  - name: dev\n", "unique; repeated: dev"),
        ("environments:\n  - name: ../prod\n", "invalid environment name"),
        ("environments:\n  - name: a/b\n", "invalid environment name"),
        ("status_timeout_minutes: -3\nenvironments:\n  - name: dev\n", "must not be negative"),
        ("status_timeout_minutes: '-1m'\nenvironments:\n  - name: dev\n", "must not be negative"),
        ("status_timeout_minutes: soon\nenvironments:\n  - name: dev\n", "is not a duration"),
        ("status_timeout_minutes: true\nenvironments:\n  - name: dev\n", "number of minutes"),
        (
            "prflow: per-team\nenvironments:\n  - name: dev\n",
            r":1: prflow is 'per-team'; use 'per-app' or 'per-env'$",
        ),
        (
            "environments:\n  - name: dev\n    auto: maybe\n",
            r":3: environments\[0\]\.auto is 'maybe'; use true or false",
        ),
        ("environments:\n  - name: 5\n", r"environments\[0\]\.name is 5; use text"),
        ("environments: dev\n", r"environments is 'dev'; use a list"),
        ("environments:\n  - name: dev\ngroups:\n  Apps: {}\n", "invalid group name"),
        ("environments: [\n", r":2: .*fix the YAML syntax"),
        ("- dev\n- qa\n", "one YAML mapping"),
        ("a: 1\n---\nb: 2\n", "one YAML mapping"),
        ("", "one YAML mapping"),
        ("x: &a [1]\ny: [*a, *a]\nenvironments:\n  - name: dev\n", "aliases"),
    ],
)
def test_bad_config_names_the_problem_and_the_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    with pytest.raises(ConfigError, match="aliases"):
        parse_config("\n".join(lines) + "\nenvironments:\n  - name: dev\n")


def test_missing_file_says_what_to_create(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"not found; create {CONFIG_FILE}"):
        load_config(tmp_path)


def test_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_bytes(b"environments:\n  - name: d\xe9v\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(tmp_path)


def test_unknown_environment_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown environment 'staging'.*dev, qa, prod"):
        parse_config(ORIGINAL).environment("staging")


@given(st.integers(min_value=1, max_value=10_000))
def test_whole_minutes_round_trip(minutes: int) -> None:
    assert parse_duration(minutes) == timedelta(minutes=minutes)
    assert parse_duration(f"{minutes}m") == timedelta(minutes=minutes)


@given(st.text(max_size=30))
def test_config_loader_never_crashes_on_arbitrary_text(text: str) -> None:
    try:
        parse_config(text)
    except ConfigError as error:
        assert str(error)


# -- reporters: several clusters serving one environment -------------------------------------------

TWO_CLUSTERS = """\
environments:
  - name: dev
    auto: true
  - name: qa
    auto: true
    reporters: 2
  - name: prod
    reporters: [0c9c2e41, prod-west, "kustomization/apps-prod/7f3a9b12"]
"""


def test_reporters_take_a_count_or_a_list_and_default_to_none() -> None:
    config = parse_config(TWO_CLUSTERS)
    assert config.environment("dev").reporters is None  # one reporter, as gitops-promotion assumes
    assert config.environment("qa").reporters == 2
    assert config.environment("prod").reporters == (
        "0c9c2e41",
        "prod-west",
        "kustomization/apps-prod/7f3a9b12",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("true", r":3: environments\[0\]\.reporters: expected a number of clusters \(reporters: 2\)"),
        ("0", "between 1 and 64 clusters"),
        ("65", "between 1 and 64 clusters"),
        ("[]", r"list 1 to 64 reporters, or give their number"),
        ("[01234567]", r"342391 is a YAML number, not a name: quote reporter names"),
        ("[a1b2c3d4, A1B2C3D4]", "unique; repeated: a1b2c3d4"),
        ("['two words']", r"'two words' is not a reporter: write the cluster part"),
        ("{dev-01: 1}", "expected a number of clusters"),
        ("two", "expected a number of clusters"),
    ],
)
def test_bad_reporters_name_the_line_and_what_to_write(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(f"environments:\n  - name: dev\n    reporters: {value}\n")


def test_a_misspelt_reporters_key_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError, match=r":3: unknown key 'reporter'; did you mean 'reporters'\?"):
        parse_config("environments:\n  - name: dev\n    reporter: 2\n")
