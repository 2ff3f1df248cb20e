from __future__ import annotations

import threading
import time

import pytest

from flows.aside import Aside


def _later(seconds: float, into: list[str], what: str) -> None:
    time.sleep(seconds)
    into.append(what)


def _fail(message: str) -> None:
    raise RuntimeError(message)


def test_calls_run_in_the_order_given_off_the_calling_thread() -> None:
    seen: list[str] = []
    threads: list[str] = []
    with Aside() as aside:
        for index in range(5):
            aside.submit(_later, 0.01 * (5 - index), seen, str(index))
            aside.submit(lambda: threads.append(threading.current_thread().name))
    assert seen == ["0", "1", "2", "3", "4"]
    assert all(name.startswith("promoter-aside") for name in threads)


def test_drain_waits_for_every_call_and_raises_the_first_failure() -> None:
    done: list[str] = []
    aside = Aside()
    aside.submit(_fail, "label lost")
    aside.submit(_later, 0.05, done, "progress")
    aside.submit(_fail, "second")
    with pytest.raises(RuntimeError, match="label lost"):
        aside.drain()
    assert done == ["progress"]
    aside.drain()  # nothing pending any more
    aside.__exit__(None, None, None)


def test_a_failed_call_fails_a_run_that_ends_normally() -> None:
    with pytest.raises(RuntimeError, match="tags"), Aside() as aside:
        aside.submit(_fail, "tags not saved")


def test_a_run_failing_already_keeps_its_own_error_and_still_lets_calls_land() -> None:
    landed: list[str] = []
    with pytest.raises(ValueError, match="blocked"), Aside() as aside:
        aside.submit(_later, 0.05, landed, "progress")
        aside.submit(_fail, "tags not saved")
        raise ValueError("blocked")
    assert landed == ["progress"]
