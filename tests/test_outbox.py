"""The per-connection outbox: writes at once while the socket takes frames, queues (bounded) while
it does not, and drops a lagging stream's frames in favour of its resync. The socket here is a
stand-in whose send suspends while its gate is closed, as uvicorn's does while the transport is
paused; tests/test_slow_consumers.py shows the same through real sockets."""

from __future__ import annotations

import asyncio
from typing import Any

from app.realtime.outbox import Outbox


class Socket:
    def __init__(self) -> None:
        self.frames: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.broken = False

    async def send(self, message: dict[str, Any]) -> None:
        await self.gate.wait()  # returns without suspending while the gate is open
        if self.broken:
            raise OSError("connection reset")
        self.frames.append(message["text"])


SPIN_GUARD = 50  # more resyncs than this in one test: the outbox spins (the stream then fails it)


class Stream:
    def __init__(self, outbox: Outbox, name: str, full_size: int = 0) -> None:
        self.outbox = outbox
        self.name = name
        self.full = f"{name}:full" + "x" * full_size
        self.resyncs = 0

    def resync(self) -> None:
        self.resyncs += 1
        if self.resyncs > SPIN_GUARD:
            raise RuntimeError("resynced again and again: the outbox spins")
        self.outbox.push(self.full, self)


class SlowSocket(Socket):
    """A reader that takes one frame per turn of the event loop: every send suspends once."""

    async def send(self, message: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        await super().send(message)


class Ticker:
    """Counts turns of the event loop: it only advances while nothing hogs the loop."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    def stop(self) -> None:
        self._task.cancel()


class TickedStream(Stream):
    """Notes the loop's tick at each resync."""

    def __init__(self, outbox: Outbox, name: str, ticker: Ticker, full_size: int) -> None:
        super().__init__(outbox, name, full_size)
        self.ticker = ticker
        self.resynced_at: list[int] = []

    def resync(self) -> None:
        self.resynced_at.append(self.ticker.ticks)
        super().resync()


def overflow(outbox: Outbox, stream: Stream, frames: int = 20, size: int = 500) -> None:
    for i in range(frames):
        outbox.push(f"{stream.name}:{i}" + "x" * size, stream)


async def drained(outbox: Outbox) -> None:
    for _ in range(1000):
        if not outbox.blocked:
            return
        await asyncio.sleep(0)
    raise AssertionError("the outbox never drained")


async def test_frames_are_written_at_once_while_the_socket_takes_them() -> None:
    socket = Socket()
    outbox = Outbox(socket.send)
    for frame in ("a", "b", "c"):
        outbox.push(frame)
    assert socket.frames == ["a", "b", "c"]  # synchronously: no task, no queue
    assert not outbox.blocked


async def test_a_blocked_socket_queues_frames_in_order() -> None:
    socket = Socket()
    outbox = Outbox(socket.send)
    socket.gate.clear()
    for frame in ("a", "b", "c"):
        outbox.push(frame)
    assert socket.frames == [] and outbox.blocked
    socket.gate.set()
    await drained(outbox)
    assert socket.frames == ["a", "b", "c"]
    outbox.push("d")
    assert socket.frames[-1] == "d"  # direct again


async def test_a_lagging_stream_loses_its_frames_and_resyncs_after_the_drain() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, max_frames=4)
    slow, other = Stream(outbox, "slow"), Stream(outbox, "other")
    socket.gate.clear()
    outbox.push("first")  # waits in the writer
    outbox.push("other:1", other)
    for i in range(10):
        outbox.push(f"slow:{i}", slow)
    outbox.push("protocol")  # never dropped
    assert slow.resyncs == 0
    socket.gate.set()
    await drained(outbox)
    assert socket.frames == ["first", "other:1", "protocol", "slow:full"]
    assert (slow.resyncs, other.resyncs) == (1, 0)


async def test_a_stream_that_ended_is_not_resynced() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, max_frames=2)
    stream = Stream(outbox, "s")
    socket.gate.clear()
    outbox.push("first")
    for i in range(5):
        outbox.push(f"s:{i}", stream)
    outbox.forget(stream)
    socket.gate.set()
    await drained(outbox)
    assert stream.resyncs == 0 and all(not f.startswith("s:") for f in socket.frames[1:])


async def test_protocol_frames_alone_overflowing_close_the_connection() -> None:
    socket = Socket()
    closed: list[tuple[int, str]] = []

    async def close(code: int, reason: str) -> None:
        closed.append((code, reason))

    outbox = Outbox(socket.send, max_frames=3, close_connection=close)
    socket.gate.clear()
    for i in range(10):
        outbox.push(f"pong {i}")
    await asyncio.sleep(0)
    assert closed == [(1008, "too many unread messages")] and outbox.closed
    outbox.push("ignored")  # a closed outbox takes nothing


async def test_the_byte_limit_bounds_the_queue_too() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, max_frames=1000, max_bytes=10_000)
    stream = Stream(outbox, "big")
    socket.gate.clear()
    outbox.push("first")
    for _ in range(50):
        outbox.push("x" * 1000, stream)
    assert outbox._bytes <= 10_000
    socket.gate.set()
    await drained(outbox)
    assert stream.resyncs == 1 and socket.frames[-1] == "big:full"


async def test_a_socket_that_breaks_ends_the_outbox_quietly() -> None:
    socket = Socket()
    outbox = Outbox(socket.send)
    socket.broken = True
    outbox.push("a")  # raises inside the send: caught
    assert outbox.closed
    socket.broken, socket.gate = False, asyncio.Event()
    outbox.push("b")
    assert socket.frames == []


async def test_waiting_producers_are_held_back_while_the_queue_is_long() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, max_frames=4)
    socket.gate.clear()
    outbox.push("first")
    sends = [asyncio.ensure_future(outbox.send(f"m{i}")) for i in range(3)]
    await asyncio.sleep(0.01)
    assert not all(s.done() for s in sends)  # the queue is past half full: they wait
    socket.gate.set()
    await asyncio.wait_for(asyncio.gather(*sends), 2)
    assert socket.frames == ["first", "m0", "m1", "m2"]


async def test_a_resync_larger_than_the_budget_is_sent_alone() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, max_bytes=1000)
    doc = Stream(outbox, "doc", full_size=5000)
    socket.gate.clear()
    outbox.push("first")
    overflow(outbox, doc)
    socket.gate.set()
    await drained(outbox)
    assert doc.resyncs == 1 and socket.frames[-1] == doc.full
    assert not outbox.closed and outbox._bytes == 0


async def test_the_drain_lets_the_loop_run_and_every_stale_stream_resyncs_once() -> None:
    socket = SlowSocket()
    outbox = Outbox(socket.send, max_bytes=1000)
    ticker = Ticker()
    streams = [TickedStream(outbox, f"doc{i}", ticker, full_size=2000) for i in range(5)]
    socket.gate.clear()
    outbox.push("first")
    for stream in streams:
        overflow(outbox, stream)
    socket.gate.set()
    await drained(outbox)
    ticker.stop()
    assert [s.resyncs for s in streams] == [1] * 5
    assert socket.frames[1:] == [s.full for s in streams]  # in the order they went stale
    # Each full state waited for the socket to take the one before: the loop ran in between.
    resynced_at = [tick for s in streams for tick in s.resynced_at]
    assert resynced_at == sorted(set(resynced_at))


async def test_resyncs_that_together_exceed_the_budget_each_run_once() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, max_bytes=1000)
    streams = [Stream(outbox, f"s{i}", full_size=600) for i in range(3)]
    socket.gate.clear()
    outbox.push("first")
    for stream in streams:
        overflow(outbox, stream)
    socket.gate.set()
    await drained(outbox)
    assert [s.resyncs for s in streams] == [1, 1, 1]  # none wasted on a state that did not fit
    assert socket.frames[1:] == [s.full for s in streams] and outbox._bytes == 0


async def test_frames_wait_behind_an_oversized_frame_within_the_budget() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, max_bytes=1000)
    doc, other = Stream(outbox, "doc", full_size=5000), Stream(outbox, "other")
    socket.gate.clear()
    outbox.push("first")  # waits in the writer: the queue is empty
    big = "doc:big" + "x" * 3000
    outbox.push(big, doc)  # let in alone
    outbox.push("pong")  # neither dropped nor dropping it
    outbox.push("doc:next", doc)
    overflow(outbox, other, frames=3)  # the budget still bounds what waits behind it
    socket.gate.set()
    await drained(outbox)
    assert socket.frames[:4] == ["first", big, "pong", "doc:next"] and not outbox.closed
    assert (doc.resyncs, other.resyncs) == (0, 1) and socket.frames[-1] == other.full


async def test_an_oversized_protocol_frame_is_sent_not_taken_for_a_reader_that_stopped() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, max_bytes=1000)
    socket.gate.clear()
    outbox.push("first")
    outbox.push("answer" + "x" * 5000)
    outbox.push("complete")
    socket.gate.set()
    await drained(outbox)
    assert [f[:6] for f in socket.frames] == ["first", "answer", "comple"] and not outbox.closed


async def test_closing_during_a_resync_pass_ends_it() -> None:
    socket = Socket()
    outbox = Outbox(socket.send, max_bytes=1000)
    first, second = Stream(outbox, "a"), Stream(outbox, "b")
    first.resync = outbox.close  # type: ignore[method-assign]
    socket.gate.clear()
    outbox.push("first")
    overflow(outbox, first)
    overflow(outbox, second)
    socket.gate.set()
    await drained(outbox)
    assert second.resyncs == 0 and socket.frames == ["first"]


async def test_a_socket_that_dies_while_resyncs_wait_ends_them() -> None:
    socket = SlowSocket()
    outbox = Outbox(socket.send, max_bytes=1000)
    streams = [Stream(outbox, f"doc{i}", full_size=2000) for i in range(3)]
    socket.gate.clear()
    outbox.push("first")
    for stream in streams:
        overflow(outbox, stream)
    socket.gate.set()
    for _ in range(1000):
        if len(socket.frames) == 2:  # the first full state went out
            break
        await asyncio.sleep(0)
    socket.broken = True
    await drained(outbox)
    assert outbox.closed and [s.resyncs for s in streams] == [1, 1, 0]
