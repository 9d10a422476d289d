"""The baseline of bench/realtime.py: a plain Starlette WebSocket relay doing the same fan-out, no GraphQL.

Run it alone with `python bench/raw_relay.py --port 8765`. Protocol (JSON text frames):

    client -> {"t": "hello", "room": R, "id": USER}          first message: who and which room
    client -> {"t": "sub", "what": "cursors"|"events"|"presence"}
    client -> {"t": "move", "x": X, "y": Y}                  latest position, flushed every tick
    client -> {"t": "event", "type": T, "payload": P}        forwarded as is to the room's other subscribers
    server -> {"t": "cursors", "cursors": [{"userId", "x", "y"}, ...]}
                                       every tick (50 ms): the others' changed positions
    server -> {"t": "presence", "kind": "SYNC", "users": [...]}           on join: the full state
    server -> {"t": "presence", "kind": "DIFF", "joins": [...], "leaves": [...]}   to the others

Served by uvicorn with ws="websockets-sansio" and per-message deflate off (what the issue asks of SyncForge).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

TICK_S = 0.05
CURSORS_HEAD = '{"t":"cursors","cursors":['
CURSORS_TAIL = "]}"
_connection_ids = itertools.count(1)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Peer:
    __slots__ = ("connection_id", "id", "room", "ws")

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.id = ""
        self.room: Room | None = None
        self.connection_id = f"c{next(_connection_ids)}"

    async def send(self, text: str) -> None:
        # A peer that went away is cleaned up by its own handler; the fan-out just goes on.
        with contextlib.suppress(Exception):
            await self.ws.send_text(text)


class Room:
    def __init__(self, name: str) -> None:
        self.name = name
        self.cursor_subs: dict[Peer, None] = {}
        self.event_subs: dict[Peer, None] = {}
        self.presence: dict[Peer, None] = {}
        self.latest: dict[str, str] = {}  # user id -> its latest cursor, serialized
        self.changed: dict[str, str] = {}  # the same, for the cursors that moved since the last tick

    def is_empty(self) -> bool:
        return not (self.cursor_subs or self.event_subs or self.presence)

    @staticmethod
    def _entry(peer: Peer) -> dict[str, Any]:
        return {"userId": peer.id, "connections": [{"connectionId": peer.connection_id}]}

    async def join_presence(self, peer: Peer) -> None:
        self.presence[peer] = None
        users = [self._entry(p) for p in self.presence]
        await peer.send(_dumps({"t": "presence", "kind": "SYNC", "users": users}))
        await self._presence_diff(peer, joins=[self._entry(peer)], leaves=[])

    async def leave_presence(self, peer: Peer) -> None:
        if peer in self.presence:
            del self.presence[peer]
            await self._presence_diff(peer, joins=[], leaves=[self._entry(peer)])

    async def _presence_diff(self, peer: Peer, joins: list[Any], leaves: list[Any]) -> None:
        diff = _dumps({"t": "presence", "kind": "DIFF", "joins": joins, "leaves": leaves})
        for other in list(self.presence):
            if other is not peer:
                await other.send(diff)

    async def forward_event(self, peer: Peer, text: str) -> None:
        for other in list(self.event_subs):
            if other is not peer:
                await other.send(text)

    def move(self, peer: Peer, x: float, y: float) -> None:
        entry = _dumps({"userId": peer.id, "x": x, "y": y})
        self.latest[peer.id] = entry
        self.changed[peer.id] = entry

    async def flush_cursors(self) -> None:
        """One frame per subscriber with the others' changed cursors: serialized once, and for a subscriber
        whose own cursor changed, the joined string is cut around its entry (two slices, no re-encoding)."""
        changed, self.changed = self.changed, {}
        if not changed or not self.cursor_subs:
            return
        parts = list(changed.values())
        joined = ",".join(parts)
        starts: dict[str, tuple[int, int]] = {}
        offset = 0
        for user_id, part in changed.items():
            starts[user_id] = (offset, offset + len(part))
            offset += len(part) + 1
        everything = CURSORS_HEAD + joined + CURSORS_TAIL
        for peer in list(self.cursor_subs):
            span = starts.get(peer.id)
            if span is None:
                await peer.send(everything)
                continue
            if len(parts) == 1:
                continue  # only its own cursor moved
            start, end = span
            if start == 0:
                others = joined[end + 1 :]
            elif end == len(joined):
                others = joined[: start - 1]
            else:
                others = joined[:start] + joined[end + 1 :]
            await peer.send(CURSORS_HEAD + others + CURSORS_TAIL)


class Relay:
    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}

    def room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(name)
        return room

    async def tick_forever(self) -> None:
        next_tick = time.monotonic()
        while True:
            next_tick += TICK_S
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            if time.monotonic() - next_tick > TICK_S:
                next_tick = time.monotonic()  # fell behind: do not burst to catch up
            for room in [room for room in self.rooms.values() if room.changed]:
                await room.flush_cursors()

    async def serve(self, ws: WebSocket) -> None:
        await ws.accept()
        peer = Peer(ws)
        try:
            while True:
                text = await ws.receive_text()
                message = json.loads(text)
                kind = message["t"]
                room = peer.room
                if kind == "move" and room is not None:
                    room.move(peer, message["x"], message["y"])
                elif kind == "event" and room is not None:
                    await room.forward_event(peer, text)
                elif kind == "hello":
                    peer.id = str(message["id"])
                    peer.room = self.room(str(message["room"]))
                elif kind == "sub" and room is not None:
                    what = message["what"]
                    if what == "cursors":
                        room.cursor_subs[peer] = None
                    elif what == "events":
                        room.event_subs[peer] = None
                    elif what == "presence":
                        await room.join_presence(peer)
        except WebSocketDisconnect:
            pass
        finally:
            room = peer.room
            if room is not None:
                room.cursor_subs.pop(peer, None)
                room.event_subs.pop(peer, None)
                await room.leave_presence(peer)
                if room.is_empty():
                    self.rooms.pop(room.name, None)


def create_app() -> Starlette:
    relay = Relay()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ticker = asyncio.create_task(relay.tick_forever())
        try:
            yield
        finally:
            ticker.cancel()

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/health", health), WebSocketRoute("/ws", relay.serve)],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Raw Starlette WebSocket relay (baseline of bench/realtime.py)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_level="warning",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
