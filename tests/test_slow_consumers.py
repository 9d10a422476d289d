"""A client that stops reading never grows the server's memory nor holds back anyone else: its
queued frames are bounded, and once it reads again each of its streams catches up its own way
(presence: a fresh SYNC; cursors: the whole latest state; room events: SUBSCRIBER_LAGGING;
document updates: the whole document, even one larger than the outbox's byte budget)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
from pycrdt import Map
from websockets.asyncio.client import connect

from tests.documents import UPDATES, YClient, apply_http, b64, create_document, sync_http
from tests.gqlws import PROTOCOL, GraphQLWSClient
from tests.realtime import PRESENCE, RoomSetup, next_of, run, setup_room

EVENTS = "subscription($room: UUID!) { roomEvents(roomId: $room) { type payload } }"
CURSORS = "subscription($room: UUID!) { cursors(roomId: $room) { full cursors { userId x } } }"
BROADCAST = 'mutation($room: UUID!, $p: JSON!) { broadcastEvent(roomId: $room, type: "blob", payload: $p) }'
MOVE = "mutation($room: UUID!, $x: Float!) { moveCursor(roomId: $room, x: $x, y: 0) }"
UPDATE = "mutation($room: UUID!, $p: JSON) { updatePresence(roomId: $room, presence: $p) }"

# These tests flood on purpose: abuse limits (tested on their own) would refuse the flood.
NO_RATE_LIMITS: dict[str, Any] = {
    "ip_rate_limit": "1000000/minute",
    "api_key_rate_limit_default": 1_000_000,
    "ws_broadcasts_per_s": 1e6,
    "ws_presence_updates_per_s": 1e6,
    "ws_moves_per_s": 1e6,
    "ws_document_updates_per_s": 1e6,
    "ws_awareness_updates_per_s": 1e6,
}
OUTBOX_BYTES = 64 << 10  # the document below is several times this
DOCUMENT_CHUNKS, CHUNK_CHARS = 6, 50_000
# Updates meant for the stalled reader: each overwrites one map value, so the document stays
# small while ~6 MB flows, past the kernel's and uvicorn's buffers into the outbox.
CHURN_UPDATES, CHURN_CHARS = 400, 15_000


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
    server = await live_server_with(ws_outbox_max_frames=64, ws_outbox_max_bytes=256_000, **NO_RATE_LIMITS)
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


@pytest.mark.timeout(60)  # the bug this guards against hangs the event loop, this test's too
async def test_a_document_larger_than_the_outbox_resyncs_whole_while_the_server_keeps_serving(
    live_server_with, session_factory
) -> None:  # type: ignore[no-untyped-def]
    server = await live_server_with(ws_outbox_max_bytes=OUTBOX_BYTES, **NO_RATE_LIMITS)
    room = await setup_room(server, session_factory)
    document_id = await create_document(room)
    author = _Author(room, document_id)
    for i in range(DOCUMENT_CHUNKS):
        await apply_http(room.backend, document_id, author.append(str(i) * CHUNK_CHARS))
    synced = await sync_http(room.backend, document_id)
    reader = YClient()
    reader.apply(synced["update"])
    connection, slow = await _stalled_client(
        server.ws_url, {"apiKey": room.publishable, "token": await room.token("slow")}
    )
    updates: list[dict[str, Any]] = []
    async with room.client("fast") as fast:
        ops = {
            client: await client.subscribe(UPDATES, {"id": document_id, "since": synced["seq"]})
            for client in (slow, fast)
        }
        seq = await author.churn()
        for client, op in ops.items():  # both subscriptions are live
            assert (await next_of(client, op))["documentUpdates"]["seq"] == seq

        # The slow client stops reading while updates stream in; the fast one gets them all.
        got: list[int] = []
        collecting = asyncio.ensure_future(_collect_seqs(fast, ops[fast], got, CHURN_UPDATES))
        for _ in range(CHURN_UPDATES):
            seq = await author.churn()
        await asyncio.wait_for(collecting, 20)
        assert got == list(range(seq - CHURN_UPDATES + 1, seq + 1))

        # It reads again: its resync is the whole document, larger than the outbox's budget.
        reading = asyncio.ensure_future(_read_updates(slow, ops[slow], updates))
        try:
            http = room.backend.http
            assert (await http.get("/healthz", timeout=10)).status_code == 200  # it answers meanwhile
            last = await author.churn()
            assert (await next_of(fast, ops[fast], timeout=10))["documentUpdates"]["seq"] == last
            await asyncio.wait_for(_caught_up(http, updates, last), 20)
        finally:
            reading.cancel()
    await connection.close()

    fulls = [i for i, update in enumerate(updates) if update["full"]]
    assert fulls and len(updates[fulls[0]]["update"]) > OUTBOX_BYTES
    full = updates[fulls[-1]]  # then every later update, in order, none missing
    assert [u["seq"] for u in updates[fulls[-1] + 1 :]] == list(range(full["seq"] + 1, last + 1))
    for update in updates:
        reader.apply(update["update"])
    assert str(reader) == str(author.client) and author.same_scratch(reader)


class _Author:
    """The document's writer: a large text, then updates that each overwrite one map value, so
    the document stays small however many of them flow."""

    def __init__(self, room: RoomSetup, document_id: str) -> None:
        self.room = room
        self.document_id = document_id
        self.client = YClient()
        self.scratch = self.client.doc.get("scratch", type=Map)
        self.churned = 0

    def append(self, text: str) -> str:
        return self.client.append(text)

    async def churn(self) -> int:
        before = self.client.doc.get_state()
        self.churned += 1
        self.scratch["blob"] = f"{self.churned}:" + "y" * CHURN_CHARS
        update = b64(self.client.doc.get_update(before))
        return await apply_http(self.room.backend, self.document_id, update)

    def same_scratch(self, other: YClient) -> bool:
        return other.doc.get("scratch", type=Map).to_py() == self.scratch.to_py()


async def _collect_seqs(client: GraphQLWSClient, op: str, got: list[int], count: int) -> None:
    while len(got) < count:
        got.append((await next_of(client, op, timeout=20))["documentUpdates"]["seq"])


async def _read_updates(client: GraphQLWSClient, op: str, updates: list[dict[str, Any]]) -> None:
    while True:
        updates.append((await next_of(client, op, timeout=60))["documentUpdates"])


async def _caught_up(http: httpx.AsyncClient, updates: list[dict[str, Any]], seq: int) -> None:
    """Until `seq` arrived; the process answers /healthz all along."""
    while not updates or updates[-1]["seq"] < seq:
        assert (await http.get("/healthz", timeout=10)).status_code == 200
        await asyncio.sleep(0.05)
