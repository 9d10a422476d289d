"""Interop (FR-6.1): real Yjs peers in Node (npm `yjs` + `graphql-ws`) and Python peers (pycrdt)
edit one document at the same time, through the server; every peer ends with the same content,
brought by the update stream alone, and so does the server."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text

from tests.documents import APPLY, SYNC, TEXT, UPDATES, b64, create_document, decode_state_vector, unb64
from tests.gqlws import GraphQLWSClient
from tests.realtime import RoomSetup, setup_room

PEER = Path(__file__).parent / "interop" / "yjs_peer.mjs"
EDITS = 60


class PythonPeer:
    """The same behaviour as yjs_peer.mjs, with pycrdt and one reader task per connection."""

    def __init__(self, ws: GraphQLWSClient, document_id: str, name: str, seed: int) -> None:
        self.ws = ws
        self.document_id = document_id
        self.name = name
        self.random = random.Random(seed)
        self.doc = Doc()
        self.text = self.doc.get("content", type=Text)
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.stream_op: str | None = None
        self.reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        while True:
            message = json.loads(await self.ws.connection.recv())
            if message.get("type") == "ping":
                await self.ws.send({"type": "pong"})
            elif message.get("id") == self.stream_op and message["type"] == "next":
                assert not message["payload"].get("errors"), message
                self.doc.apply_update(unb64(message["payload"]["data"]["documentUpdates"]["update"]))
            elif message.get("id") in self.waiting and message["type"] in ("next", "error"):
                self.waiting.pop(message["id"]).set_result(message)

    async def request(self, query: str, **variables: Any) -> dict[str, Any]:
        op = await self.ws.subscribe(query, variables)
        future = self.waiting[op] = asyncio.get_running_loop().create_future()
        message = await asyncio.wait_for(future, 30)
        assert message["type"] == "next" and not message["payload"].get("errors"), message
        return message["payload"]["data"]  # type: ignore[no-any-return]

    async def run(self) -> None:
        self.reader = asyncio.create_task(self._read())
        first = (await self.request(SYNC, id=self.document_id))["documentSync"]
        self.doc.apply_update(unb64(first["update"]))
        self.stream_op = await self.ws.subscribe(UPDATES, {"id": self.document_id, "since": first["seq"]})
        acks = []
        for i in range(EDITS):
            before = self.doc.get_state()
            length = len(self.text)
            if length > 10 and self.random.random() < 0.25:
                at = self.random.randrange(length - 3)
                del self.text[at : at + 1 + self.random.randrange(3)]
            else:
                self.text.insert(self.random.randrange(length + 1), f"{self.name}{i} ")
            update = b64(self.doc.get_update(before))
            acks.append(asyncio.create_task(self.request(APPLY, id=self.document_id, update=update)))
            await asyncio.sleep(0.005 + self.random.random() * 0.015)
        await asyncio.gather(*acks)

    async def converged(self) -> bool:
        """Whether the stream brought every update the server has (equal state vectors)."""
        for _ in range(50):
            sync = (await self.request(SYNC, id=self.document_id))["documentSync"]
            theirs = decode_state_vector(unb64(sync["stateVector"]))
            if theirs == decode_state_vector(self.doc.get_state()):
                return True
            await asyncio.sleep(0.1)
        return False


async def _node_peer(room: RoomSetup, document_id: str, name: str, seed: int) -> asyncio.subprocess.Process:
    token = await room.token(name)
    init = json.dumps({"apiKey": room.publishable, "token": token})
    return await asyncio.create_subprocess_exec(
        "node",
        str(PEER),
        room.server.ws_url,
        init,
        document_id,
        name,
        str(EDITS),
        str(seed),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )


async def _line(process: asyncio.subprocess.Process) -> dict[str, Any]:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    assert line, "the Node peer exited early"
    return json.loads(line)  # type: ignore[no-any-return]


async def test_node_yjs_and_python_peers_converge_on_concurrent_edits(live_server, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    doc_id = await create_document(room)
    nodes = [await _node_peer(room, doc_id, name, seed) for name, seed in (("n1", 7), ("n2", 11))]
    try:
        async with room.client("p1") as ws1, room.client("p2") as ws2:
            peers = [PythonPeer(ws1, doc_id, "p1", 3), PythonPeer(ws2, doc_id, "p2", 5)]
            node_done = asyncio.gather(*(_line(node) for node in nodes))
            await asyncio.gather(*(peer.run() for peer in peers))
            for done in await node_done:
                assert done["acked"] == EDITS
            for node in nodes:
                assert node.stdin is not None
                node.stdin.write(b"go\n")
                await node.stdin.drain()
            finals = [await _line(node) for node in nodes]
            for peer in peers:
                finals.append({"text": str(peer.text), "converged": await peer.converged()})
                assert peer.reader is not None
                peer.reader.cancel()
        server_text = (await room.backend.data(TEXT, id=doc_id))["document"]["text"]
        for final in finals:
            assert final["converged"]  # the stream brought every update
            assert final["text"] == server_text
        for name in ("n1", "p1"):  # everyone's edits are in (deletes may cut some words)
            assert f"{name}" in server_text
    finally:
        for node in nodes:
            if node.returncode is None:
                node.kill()
            await node.wait()
