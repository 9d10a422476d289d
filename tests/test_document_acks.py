"""An acknowledged update is never hidden, and one client's bad input never fails another's.

Writers G pipeline valid updates to one document while a writer B, on the same document, sends
what cannot be stored: text the database refuses (refused at the door), updates that would take
the document past its size limit (refused by the log after they were applied to the replica, so
the replica rebuilds from the database while G's appends are in flight), and malformed updates.
Every update G was acknowledged for must then be served by `documentSync` and by a replay.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from app.db import create_engine, create_session_factory
from app.db.migrate import upgrade
from app.documents.log_writer import LogWriter
from app.documents.models import Document
from app.documents.replica import DocumentUpdateEvent, encode_event
from app.settings import Settings
from tests import factories
from tests.backends import IS_POSTGRES
from tests.documents import APPLY, SYNC, UPDATES, YClient, b64, create_document, unb64
from tests.gqlws import GraphQLWSClient
from tests.processes import private_postgres, processes
from tests.realtime import run, setup_room

WRITERS = 3
UPDATES_PER_WRITER = 70
MAX_DOCUMENT_BYTES = 96_000
BIG = 80_000  # one such update fits in an empty document; a second never does
CRASH_UPDATES_PER_WRITER = 150
CRASH_AFTER = 60  # acknowledged updates before PostgreSQL is cut off


async def _pipeline(ws: GraphQLWSClient, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send every mutation at once, then collect each one's answer (payload or error list)."""
    ops = [await ws.subscribe(APPLY, variables) for variables in requests]
    answers: dict[str, dict[str, Any]] = {}
    while len(answers) < len(ops):
        message = await ws.receive(timeout=20)
        if message.get("id") in ops and message["type"] in ("next", "error"):
            payload = message["payload"]
            answers[message["id"]] = payload if message["type"] == "next" else {"errors": payload}
    return [answers[op] for op in ops]


def _big_update() -> str:
    client = YClient()
    return client.insert(0, "B" * BIG)


async def test_bad_input_of_one_writer_never_hides_or_fails_anothers_updates(  # type: ignore[no-untyped-def]
    live_server_with, session_factory
) -> None:
    server = await live_server_with(document_max_bytes=MAX_DOCUMENT_BYTES)
    room = await setup_room(server, session_factory)
    document_id = await create_document(room)
    writers = [YClient() for _ in range(WRITERS)]
    texts = [f"<{w}:{i}>" for w in range(WRITERS) for i in range(UPDATES_PER_WRITER)]

    async def good(index: int) -> list[dict[str, Any]]:
        client = writers[index]
        requests = [
            {"id": document_id, "update": client.append(f"<{index}:{i}>"), "origin": f"g{index}"}
            for i in range(UPDATES_PER_WRITER)
        ]
        async with room.client(f"g{index}") as ws:
            return await _pipeline(ws, requests)

    async def bad() -> list[dict[str, Any]]:
        requests: list[dict[str, Any]] = []
        for i in range(UPDATES_PER_WRITER):
            # Mostly updates the log refuses after the replica applied them: each one rebuilds
            # the replica while the others' appends are in flight.
            kind = i % 6
            if kind == 0:
                unstorable = "x\ud800\x00y"
                requests.append({"id": document_id, "update": YClient().append("x"), "origin": unstorable})
            elif kind == 1:
                requests.append({"id": document_id, "update": b64(b"\x01\x02garbage"), "origin": "bad"})
            else:
                requests.append({"id": document_id, "update": _big_update(), "origin": "big"})
        async with room.client("b") as ws:
            return await _pipeline(ws, requests)

    *good_answers, bad_answers = await asyncio.gather(*(good(w) for w in range(WRITERS)), bad())

    acked: list[int] = []
    for answers in good_answers:
        for answer in answers:
            assert not answer.get("errors"), answer  # never failed by another client's input
            acked.append(answer["data"]["applyDocumentUpdate"]["seq"])
    assert len(set(acked)) == WRITERS * UPDATES_PER_WRITER
    codes = {error["extensions"]["code"] for answer in bad_answers for error in answer.get("errors") or []}
    assert codes <= {"VALIDATION_ERROR"}, bad_answers
    refused = [answer for answer in bad_answers if answer.get("errors")]
    assert len(refused) >= UPDATES_PER_WRITER - 1  # at most one big update fits

    # documentSync on the same process serves every acknowledged update...
    synced = (await room.backend.data(SYNC, id=document_id))["documentSync"]
    reader = YClient()
    reader.apply(synced["update"])
    assert synced["seq"] >= max(acked)
    missing = [t for t in texts if t not in str(reader)]
    assert not missing, f"{len(missing)} acknowledged updates not served by documentSync: {missing[:5]}"

    # ...and so does a replay from the start.
    async with room.client("late") as ws:
        op = await ws.subscribe(UPDATES, {"id": document_id, "since": 0})
        replayed = YClient()
        seen = 0
        while seen < max(acked):
            message = await ws.receive(timeout=10)
            if message.get("id") != op:
                continue
            assert message["type"] == "next" and not message["payload"].get("errors"), message
            event = message["payload"]["data"]["documentUpdates"]
            replayed.apply(event["update"])
            seen = event["seq"]
    missing = [t for t in texts if t not in str(replayed)]
    assert not missing, f"{len(missing)} acknowledged updates not served by a replay: {missing[:5]}"


async def test_a_row_the_database_refuses_fails_only_its_own_append(settings, session_factory) -> None:  # type: ignore[no-untyped-def]
    """Group commit: appends written together share a transaction, which one bad row aborts;
    the others are then written on their own and succeed."""
    organization = factories.organization()
    room = factories.room(organization)
    document = Document(room_id=room.id, name="Doc")
    await factories.add(session_factory, organization, room, document)
    engine = create_engine(settings)
    writer = LogWriter(engine)
    try:

        async def append(data: bytes, origin: str) -> int | Exception:
            try:
                return await writer.append(
                    document.id, data, origin=origin, modified_by_id=None, max_document_bytes=1 << 20
                )
            except Exception as error:
                return error

        # Queued in one go: the writer takes them as one batch. A lone surrogate cannot be
        # encoded by either driver.
        outcomes = await asyncio.gather(
            *(append(bytes([i + 1]), f"ok{i}") for i in range(3)),
            append(b"\x09", "x\ud800y"),
            *(append(bytes([i + 10]), f"ok{i + 3}") for i in range(3)),
        )
    finally:
        await writer.stop()
        await engine.dispose()
    good = [outcome for i, outcome in enumerate(outcomes) if i != 3]
    assert all(isinstance(seq, int) for seq in good), outcomes
    assert sorted(good) == list(range(1, 7))
    assert isinstance(outcomes[3], Exception)
    async with session_factory() as session:
        stored = await session.get(Document, document.id)
        assert stored is not None and stored.last_seq == 6


async def test_an_update_validated_before_a_rebuild_and_stored_after_it_is_still_served(  # type: ignore[no-untyped-def]
    app, session_factory
) -> None:
    """The interleaving behind a hidden acknowledgement, made deterministic: G's update is
    applied to the replica, B's failed append rebuilds the replica from a database that does not
    hold G's update yet, then G's update is stored, acknowledged and comes back through the hub.
    Its echo must be applied to the rebuilt replica, not skipped as already applied."""
    organization = factories.organization()
    room = factories.room(organization)
    document = Document(room_id=room.id, name="Doc")
    await factories.add(session_factory, organization, room, document)
    state = app.state.syncforge
    good, bad = YClient(), YClient()
    good_update = unb64(good.append("acknowledged"))
    async with state.documents.use(str(document.id)) as replica:
        generation = replica.validate(good_update)
        replica.validate(unb64(bad.append("never stored")))
        await replica.reload()  # what the failed append of the bad update does
        seq = await state.document_log.append(
            document.id, good_update, origin="g", modified_by_id=None, max_document_bytes=1 << 20
        )
        replica.applied_here(seq, generation)
        event = DocumentUpdateEvent(str(document.id), seq, b64(good_update), "g")
        await state.hub.publish(replica.channel, encode_event(event))
        for _ in range(200):
            if replica.seq >= seq:
                break
            await asyncio.sleep(0.01)
        served = YClient()
        served.apply(b64(replica.update_for(None)))
    assert replica.seq == seq
    assert str(served) == "acknowledged"


@pytest.mark.skipif(not IS_POSTGRES, reason="crashes a PostgreSQL server of its own")
async def test_every_acknowledged_update_is_served_after_postgresql_crashes_mid_stream(  # type: ignore[no-untyped-def]
    settings: Settings, tmp_path: Path
) -> None:
    """Writers keep sending while the database is cut off and comes back: what was not
    acknowledged is sent again (as an SDK does), and afterwards every acknowledged update is
    served, by documentSync and by a replay, without a restart of the API process."""
    with private_postgres() as postgres:
        own = settings.model_copy(update={"database_url": postgres.url})
        await asyncio.to_thread(upgrade, own)
        engine = create_engine(own)
        try:
            with processes(own, own.redis_url, tmp_path, 1) as (server,):
                room = await setup_room(server, create_session_factory(engine))
                document_id = await create_document(room)
                acked: list[str] = []
                crashed = asyncio.Event()

                async def write(name: str) -> None:
                    client = YClient()
                    async with room.client(name) as ws:
                        for i in range(CRASH_UPDATES_PER_WRITER):
                            text = f"<{name}:{i}>"
                            update = client.append(text)
                            for _attempt in range(200):  # until acknowledged
                                answer = await run(ws, APPLY, id=document_id, update=update, origin=name)
                                if not answer.get("errors"):
                                    acked.append(text)
                                    break
                                await asyncio.sleep(0.05)
                            else:
                                raise AssertionError(f"{text} was never acknowledged")
                            if len(acked) == CRASH_AFTER and not crashed.is_set():
                                crashed.set()

                async def crash() -> None:
                    await crashed.wait()
                    postgres.crash()
                    await asyncio.sleep(1.0)
                    await asyncio.to_thread(postgres.start)

                await asyncio.gather(write("g"), write("h"), crash())
                assert len(acked) == 2 * CRASH_UPDATES_PER_WRITER
                synced = (await room.backend.data(SYNC, id=document_id))["documentSync"]
                reader = YClient()
                reader.apply(synced["update"])
                assert not [t for t in acked if t not in str(reader)]
                async with room.client("late") as ws:
                    op = await ws.subscribe(UPDATES, {"id": document_id, "since": 0})
                    replayed = YClient()
                    while not all(t in str(replayed) for t in acked):
                        message = await ws.receive(timeout=10)
                        if message.get("id") == op:
                            assert not message["payload"].get("errors"), message
                            replayed.apply(message["payload"]["data"]["documentUpdates"]["update"])
        finally:
            await engine.dispose()
