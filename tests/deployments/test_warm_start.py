"""The fork server's preparation, checked in a fresh interpreter (it patches Prefect's client module)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, home: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PREFECT_HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_prefect_clients_share_one_verifying_context_and_the_engine_modules_are_loaded(
    tmp_path: Path,
) -> None:
    out = _run(
        """
        import sys
        before = set(sys.modules)
        from deployments import prefect_compat, warm_start
        from prefect.client.orchestration import SyncPrefectClient
        one = SyncPrefectClient("http://127.0.0.1:9/api")
        two = SyncPrefectClient("http://127.0.0.1:9/api")
        print(one._client._transport._pool._ssl_context is two._client._transport._pool._ssl_context)
        print(all(m in sys.modules and m not in before for m in prefect_compat.LAZY_IMPORTS))
        """,
        tmp_path,
    )
    assert out.split() == ["True", "True"]


def test_an_unverified_context_is_never_shared_with_verifying_clients(tmp_path: Path) -> None:
    out = _run(
        """
        import ssl
        import certifi
        from deployments import prefect_compat, warm_start
        from prefect.client import orchestration
        shared = orchestration.ssl.create_default_context(cafile=certifi.where())
        loose = orchestration.ssl.create_default_context()
        loose.check_hostname = False
        loose.verify_mode = ssl.CERT_NONE
        again = orchestration.ssl.create_default_context(cafile=certifi.where())
        print(shared is again, loose is not shared, again.verify_mode == ssl.CERT_REQUIRED, again.check_hostname)
        """,
        tmp_path,
    )
    assert out.split() == ["True", "True", "True", "True"]
