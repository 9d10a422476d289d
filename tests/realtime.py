"""Rooms and authenticated graphql-transport-ws clients for the realtime tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests import factories
from tests.conftest import LiveServer
from tests.gql import GQL, Developer, create_key, create_org, end_user_token, sign_up
from tests.gqlws import GraphQLWSClient, graphql_ws

PRESENCE = """subscription($room: UUID!, $presence: JSON, $others: Boolean! = false, $password: String) {
  roomPresence(roomId: $room, presence: $presence, others: $others, password: $password) {
    kind
    users { userId info connections { connectionId status presence } }
    joins { userId connections { connectionId status presence } }
    leaves { userId connections { connectionId } }
    updates { userId connections { connectionId status presence } }
  } }"""


@dataclass
class RoomSetup:
    server: Any  # LiveServer, or any object with `url` and `ws_url`
    dev: Developer
    org_id: str
    room_id: str
    backend: GQL
    publishable: str

    async def token(self, user_id: str, access: list[str] | None = None, **info: Any) -> str:
        grants = [{"room": self.room_id, "access": access or ["read", "write", "presence", "comment"]}]
        return await end_user_token(self.backend, user_id, grants, userInfo={"name": user_id, **info})

    @asynccontextmanager
    async def client(self, user_id: str, *, via: Any = None, **info: Any) -> AsyncIterator[GraphQLWSClient]:
        """A client of this room; `via` another server (process) than the one the room was made on."""
        token = await self.token(user_id, **info)
        url = (via or self.server).ws_url
        async with graphql_ws(url, {"apiKey": self.publishable, "token": token}) as ws:
            yield ws


async def setup_room(server: LiveServer, session_factory, **room_values: Any) -> RoomSetup:  # type: ignore[no-untyped-def]
    http = httpx.AsyncClient(base_url=server.url)
    anon = GQL(http)
    dev = await sign_up(anon)
    org_id = await create_org(dev)
    room = factories.room_in(uuid.UUID(org_id), **room_values)
    await factories.add(session_factory, room)
    secret, _ = await create_key(dev, org_id, "SECRET")
    publishable, _ = await create_key(dev, org_id, "PUBLISHABLE")
    return RoomSetup(server, dev, org_id, str(room.id), anon.bearer(secret), publishable)


async def next_of(ws: GraphQLWSClient, op: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next `next` payload of operation `op` (fails on an error message)."""
    while True:
        message = await ws.receive(timeout)
        if message.get("id") != op:
            continue
        assert message["type"] == "next", message
        assert not message["payload"].get("errors"), message
        return message["payload"]["data"]  # type: ignore[no-any-return]


async def run(ws: GraphQLWSClient, document: str, **variables: Any) -> dict[str, Any]:
    """Run a query or mutation over the socket and return its payload."""
    op = await ws.subscribe(document, variables)
    while True:
        message = await ws.receive()
        if message.get("id") == op:
            return message["payload"] if message["type"] == "next" else {"errors": message["payload"]}


async def error_of(ws: GraphQLWSClient, op: str) -> dict[str, Any]:
    """The first error of operation `op`, whether sent as `error` or as `next` with errors."""
    while True:
        message = await ws.receive()
        if message.get("id") == op:
            errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors")
            assert errors, message
            return errors[0]  # type: ignore[no-any-return]
