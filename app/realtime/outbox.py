"""One connection's outgoing frames: written at once while the socket takes them, queued (bounded)
while it does not, so one slow reader never stalls a fan-out and never grows memory.

A fan-out calls `push` for each receiver. While the socket's buffer has room, ASGI's send runs to
completion synchronously (uvicorn only suspends when the transport is paused), so `push` drives
the send coroutine by hand and no task or queue is involved: the per-receiver cost is the write.
When a send does suspend, a writer task takes over and later frames wait in a bounded queue.

Frames belong to a stream (one subscription) or to the connection itself (protocol messages).
When the queue is full, the stream being pushed loses its queued frames and is marked stale;
once the socket drains, each stale stream's `resync()` sends what replaces them: a fresh full
state, the latest cursors, or an error that ends it. Protocol frames are never dropped: if they
alone overflow the queue the client is not reading at all, and the connection is closed.

The byte budget bounds the backlog, not a frame: a frame larger than the budget could never fit,
so it is let in alone, into an empty queue (its size is bounded by its producer's own limit, such
as the document size), and the budget then bounds what waits behind it. Resyncs run in passes
once the queue is sent, oldest stale stream first: a resync starts only while the queue has room
and is then let in whole, so each stale stream is resynced once, and the rest wait for the next
pass, after the socket took what is queued. The writer never loops without awaiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Protocol

log = logging.getLogger(__name__)

CLOSE_NOT_READING = 1008  # policy violation: the client does not read what it asked for


class Stream(Protocol):
    def resync(self) -> None:
        """The socket drained after this stream's frames were dropped: send what replaces them."""


_DONE = object()
_NO_QUEUE: deque[Any] = deque(maxlen=0)  # shared and always empty (appending to it drops)


def _start(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run `coroutine` until it finishes (then _DONE) or first suspends (then what it waits on)."""
    try:
        return coroutine.send(None)
    except StopIteration:
        return _DONE


class _Continue:
    """Awaited inside a task, carries on a coroutine that `_start` began and that suspended."""

    __slots__ = ("_awaited", "_coroutine")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], awaited: Any) -> None:
        self._coroutine = coroutine
        self._awaited = awaited

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, value = self._coroutine, self._awaited
        while True:
            try:
                sent = yield value  # the task waits on what the coroutine waits on
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as error:  # cancellation too: it goes into the coroutine
                try:
                    value = coroutine.throw(error)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coroutine.send(sent)
                except StopIteration as stop:
                    return stop.value


class Outbox:
    __slots__ = (
        "_bytes",
        "_drained",
        "_queue",
        "_resyncing",
        "_send",
        "_stale",
        "_writer",
        "close_connection",
        "closed",
        "max_bytes",
        "max_frames",
    )

    def __init__(
        self,
        send: Callable[[dict[str, Any]], Awaitable[None]],
        *,
        max_frames: int = 256,
        max_bytes: int = 1 << 20,
        close_connection: Callable[[int, str], Awaitable[None]] | None = None,
    ) -> None:
        self._send = send  # the connection's ASGI-level send (Starlette's WebSocket.send)
        # Created when the socket first blocks (an empty deque is 760 bytes; most never block).
        self._queue: deque[tuple[Stream | None, str]] = _NO_QUEUE
        self._bytes = 0
        self._stale: dict[Stream, None] = {}  # in the order they went stale
        self._resyncing: Stream | None = None
        self._writer: asyncio.Task[None] | None = None
        self._drained: asyncio.Event | None = None
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.close_connection = close_connection
        self.closed = False

    @property
    def blocked(self) -> bool:
        """True while earlier frames wait for the socket: a coalescing stream should wait too."""
        return self._writer is not None

    def push(self, frame: str, stream: Stream | None = None) -> None:
        if self.closed:
            return
        if self._writer is None:
            self._write_now(frame)
            return
        if stream is not None and stream in self._stale:
            return  # superseded by the resync it will get once the socket drains
        if not self._fits(frame, stream):
            if stream is not None:
                self.mark_stale(stream)
                return
            self._shed()
            if not self._fits(frame):
                self._give_up()
                return
        if self._queue is _NO_QUEUE:
            self._queue = deque()
        self._queue.append((stream, frame))
        self._bytes += len(frame)

    def mark_stale(self, stream: Stream) -> None:
        """Drop `stream`'s queued frames; it resyncs once the socket drains."""
        if self.closed:
            return
        if self._queue:
            kept = deque(item for item in self._queue if item[0] is not stream)
            if len(kept) != len(self._queue):
                self._queue = kept
                self._bytes = sum(len(frame) for _, frame in kept)
        self._stale[stream] = None
        if self._writer is None:  # the socket is free already
            self._resync_stale()

    def forget(self, stream: Stream) -> None:
        """The stream ended: its frames still queued are sent, but it is never resynced."""
        self._stale.pop(stream, None)

    async def send(self, frame: str) -> None:
        """Push a protocol frame and wait while the queue is long (backpressure for producers
        that can wait, such as Strawberry's own operation tasks)."""
        self.push(frame)
        while self._writer is not None and len(self._queue) > self.max_frames // 2 and not self.closed:
            if self._drained is None:
                self._drained = asyncio.Event()
            await self._drained.wait()

    def close(self) -> None:
        self.closed = True
        self._queue = _NO_QUEUE
        self._bytes = 0
        self._stale.clear()
        if self._writer is not None:
            self._writer.cancel()  # its `finally` never runs if it had not started yet
            self._writer = None
        if self._drained is not None:
            self._drained.set()

    def _write_now(self, frame: str) -> None:
        coroutine = self._send({"type": "websocket.send", "text": frame})
        try:
            awaited = _start(coroutine)  # type: ignore[arg-type]
        except Exception:
            self._lost()
            return
        if awaited is not _DONE:
            # The socket's buffer is full: a writer finishes this send, then drains the queue.
            self._writer = asyncio.ensure_future(self._drain(_Continue(coroutine, awaited)))  # type: ignore[arg-type]

    def _fits(self, frame: str, stream: Stream | None = None) -> bool:
        if not self._queue:
            return True  # even a frame larger than the budget: it could never fit otherwise
        if stream is not None and stream is self._resyncing:
            return True  # begun while there was room (see _resync_stale): let in whole
        return len(self._queue) < self.max_frames and self._backlog() + len(frame) <= self.max_bytes

    def _has_room(self) -> bool:
        return not self._queue or (len(self._queue) < self.max_frames and self._bytes < self.max_bytes)

    def _backlog(self) -> int:
        """Queued bytes the budget counts: a frame larger than it, let in alone, is next to go
        (as good as sent), so what may wait behind it is bounded as behind any other send."""
        head = len(self._queue[0][1]) if self._queue else 0
        return self._bytes - head if head > self.max_bytes else self._bytes

    async def _drain(self, pending: _Continue) -> None:
        try:
            await pending
            while self._queue or self._stale:
                await self._send_queued()
                self._resync_stale()
                if self._stale and not self._queue:
                    # Only a stream that marked itself stale in its resync gets here: yield
                    # rather than spin, so every turn of this loop awaits something.
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._lost()
        finally:
            self._writer = None
            if self._drained is not None:
                self._drained.set()

    async def _send_queued(self) -> None:
        while self._queue:
            _, frame = self._queue.popleft()
            self._bytes -= len(frame)
            if self._drained is not None and len(self._queue) <= self.max_frames // 2:
                self._drained.set()
            await self._send({"type": "websocket.send", "text": frame})

    def _resync_stale(self) -> None:
        """One pass over the streams stale now, oldest first, while the queue has room: a pass
        always ends, and computes no more full states than the socket is about to take."""
        for stream in list(self._stale):
            if self.closed or not self._has_room():
                return
            if stream not in self._stale:
                continue  # forgotten by an earlier resync of this pass
            del self._stale[stream]
            outer, self._resyncing = self._resyncing, stream
            try:
                stream.resync()
            except Exception:
                log.exception("resync of a lagging stream failed")
            finally:
                self._resyncing = outer

    def _shed(self) -> None:
        """Make room for a protocol frame: every stream with frames queued goes stale."""
        for stream in {s for s, _ in self._queue if s is not None}:
            self.mark_stale(stream)

    def _give_up(self) -> None:
        log.info("closing a connection that does not read its messages")
        close = self.close_connection
        self.close()
        if close is not None:
            task = asyncio.ensure_future(close(CLOSE_NOT_READING, "too many unread messages"))
            task.add_done_callback(_ignore_result)

    def _lost(self) -> None:
        """The socket is gone (closed under us): nothing more can be sent."""
        self.closed = True
        self._queue = _NO_QUEUE
        self._bytes = 0
        self._stale.clear()


def _ignore_result(task: asyncio.Task[Any]) -> None:
    with contextlib.suppress(BaseException):
        task.exception()
