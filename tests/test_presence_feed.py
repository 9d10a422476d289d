"""The presence feed of one room in one process, batched per tick: changes applied once (late or
repeated ones ignored by version), merged into one diff per tick rendered once for every
subscriber of the same document, new subscribers and those whose socket backed up caught up
with a SYNC. Real registry, hub and feed (and real Redis for two processes); the socket is a
stand-in whose send blocks while its gate is closed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.graphql.schema import build_schema, hot_fields
from app.graphql.ws.plans import PlanCache
from app.graphql.ws.stream import FastStream
from app.presence.service import PresenceService
from app.realtime.hub import Hub
from app.realtime.outbox import Outbox
from app.realtime.presence_registry import MemoryPresenceRegistry, PresenceEntry, RedisPresenceRegistry
from app.realtime.redis_client import redis_client
from app.realtime.rendering import PayloadRenderer
from app.settings import Settings
from tests.backends import REDIS_URL
from tests.test_outbox import Socket, drained

DOCUMENT = """subscription($r: UUID!) { roomPresence(roomId: $r) { kind connectionId
  users { userId connections { connectionId presence } } joins { userId connections { connectionId } }
  leaves { userId } updates { userId connections { presence } } } }"""
ROOM = "00000000-0000-4000-8000-000000000001"
TICK_S = 0.05
CLUSTER_TICK_S = 0.5  # long enough that a burst of concurrent joins fits in one tick
RENDERER = PlanCache(build_schema(), hot_fields(), Settings()).get(DOCUMENT, None).payload_renderer({})  # type: ignore[union-attr]


class _Now(type):
    @property
    def last_activity(cls) -> float:
        return time.time()  # a socket heard from just now, whenever asked


class Activity(metaclass=_Now):
    pass


@pytest.fixture
async def service() -> AsyncIterator[PresenceService]:
    hub = Hub.from_settings(Settings())  # in memory: one process
    await hub.start()
    presence = PresenceService(MemoryPresenceRegistry(), hub, grace_s=0, tick_s=TICK_S)
    yield presence
    await presence.feeds.stop()
    await hub.stop()


def _stream(op_id: str, socket: Socket, renderer: PayloadRenderer = RENDERER, **limits: Any) -> FastStream:
    outbox = Outbox(socket.send, **limits)
    return FastStream(op_id, renderer, outbox, lambda s: None, response_key="roomPresence", request_id="t")


def _payloads(socket: Socket) -> list[dict[str, Any]]:
    return [json.loads(frame)["payload"]["data"]["roomPresence"] for frame in socket.frames]


async def _join(service: PresenceService, user: str, presence: dict[str, Any] | None = None) -> PresenceEntry:
    entry, _ = await service.join(
        ROOM, user_id=user, info={}, status="online", presence=presence or {}, ttl_s=30, activity=Activity
    )
    return entry


async def _ticks(n: int = 2) -> None:
    """Let the ticks due by now run (a tick comes at most one period after a change)."""
    await asyncio.sleep(TICK_S * n + 0.01)


async def test_changes_within_a_tick_reach_each_subscriber_as_one_diff(service: PresenceService) -> None:
    feed = await service.feeds.acquire(ROOM)
    sockets = [Socket(), Socket()]
    streams = [_stream(str(i), s) for i, s in enumerate(sockets)]
    for stream in streams:
        feed.add(stream, f"own-{stream.id}")
    await _ticks()
    assert [[p["kind"] for p in _payloads(s)] for s in sockets] == [["SYNC"], ["SYNC"]]
    assert [_payloads(s)[0]["connectionId"] for s in sockets] == ["own-0", "own-1"]

    # A burst of 50 joins (and a join that is updated, and one that comes and goes) in one tick.
    entries = [await _join(service, f"user-{i:02}") for i in range(50)]
    await service.update(ROOM, entries[0].entry_id, status="away", presence={"page": 2})
    ghost = await _join(service, "ghost")
    await service.leave(ROOM, ghost.entry_id, dropped=False)
    await _ticks()
    for socket in sockets:
        _sync, diff = _payloads(socket)
        assert diff["kind"] == "DIFF" and diff["updates"] == [] and diff["leaves"] == []
        assert [u["userId"] for u in diff["joins"]] == [f"user-{i:02}" for i in range(50)]
    # The same diff text went to both; only the operation id in the envelope differs.
    assert sockets[0].frames[1].replace('"id":"0"', '"id":"1"', 1) == sockets[1].frames[1]

    # Later changes, each in its own tick; a change to nothing visible is not news.
    await service.update(ROOM, entries[1].entry_id, status="away", presence={"page": 3})
    await _ticks()
    await service.update(ROOM, entries[1].entry_id, status="away", presence={"page": 3})
    await _ticks()
    await service.leave(ROOM, entries[1].entry_id, dropped=False)
    await service.leave(ROOM, entries[2].entry_id, dropped=False)
    await _ticks()
    later = _payloads(sockets[0])[2:]
    assert [(p["updates"], [u["userId"] for u in p["leaves"]]) for p in later] == [
        ([{"userId": "user-01", "connections": [{"presence": {"page": 3}}]}], []),
        ([], ["user-01", "user-02"]),
    ]
    assert feed.frames == 2 * 4


async def test_a_new_subscriber_gets_the_whole_state_then_only_what_changed_since(
    service: PresenceService,
) -> None:
    feed = await service.feeds.acquire(ROOM)
    ada = await _join(service, "ada")
    socket = Socket()
    feed.add(_stream("1", socket), ada.entry_id)
    await _join(service, "bob")  # in the same tick as the subscription: part of its SYNC
    await _ticks()
    await _join(service, "cyd")
    await _ticks()
    sync, diff = _payloads(socket)
    assert sync["kind"] == "SYNC" and sync["connectionId"] == ada.entry_id
    assert [u["userId"] for u in sync["users"]] == ["ada", "bob"]
    assert [u["userId"] for u in diff["joins"]] == ["cyd"]


async def test_with_others_a_subscriber_never_hears_about_its_own_user(service: PresenceService) -> None:
    feed = await service.feeds.acquire(ROOM)
    ada = await _join(service, "ada")
    socket = Socket()
    stream = _stream("1", socket)
    stream.key = "ada"  # `others: true`
    feed.add(stream, ada.entry_id)
    await _ticks()
    await _join(service, "ada")  # a second tab of ada's: nothing for ada
    await _ticks()
    await _join(service, "ada")
    await _join(service, "bob")  # ada's and bob's joins in one tick: ada hears of bob only
    await _ticks()
    sync, diff = _payloads(socket)
    assert sync["users"] == []
    assert [u["userId"] for u in diff["joins"]] == ["bob"]


async def test_repeated_late_and_stale_changes_are_ignored(service: PresenceService) -> None:
    feed = await service.feeds.acquire(ROOM)
    socket = Socket()
    feed.add(_stream("1", socket), "own")
    ada = await _join(service, "ada", {"v": 1})
    echo = PresenceEntry.from_json(ada.to_json())  # what the hub would bring back
    await _ticks()
    await service.update(ROOM, ada.entry_id, status=None, presence={"v": 2})
    feed.apply("join", echo)  # older than what the feed holds
    feed.apply("update", echo)
    await _ticks()
    gone = PresenceEntry.from_json(ada.to_json())
    await service.leave(ROOM, ada.entry_id, dropped=False)
    await _ticks()
    feed.apply("join", gone)  # a join arriving after the leave
    await _ticks()
    kinds = [
        p["kind"] + ":" + ",".join(u["userId"] for u in p["users"] + p["joins"] + p["updates"] + p["leaves"])
        for p in _payloads(socket)
    ]
    assert kinds == ["SYNC:ada", "DIFF:ada", "DIFF:ada"]
    assert _payloads(socket)[1]["updates"][0]["connections"] == [{"presence": {"v": 2}}]
    assert feed.users == {}


async def test_a_subscriber_whose_socket_backs_up_gets_a_fresh_sync(service: PresenceService) -> None:
    feed = await service.feeds.acquire(ROOM)
    slow_socket, fast_socket = Socket(), Socket()
    slow, fast = _stream("1", slow_socket, max_frames=5), _stream("2", fast_socket)
    feed.add(slow, "own-1")
    feed.add(fast, "own-2")
    ada = await _join(service, "ada")
    await _ticks()
    slow_socket.gate.clear()
    for step in range(20):
        await service.update(ROOM, ada.entry_id, status=None, presence={"step": step})
        await _ticks(1)
    assert len(_payloads(fast_socket)) == 21  # SYNC, then one diff per tick: it lost nothing
    slow_socket.gate.set()
    await drained(slow.outbox)
    await _ticks()
    received = _payloads(slow_socket)
    assert len(received) < 21
    last = received[-1]
    assert last["kind"] == "SYNC" and last["users"][0]["connections"][0]["presence"] == {"step": 19}


async def test_an_expired_subscriber_stream_ends_with_a_code(service: PresenceService) -> None:
    feed = await service.feeds.acquire(ROOM)
    socket = Socket()
    ended: list[FastStream] = []
    stream = _stream("1", socket)
    stream._ender = ended.append  # type: ignore[assignment]
    ada = await _join(service, "ada")
    feed.add(stream, ada.entry_id)
    await _ticks()
    await service._remove_and_publish(ROOM, ada.entry_id)  # what expiry does
    await _ticks()
    assert ended == [stream]
    # Its SYNC, then an error with a code and `complete`: never a silent end.
    frames = [json.loads(f) for f in socket.frames]
    assert [f["type"] for f in frames] == ["next", "next", "complete"]
    assert frames[1]["payload"]["errors"][0]["extensions"]["code"] == "PRESENCE_EXPIRED"


async def test_a_silent_connection_expires_in_its_own_process(service: PresenceService) -> None:
    class Silent:
        last_activity = time.time() - 60  # no message or pong for a minute

    feed = await service.feeds.acquire(ROOM)
    socket = Socket()
    feed.add(_stream("1", socket), "own")
    live = await _join(service, "live")
    silent, _ = await service.join(
        ROOM, user_id="ghost", info={}, status="online", presence={}, ttl_s=30, activity=Silent
    )
    await _ticks()
    await service._expire_silent()
    await _ticks()
    assert [u["userId"] for u in _payloads(socket)[-1]["leaves"]] == ["ghost"]
    assert [e.entry_id for e in await service.entries(ROOM)] == [live.entry_id]
    assert silent.entry_id in feed.gone


@pytest.fixture
async def two_processes() -> AsyncIterator[tuple[PresenceService, PresenceService]]:
    """Two PresenceServices (two process ids) sharing one real Redis, each with its own hub."""
    namespace = f"sftest-feed-{time.time_ns()}"
    settings = Settings(redis_url=REDIS_URL, redis_namespace=namespace)
    services = []
    clients = []
    for _ in range(2):
        hub = Hub.from_settings(settings)
        await hub.start()
        client = redis_client(REDIS_URL)
        clients.append((hub, client))
        service = PresenceService(
            RedisPresenceRegistry(client, namespace), hub, grace_s=0, tick_s=CLUSTER_TICK_S
        )
        services.append(service)
    yield services[0], services[1]
    for service, (hub, client) in zip(services, clients, strict=True):
        await service.feeds.stop()
        await hub.stop()
        await client.aclose()


async def test_across_processes_a_burst_is_one_published_batch_and_one_diff(
    two_processes: tuple[PresenceService, PresenceService],
) -> None:
    a, b = two_processes
    feed_b = await b.feeds.acquire(ROOM)
    socket = Socket()
    feed_b.add(_stream("1", socket), "own-b")
    await _ticks()
    published: list[str] = []
    publish = a.hub.publish

    async def counting(channel: str, message: str) -> bool:
        published.append(message)
        return await publish(channel, message)

    a.hub.publish = counting  # type: ignore[method-assign]
    # 50 joins at once: the first is published on the next loop turn, the rest with the next tick.
    entries = await asyncio.gather(*(_join(a, f"user-{i:02}") for i in range(50)))
    for _ in range(200):  # the batches cross Redis, then wait for b's tick
        await asyncio.sleep(0.02)
        if sum(len(p["joins"]) for p in _payloads(socket)) == 50:
            break
    assert len(published) <= 2 and sum(len(json.loads(m)["ops"]) for m in published) == 50
    diffs = _payloads(socket)[1:]
    assert 1 <= len(diffs) <= len(published)  # never more than one frame per batch
    joins = [u for diff in diffs for u in diff["joins"]]
    assert sorted(u["userId"] for u in joins) == [f"user-{i:02}" for i in range(50)]
    assert {u["connections"][0]["connectionId"] for u in joins} == {e.entry_id for e in entries}
    # Every leave of a mass disconnect reaches the other process.
    await asyncio.gather(*(a.leave(ROOM, e.entry_id, dropped=False) for e in entries))
    for _ in range(200):
        await asyncio.sleep(0.02)
        if sum(len(p["leaves"]) for p in _payloads(socket)) == 50:
            break
    left = [u["userId"] for p in _payloads(socket)[1 + len(diffs) :] for u in p["leaves"]]
    assert sorted(left) == [f"user-{i:02}" for i in range(50)]
    assert await b.count(ROOM) == 0
