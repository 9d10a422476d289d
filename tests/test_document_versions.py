"""Document versions: manual and automatic snapshots, reading a document as it was, and restoring
a snapshot as a forward update that connected clients converge on (FR-6.6, FR-6.7)."""

from __future__ import annotations

import uuid

from pycrdt import Map

from app.documents.compaction import compact
from tests.documents import UPDATES, YClient, apply_http, apply_ws, b64, create_document
from tests.gqlws import graphql_ws
from tests.realtime import error_of, next_of, run, setup_room

SNAPSHOT = """mutation($id: UUID!, $name: String!) {
  createDocumentSnapshot(documentId: $id, name: $name) { id version seq type name text update } }"""
SNAPSHOTS = """query($id: UUID!, $type: SnapshotKind) {
  documentSnapshots(documentId: $id, type: $type) { edges { node { id seq type name text } } } }"""
RESTORE = "mutation($id: UUID!) { restoreDocumentSnapshot(id: $id) { seq } }"
TEXT = "query($id: UUID!) { document(id: $id) { text } }"


async def test_a_named_snapshot_reads_as_it_was_and_restores_for_connected_clients(  # type: ignore[no-untyped-def]
    live_server, session_factory
) -> None:
    room = await setup_room(live_server, session_factory)
    gql = room.backend
    doc_id = await create_document(room)
    writer = YClient()
    await apply_http(gql, doc_id, writer.append("first draft"))
    taken = (await gql.data(SNAPSHOT, id=doc_id, name="Draft"))["createDocumentSnapshot"]
    assert (taken["seq"], taken["type"], taken["name"], taken["text"]) == (
        1,
        "MANUAL",
        "Draft",
        "first draft",
    )
    await apply_http(gql, doc_id, writer.insert(0, "[edited] "))
    await apply_http(gql, doc_id, writer.append(" and more"))
    as_it_was = YClient()
    as_it_was.apply(taken["update"])
    assert str(as_it_was) == "first draft"

    async with room.client("ada") as ada:
        ada_doc = YClient()
        op = await ada.subscribe(UPDATES, {"id": doc_id, "since": 0})
        for _ in range(3):
            ada_doc.apply((await next_of(ada, op))["documentUpdates"]["update"])
        assert str(ada_doc) == "[edited] first draft and more"
        restored = (await gql.data(RESTORE, id=taken["id"]))["restoreDocumentSnapshot"]
        assert restored["seq"] == 4
        pushed = (await next_of(ada, op))["documentUpdates"]
        assert pushed["seq"] == 4 and pushed["origin"] == f"restore:{taken['id']}"
        ada_doc.apply(pushed["update"])
        assert str(ada_doc) == "first draft"  # converged without reloading
        # And ada's own edits after the restore still merge.
        await apply_ws(ada, doc_id, ada_doc.append("!"))
    assert (await gql.data(TEXT, id=doc_id))["document"]["text"] == "first draft!"

    listed = [e["node"] for e in (await gql.data(SNAPSHOTS, id=doc_id))["documentSnapshots"]["edges"]]
    assert [(s["type"], s["text"]) for s in listed] == [
        ("MANUAL", "first draft"),
        ("MILESTONE", "[edited] first draft and more"),  # the state just before the restore
    ]


async def test_restore_brings_back_map_and_array_roots(live_server, session_factory) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    gql = room.backend
    doc_id = await create_document(room)
    peer = YClient()
    shape = peer.doc.get("shapes", type=Map)
    before = peer.doc.get_state()
    shape["a"] = {"x": 1}
    shape["b"] = Map({"color": "red"})
    await apply_http(gql, doc_id, b64(peer.doc.get_update(before)))
    taken = (await gql.data(SNAPSHOT, id=doc_id, name="Two shapes"))["createDocumentSnapshot"]
    before = peer.doc.get_state()
    del shape["a"]
    shape["c"] = 3
    shape["b"]["color"] = "blue"
    await apply_http(gql, doc_id, b64(peer.doc.get_update(before)))
    as_json = 'query($id: UUID!) { document(id: $id) { json(root: "shapes") } }'
    assert (await gql.data(as_json, id=doc_id))["document"]["json"] == {"b": {"color": "blue"}, "c": 3}
    await gql.data(RESTORE, id=taken["id"])
    assert (await gql.data(as_json, id=doc_id))["document"]["json"] == {"a": {"x": 1}, "b": {"color": "red"}}


async def test_automatic_snapshots_are_taken_while_editing_and_the_oldest_pruned(  # type: ignore[no-untyped-def]
    live_server, session_factory
) -> None:
    room = await setup_room(live_server, session_factory)
    gql = room.backend
    doc_id = await create_document(room)
    writer = YClient()
    for word in ("one", " two", " three"):
        await apply_http(gql, doc_id, writer.append(word))
        async with session_factory() as session:
            await compact(session, uuid.UUID(doc_id), snapshot_interval_s=0, max_auto_snapshots=2)
            await session.commit()
    autos = [
        e["node"] for e in (await gql.data(SNAPSHOTS, id=doc_id, type="AUTO"))["documentSnapshots"]["edges"]
    ]
    assert [(s["seq"], s["text"]) for s in autos] == [(2, "one two"), (3, "one two three")]
    # Within the interval, compaction takes none.
    await apply_http(gql, doc_id, writer.append(" four"))
    async with session_factory() as session:
        done = await compact(session, uuid.UUID(doc_id), snapshot_interval_s=3600, max_auto_snapshots=2)
        await session.commit()
    assert done is not None and not done.snapshot_taken


async def test_readers_see_versions_but_only_writers_take_or_restore_them(
    live_server, session_factory
) -> None:  # type: ignore[no-untyped-def]
    room = await setup_room(live_server, session_factory)
    doc_id = await create_document(room)
    await apply_http(room.backend, doc_id, YClient().append("x"))
    taken = (await room.backend.data(SNAPSHOT, id=doc_id, name="v1"))["createDocumentSnapshot"]
    token = await room.token("rita", access=["read"])
    async with graphql_ws(room.server.ws_url, {"apiKey": room.publishable, "token": token}) as rita:
        listed = await run(rita, SNAPSHOTS, id=doc_id)
        assert len(listed["data"]["documentSnapshots"]["edges"]) == 1
        for document, variables in (
            (SNAPSHOT, {"id": doc_id, "name": "mine"}),
            (RESTORE, {"id": taken["id"]}),
        ):
            refused = await error_of(rita, await rita.subscribe(document, variables))
            assert refused["extensions"]["code"] == "FORBIDDEN"
        unknown = await error_of(rita, await rita.subscribe(RESTORE, {"id": str(uuid.uuid4())}))
        assert unknown["extensions"]["code"] == "NOT_FOUND"
