"""Document operations: create, read, list, rename, trash and restore (FR-6), and the durable log.

Services flush and never commit; the caller's unit of work owns the transaction. Updates are
appended by log_writer.py, which commits them itself before they are acknowledged.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.pagination import Page, paginate
from app.db.types import utcnow
from app.db.unique import flush_unique
from app.documents.models import Document, DocumentType, DocumentUpdate
from app.errors import NotFound, ValidationFailed
from app.rooms.service import validate_name, validate_slug

MAX_METADATA_BYTES = 16_384


@dataclass(frozen=True, slots=True)
class LoggedUpdate:
    seq: int
    update: bytes
    origin: str | None


@dataclass(frozen=True, slots=True)
class StoredState:
    """What a replica is loaded from: the compacted state and the log after it."""

    state: bytes | None
    compacted_seq: int
    log: list[LoggedUpdate]
    room_id: uuid.UUID | None = None

    @property
    def seq(self) -> int:
        return self.log[-1].seq if self.log else self.compacted_seq


def validate_metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed("metadata must be a JSON object", field="metadata")
    if len(json.dumps(value)) > MAX_METADATA_BYTES:
        raise ValidationFailed(f"metadata must be at most {MAX_METADATA_BYTES} bytes", field="metadata")
    return value


async def create_document(
    session: AsyncSession,
    room_id: uuid.UUID,
    *,
    name: str,
    slug: str | None,
    type: DocumentType,
    metadata: Any,
    created_by_id: uuid.UUID | None,
) -> Document:
    document = Document(
        room_id=room_id,
        name=validate_name(name),
        slug=validate_slug(slug) if slug is not None else None,
        type=type,
        metadata_=validate_metadata(metadata),
        created_by_id=created_by_id,
    )
    session.add(document)
    await _flush_unique(session, document.slug)
    return document


async def _flush_unique(session: AsyncSession, slug: str | None) -> None:
    await flush_unique(
        session,
        f"a document with slug {slug!r} already exists in this room (perhaps in its trash)",
        savepoint=True,
    )


async def get_document(session: AsyncSession, document_id: uuid.UUID, *, trashed: bool = False) -> Document:
    """The document; NOT_FOUND if it does not exist, or is in the trash unless `trashed`."""
    document = await session.get(Document, document_id)
    if document is None or (document.deleted_at is not None and not trashed):
        raise NotFound("document")
    return document


async def get_document_by_slug(session: AsyncSession, room_id: uuid.UUID, slug: str) -> Document:
    query = select(Document).where(
        Document.room_id == room_id,
        Document.slug == slug.strip().lower(),
        Document.deleted_at.is_(None),  # type: ignore[union-attr]
    )
    document = (await session.execute(query)).scalar_one_or_none()
    if document is None:
        raise NotFound("document")
    return document


async def list_documents(
    session: AsyncSession, room_id: uuid.UUID, *, trashed: bool, first: int, after: str | None
) -> Page[Document]:
    column = Document.deleted_at
    query = select(Document).where(
        Document.room_id == room_id,
        column.is_not(None) if trashed else column.is_(None),  # type: ignore[union-attr]
    )
    return await paginate(session, query, Document, first=first, after=after)


async def rename_document(
    session: AsyncSession, document: Document, *, name: str | None, slug: str | None
) -> None:
    if name is not None:
        document.name = validate_name(name)
    if slug is not None:
        document.slug = validate_slug(slug)
    await _flush_unique(session, document.slug)


def trash_document(document: Document) -> bool:
    if document.deleted_at is not None:
        return False
    document.deleted_at = utcnow()
    return True


def restore_document(document: Document) -> bool:
    if document.deleted_at is None:
        return False
    document.deleted_at = None
    return True


async def read_log(
    session: AsyncSession, document_id: uuid.UUID, *, after: int, upto: int | None = None
) -> list[LoggedUpdate]:
    query = select(DocumentUpdate.seq, DocumentUpdate.update, DocumentUpdate.origin).where(
        DocumentUpdate.document_id == document_id, DocumentUpdate.seq > after
    )
    if upto is not None:
        query = query.where(DocumentUpdate.seq <= upto)
    rows = await session.execute(query.order_by(DocumentUpdate.seq))
    return [LoggedUpdate(int(seq), bytes(data), origin) for seq, data, origin in rows]


async def read_stored(session: AsyncSession, document_id: uuid.UUID) -> StoredState:
    """The stored state and the log after it, consistent even while a compaction commits: the
    log is read first, so a compaction in between only means some rows are in the state too
    (applying a Yjs update twice changes nothing)."""
    log = await read_log(session, document_id, after=0)
    row = (
        await session.execute(
            select(Document.yjs_state, Document.compacted_seq, Document.deleted_at, Document.room_id).where(
                Document.id == document_id
            )
        )
    ).one_or_none()
    if row is None or row.deleted_at is not None:
        raise NotFound("document")
    return StoredState(
        state=bytes(row.yjs_state) if row.yjs_state is not None else None,
        compacted_seq=int(row.compacted_seq),
        log=log,
        room_id=row.room_id,
    )


async def active_ids(session: AsyncSession, document_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `document_ids` exist and are not in the trash."""
    rows = await session.execute(
        select(Document.id).where(
            Document.id.in_(list(document_ids)),  # type: ignore[attr-defined]
            Document.deleted_at.is_(None),  # type: ignore[union-attr]
        )
    )
    return set(rows.scalars())


async def last_seq(session: AsyncSession, document_id: uuid.UUID) -> int:
    seq = (
        await session.execute(select(Document.last_seq).where(Document.id == document_id))
    ).scalar_one_or_none()
    if seq is None:
        raise NotFound("document")
    return int(seq)


async def drop_log(session: AsyncSession, document_id: uuid.UUID, *, upto: int) -> None:
    await session.execute(
        delete(DocumentUpdate).where(DocumentUpdate.document_id == document_id, DocumentUpdate.seq <= upto)
    )
