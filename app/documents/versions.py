"""Snapshots: saved versions of a document, automatic (while it is edited, see compaction.py),
manual and named (FR-6.6), or milestones (the state just before a restore)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.pagination import Page, paginate
from app.documents.models import Document, Snapshot, SnapshotType
from app.errors import NotFound, ValidationFailed

MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 2_000


async def take_snapshot(
    session: AsyncSession,
    document: Document,
    state: bytes,
    seq: int,
    *,
    type: SnapshotType,
    name: str | None,
    description: str | None,
    created_by_id: uuid.UUID | None,
) -> Snapshot:
    if name is not None and not 1 <= len(name.strip()) <= MAX_NAME_CHARS:
        raise ValidationFailed(f"name must be 1 to {MAX_NAME_CHARS} characters", field="name")
    if description is not None and len(description) > MAX_DESCRIPTION_CHARS:
        raise ValidationFailed(
            f"description must be at most {MAX_DESCRIPTION_CHARS} characters", field="description"
        )
    snapshot = Snapshot(
        document_id=document.id,
        version=document.version,
        seq=seq,
        yjs_state=state,
        type=type,
        name=name.strip() if name else None,
        description=description,
        size_bytes=len(state),
        created_by_id=created_by_id,
    )
    session.add(snapshot)
    await session.flush()
    return snapshot


async def get_snapshot(session: AsyncSession, snapshot_id: uuid.UUID) -> Snapshot:
    snapshot = await session.get(Snapshot, snapshot_id)
    if snapshot is None:
        raise NotFound("snapshot")
    return snapshot


async def list_snapshots(
    session: AsyncSession,
    document_id: uuid.UUID,
    *,
    type: SnapshotType | None,
    first: int,
    after: str | None,
) -> Page[Snapshot]:
    query = select(Snapshot).where(Snapshot.document_id == document_id)
    if type is not None:
        query = query.where(Snapshot.type == type)
    return await paginate(session, query, Snapshot, first=first, after=after)
