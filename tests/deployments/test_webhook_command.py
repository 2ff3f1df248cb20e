"""`promoter webhook`: flags, the banner, refusals before anything listens."""

from __future__ import annotations

import argparse

import pytest
from pydantic import SecretStr

from deployments.webhook import WebhookSettings
from deployments.webhook_command import add_parser, banner, run
from promoter.errors import PromoterError

PATH_TOKEN = "path-token-0123456789abcdef"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="promoter")
    add_parser(root.add_subparsers(dest="command", required=True))
    return root


def test_webhook_listens_on_loopback_port_8788_by_default() -> None:
    args = parser().parse_args(["webhook"])
    assert (args.host, args.port, args.handler) == ("127.0.0.1", 8788, run)
    assert parser().parse_args(["webhook", "--port", "0"]).port == 0


def test_banner_shows_each_enabled_sender_url_with_a_placeholder_for_the_token() -> None:
    settings = WebhookSettings(github_secret=SecretStr("g" * 20), path_token=SecretStr(PATH_TOKEN))
    text = banner("http://127.0.0.1:8788", settings.enabled())
    assert "POST http://127.0.0.1:8788/hooks/github  (HMAC-signed body in X-Hub-Signature-256)" in text
    assert "POST http://127.0.0.1:8788/hooks/dockerhub/<$PROMOTER_WEBHOOK_PATH_TOKEN>" in text
    assert "/hooks/quay/" in text and "/hooks/acr/" in text and "/hooks/distribution/" in text
    assert "/hooks/harbor" not in text and "/hooks/generic" not in text
    assert PATH_TOKEN not in text and "g" * 20 not in text


def test_a_non_loopback_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOTER_WEBHOOK_PATH_TOKEN", PATH_TOKEN)
    with pytest.raises(PromoterError, match="not a loopback address"):
        run(parser().parse_args(["webhook", "--host", "0.0.0.0"]))  # noqa: S104


def test_starting_with_no_sender_enabled_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_SECRET", "GENERIC_SECRET", "HARBOR_TOKEN", "PATH_TOKEN", "HEADER"):
        monkeypatch.delenv(f"PROMOTER_WEBHOOK_{name}", raising=False)
    with pytest.raises(PromoterError, match="no sender is enabled"):
        run(parser().parse_args(["webhook"]))
