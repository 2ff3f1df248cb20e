from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tasks.report import prefect_key


def test_keys_fold_tags_and_environments_prefect_would_refuse() -> None:
    key = prefect_key("approval", "Prod_EU", "6.5.0")
    assert key.startswith("approval-prod-eu-6-5-0-")
    assert prefect_key("approval", "prod", "6.5.0") != prefect_key("approval", "prod", "6-5-0")


@given(st.lists(st.text(max_size=30), min_size=1, max_size=4))
def test_every_key_is_valid_for_prefect(parts: list[str]) -> None:
    assert re.fullmatch(r"[a-z0-9-]+", prefect_key(*parts))
