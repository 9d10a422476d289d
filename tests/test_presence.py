"""Presence over real graphql-transport-ws sockets: SYNC then diffs, grace, TTL, limits (FR-3, FR-4)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.conftest import LiveServer
from tests.realtime import PRESENCE, error_of, next_of, run, setup_room

UPDATE = "mutation($room: UUID!, $p: JSON) { updatePresence(roomId: $room, presence: $p, status: AWAY) }"
LEAVE = "mutation($room: UUID!) { leaveRoom(roomId: $room) }"


def users(event: dict) -> dict[str, list[str]]:  # type: ignore[type-arg]
    return {u["userId"]: [c["connectionId"] for c in u["connections"]] for u in event["users"]}


async def test_sync_then_joins_updates_and_leaves(live_server: LiveServer, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    async with room.client("ada", color="#ff0000") as ada, room.client("bob") as bob:
        ada_op = await ada.subscribe(PRESENCE, {"room": room.room_id, "presence": {"page": 1}})
        first = (await next_of(ada, ada_op))["roomPresence"]
        assert first["kind"] == "SYNC" and list(users(first)) == ["ada"]
        assert first["users"][0]["info"] == {"name": "ada", "color": "#ff0000"}
        ada_conn = users(first)["ada"][0]

        bob_op = await bob.subscribe(PRESENCE, {"room": room.room_id})
        bob_sync = (await next_of(bob, bob_op))["roomPresence"]
        assert set(users(bob_sync)) == {"ada", "bob"}
        joined = (await next_of(ada, ada_op))["roomPresence"]
        assert joined["kind"] == "DIFF" and [u["userId"] for u in joined["joins"]] == ["bob"]
        assert joined["leaves"] == joined["updates"] == []

        # A metadata change is an update, never a leave plus a join.
        assert (await run(ada, UPDATE, room=room.room_id, p={"page": 2}))["data"]["updatePresence"] is True
        update = (await next_of(bob, bob_op))["roomPresence"]
        assert update["joins"] == update["leaves"] == []
        (changed,) = update["updates"]
        assert changed["connections"] == [
            {"connectionId": ada_conn, "status": "AWAY", "presence": {"page": 2}}
        ]

        # leaveRoom: the others see the leave at once, and the leaver's subscription completes.
        assert (await run(ada, LEAVE, room=room.room_id))["data"]["leaveRoom"] is True
        left = (await next_of(bob, bob_op))["roomPresence"]
        assert [u["userId"] for u in left["leaves"]] == ["ada"]
        while (message := await ada.receive())["id"] != ada_op:
            pass
        assert message["type"] == "complete"


async def test_one_user_with_two_connections_appears_once(live_server: LiveServer, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    async with room.client("ada") as tab1, room.client("ada") as tab2, room.client("bob") as bob:
        for ws in (tab1, tab2):
            await next_of(ws, await ws.subscribe(PRESENCE, {"room": room.room_id}))
        others = await bob.subscribe(PRESENCE, {"room": room.room_id, "others": True})
        sync = (await next_of(bob, others))["roomPresence"]
        assert list(users(sync)) == ["ada"]  # "others" leaves bob out
        assert len(users(sync)["ada"]) == 2  # one entry per connection


SELF = """subscription($room: UUID!) {
  roomPresence(roomId: $room) { kind connectionId users { userId connections { connectionId } } } }"""


async def test_each_sync_names_the_subscribers_own_connection(
    live_server: LiveServer, session_factory
) -> None:  # type: ignore[no-untyped-def]
    """A user with two tabs finds which entry is this tab (the SDK's `self`); diffs carry none."""
    room = await setup_room(live_server, session_factory)
    async with room.client("ada") as tab1, room.client("ada") as tab2:
        op1 = await tab1.subscribe(SELF, {"room": room.room_id})
        first = (await next_of(tab1, op1))["roomPresence"]
        op2 = await tab2.subscribe(SELF, {"room": room.room_id})
        second = (await next_of(tab2, op2))["roomPresence"]
        (mine,) = users(first)["ada"]
        assert first["connectionId"] == mine
        assert set(users(second)["ada"]) == {mine, second["connectionId"]}
        assert second["connectionId"] != mine
        diff = (await next_of(tab1, op1))["roomPresence"]
        assert diff["kind"] == "DIFF" and diff["connectionId"] is None


async def test_a_dropped_connection_leaves_after_the_grace_period(live_server_with, session_factory) -> None:  # type: ignore[no-untyped-def]
    server = await live_server_with(presence_grace_s=1.0)
    room = await setup_room(server, session_factory)
    async with room.client("watcher") as watcher:
        op = await watcher.subscribe(PRESENCE, {"room": room.room_id})
        await next_of(watcher, op)
        async with room.client("ada") as ada:
            await next_of(ada, await ada.subscribe(PRESENCE, {"room": room.room_id}))
            assert (await next_of(watcher, op))["roomPresence"]["joins"][0]["userId"] == "ada"
        # The socket closed without leaveRoom: a leave arrives, but only after the grace period.
        with pytest.raises(TimeoutError):
            await next_of(watcher, op, timeout=0.5)
        leave = (await next_of(watcher, op, timeout=5))["roomPresence"]
        assert [u["userId"] for u in leave["leaves"]] == ["ada"]


async def test_a_reconnect_within_the_grace_period_is_neither_leave_nor_join(  # type: ignore[no-untyped-def]
    live_server_with, session_factory
) -> None:
    server = await live_server_with(presence_grace_s=3.0)
    room = await setup_room(server, session_factory)
    async with room.client("watcher") as watcher:
        op = await watcher.subscribe(PRESENCE, {"room": room.room_id})
        await next_of(watcher, op)
        async with room.client("ada") as ada:
            first = (await next_of(ada, await ada.subscribe(PRESENCE, {"room": room.room_id})))[
                "roomPresence"
            ]
            await next_of(watcher, op)  # ada's join
        async with room.client("ada") as again:
            back = (await next_of(again, await again.subscribe(PRESENCE, {"room": room.room_id})))[
                "roomPresence"
            ]
            # The same presence entry continues; the watcher hears nothing at all.
            assert users(back)["ada"] == users(first)["ada"]
            with pytest.raises(TimeoutError):
                await next_of(watcher, op, timeout=4.0)


async def test_a_full_rooms_member_back_within_the_grace_period_is_admitted(  # type: ignore[no-untyped-def]
    live_server_with, session_factory
) -> None:
    """Its entry in the grace period is the one it takes over: it is not counted against the
    limit (after a deploy, every member of a full room comes back at once)."""
    server = await live_server_with(presence_grace_s=3.0)
    room = await setup_room(server, session_factory, max_participants=2)
    async with room.client("watcher") as watcher:
        op = await watcher.subscribe(PRESENCE, {"room": room.room_id})
        await next_of(watcher, op)
        async with room.client("ada") as ada:
            await next_of(ada, await ada.subscribe(PRESENCE, {"room": room.room_id}))
            await next_of(watcher, op)  # ada's join: the room is full
        async with room.client("bob") as bob:  # ada's entry still holds her place
            refused = await error_of(bob, await bob.subscribe(PRESENCE, {"room": room.room_id}))
            assert refused["extensions"]["code"] == "ROOM_FULL"
        async with room.client("ada") as again:
            back = await next_of(again, await again.subscribe(PRESENCE, {"room": room.room_id}))
            assert sorted(u["userId"] for u in back["roomPresence"]["users"]) == ["ada", "watcher"]


async def test_a_silent_connection_is_removed_after_the_room_ttl(
    live_server: LiveServer, session_factory
) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory, presence_ttl_s=3)
    async with room.client("watcher") as watcher, room.client("ghost") as ghost:
        op = await watcher.subscribe(PRESENCE, {"room": room.room_id})
        await next_of(watcher, op)
        await next_of(ghost, await ghost.subscribe(PRESENCE, {"room": room.room_id}))
        assert (await next_of(watcher, op))["roomPresence"]["joins"][0]["userId"] == "ghost"
        ghost.answer_pings = False  # the network vanished: the socket stays open but says nothing
        drain = asyncio.create_task(_swallow(ghost))
        leave = (await next_of(watcher, op, timeout=12))["roomPresence"]
        drain.cancel()
        assert [u["userId"] for u in leave["leaves"]] == ["ghost"]


async def _swallow(ws) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(Exception):
        while True:
            await ws.receive(timeout=60)


async def test_room_limits_and_access(live_server: LiveServer, session_factory) -> None:  # type: ignore[no-untyped-def]
    from app.security.passwords import hash_password

    room = await setup_room(
        live_server, session_factory, max_participants=1, password_hash=await hash_password("open sesame")
    )
    async with room.client("ada") as ada, room.client("bob") as bob:
        error = await error_of(ada, await ada.subscribe(PRESENCE, {"room": room.room_id}))
        assert (error["extensions"]["code"], error["extensions"]["reason"]) == (
            "FORBIDDEN",
            "PASSWORD_REQUIRED",
        )
        wrong = await ada.subscribe(PRESENCE, {"room": room.room_id, "password": "nope"})
        assert (await error_of(ada, wrong))["extensions"]["reason"] == "WRONG_PASSWORD"
        await next_of(ada, await ada.subscribe(PRESENCE, {"room": room.room_id, "password": "open sesame"}))
        full = await bob.subscribe(PRESENCE, {"room": room.room_id, "password": "open sesame"})
        assert (await error_of(bob, full))["extensions"]["code"] == "ROOM_FULL"
        other_room = await setup_room(live_server, session_factory)
        hidden = await ada.subscribe(PRESENCE, {"room": other_room.room_id})
        assert (await error_of(ada, hidden))["extensions"]["code"] == "NOT_FOUND"  # not in the token
    # Presence needs the WebSocket: over HTTP it is a clear BAD_REQUEST.
    error = await room.backend.error(UPDATE, room=room.room_id, p={})
    assert error["extensions"]["code"] == "BAD_REQUEST"


async def test_participants_and_connection_logs_are_written_in_batches(  # type: ignore[no-untyped-def]
    live_server_with, session_factory
) -> None:
    from sqlalchemy import func, select

    from app.analytics.models import ConnectionLog
    from app.rooms.models import Participant, Room

    live_server = await live_server_with(presence_flush_interval_s=3600)  # flushed by the test only
    recorder = live_server.server.config.app.state.syncforge.recorder
    room = await setup_room(live_server, session_factory)

    async def rows(model):  # type: ignore[no-untyped-def]
        async with session_factory() as session:
            return (await session.execute(select(func.count()).select_from(model))).scalar_one()

    async with room.client("ada") as ada:
        await next_of(ada, await ada.subscribe(PRESENCE, {"room": room.room_id, "presence": {"tab": 1}}))
        async with room.client("bob") as bob:
            op = await bob.subscribe(PRESENCE, {"room": room.room_id})
            await next_of(bob, op)
            await run(bob, LEAVE, room=room.room_id)
        assert await rows(Participant) == 0  # nothing is written per event...
        assert await recorder.flush() == 3  # ...but in one batch: 2 connects, 1 disconnect
    async with session_factory() as session:
        participants = list((await session.execute(select(Participant))).scalars())
        kinds = sorted(e.value for e in (await session.execute(select(ConnectionLog.event_type))).scalars())
        active = (await session.execute(select(Room.last_active_at))).scalar_one()
    assert len(participants) == 2 and all(p.end_user_id is not None for p in participants)
    assert sorted(p.disconnected_at is None for p in participants) == [False, True]
    assert {p.connection_id for p in participants} and any(
        p.presence_data == {"tab": 1} for p in participants
    )
    assert kinds == ["connect", "connect", "disconnect"] and active is not None


async def test_archiving_or_deleting_a_room_ends_its_live_subscriptions(  # type: ignore[no-untyped-def]
    live_server: LiveServer, session_factory
) -> None:
    from tests.test_cursors import CURSORS
    from tests.test_room_events import EVENTS

    for action, expected in (
        ("archiveRoom(id: $id) { status }", "FORBIDDEN"),
        ("deleteRoom(id: $id)", "NOT_FOUND"),
    ):
        room = await setup_room(live_server, session_factory)
        async with room.client("ada") as ada:
            ops = [
                await ada.subscribe(document, {"room": room.room_id})
                for document in (PRESENCE, CURSORS, EVENTS)
            ]
            await next_of(ada, ops[0])
            await room.dev.gql.data(f"mutation($id: UUID!) {{ {action} }}", id=room.room_id)
            ended: dict[str, str] = {}
            while len(ended) < 3:
                message = await ada.receive()
                if message.get("id") in ops and message["type"] == "next":
                    ended[message["id"]] = message["payload"]["errors"][0]["extensions"]["code"]
            assert set(ended.values()) == {expected}
            # The cache was told at once: a new join is refused right away, not after its TTL.
            again = await ada.subscribe(PRESENCE, {"room": room.room_id})
            assert (await error_of(ada, again))["extensions"]["code"] == expected
