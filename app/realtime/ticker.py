"""At most one run per period, and no timer while quiet (the cursor path's schedule, shared).

`poke()` asks for a run: the first after a pause happens on the next loop iteration, later ones
one period after the previous run. However many pokes arrive meanwhile, the callback runs once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class Ticker:
    __slots__ = ("_callback", "_handle", "_last", "period")

    def __init__(self, period: float, callback: Callable[[], None]) -> None:
        self.period = period
        self._callback = callback
        self._handle: asyncio.Handle | None = None
        self._last = float("-inf")

    @property
    def pending(self) -> bool:
        return self._handle is not None

    def poke(self) -> None:
        if self._handle is not None:
            return  # a run is due already: it will see what this poke was about
        loop = asyncio.get_running_loop()
        at = self._last + self.period
        if at <= loop.time():
            self._handle = loop.call_soon(self._run)
        else:
            self._handle = loop.call_at(at, self._run)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _run(self) -> None:
        self._handle = None
        self._last = asyncio.get_running_loop().time()
        try:
            self._callback()
        except Exception:
            log.exception("a tick of %r failed", self._callback)
