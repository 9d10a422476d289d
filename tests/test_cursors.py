"""Live cursors: batched per tick, others only, idle marking, removal (FR-5)."""

from __future__ import annotations

import asyncio

from tests.conftest import LiveServer
from tests.realtime import error_of, next_of, run, setup_room

CURSORS = """subscription($room: UUID!) { cursors(roomId: $room) {
  cursors { connectionId userId info x y elementId offset selection idle } removed } }"""
MOVE = """mutation($room: UUID!, $x: Float, $y: Float, $el: String, $sel: JSON) {
  moveCursor(roomId: $room, x: $x, y: $y, elementId: $el, selection: $sel) }"""


async def test_moves_arrive_batched_with_the_latest_position(
    live_server: LiveServer, session_factory
) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    async with room.client("ada", color="#00ff00") as ada, room.client("bob") as bob:
        bob_op = await bob.subscribe(CURSORS, {"room": room.room_id})
        ada_op = await ada.subscribe(CURSORS, {"room": room.room_id})
        await asyncio.sleep(0.1)
        # 50 moves sent back to back, without waiting for answers.
        for i in range(50):
            await ada.subscribe(MOVE, {"room": room.room_id, "x": float(i), "y": 1.0, "el": "canvas"})
        batches = []
        while True:
            batch = (await next_of(bob, bob_op))["cursors"]
            batches.append(batch)
            if batch["cursors"] and batch["cursors"][-1]["x"] == 49.0:
                break
        assert len(batches) < 25  # far fewer messages than moves: one per tick at most
        (cursor,) = batches[-1]["cursors"]
        assert (cursor["userId"], cursor["info"]["color"], cursor["elementId"]) == (
            "ada",
            "#00ff00",
            "canvas",
        )
        assert cursor["idle"] is False
        # The mover never receives its own cursor.
        assert await _next_or_none(ada, ada_op, 0.5) is None


async def _next_or_none(ws, op, timeout):  # type: ignore[no-untyped-def]
    try:
        while True:
            message = await ws.receive(timeout=timeout)
            if message.get("id") == op:
                return message
    except TimeoutError:
        return None


async def test_idle_and_removed_cursors(live_server_with, session_factory) -> None:  # type: ignore[no-untyped-def]
    server = await live_server_with(cursor_idle_s=0.5)
    room = await setup_room(server, session_factory)
    async with room.client("bob") as bob:
        op = await bob.subscribe(CURSORS, {"room": room.room_id})
        async with room.client("ada") as ada:
            sel = {"start": 3, "end": 9}
            assert (await run(ada, MOVE, room=room.room_id, x=5.0, y=6.0, sel=sel))["data"]["moveCursor"]
            moved = (await next_of(bob, op))["cursors"]["cursors"][0]
            assert (moved["x"], moved["y"], moved["selection"], moved["idle"]) == (5.0, 6.0, sel, False)
            idle = (await next_of(bob, op, timeout=5))["cursors"]["cursors"][0]
            assert idle["connectionId"] == moved["connectionId"] and idle["idle"] is True
        gone = (await next_of(bob, op, timeout=5))["cursors"]
        assert gone["removed"] == [moved["connectionId"]] and gone["cursors"] == []


async def test_cursor_errors(live_server: LiveServer, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory, features={"cursors": False, "presence": True})
    over_http = await room.backend.error(MOVE, room=room.room_id, x=1.0, y=1.0)
    assert over_http["extensions"]["code"] == "BAD_REQUEST"
    async with room.client("ada") as ada:
        off = await ada.subscribe(MOVE, {"room": room.room_id, "x": 1.0})
        assert (await error_of(ada, off))["extensions"]["code"] == "BAD_REQUEST"
        other = await setup_room(live_server, session_factory)
        foreign = await ada.subscribe(CURSORS, {"room": other.room_id})
        assert (await error_of(ada, foreign))["extensions"]["code"] == "NOT_FOUND"


async def test_a_new_subscriber_first_gets_the_whole_state(live_server: LiveServer, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    full_state = "subscription($room: UUID!) { cursors(roomId: $room) { full cursors { userId x } removed } }"
    async with room.client("ada") as ada, room.client("bob") as bob, room.client("cy") as cy:
        await run(ada, MOVE, room=room.room_id, x=1.0, y=1.0)
        await run(bob, MOVE, room=room.room_id, x=2.0, y=2.0)
        # A late arrival sees everyone who has a cursor, at once, and `full` says it is the whole.
        first = (await next_of(cy, await cy.subscribe(full_state, {"room": room.room_id})))["cursors"]
        assert first["full"] is True and first["removed"] == []
        assert sorted((c["userId"], c["x"]) for c in first["cursors"]) == [("ada", 1.0), ("bob", 2.0)]
        # Bob, subscribing after his own move, gets the others only.
        mine = (await next_of(bob, await bob.subscribe(full_state, {"room": room.room_id})))["cursors"]
        assert [c["userId"] for c in mine["cursors"]] == ["ada"]
        # Later batches carry changes only (a move still pending when cy subscribed may come
        # again: the same position, harmless).
        await run(ada, MOVE, room=room.room_id, x=5.0, y=1.0)
        while True:
            later = (await next_of(cy, "1"))["cursors"]  # cy's first operation
            assert later["full"] is False
            if {"userId": "ada", "x": 5.0} in later["cursors"]:
                break
            assert later["cursors"] == [{"userId": "bob", "x": 2.0}]
