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


class Stream:
    def __init__(self, outbox: Outbox, name: str) -> None:
        self.outbox = outbox
        self.name = name
        self.resyncs = 0

    def resync(self) -> None:
        self.resyncs += 1
        self.outbox.push(f"{self.name}:full", self)


async def drained(outbox: Outbox) -> None:
    for _ in range(100):
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
