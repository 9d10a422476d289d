"""Several API processes on PostgreSQL + Redis: presence, cursors and events cross processes; a
SIGKILLed process's connections leave; a Redis restart is survived without clients reconnecting."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosedError

from app.settings import Settings
from tests.backends import IS_POSTGRES
from tests.gqlws import graphql_ws
from tests.processes import REDIS_SERVER, private_redis, processes
from tests.realtime import PRESENCE, error_of, next_of, run, setup_room
from tests.test_cursors import CURSORS, MOVE
from tests.test_room_events import BROADCAST, EVENTS

pytestmark = pytest.mark.skipif(not IS_POSTGRES, reason="several processes share PostgreSQL and Redis")


async def test_two_processes_share_presence_cursors_and_events_and_survive_a_sigkill(  # type: ignore[no-untyped-def]
    settings: Settings, session_factory, tmp_path: Path
) -> None:
    with processes(settings, settings.redis_url or "", tmp_path, 2) as (a, b):
        room = await setup_room(a, session_factory, presence_ttl_s=5)
        async with room.client("watcher") as watcher, room.client("bob", via=b) as bob:
            presence = await watcher.subscribe(PRESENCE, {"room": room.room_id})
            await next_of(watcher, presence)
            cursors = await watcher.subscribe(CURSORS, {"room": room.room_id})
            events = await watcher.subscribe(EVENTS, {"room": room.room_id})
            await next_of(bob, await bob.subscribe(PRESENCE, {"room": room.room_id}))
            joined = (await next_of(watcher, presence))["roomPresence"]
            assert [u["userId"] for u in joined["joins"]] == ["bob"]  # from the other process

            await run(bob, MOVE, room=room.room_id, x=3.0, y=4.0)
            cursor = (await next_of(watcher, cursors))["cursors"]["cursors"][0]
            assert (cursor["userId"], cursor["x"]) == ("bob", 3.0)
            await run(bob, BROADCAST, room=room.room_id, type="ping", payload={"n": 1})
            assert (await next_of(watcher, events))["roomEvents"]["payload"] == {"n": 1}

            b.popen.send_signal(signal.SIGKILL)  # no goodbye from b: its entries must expire
            b.popen.wait(timeout=10)
            # Its presence leaves, and its cursors go once b has missed three cursor heartbeats.
            left = gone = None
            while left is None or gone is None:
                message = await watcher.receive(timeout=20)
                if message.get("id") == presence and message["type"] == "next":
                    left = message["payload"]["data"]["roomPresence"]
                elif message.get("id") == cursors and message["type"] == "next":
                    gone = message["payload"]["data"]["cursors"]
            assert [u["userId"] for u in left["leaves"]] == ["bob"]
            assert gone["removed"] == [cursor["connectionId"]] and gone["cursors"] == []


async def test_revoking_a_key_or_archiving_a_room_applies_in_every_process_at_once(  # type: ignore[no-untyped-def]
    settings: Settings, session_factory, tmp_path: Path
) -> None:
    from tests.gql import GQL, create_key

    with processes(settings, settings.redis_url or "", tmp_path, 2) as (a, b):
        room = await setup_room(a, session_factory)
        # Process b has seen (and cached) the key and the room.
        async with room.client("ada", via=b) as ada:
            op = await ada.subscribe(PRESENCE, {"room": room.room_id})
            await next_of(ada, op)
            events = await ada.subscribe(EVENTS, {"room": room.room_id})
            secret, key_id = await create_key(room.dev, room.org_id, "SECRET")
            async with (
                httpx.AsyncClient(base_url=b.url) as http_b,
                graphql_ws(b.ws_url, {"apiKey": secret}) as backend_ws,
            ):
                on_b = GQL(http_b).bearer(secret)
                assert await on_b.data("{ organizations { edges { node { id } } } }")
                await room.dev.gql.data(
                    "mutation($id: UUID!) { revokeApiKey(id: $id) { status } }", id=key_id
                )
                refused = await on_b.error("{ organizations { edges { node { id } } } }")
                assert refused["extensions"]["code"] == "UNAUTHORIZED"  # b's cache forgot it
                # ...and b closed the WebSocket connection that was opened with it.
                with pytest.raises(ConnectionClosedError):
                    while True:
                        await backend_ws.receive(timeout=10)
                assert backend_ws.connection.close_code == 4403

            # Archived through process a: ada's live subscriptions on b end, and nobody joins.
            await room.dev.gql.data(
                "mutation($id: UUID!) { archiveRoom(id: $id) { status } }", id=room.room_id
            )
            ended = {}
            while len(ended) < 2:
                message = await ada.receive(timeout=10)
                if message.get("id") in (op, events) and message["type"] == "next":
                    ended[message["id"]] = message["payload"]["errors"][0]["extensions"]
            assert {e["reason"] for e in ended.values()} == {"ARCHIVED"}
            again = await ada.subscribe(PRESENCE, {"room": room.room_id})
            assert (await error_of(ada, again))["extensions"]["reason"] == "ARCHIVED"


@pytest.mark.skipif(not REDIS_SERVER.exists(), reason="needs redis-server")
async def test_a_redis_restart_resyncs_live_subscriptions(  # type: ignore[no-untyped-def]
    settings: Settings, session_factory, tmp_path: Path
) -> None:
    async with private_redis() as redis:
        with processes(settings, redis.url, tmp_path, 2) as (a, b):
            room = await setup_room(a, session_factory)
            async with room.client("watcher") as watcher, room.client("bob", via=b) as bob:
                presence = await watcher.subscribe(PRESENCE, {"room": room.room_id})
                await next_of(watcher, presence)
                await next_of(bob, await bob.subscribe(PRESENCE, {"room": room.room_id}))
                await next_of(watcher, presence)  # bob's join

                redis.stop()
                await redis.start()  # empty: it keeps nothing

                # Without reconnecting, the watcher is told to resync and converges on both users.
                seen: set[str] = set()
                deadline = time.monotonic() + 20
                while seen != {"watcher", "bob"}:
                    assert time.monotonic() < deadline, seen
                    event = (await next_of(watcher, presence, timeout=20))["roomPresence"]
                    if event["kind"] == "SYNC":
                        seen = {u["userId"] for u in event["users"]}
                    else:
                        seen |= {u["userId"] for u in event["joins"]}
                        seen -= {u["userId"] for u in event["leaves"]}
                # And pub/sub works again: a new arrival on the other process is seen.
                async with room.client("carol", via=b) as carol:
                    await next_of(carol, await carol.subscribe(PRESENCE, {"room": room.room_id}))
                    while True:
                        event = (await next_of(watcher, presence, timeout=10))["roomPresence"]
                        if [u["userId"] for u in event["joins"]] == ["carol"]:
                            break


@pytest.mark.skipif(not REDIS_SERVER.exists(), reason="needs redis-server")
async def test_a_room_archived_while_redis_is_down_ends_streams_once_it_returns(  # type: ignore[no-untyped-def]
    settings: Settings, session_factory, tmp_path: Path
) -> None:
    async with private_redis() as redis:
        with processes(settings, redis.url, tmp_path, 2) as (a, b):
            room = await setup_room(a, session_factory)
            async with room.client("bob", via=b) as bob:
                op = await bob.subscribe(PRESENCE, {"room": room.room_id})
                await next_of(bob, op)
                redis.stop()
                # The announcement is lost with Redis; process b learns of it from its reconnect.
                await room.dev.gql.data(
                    "mutation($id: UUID!) { archiveRoom(id: $id) { status } }", id=room.room_id
                )
                await redis.start()
                deadline = time.monotonic() + 30
                while True:
                    assert time.monotonic() < deadline, "the stream did not end"
                    message = await bob.receive(timeout=30)
                    if (
                        message.get("id") == op
                        and message["type"] == "next"
                        and message["payload"].get("errors")
                    ):
                        assert message["payload"]["errors"][0]["extensions"]["reason"] == "ARCHIVED"
                        break


async def test_a_mass_disconnect_records_every_leave_with_a_small_redis_pool(  # type: ignore[no-untyped-def]
    settings: Settings, session_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """150 connections of one process drop at once while its Redis pool holds 4 connections:
    commands wait for a connection instead of failing, and every leave reaches the other process
    (and the registry) after the grace period."""
    count = 150
    extra = {"SYNCFORGE_REDIS_MAX_CONNECTIONS": "4", "SYNCFORGE_PRESENCE_GRACE_S": "1"}
    log = tmp_path / "servers.log"
    monkeypatch.setenv("SYNCFORGE_TEST_PROCESS_LOG", str(log))
    with processes(settings, settings.redis_url or "", tmp_path, 2, **extra) as (a, b):
        room = await setup_room(a, session_factory, max_participants=1000)
        async with room.client("watcher", via=b) as watcher:
            presence = await watcher.subscribe(PRESENCE, {"room": room.room_id})
            await next_of(watcher, presence)
            tokens = [await room.token(f"user-{i:03}") for i in range(count)]
            stack = contextlib.AsyncExitStack()
            clients = [
                await stack.enter_async_context(
                    graphql_ws(a.ws_url, {"apiKey": room.publishable, "token": t})
                )
                for t in tokens
            ]
            ops = await asyncio.gather(*(c.subscribe(PRESENCE, {"room": room.room_id}) for c in clients))
            await asyncio.gather(*(next_of(c, op, timeout=30) for c, op in zip(clients, ops, strict=True)))
            present: set[str] = set()
            while len(present) < count:
                event = (await next_of(watcher, presence, timeout=30))["roomPresence"]
                present |= {u["userId"] for u in event["joins"]}
            await stack.aclose()  # every socket closes at once, without leaveRoom
            left: set[str] = set()
            while len(left) < count:
                event = (await next_of(watcher, presence, timeout=30))["roomPresence"]
                assert not event["joins"], event
                left |= {u["userId"] for u in event["leaves"]}
            assert left == present
            count_query = "query($id: UUID!) { room(id: $id) { participantCount } }"
            answer = await room.dev.gql.data(count_query, id=room.room_id)
            assert answer["room"]["participantCount"] == 1  # the watcher alone
    written = log.read_text()
    assert "Too many connections" not in written and "ending stream" not in written, written[-3000:]
