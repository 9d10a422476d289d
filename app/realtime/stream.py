"""One live hot subscription on one connection: what a feed sends to, and how it ends.

Feeds (app/realtime, app/presence, app/cursors, app/documents) only know this class; the
protocol adapter (app/graphql/ws) subclasses it to say how an error is written.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from app.realtime.outbox import Outbox
from app.realtime.rendering import PayloadRenderer

log = logging.getLogger(__name__)


def next_head(op_id: str) -> str:
    """The start of a `next` frame; the payload and a closing brace follow."""
    return '{"id":' + json.dumps(op_id) + ',"type":"next","payload":'


def complete_frame(op_id: str) -> str:
    return '{"id":' + json.dumps(op_id) + ',"type":"complete"}'


class Stream:
    """Feeds call `send(payload)` with a payload rendered once for all streams sharing
    `renderer`; only the frame's head (this operation's id) is per stream."""

    __slots__ = (
        "_ender",
        "ended",
        "head",
        "id",
        "key",
        "on_end",
        "on_resync",
        "outbox",
        "recheck",
        "renderer",
        "request_id",
        "response_key",
        "tail",
        "view",
    )

    def __init__(
        self,
        op_id: str,
        renderer: PayloadRenderer,
        outbox: Outbox,
        ender: Callable[[Stream], None],
        *,
        response_key: str,
        request_id: str,
    ) -> None:
        self.id = op_id
        self.response_key = response_key
        self.request_id = request_id
        self.head = next_head(op_id)
        self.tail = complete_frame(op_id)
        self.renderer = renderer
        self.outbox = outbox
        self._ender = ender  # forgets the stream in its connection
        self.ended = False
        # Set by the feed: what to send after the socket drained past dropped frames, and what to
        # undo when the stream ends (`dropped`: the connection vanished rather than said goodbye).
        self.on_resync: Callable[[Stream], None] | None = None
        self.on_end: Callable[[bool], Awaitable[None]] | None = None
        # Set by the handler: authorizes the stream again (raises a DomainError to end it).
        self.recheck: Callable[[], Awaitable[object]] | None = None
        # The feed's per-stream data: `key` leaves the stream out of events about itself (its own
        # connection or user), `view` holds anything else the feed needs.
        self.key: Any = None
        self.view: Any = None

    def send(self, payload: str) -> None:
        if not self.ended:
            self.outbox.push(self.head + payload + "}", self)

    def resync(self) -> None:
        if not self.ended and self.on_resync is not None:
            self.on_resync(self)

    def finish(self, error_text: str | None = None) -> None:
        """The server ends the stream: an optional last payload (an error), then `complete`."""
        if self.ended:
            return
        self.ended = True
        if error_text is not None:
            self.outbox.push(self.head + error_text + "}")
        self.outbox.push(self.tail)
        self.outbox.forget(self)
        self._ender(self)
        _spawn(self._undo(dropped=False))

    def fail(self, error: Exception) -> None:
        """End the stream with a coded error (as `next` with errors, then `complete`)."""
        self.finish(self.error_text(error))

    def error_text(self, error: Exception) -> str:
        """The payload that carries `error` (the protocol adapter's subclass writes it)."""
        raise NotImplementedError

    async def close(self, *, dropped: bool) -> None:
        """The client completed it, or the connection ended: undo what `open` did."""
        self.ended = True
        self.outbox.forget(self)
        await self._undo(dropped=dropped)

    async def _undo(self, *, dropped: bool) -> None:
        on_end, self.on_end = self.on_end, None  # once, whoever ends the stream
        if on_end is not None:
            try:
                await on_end(dropped)
            except Exception:
                log.exception("ending stream %s failed", self.id)


_background: set[asyncio.Task[Any]] = set()


def _spawn(coroutine: Awaitable[None]) -> None:
    task = asyncio.ensure_future(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)
