"""Documents and Python Yjs clients (pycrdt) for the document tests."""

from __future__ import annotations

import base64
from typing import Any

from pycrdt import Doc, Text

from tests.gql import GQL
from tests.gqlws import GraphQLWSClient
from tests.realtime import RoomSetup, run

CREATE = """mutation($room: UUID!, $name: String!, $slug: String) {
  createDocument(roomId: $room, input: {name: $name, slug: $slug}) { id name slug seq version } }"""
SYNC = """query($id: UUID!, $sv: String) {
  documentSync(documentId: $id, stateVector: $sv) { update stateVector seq } }"""
APPLY = """mutation($id: UUID!, $update: String!, $origin: String) {
  applyDocumentUpdate(documentId: $id, update: $update, origin: $origin) { documentId seq } }"""
UPDATES = """subscription($id: UUID!, $since: Int) {
  documentUpdates(documentId: $id, since: $since) { documentId seq update origin full } }"""
TEXT = "query($id: UUID!) { document(id: $id) { seq version text } }"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


class YClient:
    """A Yjs peer: a pycrdt Doc whose local edits become base64 updates."""

    def __init__(self, root: str = "content") -> None:
        self.doc = Doc()
        self.text = self.doc.get(root, type=Text)

    def insert(self, index: int, value: str) -> str:
        before = self.doc.get_state()
        self.text.insert(index, value)
        return b64(self.doc.get_update(before))

    def append(self, value: str) -> str:
        return self.insert(len(self.text), value)

    def apply(self, update: str) -> None:
        self.doc.apply_update(unb64(update))

    def state_vector(self) -> str:
        return b64(self.doc.get_state())

    def __str__(self) -> str:
        return str(self.text)


async def create_document(room: RoomSetup, name: str = "Notes", slug: str | None = None) -> str:
    created = await room.backend.data(CREATE, room=room.room_id, name=name, slug=slug)
    return created["createDocument"]["id"]  # type: ignore[no-any-return]


async def apply_http(gql: GQL, document_id: str, update: str, origin: str | None = None) -> int:
    acked = await gql.data(APPLY, id=document_id, update=update, origin=origin)
    return acked["applyDocumentUpdate"]["seq"]  # type: ignore[no-any-return]


async def apply_ws(ws: GraphQLWSClient, document_id: str, update: str, origin: str | None = None) -> int:
    answer = await run(ws, APPLY, id=document_id, update=update, origin=origin)
    assert not answer.get("errors"), answer
    return answer["data"]["applyDocumentUpdate"]["seq"]  # type: ignore[no-any-return]


async def sync_http(gql: GQL, document_id: str, state_vector: str | None = None) -> dict[str, Any]:
    return (await gql.data(SYNC, id=document_id, sv=state_vector))["documentSync"]  # type: ignore[no-any-return]


def decode_state_vector(raw: bytes) -> dict[int, int]:
    """Client id -> clock, from a Yjs v1 state vector."""
    values, position = [], 0
    while position < len(raw):
        value, shift = 0, 0
        while True:
            byte = raw[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        values.append(value)
    count, pairs = values[0] if values else 0, values[1:]
    return {pairs[2 * i]: pairs[2 * i + 1] for i in range(count)}
