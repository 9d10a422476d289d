"""A client that stops reading never grows the server's memory nor holds back anyone else: its
queued frames are bounded, and once it reads again each of its streams catches up its own way
(presence: a fresh SYNC; cursors: the whole latest state; room events: SUBSCRIBER_LAGGING)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from websockets.asyncio.client import connect

from tests.gqlws import PROTOCOL, GraphQLWSClient
from tests.realtime import PRESENCE, next_of, run, setup_room

EVENTS = "subscription($room: UUID!) { roomEvents(roomId: $room) { type payload } }"
CURSORS = "subscription($room: UUID!) { cursors(roomId: $room) { full cursors { userId x } } }"
BROADCAST = 'mutation($room: UUID!, $p: JSON!) { broadcastEvent(roomId: $room, type: "blob", payload: $p) }'
MOVE = "mutation($room: UUID!, $x: Float!) { moveCursor(roomId: $room, x: $x, y: 0) }"
UPDATE = "mutation($room: UUID!, $p: JSON) { updatePresence(roomId: $room, presence: $p) }"


async def _stalled_client(url: str, init: dict[str, Any]) -> tuple[Any, GraphQLWSClient]:
    """A client whose socket reads little: a small receive buffer, and a library queue of one
    message, so it stops reading from the network as soon as the test stops calling recv()."""
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    connection = await connect(url, sock=sock, subprotocols=[PROTOCOL], max_queue=1, compression=None)  # type: ignore[list-item]
    client = GraphQLWSClient(connection)
    await client.send({"type": "connection_init", "payload": init})
    assert (await client.receive())["type"] == "connection_ack"
    return connection, client


async def test_a_stalled_reader_is_bounded_and_each_stream_catches_up(
    live_server_with, session_factory
) -> None:  # type: ignore[no-untyped-def]
    server = await live_server_with(ws_outbox_max_frames=64, ws_outbox_max_bytes=256_000)
    room = await setup_room(server, session_factory)
    connection, slow = await _stalled_client(
        server.ws_url, {"apiKey": room.publishable, "token": await room.token("slow")}
    )
    async with room.client("fast") as fast, room.client("sender") as sender:
        slow_ops = {
            "presence": await slow.subscribe(PRESENCE, {"room": room.room_id}),
            "cursors": await slow.subscribe(CURSORS, {"room": room.room_id}),
            "events": await slow.subscribe(EVENTS, {"room": room.room_id}),
        }
        await next_of(slow, slow_ops["presence"])  # SYNC
        fast_op = await fast.subscribe(EVENTS, {"room": room.room_id})
        await next_of(sender, await sender.subscribe(PRESENCE, {"room": room.room_id}))
        await asyncio.sleep(0.3)

        # The slow client stops reading. Many large events (~6 MB) go out, plus presence
        # changes and cursor moves meant for it.
        blob = {"data": "x" * 15_000}
        sent = 400
        got: list[int] = []
        collecting = asyncio.ensure_future(_collect(fast, fast_op, got, sent))
        for i in range(sent):
            await run(sender, BROADCAST, room=room.room_id, p={**blob, "i": i})
            if i % 100 == 0:
                await run(sender, UPDATE, room=room.room_id, p={"step": i})
                await run(sender, MOVE, room=room.room_id, x=float(i))
        await run(sender, UPDATE, room=room.room_id, p={"step": "last"})
        await run(sender, MOVE, room=room.room_id, x=-1.0)

        # Nobody else is held back: the fast subscriber gets every event, in order.
        await asyncio.wait_for(collecting, 20)
        assert got == list(range(sent))

        # The slow client reads again: what it gets per stream.
        await asyncio.sleep(0.5)
        seen: dict[str, list[dict[str, Any]]] = {name: [] for name in slow_ops}
        names = {op: name for name, op in slow_ops.items()}
        events_ended = False
        deadline = asyncio.get_running_loop().time() + 20
        while asyncio.get_running_loop().time() < deadline:
            try:
                message = await slow.receive(timeout=2)
            except TimeoutError:
                break
            name = names.get(message.get("id"))
            if name is None:
                continue
            if message["type"] == "complete":
                events_ended = events_ended or name == "events"
                continue
            seen[name].append(message["payload"])
        events = seen["events"]
        assert events_ended and len(events) < sent  # frames were dropped, not piled up
        assert events[-1]["errors"][0]["extensions"]["code"] == "SUBSCRIBER_LAGGING"
        # Presence lost nothing: its diffs waited in the bounded queue (or, had they overflowed
        # it, a SYNC replaced them). Either way the last word on the sender is its last update.
        last = None
        for payload in seen["presence"]:
            event = payload["data"]["roomPresence"]
            for user in event["users"] + event["updates"]:
                if user["userId"] == "sender":
                    last = user["connections"][0]["presence"]
        assert last == {"step": "last"}
        full = [p["data"]["cursors"] for p in seen["cursors"] if p["data"]["cursors"]["full"]]
        assert full and full[-1]["cursors"] == [{"userId": "sender", "x": -1.0}]
    await connection.close()


async def _collect(client: GraphQLWSClient, op: str, got: list[int], count: int) -> None:
    while len(got) < count:
        got.append((await next_of(client, op, timeout=20))["roomEvents"]["payload"]["i"])
