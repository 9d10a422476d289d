"""The whole document as one update (what a lagging or long-gone subscriber gets) is encoded once
per seq and doc: streams resyncing at the same seq share it, and any change makes a fresh one."""

from __future__ import annotations

from app.documents.models import Document
from tests import factories
from tests.documents import YClient, unb64


async def test_the_whole_document_is_encoded_once_per_seq_and_doc(app, session_factory) -> None:  # type: ignore[no-untyped-def]
    organization = factories.organization()
    room = factories.room(organization)
    document = Document(room_id=room.id, name="Doc")
    await factories.add(session_factory, organization, room, document)
    state = app.state.syncforge
    writer = YClient()
    async with state.documents.use(str(document.id)) as replica:
        empty = replica.full_event()
        assert replica.full_event() is empty and empty.full

        stored = unb64(writer.append("stored"))
        seq = await state.document_log.append(
            document.id, stored, origin=None, modified_by_id=None, max_document_bytes=1 << 20
        )
        await replica.catch_up(seq)
        after = replica.full_event()
        assert after is not empty and after.seq == seq and _text(after.update) == "stored"

        replica.validate(unb64(writer.append(" never stored")))
        await replica.reload()  # what a failed append does: a new doc at the same seq
        reloaded = replica.full_event()
        assert reloaded is not after and reloaded.seq == seq and _text(reloaded.update) == "stored"


def _text(update: str) -> str:
    client = YClient()
    client.apply(update)
    return str(client)


async def test_a_failed_group_commit_rebuilds_the_replica_once(app, session_factory) -> None:  # type: ignore[no-untyped-def]
    """Every append of a failed batch asks for a rebuild; those whose update went into a doc that
    was rebuilt since have nothing left to drop."""
    organization = factories.organization()
    room = factories.room(organization)
    document = Document(room_id=room.id, name="Doc")
    await factories.add(session_factory, organization, room, document)
    async with app.state.syncforge.documents.use(str(document.id)) as replica:
        generations = [replica.validate(unb64(YClient().append(f"unstored {i}"))) for i in range(5)]
        for generation in generations:
            await replica.reload(generation)
        assert replica.generation == generations[0] + 1
        assert replica.update_for(None) == YClient().doc.get_update()  # empty again
