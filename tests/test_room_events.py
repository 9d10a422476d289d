"""Application-defined room events: everyone subscribed gets them, except the sender."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import LiveServer
from tests.realtime import error_of, next_of, run, setup_room

EVENTS = "subscription($room: UUID!) { roomEvents(roomId: $room) { type payload userId senderConnectionId } }"
BROADCAST = """mutation($room: UUID!, $type: String!, $payload: JSON!) {
  broadcastEvent(roomId: $room, type: $type, payload: $payload) }"""


async def test_events_reach_everyone_but_the_sender(live_server: LiveServer, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    async with room.client("ada") as ada, room.client("bob") as bob, room.client("cy") as cy:
        ops = {
            name: await ws.subscribe(EVENTS, {"room": room.room_id})
            for name, ws in (("ada", ada), ("bob", bob), ("cy", cy))
        }
        await asyncio.sleep(0.3)  # ephemeral: only subscriptions already running receive an event
        payload = {"emoji": "🎉", "at": [1, 2]}
        sent = await run(ada, BROADCAST, room=room.room_id, type="reaction", payload=payload)
        assert sent["data"]["broadcastEvent"] is True
        for name, ws in (("bob", bob), ("cy", cy)):
            event = (await next_of(ws, ops[name]))["roomEvents"]
            assert (event["type"], event["payload"], event["userId"]) == ("reaction", payload, "ada")
        with pytest.raises(TimeoutError):
            await next_of(ada, ops["ada"], timeout=0.5)
        # A backend (secret key, over HTTP) can broadcast too; then everyone receives it.
        await room.backend.data(BROADCAST, room=room.room_id, type="system", payload={"text": "deploying"})
        for name, ws in (("ada", ada), ("bob", bob), ("cy", cy)):
            event = (await next_of(ws, ops[name]))["roomEvents"]
            assert event["type"] == "system" and event["senderConnectionId"] is None


async def test_event_validation_and_access(live_server: LiveServer, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    big = await room.backend.error(BROADCAST, room=room.room_id, type="x", payload={"blob": "x" * 20_000})
    assert (big["extensions"]["code"], big["extensions"]["field"]) == ("VALIDATION_ERROR", "payload")
    other = await setup_room(live_server, session_factory)
    async with room.client("ada") as ada:
        foreign = await ada.subscribe(EVENTS, {"room": other.room_id})
        assert (await error_of(ada, foreign))["extensions"]["code"] == "NOT_FOUND"
