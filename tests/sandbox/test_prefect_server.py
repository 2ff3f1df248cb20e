"""The SQLite settings of the sandbox's Prefect server are real Prefect settings, and mean what they say."""

from __future__ import annotations

import os

import pytest
from prefect.settings import Settings

from sandbox.prefect_server import SQLITE_CLIENT_SETTINGS, SQLITE_SETTINGS


def test_the_sqlite_settings_are_read_by_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("PREFECT_")]:
        monkeypatch.delenv(name)
    for name, value in SQLITE_SETTINGS.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.client.max_retries == 8
    assert settings.client.retry_jitter_factor == 1.0
    assert settings.server.services.event_persister.batch_size == 200
    assert settings.server.services.late_runs.enabled is False
    assert settings.server.services.foreman.enabled is False
    assert settings.server.services.scheduler.enabled  # the sweeper's schedule
    assert settings.server.services.triggers.enabled  # the release trigger


def test_the_server_gets_the_client_retries_too() -> None:
    assert SQLITE_CLIENT_SETTINGS.items() <= SQLITE_SETTINGS.items()
