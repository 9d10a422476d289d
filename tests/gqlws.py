"""A small graphql-transport-ws client over a real WebSocket, for tests."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

PROTOCOL = "graphql-transport-ws"


class GraphQLWSClient:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._ids = itertools.count(1)
        # Like real clients, answer the server's keep-alive pings; a test can stop, to vanish.
        self.answer_pings = True

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next message that is not a keep-alive ping (pings do not extend the timeout)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = max(0.0, deadline - asyncio.get_running_loop().time())
            message = json.loads(await asyncio.wait_for(self.connection.recv(), remaining))
            if message.get("type") != "ping":
                return message  # type: ignore[no-any-return]
            if self.answer_pings:
                await self.send({"type": "pong"})

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op_id = str(next(self._ids))
        payload: dict[str, Any] = {"query": query}
        if variables:
            payload["variables"] = variables
        await self.send({"id": op_id, "type": "subscribe", "payload": payload})
        return op_id

    async def complete(self, op_id: str) -> None:
        await self.send({"id": op_id, "type": "complete"})


@asynccontextmanager
async def graphql_ws(url: str, init_payload: dict[str, Any] | None = None) -> AsyncIterator[GraphQLWSClient]:
    async with connect(url, subprotocols=[PROTOCOL]) as connection:  # type: ignore[list-item]
        client = GraphQLWSClient(connection)
        await client.send({"type": "connection_init", "payload": init_payload or {}})
        ack = await client.receive()
        assert ack["type"] == "connection_ack", ack
        yield client
