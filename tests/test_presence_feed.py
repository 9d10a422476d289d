"""The presence feed of one room in one process: changes applied once (late or repeated ones
ignored by version), each rendered once for every subscriber of the same document, and a
subscriber whose socket backs up is caught up with a fresh SYNC. Real registry, hub and feed;
the socket is a stand-in whose send blocks while its gate is closed."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from app.graphql.schema import build_schema, hot_fields
from app.graphql.ws.plans import PlanCache
from app.graphql.ws.stream import FastStream
from app.presence.service import PresenceService
from app.realtime.hub import Hub
from app.realtime.outbox import Outbox
from app.realtime.presence_registry import MemoryPresenceRegistry, PresenceEntry
from app.settings import Settings
from tests.test_outbox import Socket, drained

DOCUMENT = """subscription($r: UUID!) { roomPresence(roomId: $r) { kind
  users { userId connections { connectionId presence } } joins { userId } leaves { userId }
  updates { userId connections { presence } } } }"""
ROOM = "00000000-0000-4000-8000-000000000001"


class Activity:
    last_activity = time.time()


@pytest.fixture
async def service():  # type: ignore[no-untyped-def]
    hub = Hub.from_settings(Settings())  # in memory: this test is about one process
    await hub.start()
    presence = PresenceService(MemoryPresenceRegistry(), hub, grace_s=0)
    yield presence
    await presence.feeds.stop()
    await hub.stop()


def _stream(op_id: str, socket: Socket, **limits: Any) -> FastStream:
    renderer = PlanCache(build_schema(), hot_fields(), Settings()).get(DOCUMENT, None).payload_renderer({})  # type: ignore[union-attr]
    return FastStream(
        op_id,
        renderer,
        Outbox(socket.send, **limits),
        lambda s: None,
        response_key="roomPresence",
        request_id="t",
    )


def _payloads(socket: Socket) -> list[dict[str, Any]]:
    return [json.loads(frame)["payload"]["data"]["roomPresence"] for frame in socket.frames]


async def _join(service: PresenceService, user: str, presence: dict[str, Any] | None = None) -> PresenceEntry:
    entry, _ = await service.join(
        ROOM, user_id=user, info={}, status="online", presence=presence or {}, ttl_s=30, activity=Activity
    )
    return entry


async def test_each_change_is_rendered_once_and_sent_to_every_subscriber(service: PresenceService) -> None:
    feed = await service.feeds.acquire(ROOM)
    sockets = [Socket(), Socket()]
    renderer_shared = (
        PlanCache(build_schema(), hot_fields(), Settings()).get(DOCUMENT, None).payload_renderer({})
    )  # type: ignore[union-attr]
    streams = [
        FastStream(
            str(i),
            renderer_shared,
            Outbox(s.send),
            lambda s: None,
            response_key="roomPresence",
            request_id="t",
        )
        for i, s in enumerate(sockets)
    ]
    for stream in streams:
        feed.add(stream, f"own-{stream.id}")
    ada = await _join(service, "ada")
    await service.update(ROOM, ada.entry_id, status="away", presence={"page": 2})
    await service.update(ROOM, ada.entry_id, status="away", presence={"page": 2})  # no news
    await service.leave(ROOM, ada.entry_id, dropped=False)
    kinds = [(p["kind"], p["joins"], p["updates"], p["leaves"]) for p in _payloads(sockets[0])]
    assert [k[0] for k in kinds] == ["SYNC", "DIFF", "DIFF", "DIFF"]
    assert kinds[1][1] == [{"userId": "ada"}] and kinds[2][2][0]["connections"] == [{"presence": {"page": 2}}]
    assert kinds[3][3] == [{"userId": "ada"}]
    # The same text went to both; only the operation id in the envelope differs.
    assert [json.loads(f)["payload"] for f in sockets[0].frames] == [
        json.loads(f)["payload"] for f in sockets[1].frames
    ]


async def test_repeated_late_and_stale_changes_are_ignored(service: PresenceService) -> None:
    feed = await service.feeds.acquire(ROOM)
    socket = Socket()
    feed.add(_stream("1", socket), "own")
    ada = await _join(service, "ada", {"v": 1})
    echo = PresenceEntry.from_json(ada.to_json())  # what the hub would bring back
    await service.update(ROOM, ada.entry_id, status=None, presence={"v": 2})
    feed.apply("join", echo)  # older than what the feed holds
    feed.apply("update", echo)
    gone = PresenceEntry.from_json(ada.to_json())
    await service.leave(ROOM, ada.entry_id, dropped=False)
    feed.apply("join", gone)  # a join arriving after the leave
    kinds = [
        p["kind"] + ":" + ",".join(u["userId"] for u in p["joins"] + p["updates"] + p["leaves"])
        for p in _payloads(socket)
    ]
    assert kinds == ["SYNC:", "DIFF:ada", "DIFF:ada", "DIFF:ada"]
    assert feed.users == {}


async def test_a_subscriber_whose_socket_backs_up_gets_a_fresh_sync(service: PresenceService) -> None:
    feed = await service.feeds.acquire(ROOM)
    slow_socket, fast_socket = Socket(), Socket()
    slow, fast = _stream("1", slow_socket, max_frames=5), _stream("2", fast_socket)
    feed.add(slow, "own-1")
    feed.add(fast, "own-2")
    ada = await _join(service, "ada")
    slow_socket.gate.clear()
    for step in range(50):
        await service.update(ROOM, ada.entry_id, status=None, presence={"step": step})
    assert len(_payloads(fast_socket)) == 52  # SYNC, join, 50 updates: the fast one lost nothing
    slow_socket.gate.set()
    await drained(slow.outbox)
    received = _payloads(slow_socket)
    assert len(received) < 52
    last = received[-1]
    assert last["kind"] == "SYNC" and last["users"][0]["connections"][0]["presence"] == {"step": 49}


async def test_a_reaped_subscriber_stream_completes(service: PresenceService) -> None:
    feed = await service.feeds.acquire(ROOM)
    socket = Socket()
    ended: list[FastStream] = []
    stream = _stream("1", socket)
    stream._ender = ended.append  # type: ignore[assignment]
    ada = await _join(service, "ada")
    feed.add(stream, ada.entry_id)
    await service._remove_and_publish(ROOM, ada.entry_id)  # what the reaper does
    await asyncio.sleep(0)
    assert ended == [stream]
    # Its SYNC, then `complete`: the reaped connection is not sent its own leave.
    assert [json.loads(f)["type"] for f in socket.frames] == ["next", "complete"]
