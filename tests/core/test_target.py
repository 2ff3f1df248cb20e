"""One `Target` for the flow, the sweeper and the CLI: given values first, then `PROMOTER_*`, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.errors import ConfigError, InvalidInputError, PromoterError
from promoter.promotion import Target

URL = "https://github.com/acme/gitops.git"
VARIABLES = ("GITOPS_URL", "PROVIDER", "CACHE_DIR", "MERGE_METHOD", "POLL_INTERVAL", "STATUS_PATTERN")


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(f"PROMOTER_{name}", raising=False)


def test_the_worker_environment_fills_in_what_was_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOTER_GITOPS_URL", URL)
    monkeypatch.setenv("PROMOTER_MERGE_METHOD", "squash")
    monkeypatch.setenv("PROMOTER_POLL_INTERVAL", "0.5")
    monkeypatch.setenv("PROMOTER_CACHE_DIR", "/var/cache/promoter")
    target = Target.of({"gitops_url": None, "provider": None})
    assert (target.gitops_url, target.merge_method, target.poll_interval) == (URL, "squash", 0.5)
    assert target.cache_path == Path("/var/cache/promoter")


def test_a_given_value_wins_and_an_empty_one_counts_as_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOTER_GITOPS_URL", URL)
    monkeypatch.setenv("PROMOTER_PROVIDER", "")  # as a pipeline writes an unset variable
    other = "https://forge.example/acme/gitops.git"
    target = Target.of({"gitops_url": other, "provider": "github", "merge_method": ""})
    assert (target.gitops_url, target.provider, target.merge_method) == (other, "github", "merge")
    assert Target.of({"gitops_url": ""}).gitops_url == URL


def test_the_cache_defaults_to_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert Target.of({"gitops_url": URL}).cache_path == tmp_path / "promoter" / "git"


@pytest.mark.parametrize(
    ("variables", "given", "kind", "message"),
    [
        (
            {},
            {},
            ConfigError,
            "no GitOps repository: pass gitops_url or set PROMOTER_GITOPS_URL for the worker",
        ),
        (
            {"PROMOTER_POLL_INTERVAL": "-1"},
            {"gitops_url": URL},
            ConfigError,
            "PROMOTER_POLL_INTERVAL is '-1': give a positive number of seconds",
        ),
        (
            {"PROMOTER_POLL_INTERVAL": "inf"},
            {"gitops_url": URL},
            ConfigError,
            "PROMOTER_POLL_INTERVAL is 'inf': give a positive number of seconds",
        ),
        (
            {"PROMOTER_MERGE_METHOD": "fast-forward"},
            {"gitops_url": URL},
            ConfigError,
            "PROMOTER_MERGE_METHOD is 'fast-forward': use merge, squash or rebase",
        ),
        (
            {},
            {"gitops_url": URL, "provider": "gitlab"},
            InvalidInputError,
            "the provider parameter is 'gitlab': use 'github' or 'azdo', or leave it out",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    given: dict[str, str],
    kind: type[PromoterError],
    message: str,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(kind) as raised:
        Target.of(given)
    assert str(raised.value) == message


def test_the_cli_names_its_flags() -> None:
    with pytest.raises(
        InvalidInputError, match=r"^--poll-interval is nan: give a positive number of seconds$"
    ):
        Target.of({"gitops_url": URL, "poll_interval": float("nan")}, {"poll_interval": "--poll-interval"})


def test_an_unsupported_repository_url_fails_before_any_request() -> None:
    with pytest.raises(InvalidInputError, match="unsupported remote URL scheme 'file'"):
        Target.of({"gitops_url": "file:///etc/passwd"})
