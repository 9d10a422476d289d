"""Collaborative documents: CRUD and trash, Yjs sync over GraphQL, durable updates, the stream of
updates with replay, compaction, and refusals (FR-6)."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select, update

from app.documents.compaction import BUSY, Compacted, compact
from app.documents.models import Document, DocumentUpdate
from tests.documents import (
    APPLY,
    SYNC,
    TEXT,
    UPDATES,
    YClient,
    apply_http,
    apply_ws,
    b64,
    create_document,
    sync_http,
)
from tests.gqlws import graphql_ws
from tests.realtime import error_of, next_of, setup_room

DOCUMENT = "query($id: UUID!) { document(id: $id) { id name slug deletedAt } }"


async def _log(session_factory, document_id: str) -> list[int]:  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        rows = await session.execute(
            select(DocumentUpdate.seq)
            .where(DocumentUpdate.document_id == uuid.UUID(document_id))
            .order_by(DocumentUpdate.seq)
        )
        return list(rows.scalars())


async def test_documents_are_created_renamed_trashed_and_restored(live_server, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    gql = room.backend
    doc_id = await create_document(room, "Spec", slug="spec")
    again = await gql.error(
        'mutation($r: UUID!) { createDocument(roomId: $r, input: {name: "Other", slug: "spec"}) { id } }',
        r=room.room_id,
    )
    assert again["extensions"]["code"] == "CONFLICT" and again["extensions"]["field"] == "slug"
    by_slug = await gql.data('query($r: UUID!) { document(roomId: $r, slug: "spec") { id } }', r=room.room_id)
    assert by_slug["document"]["id"] == doc_id
    renamed = await gql.data(
        'mutation($id: UUID!) { updateDocument(id: $id, input: {name: "Spec v2", metadata: {a: 1}}) '
        "{ name slug metadata } }",
        id=doc_id,
    )
    assert renamed["updateDocument"] == {"name": "Spec v2", "slug": "spec", "metadata": {"a": 1}}
    bad = await gql.error(
        'mutation($id: UUID!) { updateDocument(id: $id, input: {name: ""}) { name } }', id=doc_id
    )
    assert bad["extensions"] == {**bad["extensions"], "code": "VALIDATION_ERROR", "field": "name"}

    listing = (
        "query($r: UUID!, $t: Boolean!) { documents(roomId: $r, trashed: $t) { edges { node { id } } } }"
    )
    trashed = await gql.data("mutation($id: UUID!) { trashDocument(id: $id) { deletedAt } }", id=doc_id)
    assert trashed["trashDocument"]["deletedAt"] is not None
    assert (await gql.error(DOCUMENT, id=doc_id))["extensions"]["code"] == "NOT_FOUND"
    assert (await gql.error(SYNC, id=doc_id))["extensions"]["code"] == "NOT_FOUND"
    assert (await gql.data(listing, r=room.room_id, t=False))["documents"]["edges"] == []
    in_trash = (await gql.data(listing, r=room.room_id, t=True))["documents"]["edges"]
    assert [e["node"]["id"] for e in in_trash] == [doc_id]

    await gql.data("mutation($id: UUID!) { restoreDocument(id: $id) { id } }", id=doc_id)
    assert (await gql.data(DOCUMENT, id=doc_id))["document"]["deletedAt"] is None


async def test_sync_gives_a_new_client_everything_and_a_known_client_only_its_gap(  # type: ignore[no-untyped-def]
    live_server, session_factory
) -> None:
    room = await setup_room(live_server, session_factory)
    doc_id = await create_document(room)
    gql = room.backend
    empty = await sync_http(gql, doc_id)
    assert empty["seq"] == 0

    writer = YClient()
    assert await apply_http(gql, doc_id, writer.append("Hello"), origin="w1") == 1
    assert await apply_http(gql, doc_id, writer.append(", world"), origin="w1") == 2

    newcomer = YClient()
    whole = await sync_http(gql, doc_id)  # no state vector: the whole document (FR-6.4)
    newcomer.apply(whole["update"])
    assert str(newcomer) == "Hello, world" and whole["seq"] == 2

    known = await sync_http(gql, doc_id, newcomer.state_vector())
    assert len(known["update"]) < len(whole["update"])  # only the (empty) gap
    before = newcomer.doc.get_state()
    newcomer.apply(known["update"])
    assert newcomer.doc.get_state() == before

    writer_text = await gql.data(TEXT, id=doc_id)
    assert writer_text["document"] == {"seq": 2, "version": 1, "text": "Hello, world"}
    assert await _log(session_factory, doc_id) == [1, 2]


async def test_malformed_or_oversize_updates_are_refused_and_nothing_is_stored(  # type: ignore[no-untyped-def]
    live_server_with, session_factory
) -> None:
    server = await live_server_with(document_update_max_bytes=2048, document_max_bytes=4096)
    room = await setup_room(server, session_factory)
    doc_id = await create_document(room)
    gql = room.backend
    writer = YClient()
    assert await apply_http(gql, doc_id, writer.append("ok")) == 1
    refused = {
        "not base64": "%%%",
        "truncated update": b64(b"\x01\x02\x03\x04\x05"),
        "empty update": "",
        "too large": b64(b"\x00" * 3000),
    }
    for name, bad in refused.items():
        error = await gql.error(APPLY, id=doc_id, update=bad)
        assert error["extensions"]["code"] == "VALIDATION_ERROR", name
        assert error["extensions"]["field"] == "update", name
    bad_vector = await gql.error(SYNC, id=doc_id, sv=b64(b"\xff\xff\xff"))
    assert bad_vector["extensions"] == {
        **bad_vector["extensions"],
        "code": "VALIDATION_ERROR",
        "field": "stateVector",
    }
    # The document limit: updates that fit one by one, until the document is full.
    reason = None
    for _ in range(5):
        body = await gql.raw(APPLY, id=doc_id, update=writer.append("x" * 1500))
        if body.get("errors"):
            reason = body["errors"][0]["extensions"].get("reason")
            break
    assert reason == "DOCUMENT_TOO_LARGE"
    stored = await _log(session_factory, doc_id)
    assert stored == list(range(1, len(stored) + 1))  # nothing refused took a seq
    assert "%%%" not in (await gql.data(TEXT, id=doc_id))["document"]["text"]
    # The refused update was dropped from the server's copy too.
    assert (await gql.data(TEXT, id=doc_id))["document"]["text"] == "ok" + "x" * 1500 * (len(stored) - 1)


async def test_subscribers_get_every_other_clients_updates_in_order_and_replay_on_reconnect(  # type: ignore[no-untyped-def]
    live_server_with, session_factory
) -> None:
    server = await live_server_with(document_replay_updates=3)
    room = await setup_room(server, session_factory)
    doc_id = await create_document(room)
    async with room.client("ada") as ada, room.client("bob") as bob:
        ada_sub = await ada.subscribe(UPDATES, {"id": doc_id})
        bob_sub = await bob.subscribe(UPDATES, {"id": doc_id})
        ada_doc, bob_doc = YClient(), YClient()
        # Let both subscriptions register before the first update.
        await apply_ws(ada, doc_id, ada_doc.append("A"), origin="ada")
        got = (await next_of(bob, bob_sub))["documentUpdates"]
        assert got["seq"] == 1 and got["origin"] == "ada" and got["full"] is False
        bob_doc.apply(got["update"])
        assert await apply_ws(bob, doc_id, bob_doc.append("B"), origin="bob") == 2
        got = (await next_of(ada, ada_sub))["documentUpdates"]
        assert got["seq"] == 2 and got["origin"] == "bob"  # ada never got her own seq 1 back
        ada_doc.apply(got["update"])
        assert str(ada_doc) == str(bob_doc) == "AB"
        for letter in "CDEF":
            await apply_ws(bob, doc_id, bob_doc.append(letter))
        seqs = [(await next_of(ada, ada_sub))["documentUpdates"]["seq"] for _ in range(4)]
        assert seqs == [3, 4, 5, 6]

    async with room.client("carol") as carol:
        # Missed 5 and 6: still in memory (the last 3), replayed one by one.
        op = await carol.subscribe(UPDATES, {"id": doc_id, "since": 4})
        replayed = [(await next_of(carol, op))["documentUpdates"] for _ in range(2)]
        assert [(u["seq"], u["full"]) for u in replayed] == [(5, False), (6, False)]
        # From too long ago: the whole document at once.
        old = await carol.subscribe(UPDATES, {"id": doc_id, "since": 1})
        full = (await next_of(carol, old))["documentUpdates"]
        assert full["seq"] == 6 and full["full"] is True
        fresh = YClient()
        fresh.apply(full["update"])
        assert str(fresh) == "ABCDEF"


async def test_compaction_merges_the_log_and_the_document_loads_the_same(  # type: ignore[no-untyped-def]
    live_server_with, session_factory
) -> None:
    server = await live_server_with(document_unload_grace_s=0.05, document_snapshot_interval_s=0)
    room = await setup_room(server, session_factory)
    doc_id = await create_document(room)
    gql = room.backend
    writer = YClient()
    for word in ("one ", "two ", "three"):
        await apply_http(gql, doc_id, writer.append(word))
    async with session_factory() as session:
        done = await compact(session, uuid.UUID(doc_id), snapshot_interval_s=0, max_auto_snapshots=2)
        await session.commit()
    assert done is not None and done.seq == 3 and done.merged_updates == 3
    assert await _log(session_factory, doc_id) == []
    await apply_http(gql, doc_id, writer.append("!"))  # seq 4 lands in the log after the state
    assert await _log(session_factory, doc_id) == [4]
    state = server.server.config.app.state.syncforge
    state.documents.evict(doc_id, RuntimeError("test"))  # the next read loads from the database
    reread = await gql.data(TEXT + "", id=doc_id)
    assert reread["document"] == {"seq": 4, "version": 2, "text": "one two three!"}
    async with session_factory() as session:
        row = await session.get(Document, uuid.UUID(doc_id))
        assert row is not None and row.compacted_seq == 3 and row.size_bytes > 0


async def test_a_document_whose_state_does_not_load_is_not_served(live_server, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    doc_id = await create_document(room)
    async with session_factory() as session:
        await session.execute(
            update(Document).where(Document.id == uuid.UUID(doc_id)).values(yjs_state=b"\x07garbage")
        )
        await session.commit()
    gql = room.backend
    for query, variables in ((SYNC, {}), (APPLY, {"update": YClient().append("lost?")})):
        error = await gql.error(query, id=doc_id, **variables)
        assert error["extensions"]["code"] == "DOCUMENT_UNAVAILABLE"
    assert await _log(session_factory, doc_id) == []


async def test_document_permissions_follow_the_room(live_server, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    doc_id = await create_document(room)
    await apply_http(room.backend, doc_id, YClient().append("x"))
    reader_token = await room.token("rita", access=["read"])
    async with graphql_ws(room.server.ws_url, {"apiKey": room.publishable, "token": reader_token}) as rita:
        op = await rita.subscribe(SYNC, {"id": doc_id})
        assert (await next_of(rita, op))["documentSync"]["seq"] == 1
        refused = await error_of(
            rita, await rita.subscribe(APPLY, {"id": doc_id, "update": YClient().append("y")})
        )
        assert refused["extensions"]["code"] == "FORBIDDEN"
        watching = await rita.subscribe(UPDATES, {"id": doc_id})
        # Trashing the document ends live subscriptions.
        await room.backend.data("mutation($id: UUID!) { trashDocument(id: $id) { id } }", id=doc_id)
        ended = await error_of(rita, watching)
        assert ended["extensions"]["code"] == "NOT_FOUND"
    async with room.client("sam") as sam:
        missing = await error_of(sam, await sam.subscribe(UPDATES, {"id": str(uuid.uuid4())}))
        assert missing["extensions"]["code"] == "NOT_FOUND"


async def test_a_document_is_unloaded_after_its_last_subscriber_leaves(
    live_server_with, session_factory
) -> None:  # type: ignore[no-untyped-def]
    server = await live_server_with(document_unload_grace_s=0.3)
    room = await setup_room(server, session_factory)
    doc_id = await create_document(room)
    documents = server.server.config.app.state.syncforge.documents
    async with room.client("ada") as ada:
        op = await ada.subscribe(UPDATES, {"id": doc_id})
        await apply_ws(ada, doc_id, YClient().append("x"))
        assert documents.get(doc_id) is not None
        await ada.complete(op)

        for _ in range(100):
            if documents.get(doc_id) is None:
                break
            await asyncio.sleep(0.05)
        assert documents.get(doc_id) is None


async def _compacted_seq(session_factory, document_id: str) -> int:  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        row = await session.get(Document, uuid.UUID(document_id))
        assert row is not None
        return row.compacted_seq


async def test_the_log_is_compacted_a_debounce_after_editing_and_within_the_maximum(  # type: ignore[no-untyped-def]
    live_server_with, session_factory
) -> None:
    server = await live_server_with(document_compact_debounce_s=0.4, document_compact_max_s=1.0)
    jobs = server.server.config.app.state.syncforge.jobs
    worker = None if jobs.is_embedded else jobs.start_worker(1)  # production mode: a real worker
    try:
        room = await setup_room(server, session_factory)
        doc_id = await create_document(room)
        writer = YClient()
        # A burst that never pauses for the debounce: the maximum still compacts during it.
        compacted_during_burst = 0
        for i in range(300):  # up to 15 s: a worker that starts late still gets there
            await apply_http(room.backend, doc_id, writer.append(str(i % 10)))
            await asyncio.sleep(0.05)
            compacted_during_burst = await _compacted_seq(session_factory, doc_id)
            if compacted_during_burst:
                break
        assert compacted_during_burst > 0
        last = await apply_http(room.backend, doc_id, writer.append("."))
        for _ in range(100):  # then, a debounce after the last edit, everything
            if await _compacted_seq(session_factory, doc_id) == last:
                break
            await asyncio.sleep(0.1)
        assert await _compacted_seq(session_factory, doc_id) == last
        assert await _log(session_factory, doc_id) == []
        text = (await room.backend.data(TEXT, id=doc_id))["document"]["text"]
        assert text == str(writer)
    finally:
        if worker is not None:
            worker.stop()


async def test_archiving_the_room_ends_document_streams(live_server, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    doc_id = await create_document(room)
    async with room.client("ada") as ada:
        updates = await ada.subscribe(UPDATES, {"id": doc_id})
        awareness = await ada.subscribe(
            "subscription($id: UUID!) { documentAwareness(documentId: $id) { update } }", {"id": doc_id}
        )
        await apply_ws(ada, doc_id, YClient().append("x"))  # both streams are registered by now
        await room.dev.gql.data("mutation($id: UUID!) { archiveRoom(id: $id) { status } }", id=room.room_id)
        for op in (updates, awareness):
            ended = await error_of(ada, op)
            assert ended["extensions"]["reason"] == "ARCHIVED"
        refused = await error_of(
            ada, await ada.subscribe(APPLY, {"id": doc_id, "update": YClient().append("y")})
        )
        assert refused["extensions"]["code"] == "FORBIDDEN"


async def test_an_update_that_arrives_before_its_dependency_is_kept_everywhere(  # type: ignore[no-untyped-def]
    live_server_with, session_factory
) -> None:
    """pycrdt leaves an update whose dependencies are missing out of encoded state; the sync
    answer, the compacted state and a reload must still carry it."""
    server = await live_server_with(document_unload_grace_s=0.05)
    room = await setup_room(server, session_factory)
    doc_id = await create_document(room)
    gql = room.backend
    writer = YClient()
    first, second = writer.append("hello"), writer.append(" world")  # second depends on first
    await apply_http(gql, doc_id, second)
    newcomer = YClient()
    newcomer.apply((await sync_http(gql, doc_id))["update"])
    newcomer.apply(first)
    assert str(newcomer) == "hello world"  # the sync answer carried the waiting update
    async with session_factory() as session:
        await compact(session, uuid.UUID(doc_id), snapshot_interval_s=3600, max_auto_snapshots=0)
        await session.commit()
    state = server.server.config.app.state.syncforge
    state.documents.evict(doc_id, RuntimeError("test"))  # reload from the compacted state
    await apply_http(gql, doc_id, first)
    assert (await gql.data(TEXT, id=doc_id))["document"]["text"] == "hello world"


async def test_only_one_compaction_of_a_document_runs_at_a_time(live_server, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    doc_id = await create_document(room)
    for word in ("a", "b"):
        await apply_http(room.backend, doc_id, YClient().append(word))
    document = uuid.UUID(doc_id)
    async with session_factory() as first, session_factory() as second:
        running = await compact(first, document, snapshot_interval_s=3600, max_auto_snapshots=0)
        assert isinstance(running, Compacted)  # its transaction (and lock) is still open
        assert await compact(second, document, snapshot_interval_s=3600, max_auto_snapshots=0) is BUSY
        await first.commit()
    async with session_factory() as third:  # once it committed: nothing left to do
        assert await compact(third, document, snapshot_interval_s=3600, max_auto_snapshots=0) is None
        await third.commit()
