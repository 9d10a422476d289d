"""Awareness (FR-6.8): y-protocols awareness updates relayed per document, batched per tick, with a
client's state removed when its connection ends. Peers are pycrdt's own Awareness."""

from __future__ import annotations

import uuid

from pycrdt import Awareness, Doc

from tests.documents import b64, create_document, unb64
from tests.gqlws import GraphQLWSClient
from tests.realtime import error_of, next_of, run, setup_room

UPDATE = "mutation($id: UUID!, $u: String!) { updateAwareness(documentId: $id, update: $u) }"
WATCH = "subscription($id: UUID!) { documentAwareness(documentId: $id) { documentId update full } }"


class Peer:
    def __init__(self) -> None:
        self.doc = Doc()
        self.awareness = Awareness(self.doc)

    def set(self, state: dict | None) -> str:  # type: ignore[type-arg]
        self.awareness.set_local_state(state)
        return b64(self.awareness.encode_awareness_update([self.doc.client_id]))

    def apply(self, update: str) -> None:
        self.awareness.apply_awareness_update(unb64(update), "server")

    def others(self) -> dict[int, dict]:  # type: ignore[type-arg]
        return {k: v for k, v in self.awareness.states.items() if k != self.doc.client_id}


async def _send(ws: GraphQLWSClient, doc_id: str, update: str) -> None:
    answer = await run(ws, UPDATE, id=doc_id, u=update)
    assert answer.get("data") == {"updateAwareness": True}, answer


async def test_awareness_is_batched_per_tick_and_removed_when_the_connection_ends(  # type: ignore[no-untyped-def]
    live_server, session_factory
) -> None:
    room = await setup_room(live_server, session_factory, cursor_tick_ms=1000)  # one batch a second
    doc_id = await create_document(room)
    ada, bob = Peer(), Peer()
    async with room.client("bob") as bob_ws:
        watch = await bob_ws.subscribe(WATCH, {"id": doc_id})
        async with room.client("ada") as ada_ws:
            for position in range(5):  # five changes within one tick
                await _send(ada_ws, doc_id, ada.set({"user": "ada", "cursor": position}))
            batch = (await next_of(bob_ws, watch))["documentAwareness"]
            assert batch["full"] is False
            bob.apply(batch["update"])
            assert bob.others() == {ada.doc.client_id: {"user": "ada", "cursor": 4}}  # only the latest
            # A newcomer gets everything known at once.
            async with room.client("carol") as carol_ws:
                first = await next_of(carol_ws, await carol_ws.subscribe(WATCH, {"id": doc_id}))
                assert first["documentAwareness"]["full"] is True
                carol = Peer()
                carol.apply(first["documentAwareness"]["update"])
                assert carol.others() == {ada.doc.client_id: {"user": "ada", "cursor": 4}}
        # Ada's connection closed: her state is removed for everyone.
        gone = (await next_of(bob_ws, watch, timeout=5))["documentAwareness"]
        bob.apply(gone["update"])
        assert bob.others() == {}


async def test_awareness_refuses_bad_updates_and_other_connections_clients(
    live_server, session_factory
) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    doc_id = await create_document(room)
    ada = Peer()
    async with room.client("ada") as ada_ws, room.client("eve") as eve_ws:
        await _send(ada_ws, doc_id, ada.set({"user": "ada"}))
        for bad in ("%%%", b64(b"\x05\x01"), b64(b"\x01\x01\x01\x03{x}")):
            error = await error_of(ada_ws, await ada_ws.subscribe(UPDATE, {"id": doc_id, "u": bad}))
            assert error["extensions"]["code"] == "VALIDATION_ERROR"
        # Eve replays ada's client id with a newer clock: refused.
        ada.awareness.set_local_state({"user": "eve pretending"})
        forged = b64(ada.awareness.encode_awareness_update([ada.doc.client_id]))
        error = await error_of(eve_ws, await eve_ws.subscribe(UPDATE, {"id": doc_id, "u": forged}))
        assert error["extensions"]["code"] == "FORBIDDEN"
        unknown = await error_of(ada_ws, await ada_ws.subscribe(WATCH, {"id": str(uuid.uuid4())}))
        assert unknown["extensions"]["code"] == "NOT_FOUND"
    over_http = await room.backend.error(UPDATE, id=doc_id, u=Peer().set({"a": 1}))
    assert over_http["extensions"]["code"] == "BAD_REQUEST"
