"""One load shared by every concurrent caller ("single flight").

The load runs in a task of its own and every caller, the first included, awaits it shielded: a
caller that is cancelled (its request ended) only stops waiting, and the load still completes for
the others. An exception of the load reaches every caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def spawn(load: Callable[[], Awaitable[V]]) -> asyncio.Task[V]:
    """The load in a task of its own, for callers to `join`."""
    task: asyncio.Task[V] = asyncio.ensure_future(load())  # type: ignore[assignment]
    task.add_done_callback(_retrieve)
    return task


async def join(task: asyncio.Task[V]) -> V:
    """Its result (or its exception); cancelling the caller does not cancel the task."""
    return await asyncio.shield(task)


def _retrieve(task: asyncio.Task[object]) -> None:
    # Every caller may have stopped waiting: the exception is not "never retrieved" for that.
    if not task.cancelled():
        task.exception()


class SingleFlight(Generic[K, V]):
    """At most one load per key at a time; callers asking meanwhile share it."""

    def __init__(self) -> None:
        self._loads: dict[K, asyncio.Task[V]] = {}

    async def run(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        task = self._loads.get(key)
        if task is None:
            task = self._loads[key] = spawn(load)
            task.add_done_callback(lambda done: self._forget(key, done))
        return await join(task)

    def forget(self, key: K | None = None) -> None:
        """What is loading now may be outdated (`key` changed; None: anything): callers from now
        on start a new load instead of joining it. Those already waiting still get it."""
        if key is None:
            self._loads.clear()
        else:
            self._loads.pop(key, None)

    def _forget(self, key: K, task: asyncio.Task[V]) -> None:
        if self._loads.get(key) is task:
            del self._loads[key]
