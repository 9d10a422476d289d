"""Many concurrent mutations never stall the process: a request inside a unit of work reads
through that unit's session (roles, rooms, documents) instead of waiting for a second pooled
connection, which deadlocked the pool once as many requests did so at once as it had
connections (every request of the process then waited for the pool's 30 s timeout)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from app.accounts.models import Invitation
from app.db.types import utcnow
from app.documents.models import Document
from tests import factories
from tests.gql import GQL, create_org, sign_up

CONCURRENT = 24  # more than the pool's connections (SQLite: 5 + 10; PostgreSQL here: 2 + 2)

CALLS = {
    "revokeInvitation": "mutation($v: UUID!) { revokeInvitation(id: $v) { id } }",
    "updateDocument": "mutation($v: UUID!) { updateDocument(id: $v, input: {metadata: {n: 1}}) { id } }",
    "unarchiveRoom": "mutation($v: UUID!) { unarchiveRoom(id: $v) { id } }",
    "restoreDocument": "mutation($v: UUID!) { restoreDocument(id: $v) { id } }",
}


async def test_concurrent_mutations_all_answer(live_server_with, session_factory) -> None:  # type: ignore[no-untyped-def]
    server = await live_server_with(db_pool_size=2)
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
        owner = await sign_up(GQL(http))
        org_id = await create_org(owner)
        room = factories.room_in(uuid.UUID(org_id))
        await factories.add(session_factory, room)
        document = Document(room_id=room.id, name="Doc")
        invitation = Invitation(
            organization_id=uuid.UUID(org_id),
            email="x@example.com",
            token_hash=uuid.uuid4().hex,
            expires_at=utcnow() + timedelta(days=1),
        )
        await factories.add(session_factory, document, invitation)
        ids = {
            "revokeInvitation": str(invitation.id),
            "updateDocument": str(document.id),
            "unarchiveRoom": str(room.id),
            "restoreDocument": str(document.id),
        }
        for name, document_text in CALLS.items():
            answers: list[dict[str, Any]] = await asyncio.gather(
                *(owner.gql.raw(document_text, v=ids[name]) for _ in range(CONCURRENT))
            )
            codes = {e["extensions"]["code"] for a in answers for e in a.get("errors") or []}
            assert not codes, (name, codes, [a for a in answers if a.get("errors")][:2])


async def test_concurrent_deletes_of_one_room_delete_it_once(live_server, session_factory) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        owner = await sign_up(GQL(http))
        org_id = await create_org(owner)
        room = factories.room_in(uuid.UUID(org_id))
        await factories.add(session_factory, room)
        await factories.add(session_factory, Document(room_id=room.id, name="Doc"))
        answers = await asyncio.gather(
            *(owner.gql.raw("mutation($v: UUID!) { deleteRoom(id: $v) }", v=str(room.id)) for _ in range(8))
        )
    deleted = [a for a in answers if not a.get("errors")]
    codes = {e["extensions"]["code"] for a in answers for e in a.get("errors") or []}
    assert len(deleted) == 1 and codes <= {"NOT_FOUND"}, answers
    async with session_factory() as session:  # and its documents went with it
        left = await session.execute(select(Document.id).where(Document.room_id == room.id))
        assert left.first() is None
