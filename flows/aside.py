"""API calls a promotion's next stage need not wait for: the run's name and tags, its progress bar.

Each costs a round trip to the Prefect server (a tag update took 75-90 ms on SQLite), and the flow makes
them between stages, on the path from the registry push to the next PR. One worker thread runs them in
the order given, while the flow goes on. They must land before the run suspends or ends, since the
process goes with it (and the tags are how `promoter approve` and the sweeper find the run), so the flow
drains them first; a failure then fails the run, as it would have in line.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self

from prefect.logging import get_logger

logger = get_logger("promoter.aside")


class Aside:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="promoter-aside")
        self._pending: list[Future[Any]] = []

    def submit(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._pending.append(self._pool.submit(call, *args, **kwargs))

    def drain(self) -> None:
        """Wait for every call so far; raise the first failure."""
        pending, self._pending = self._pending, []
        errors = [error for error in (future.exception() for future in pending) if error is not None]
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                self.drain()
            else:  # the run is failing already: let the calls land, and keep its own error
                for future in self._pending:
                    if future.exception() is not None:
                        logger.warning("%s", future.exception())
        finally:
            self._pool.shutdown(wait=True)
